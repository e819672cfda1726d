// Striped I/O of the client against a real reference OSS, without an MDS: objects are
// precreated with OST_CREATE as the MDS's osp would, a RAID0 layout is made by hand,
// and LustreFile writes, reads, sizes and truncates through OST_WRITE/READ/GETATTR/PUNCH.
import t from 'tap'
import fc from 'fast-check'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LnetEndpoint, PtlrpcEndpoint } from '../../src/transport/index.js'
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { TargetImport } from '../../reference/common/index.js'
import { OssServer } from '../../reference/oss/index.js'
import { LustreFile, type Layout } from '../../reference/client/index.js'
import { discoverOsts, ostUuid } from '../../reference/client/osc.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const KiB = 1024
const MiB = 1024 * KiB

async function setup(t: { teardown(fn: () => unknown): void }, osts = 4) {
  const dir = mkdtempSync(join(tmpdir(), 'lc-client-io-'))
  const oss = new OssServer({ dir, osts, host: '127.0.0.1', port: 0 })
  await oss.start()
  const lnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid: 0x80000000 + 77 })
  const rpc = new PtlrpcEndpoint(lnet)
  t.teardown(async () => { await lnet.close(); await oss.close(); rmSync(dir, { recursive: true, force: true }) })
  const peer = await lnet.connect('127.0.0.1', oss.port)
  const found = await discoverOsts([{ rpc, peer }], { fsname: 'lustre', clientUuid: 'client-io-test_UUID', brwSize: MiB, timeoutMs: 10_000 })
  // What the MDS's osp does: precreate objects on each OST (OST_CREATE up to an id).
  let next = 0
  const created = new Map<number, bigint>()
  const mdt = async (index: number, upTo: bigint): Promise<void> => {
    const imp = new TargetImport(rpc, peer, { service: 'ost', targetUuid: ostUuid('lustre', index), clientUuid: 'lustre-MDT0000-mdtlov_UUID', flags: C('OBD_CONNECT_VERSION'), timeoutMs: 10_000 })
    await imp.connect()
    await imp.call({ format: 'RQF_OST_CREATE', fields: { RMF_OST_BODY: makeStruct('ost_body', { oa: { o_valid: C('OBD_MD_FLID') | C('OBD_MD_FLGROUP'), o_oi: { oi: { oi_id: upTo, oi_seq: 0n } } } }) } })
  }
  /** A new file striped over `count` OSTs from `first`, objects freshly created. */
  const file = async (stripeSize: number, count: number, first = 0, brw = MiB): Promise<LustreFile> => {
    const objects = []
    for (let i = 0; i < count; i++) {
      const ost = (first + i) % osts
      const id = (created.get(ost) ?? 0n) + 1n
      created.set(ost, id)
      await mdt(ost, id)
      objects.push({ ostIndex: ost, objectId: id, seq: 0n })
    }
    const layout: Layout = { stripeSize, stripeCount: count, stripeOffset: first, pattern: 1, objects, layoutGen: 0 }
    next++
    return new LustreFile({ seq: 0x200000400n, oid: next, ver: 0 }, layout, found, brw, 8)
  }
  return { found, file }
}

t.test('OSTs are found by connecting, index by index', async t => {
  const { found } = await setup(t, 3)
  t.same([...found.keys()], [0, 1, 2])
  t.equal(found.get(2)!.imp.opts.targetUuid, 'lustre-OST0002_UUID')
})

t.test('a few MiB over 4 stripes of 64 KiB read back, sizes from the objects', async t => {
  const { file } = await setup(t)
  const f = await file(64 * KiB, 4)
  const data = new Uint8Array(3 * MiB + 12345).map((_, i) => (i * 7 + (i >> 16)) & 0xff)
  await f.write(0, data)
  t.equal(await f.size(), data.length)
  t.same(Buffer.from(await f.read(0, data.length + 100)), Buffer.from(data), 'whole file, short at EOF')
  t.same(Buffer.from(await f.read(100000, 5)), Buffer.from(data.subarray(100000, 100005)))
  t.equal((await f.read(data.length, 10)).length, 0, 'nothing past EOF')
  const sizes = (await f.objectAttrs()).map(a => Number(a.o_size))
  t.equal(sizes.reduce((a, b) => a + b, 0), data.length, 'every byte in exactly one object')
})

t.test('random writes at random offsets read back exactly; holes are zeros', async t => {
  const { file } = await setup(t)
  await fc.assert(fc.asyncProperty(
    fc.integer({ min: 1, max: 16 }).map(k => k * 64 * KiB), fc.integer({ min: 1, max: 4 }), fc.constantFrom(64 * KiB, MiB, 4 * MiB),
    fc.array(fc.record({ offset: fc.integer({ min: 0, max: 3 * MiB }), length: fc.integer({ min: 1, max: 300 * KiB }), byte: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 5 }),
    async (ss, count, brw, writes) => {
      const f = await file(ss, count, count - 1, brw)
      const model = new Uint8Array(4 * MiB)
      let size = 0
      for (const w of writes) {
        const d = new Uint8Array(w.length).map((_, i) => (w.byte + i) & 0xff)
        await f.write(w.offset, d)
        model.set(d, w.offset)
        size = Math.max(size, w.offset + w.length)
      }
      if (await f.size() !== size) return false
      const back = await f.read(0, 4 * MiB)
      return Buffer.from(back).equals(Buffer.from(model.subarray(0, size)))
    }), { numRuns: 8 })
  t.pass('8 random layouts and write sets read back as the model says')
})

t.test('bulks of several LNET_MTU pieces to one OSS in parallel keep their match bits apart', async t => {
  const { file } = await setup(t)
  // Two objects on one OSS, each RPC 2-4 MiB: every bulk spans several match bits at once.
  const f = await file(64 * KiB, 2, 1, 4 * MiB)
  const data = new Uint8Array(7 * MiB + 3).map((_, i) => (i * 13 + (i >> 20)) & 0xff)
  await f.write(0, data)
  t.ok(Buffer.from(await f.read(0, data.length)).equals(Buffer.from(data)), '7 MiB in 4 MiB RPCs')
  const g = await file(64 * KiB, 2, 1, 4 * MiB)
  const part = data.subarray(0, 307191)
  await g.write(1789962, part)
  const back = await g.read(0, 4 * MiB)
  t.equal(back.length, 1789962 + part.length)
  t.ok(back.subarray(0, 1789962).every(b => b === 0) && Buffer.from(back.subarray(1789962)).equals(Buffer.from(part)), 'hole then data, read as two 1 MiB + 1 bulks')
})

t.test('truncate shrinks and grows through OST_PUNCH', async t => {
  const { file } = await setup(t)
  const f = await file(64 * KiB, 3)
  const data = new Uint8Array(1 * MiB).fill(0xab)
  await f.write(0, data)
  await f.truncate(200 * KiB + 3)
  t.equal(await f.size(), 200 * KiB + 3)
  t.same(Buffer.from(await f.read(0, MiB)), Buffer.from(data.subarray(0, 200 * KiB + 3)))
  await f.truncate(700 * KiB)
  t.equal(await f.size(), 700 * KiB, 'grown sparse')
  const back = await f.read(0, MiB)
  t.ok(back.subarray(200 * KiB + 3).every(b => b === 0), 'the grown part reads as zeros')
  await f.truncate(0)
  t.equal(await f.size(), 0)
})

t.test('readInto a reused buffer: holes, short reads and unaligned runs never show its old bytes', async t => {
  const { file } = await setup(t)
  // Stripes of 64 KiB with 1 MiB windows: the first RPCs are one run each (read in place),
  // an unaligned start makes multi-run RPCs (scattered); the hole and EOF need zeros written.
  const f = await file(64 * KiB, 3, 0, MiB)
  const data = new Uint8Array(200 * KiB).map((_, i) => 1 + (i % 251))
  await f.write(MiB, data)
  const size = MiB + data.length
  for (const [offset, length] of [[0, 2 * MiB], [12345, MiB], [MiB - 7, 300 * KiB]] as const) {
    const buf = new Uint8Array(length).fill(0xee)
    const n = await f.readInto(offset, buf, size)
    t.equal(n, Math.min(length, size - offset), `${length} at ${offset}: short at EOF`)
    const want = new Uint8Array(n)
    for (let i = 0; i < n; i++) { const at = offset + i; want[i] = at >= MiB ? data[at - MiB] : 0 }
    t.ok(Buffer.from(buf.subarray(0, n)).equals(Buffer.from(want)), `${length} at ${offset}: zeros in the hole, data after`)
    t.ok(buf.subarray(n).every(b => b === 0xee), 'bytes past the result untouched')
  }
})
