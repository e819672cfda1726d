// Coherent caching: clients that cache file pages under extent locks (reference/client/
// cache.ts) see each other's completed writes. Random sequences of writes and reads over
// overlapping ranges of one striped file, from two clients in this process and one in a
// process of its own, are checked against a model of the file after every read. The same
// property run with a client that keeps its pages when it gives a lock up must fail: the
// test can tell a coherent cache from a stale one.
import t from 'tap'
import type { Test } from 'tap'
import fc from 'fast-check'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { startCluster, type RunningCluster } from '../../reference/cluster/index.js'
import { LustreClient } from '../../reference/client/index.js'
import { DataCache } from '../../reference/client/cache.js'

const SEED = Number(process.env.LC_SEED ?? 0xc0e7)
const KiB = 1024
const SPAN = 512 * KiB
t.comment(`fast-check seed ${SEED} (LC_SEED to change)`)

interface Io {
  write(offset: number, data: Uint8Array): Promise<void>
  read(offset: number, length: number): Promise<Uint8Array>
  close(): Promise<void>
}

function inProcess(c: RunningCluster, path: string): Promise<Io & { client: LustreClient }> {
  return LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses }).then(client => ({
    client,
    write: (o, d) => client.write(path, o, d),
    read: (o, n) => client.read(path, o, n),
    close: () => client.close(),
  }))
}

// A client in a process of its own, driven by JSON lines (the built reference client, as npm test builds it first).
const WORKER = `
const { createInterface } = require('node:readline')
;(async () => {
  const { LustreClient } = await import(${JSON.stringify(resolve('dist/reference/client/index.js'))})
  const [mds, oss, path] = process.argv.slice(1)
  const client = await LustreClient.connect({ mds, oss: [oss] })
  console.log(JSON.stringify({ ready: true }))
  for await (const line of createInterface({ input: process.stdin })) {
    const m = JSON.parse(line)
    try {
      if (m.op === 'write') { await client.write(path, m.offset, Buffer.from(m.data, 'base64')); console.log(JSON.stringify({ ok: true })) }
      else if (m.op === 'read') { const d = await client.read(path, m.offset, m.length); console.log(JSON.stringify({ ok: true, data: Buffer.from(d).toString('base64') })) }
      else { await client.close(); console.log(JSON.stringify({ ok: true })); process.exit(0) }
    } catch (e) { console.log(JSON.stringify({ ok: false, error: String(e) })) }
  }
})()
`

async function worker(c: RunningCluster, path: string): Promise<Io> {
  const child = spawn(process.execPath, ['-e', WORKER, c.mdsAddress, c.ossAddresses[0], path], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const next = async (): Promise<{ ok?: boolean; data?: string; error?: string; ready?: boolean }> => JSON.parse((await lines.next()).value as string)
  if (!(await next()).ready) throw new Error('worker did not start')
  const ask = async (m: object): Promise<{ data?: string }> => {
    child.stdin!.write(`${JSON.stringify(m)}\n`)
    const r = await next()
    if (!r.ok) throw new Error(`worker: ${r.error}`)
    return r
  }
  return {
    write: async (offset, data) => { await ask({ op: 'write', offset, data: Buffer.from(data).toString('base64') }) },
    read: async (offset, length) => new Uint8Array(Buffer.from((await ask({ op: 'read', offset, length })).data ?? '', 'base64')),
    close: async () => { await ask({ op: 'close' }).catch(() => {}); child.kill() },
  }
}

const opArb = (clients: number) => fc.record({
  who: fc.integer({ min: 0, max: clients - 1 }),
  write: fc.boolean(),
  offset: fc.integer({ min: 0, max: SPAN - 1 }),
  length: fc.integer({ min: 1, max: 160 * KiB }),
  byte: fc.integer({ min: 1, max: 255 }),
})

/** Runs the ops in order; false at the first read that differs from the model. */
async function coherent(ios: Io[], ops: Array<{ who: number; write: boolean; offset: number; length: number; byte: number }>): Promise<boolean> {
  const model = new Uint8Array(SPAN + 160 * KiB)
  let size = 0
  for (const op of ops) {
    const io = ios[op.who]
    if (op.write) {
      const d = new Uint8Array(op.length).map((_, i) => (op.byte + i) & 0xff)
      await io.write(op.offset, d)
      model.set(d, op.offset)
      size = Math.max(size, op.offset + op.length)
    } else {
      const got = await io.read(op.offset, op.length)
      const want = model.subarray(op.offset, Math.max(op.offset, Math.min(op.offset + op.length, size)))
      if (Buffer.compare(got, want) !== 0) return false
    }
  }
  return true
}

async function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'lc-coh-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startCluster({ dir, osts: 2, mdsPort: 0, ossPort: 0 })
  t.teardown(() => c.stop())
  const maker = await LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses })
  t.teardown(() => maker.close())
  let n = 0
  /** A new file striped over both OSTs in 64 KiB stripes, so that one op spans several objects. */
  const file = async (): Promise<string> => {
    const p = `/coh${n++}`
    await maker.create(p, { stripeCount: 2, stripeSize: 64 * KiB })
    return p
  }
  return { c, file }
}

t.test('two clients here and one in another process always read each other\'s completed writes', async t => {
  const { c, file } = await setup(t)
  const runs = 10
  await fc.assert(fc.asyncProperty(fc.array(opArb(3), { minLength: 4, maxLength: 14 }), async ops => {
    const p = await file()
    const ios = await Promise.all([inProcess(c, p), inProcess(c, p), worker(c, p)])
    try {
      return await coherent(ios, ops)
    } finally {
      for (const io of ios) await io.close()
    }
  }), { seed: SEED, numRuns: runs })
  t.pass(`${runs} random sequences of writes and reads over three clients read back as the model says`)
})

t.test('the property fails for a client that keeps its pages when it gives a lock up', async t => {
  const { c, file } = await setup(t)
  // A stale cache, made here only: removing a lock no longer drops the object's pages.
  const proto = DataCache.prototype as unknown as { remove(this: { lru: Map<unknown, true> }, c: unknown): void }
  const remove = proto.remove
  proto.remove = function (this: { lru: Map<unknown, true> }, l: unknown) { this.lru.delete(l) }
  t.teardown(() => { proto.remove = remove })
  const r = await fc.check(fc.asyncProperty(fc.array(opArb(2), { minLength: 4, maxLength: 20 }), async ops => {
    const p = await file()
    const ios = await Promise.all([inProcess(c, p), inProcess(c, p)])
    try {
      return await coherent(ios, ops)
    } finally {
      for (const io of ios) await io.close()
    }
  }), { seed: SEED, numRuns: 60, endOnFailure: true })
  t.ok(r.failed, r.failed ? `stale read found: ${JSON.stringify(r.counterexample)}` : 'no stale read found')
})
