// Striping integrity of the reference cluster, as a property: files with random RAID0
// layouts (stripe sizes 64 KiB..4 MiB in 64 KiB steps, 1..all stripes, any first OST)
// take random writes (unaligned, sparse, overlapping). Through the client each file
// reads back as a byte model says; each OST object, read straight from its OST with
// OST_READ, holds exactly the bytes the RAID0 mapping puts there (STRIPE-RAID0-MAP).
import t from 'tap'
import fc from 'fast-check'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LnetEndpoint, PtlrpcEndpoint } from '../../src/transport/index.js'
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { startCluster, type RunningCluster } from '../../reference/cluster/index.js'
import { LustreClient, type Layout } from '../../reference/client/index.js'
import { TargetImport } from '../../reference/common/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const KiB = 1024
const OSTS = 4
const SEED = Number(process.env.LC_SEED ?? 20261127)

/** What the file holds: bytes written so far (holes are zeros) and its size. */
class FileModel {
  bytes = new Uint8Array(0)
  size = 0
  write(off: number, data: Uint8Array): void {
    if (off + data.length > this.bytes.length) {
      const grown = new Uint8Array(Math.max(off + data.length, this.bytes.length * 2))
      grown.set(this.bytes)
      this.bytes = grown
    }
    this.bytes.set(data, off)
    this.size = Math.max(this.size, off + data.length)
  }
}

/** The bytes object `j` of `layout` must hold: file bytes mapped back through RAID0. */
function objectModel(file: FileModel, layout: Layout, j: number): Uint8Array {
  const S = layout.stripeSize
  const n = layout.objects.length
  const out: number[] = []
  let end = 0
  for (let row = 0; ; row++) {
    const fileStart = (row * n + j) * S
    if (fileStart >= file.size) break
    const len = Math.min(S, file.size - fileStart)
    for (let k = 0; k < len; k++) out[row * S + k] = file.bytes[fileStart + k]
    end = row * S + len
  }
  const obj = new Uint8Array(end)
  for (let k = 0; k < end; k++) obj[k] = out[k] ?? 0
  return obj
}

async function ostReader(c: RunningCluster, t: { teardown(fn: () => unknown): void }) {
  const imports = new Map<number, TargetImport>()
  for (const s of c.oss) {
    // One endpoint per OSS: the OSSes of this cluster share a host, hence a NID and pid,
    // and LNet tells peers apart by those alone.
    const lnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid: 31337 })
    t.teardown(() => lnet.close())
    const rpc = new PtlrpcEndpoint(lnet)
    const peer = await lnet.connect(s.host, s.port)
    for (const i of s.osts ?? []) {
      const imp = new TargetImport(rpc, peer, {
        service: 'ost', targetUuid: `lustre-OST${i.toString(16).padStart(4, '0')}_UUID`, clientUuid: 'striping-test_UUID',
        flags: C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20') | C('OBD_CONNECT_BULK_MBITS'), timeoutMs: 20_000,
      })
      await imp.connect()
      imports.set(i, imp)
    }
  }
  /** OST_READ of [0, len) of one object, straight from its OST, 1 MiB per RPC. */
  return async (o: Layout['objects'][number], len: number): Promise<Uint8Array> => {
    const out = new Uint8Array(len)
    const oi = { oi: { oi_id: o.objectId, oi_seq: o.seq } }
    for (let off = 0; off < len; off += 1 << 20) {
      const n = Math.min(1 << 20, len - off)
      const r = await imports.get(o.ostIndex)!.call({
        format: 'RQF_OST_BRW_READ',
        fields: {
          RMF_OST_BODY: makeStruct('ost_body', { oa: { o_oi: oi, o_valid: C('OBD_MD_FLID') | C('OBD_MD_FLGROUP') } }),
          RMF_OBD_IOOBJ: [makeStruct('obd_ioobj', { ioo_oid: oi, ioo_bufcnt: 1 })],
          RMF_NIOBUF_REMOTE: [makeStruct('niobuf_remote', { rnb_offset: BigInt(off), rnb_len: n })],
        },
        bulkSinkLength: n,
      })
      // Bytes past what the OST sent are zeros (a short bulk past the object's end).
      out.set((r.bulk ?? new Uint8Array(0)).subarray(0, n), off)
    }
    return out
  }
}

t.test('random layouts and writes: the file and every OST object hold what RAID0 says', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lc-stripe-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startCluster({ dir, osts: OSTS, ossCount: 2, mdsPort: 0, ossPort: 0 })
  t.teardown(() => c.stop())
  const client = await LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses })
  t.teardown(() => client.close())
  const readObject = await ostReader(c, t)
  let n = 0
  const layoutArb = fc.record({
    stripeSize: fc.integer({ min: 1, max: 64 }).map(k => k * 64 * KiB),
    stripeCount: fc.oneof(fc.integer({ min: 1, max: OSTS }), fc.constant(-1)),
    stripeOffset: fc.oneof(fc.integer({ min: 0, max: OSTS - 1 }), fc.constant(-1)),
  })
  const writeArb = fc.record({
    offset: fc.oneof(fc.integer({ min: 0, max: 6 * 1024 * KiB }), fc.integer({ min: 0, max: 300 * KiB })),
    length: fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 1500 * KiB })),
    seed: fc.integer({ min: 1, max: 255 }),
  })
  await fc.assert(fc.asyncProperty(layoutArb, fc.array(writeArb, { minLength: 1, maxLength: 5 }), async (lay, writes) => {
    const path = `/f${n++}`
    await client.create(path, lay)
    const layout = (await client.getstripe(path))!
    const wantCount = lay.stripeCount === -1 ? OSTS : lay.stripeCount
    const fail = (why: string): never => { throw new Error(`${path}: ${why}`) }
    if (layout.stripeSize !== lay.stripeSize || layout.objects.length !== wantCount) fail(`layout ${layout.stripeSize} x ${layout.objects.length}`)
    if (lay.stripeOffset >= 0 && layout.objects[0].ostIndex !== lay.stripeOffset) fail(`first OST ${layout.objects[0].ostIndex}, not ${lay.stripeOffset}`)
    if (new Set(layout.objects.map(o => o.ostIndex)).size !== wantCount) fail('an OST holds two stripes')
    const model = new FileModel()
    for (const w of writes) {
      const data = new Uint8Array(w.length).map((_, i) => (w.seed + i * 7) & 0xff)
      await client.write(path, w.offset, data)
      model.write(w.offset, data)
    }
    const st = await client.stat(path)
    if (st.size !== BigInt(model.size)) fail(`stat size ${st.size}, written ${model.size}`)
    const back = await client.read(path, 0, model.size + 100)
    if (back.length !== model.size || Buffer.compare(back, model.bytes.subarray(0, model.size)) !== 0) fail('file reads back different')
    for (let j = 0; j < layout.objects.length; j++) {
      const want = objectModel(model, layout, j)
      const got = await readObject(layout.objects[j], want.length)
      const at = got.findIndex((b, k) => b !== want[k])
      if (at >= 0) fail(`object ${j} (OST ${layout.objects[j].ostIndex}) differs at object offset ${at} of ${want.length}`)
    }
  }), { seed: SEED, numRuns: 12, endOnFailure: true })
  t.pass(`${n} files with random layouts checked through the client and object by object (seed ${SEED})`)
})
