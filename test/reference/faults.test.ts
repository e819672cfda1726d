// The reply rewriters behind the reference's packing faults (reference/common/faults.ts):
// each breaks exactly the rule it is named for and leaves every other byte as it was, so a
// mutant the certifier catches is caught for that rule.
import t from 'tap'
import { buildBody, replyBodyFor } from '../../src/transport/index.js'
import { decodeMessage, encodeFormatted, encodeStruct, frameMessage, loadSpec, makeStruct, round8 } from '../../src/wire/index.js'
import { dropLastBuffer, shiftStripes, unpadBuffers } from '../../reference/common/faults.js'

const spec = loadSpec()
const fmt = spec.formats.get('RQF_MDS_GETATTR')!
const opc = spec.opcodesByName.get('MDS_GETATTR')!.opc

/** An MDS_GETATTR reply whose buffers have lengths that are not all multiples of 8. */
function reply(): Uint8Array {
  const body = replyBodyFor(spec, buildBody(spec, { pb_opc: opc }, 'request'), {})
  return encodeFormatted(fmt, 'reply', { body, fields: { RMF_MDT_BODY: makeStruct('mdt_body', { mbo_size: 77n }), RMF_MDT_MD: new Uint8Array([1, 2, 3]), RMF_FILE_ENCCTX: new Uint8Array([9, 9, 9, 9, 9]) } }, spec)
}

const buffersOf = (bytes: Uint8Array): Uint8Array[] => {
  const f = frameMessage(bytes)
  return f.offsets.map((o, i) => bytes.subarray(o, o + f.lengths[i]))
}

t.test('dropLastBuffer: one buffer fewer, the others byte for byte', async t => {
  const good = reply()
  const bad = dropLastBuffer(good)
  const [g, b] = [buffersOf(good), buffersOf(bad)]
  t.equal(b.length, g.length - 1, `${g.length} buffers become ${b.length}`)
  t.same(b, g.slice(0, -1))
  t.equal(bad.length, round8(32 + 4 * b.length) + b.reduce((a, x) => a + round8(x.length), 0), 'still padded to 8')
  t.equal((decodeMessage(bad, { requestFormat: fmt.name }).fields.RMF_MDT_BODY as { mbo_size: bigint }).mbo_size, 77n, 'and still decodes')
  const ping = encodeFormatted(spec.formats.get('RQF_OBD_PING')!, 'reply', { body: replyBodyFor(spec, buildBody(spec, { pb_opc: 400 }, 'request'), {}), fields: {} }, spec)
  t.equal(dropLastBuffer(ping), ping, 'a reply of the body alone is left whole')
})

t.test('unpadBuffers: the same buffers, packed with no gap', async t => {
  const good = reply()
  const bad = unpadBuffers(good)
  const lens = frameMessage(good).lengths
  t.ok(lens.some(n => n % 8), 'some length is not a multiple of 8')
  t.equal(bad.length, 32 + 4 * lens.length + lens.reduce((a, n) => a + n, 0), 'header and buffers back to back')
  const dv = new DataView(bad.buffer, bad.byteOffset)
  t.same(Array.from({ length: lens.length }, (_, i) => dv.getUint32(32 + 4 * i, true)), lens, 'lm_buflens unchanged')
  let at = 32 + 4 * lens.length
  for (const [i, b] of buffersOf(good).entries()) {
    t.same(bad.subarray(at, at + b.length), b, `buffer ${i} follows at ${at}`)
    at += b.length
  }
  t.throws(() => decodeMessage(bad, { requestFormat: fmt.name }), 'our decoder refuses it')
})

t.test('shiftStripes: stripe i names the object of stripe i + 1', async t => {
  const lmm = encodeStruct('lov_mds_md_v1', makeStruct('lov_mds_md_v1', {
    lmm_magic: 0x0bd10bd0, lmm_pattern: 1, lmm_stripe_size: 1 << 20, lmm_stripe_count: 3,
    lmm_objects: [0, 1, 2].map(i => ({ l_ost_oi: { oi: { oi_id: BigInt(100 + i), oi_seq: 0n } }, l_ost_gen: 0, l_ost_idx: i })),
  }))
  const out = shiftStripes(lmm)
  t.same(out.subarray(0, 32), lmm.subarray(0, 32), 'the header as it was')
  const idx = (b: Uint8Array) => [0, 1, 2].map(i => new DataView(b.buffer, b.byteOffset).getUint32(32 + 24 * i + 20, true))
  t.same(idx(out), [1, 2, 0])
  t.same(shiftStripes(lmm.subarray(0, 56)), lmm.subarray(0, 56), 'one stripe: nothing to shift')
})
