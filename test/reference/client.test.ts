// The reference client end to end against a real reference OSS (4 OSTs) and MDS on
// loopback: namespace operations, striped I/O, layouts, and the `client` CLI command.
import t from 'tap'
import fc from 'fast-check'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OssServer } from '../../reference/oss/index.js'
import { MdsServer } from '../../reference/mds/index.js'
import { E, LustreClient, LustreRpcError, formatGetstripe } from '../../reference/client/index.js'
import { clientCommand } from '../../src/cli/client-cmd.js'
import { pcapRecorderFactory } from '../../src/tour/index.js'
import { compareWithTshark, haveTshark } from '../helpers/tshark-compare.js'

const KiB = 1024
const MiB = 1024 * KiB

const dir = mkdtempSync(join(tmpdir(), 'lc-client-'))
const logs: string[] = []
const log = (l: string): void => { logs.push(l) }
const oss = new OssServer({ dir: join(dir, 'oss'), osts: 4, host: '127.0.0.1', port: 0, log })
let mds: MdsServer
let client: LustreClient
let args: string[]

t.before(async () => {
  await oss.start()
  mds = new MdsServer({ dir: join(dir, 'mds'), osts: [0, 1, 2, 3].map(index => ({ index, host: '127.0.0.1', port: oss.port, nid: oss.nid })), host: '127.0.0.1', port: 0, log })
  await mds.start()
  args = ['--mds', `127.0.0.1:${mds.port}`, '--oss', `127.0.0.1:${oss.port}`]
  client = await LustreClient.connect({ mds: `127.0.0.1:${mds.port}`, oss: [`127.0.0.1:${oss.port}`], log })
})

t.teardown(async () => {
  await client?.close()
  await mds?.close()
  await oss.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Runs the CLI command, capturing what it prints. */
async function cli(...cmd: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = []
  const err: string[] = []
  const w = process.stdout.write.bind(process.stdout)
  const e = console.error
  // As a stream does: the chunk is taken (copied here), then the callback, if any, is called.
  process.stdout.write = ((chunk: string | Uint8Array, encOrCb?: unknown, cb?: unknown) => {
    out.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString())
    const done = typeof encOrCb === 'function' ? encOrCb : cb
    if (typeof done === 'function') queueMicrotask(() => done())
    return true
  }) as typeof process.stdout.write
  console.error = (...a: unknown[]) => { err.push(a.join(' ')) }
  try {
    const code = await clientCommand([...args, ...cmd])
    return { code, out: out.join(''), err: err.join('\n') }
  } finally {
    process.stdout.write = w
    console.error = e
  }
}

const status = (e: unknown): number | undefined => (e instanceof LustreRpcError ? e.status : undefined)

t.test('the client finds the 4 OSTs and the root', async t => {
  t.same([...client.osts.keys()], [0, 1, 2, 3])
  const root = await client.stat('/')
  t.equal(root.type, 'dir')
  t.same(root.fid, { seq: 0x200000007n, oid: 1, ver: 0 })
})

t.test('mkdir, ls, stat; errors come back as errnos', async t => {
  await client.mkdir('/d')
  await client.mkdir('/d/sub', 0o700)
  t.same(await client.readdir('/d'), [{ name: 'sub', type: 'dir' }])
  const st = await client.stat('/d/sub')
  t.equal(st.type, 'dir')
  t.equal(st.mode & 0o7777, 0o700 & ~0o022)
  t.equal(status(await client.mkdir('/d').catch(e => e)), E.EEXIST)
  t.equal(status(await client.stat('/nope/x').catch(e => e)), E.ENOENT)
  t.equal(status(await client.readdir('/d/missing').catch(e => e)), E.ENOENT)
  t.equal(status(await client.rmdir('/d').catch(e => e)), E.ENOTEMPTY)
})

t.test('CLI put/get round trip of a few MiB over 4 stripes of 64 KiB', async t => {
  const data = new Uint8Array(5 * MiB + 4321).map((_, i) => (i * 131 + (i >> 13)) & 0xff)
  const local = join(dir, 'in.bin')
  const back = join(dir, 'out.bin')
  writeFileSync(local, data)
  t.equal((await cli('put', '-c', '4', '-S', '64K', local, '/d/big')).code, 0)
  const l = await client.getstripe('/d/big')
  t.equal(l?.stripeCount, 4)
  t.equal(l?.stripeSize, 64 * KiB)
  t.same(new Set(l?.objects.map(o => o.ostIndex)), new Set([0, 1, 2, 3]), 'one object on each OST')
  t.equal((await client.stat('/d/big')).size, BigInt(data.length), 'size from the OST objects')
  t.equal((await cli('get', '/d/big', back)).code, 0)
  t.ok(Buffer.from(readFileSync(back)).equals(Buffer.from(data)), 'get gives back every byte')
  rmSync(back)
  t.equal((await cli('--brw-size', '4M', 'get', '/d/big', back)).code, 0)
  t.ok(Buffer.from(readFileSync(back)).equals(Buffer.from(data)), 'and again in 4 MiB RPCs (several bulk MDs each)')
  const gs = await cli('getstripe', '/d/big')
  t.equal(gs.out, formatGetstripe('/d/big', l!))
  t.match(gs.out, /^\/d\/big\nlmm_stripe_count:  4\nlmm_stripe_size:   65536\nlmm_pattern:       raid0\nlmm_layout_gen:    0\nlmm_stripe_offset: \d\n\tobdidx\t\t objid\t\t objid\t\t group\n/)
  t.equal((await cli('put', '-c', '2', local, '/d/big')).code, 1, 'a layout for an existing file: -EEXIST')
})

t.test('random writes at random offsets read back exactly', async t => {
  await client.create('/d/rand', { stripeCount: 3, stripeSize: 64 * KiB })
  const model = new Uint8Array(3 * MiB)
  let size = 0
  await fc.assert(fc.asyncProperty(
    fc.integer({ min: 0, max: 2 * MiB }), fc.integer({ min: 1, max: 600 * KiB }), fc.integer({ min: 0, max: 255 }),
    async (offset, length, seed) => {
      const d = new Uint8Array(length).map((_, i) => (seed + i * 7) & 0xff)
      await client.write('/d/rand', offset, d)
      model.set(d, offset)
      size = Math.max(size, offset + length)
      const r0 = Math.max(0, offset - 1000)
      const back = await client.read('/d/rand', r0, length + 2000)
      return Buffer.from(back).equals(Buffer.from(model.subarray(r0, Math.min(size, r0 + length + 2000))))
    }), { numRuns: 15 })
  t.equal((await client.stat('/d/rand')).size, BigInt(size))
  t.ok(Buffer.from(await client.readFile('/d/rand')).equals(Buffer.from(model.subarray(0, size))), 'whole file, holes as zeros')
  // write creates a missing file with the default layout
  await client.write('/d/fresh', 100, new Uint8Array([1, 2, 3]))
  t.same([...await client.read('/d/fresh', 98, 10)], [0, 0, 1, 2, 3])
})

t.test('truncate, rename, link, symlink, unlink', async t => {
  await client.writeFile('/d/f', new Uint8Array(300 * KiB).fill(7), { stripeCount: 2, stripeSize: 64 * KiB })
  await client.truncate('/d/f', 100 * KiB + 1)
  t.equal((await client.stat('/d/f')).size, BigInt(100 * KiB + 1))
  await client.truncate('/d/f', 1 * MiB)
  const grown = await client.readFile('/d/f')
  t.equal(grown.length, MiB)
  t.ok(grown.subarray(0, 100 * KiB + 1).every(b => b === 7) && grown.subarray(100 * KiB + 1).every(b => b === 0), 'kept bytes, then zeros')
  await client.rename('/d/f', '/d/sub/g')
  t.equal(status(await client.stat('/d/f').catch(e => e)), E.ENOENT)
  await client.link('/d/sub/g', '/d/h')
  t.equal((await client.stat('/d/h')).nlink, 2)
  await client.symlink('sub/g', '/d/s')
  const s = await client.stat('/d/s')
  t.equal(s.type, 'symlink')
  t.equal(s.target, 'sub/g')
  t.equal((await client.read('/d/s', 0, 4)).length, 4, 'I/O follows the symlink')
  await client.unlink('/d/h')
  t.equal((await client.stat('/d/sub/g')).nlink, 1)
  t.equal(status(await client.unlink('/d/sub').catch(e => e)), E.EISDIR)
  t.equal((await cli('ls', '/d')).out, 'big\nfresh\nrand\ns\nsub\n')
  t.equal((await cli('ls', '-F', '/d')).out, 'big\nfresh\nrand\ns@\nsub/\n')
})

t.test('a directory default layout, inherited by new files', async t => {
  await client.mkdir('/striped')
  t.equal(await client.getstripe('/striped'), undefined, 'no default yet')
  t.equal((await cli('setstripe', '-c', '2', '-S', '128K', '-i', '1', '/striped')).code, 0)
  const def = await client.getstripe('/striped')
  t.same(def, { stripeSize: 128 * KiB, stripeCount: 2, stripeOffset: 1, pattern: 1, objects: [], isDefault: true })
  await client.writeFile('/striped/x', new Uint8Array(10))
  const l = await client.getstripe('/striped/x')
  t.same([l?.stripeCount, l?.stripeSize, l?.objects.map(o => o.ostIndex)], [2, 128 * KiB, [1, 2]])
  t.equal(status(await client.setstripe('/striped/x', { stripeCount: 1 }).catch(e => e)), E.EEXIST, 'a file keeps its layout')
  await client.setstripe('/striped/new', { stripeCount: 4 })
  t.equal((await client.getstripe('/striped/new'))?.stripeCount, 4, 'setstripe on a new path creates the file')
})

t.test('readdir pages through a large directory', async t => {
  await client.mkdir('/many')
  const names = Array.from({ length: 1200 }, (_, i) => `entry-${String(i).padStart(5, '0')}-${'x'.repeat(40)}`)
  for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map(n => client.mkdir(`/many/${n}`)))
  const got = await client.readdir('/many')
  t.equal(got.length, names.length, 'more than one MDS_READPAGE of 64 KiB')
  t.same(got.map(e => e.name).sort(), names)
})

t.test('CLI exit codes and messages', async t => {
  const missing = await cli('stat', '/no/such')
  t.equal(missing.code, 1)
  t.match(missing.err, /^lustre-conformance client: stat \/no\/such: -ENOENT/)
  t.equal((await cli('frobnicate')).code, 2, 'unknown command')
  t.equal((await cli('setstripe', '-S', '100', '/x')).code, 2, 'a stripe size that is not a multiple of 64 KiB')
  t.equal((await cli('mkdir', '/cli')).code, 0)
  t.equal((await cli('ln', '-s', '/d/big', '/cli/l')).code, 0)
  t.equal((await cli('mv', '/cli/l', '/cli/m')).code, 0)
  t.equal((await cli('truncate', '/d/big', '1M')).code, 0)
  t.equal((await client.stat('/d/big')).size, BigInt(MiB))
  const cat = await cli('cat', '/cli/m')
  t.equal(cat.out.length, MiB, 'cat through the symlink')
  t.equal((await cli('rm', '/cli/m')).code, 0)
  t.equal((await cli('rm', '-d', '/cli')).code, 0)
  const st = await cli('stat', '/d')
  t.match(st.out, /Type: dir/)
  const df = await client.statfs()
  t.equal(df.osts.length, 4)
  t.ok(df.total.bytes > 0n)
})

t.test('a recorded client session dissects cleanly in tshark and agrees with our decoder', { skip: haveTshark ? false : 'tshark is not installed' }, async t => {
  const pcap = join(dir, 'client.pcap')
  const rec = pcapRecorderFactory(pcap, { keepUnits: false })
  // Bulks of at most 32 KiB: the recorder writes each LNet message as one TCP segment of at
  // most 64 KiB, and tshark places a longer one (reassembled) on a later frame than ours.
  const c = await LustreClient.connect({ mds: `127.0.0.1:${mds.port}`, oss: [`127.0.0.1:${oss.port}`], recorder: rec.factory, brwSize: 32 * KiB })
  await c.mkdir('/rec')
  await c.setstripe('/rec', { stripeCount: 2, stripeSize: 64 * KiB })
  await c.writeFile('/rec/f', new Uint8Array(300 * KiB).fill(9), { stripeCount: 4 })
  await c.readFile('/rec/f')
  await c.truncate('/rec/f', 1000)
  await c.symlink('f', '/rec/s')
  await c.stat('/rec/s')
  await c.link('/rec/f', '/rec/h')
  await c.rename('/rec/h', '/rec/h2')
  await c.readdir('/rec')
  await c.getstripe('/rec')
  await c.unlink('/rec/h2')
  await c.stat('/rec/missing').catch(() => {})
  await c.statfs()
  await c.close()
  await rec.close()
  const r = compareWithTshark(t, pcap, [])
  t.ok(r.messages > 50, `${r.messages} messages compared`)
})
