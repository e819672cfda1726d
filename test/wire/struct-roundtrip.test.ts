// Every struct of spec/wire: generated values survive encodeStruct -> decodeStruct
// unchanged, in both byte orders; the byte count is encodedSize; the big-endian
// bytes are the little-endian bytes with every integer member swapped (what
// Lustre's lustre_swab_* functions do), checked by a walker independent of the
// codec; decoding works from a view at any byteOffset. A few structs are also
// checked against bytes written out by hand.
import t from 'tap'
import fc from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import {
  loadSpec, decodeStruct, encodeStruct, encodedSize, isWireError,
  type FieldLayout, type StructLayout, type LustreWireError,
} from '../../src/wire/index.js'
import { SCALAR_BYTES, isScalar, runProperty, structArb, tailElement } from '../helpers/arbitraries.js'

const SEED = 0x5eed0001
const RUNS = 200
t.comment(`fast-check seed ${SEED}, ${RUNS} runs per struct`)

const spec = loadSpec()

type Obj = Record<string, unknown>

/** Expected big-endian bytes: the little-endian encoding with each integer member reversed. */
function swabField(out: Uint8Array, f: FieldLayout, off: number, v: unknown): void {
  if (isScalar(f.type)) {
    if (f.type === 'u16be' || f.type === 'u32be' || SCALAR_BYTES[f.type] === 1) return
    out.subarray(off, off + SCALAR_BYTES[f.type]).reverse()
    return
  }
  switch (f.type) {
    case 'char': case 'bytes': return
    case 'struct': swabStruct(out, f.struct!, off, v); return
    case 'array': (v as unknown[]).forEach((e, i) => swabField(out, f.element!, off + i * f.element!.size, e)); return
    case 'union': {
      const [name] = Object.keys(v as Obj)
      if (name === undefined) return
      swabField(out, f.variantsByName!.get(name)!, off, (v as Obj)[name])
    }
  }
}

function swabStruct(out: Uint8Array, l: StructLayout, off: number, v: unknown): void {
  if (l.self) return swabField(out, l.self, off, v)
  const o = v as Obj
  for (const f of l.fields) swabField(out, f, off + f.offset, o[f.name])
  const tl = l.tail
  if (tl && tl.type !== 'char' && tl.type !== 'bytes') {
    const el = tailElement(tl)
    ;(o[tl.name] as unknown[]).forEach((e, i) => swabField(out, el, off + l.size + i * el.size, e))
  }
}

function diff(a: unknown, b: unknown): string {
  const show = (x: unknown) => JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))
  return `\n  want ${show(a)}\n  got  ${show(b)}`
}

const names = [...spec.structs.keys()].sort()
t.ok(names.length >= 60, `spec/wire has its structs (${names.length})`)

t.test('every struct round-trips', async t => {
  for (const name of names) {
    const layout = spec.structs.get(name)!
    const restTail = layout.tail && !layout.tail.countField
    runProperty(t, name, fc.property(structArb(layout), fc.nat({ max: 7 }), (value, pad) => {
      const le = encodeStruct(name, value)
      const size = encodedSize(layout, value)
      if (le.length !== size) throw new Error(`encodeStruct gave ${le.length} bytes, encodedSize says ${size}`)
      const back = decodeStruct(name, le)
      if (!isDeepStrictEqual(back, value)) throw new Error(`LE round trip differs${diff(value, back)}`)
      decodeStruct(name, le, { exact: true })

      const be = encodeStruct(name, value, { littleEndian: false })
      if (be.length !== size) throw new Error(`BE encoding is ${be.length} bytes, not ${size}`)
      const backBe = decodeStruct(name, be, { littleEndian: false })
      if (!isDeepStrictEqual(backBe, value)) throw new Error(`BE round trip differs${diff(value, backBe)}`)
      const want = le.slice()
      swabStruct(want, layout, 0, value)
      if (!isDeepStrictEqual(want, be)) throw new Error(`BE bytes are not the swabbed LE bytes\n  want ${Buffer.from(want).toString('hex')}\n  got  ${Buffer.from(be).toString('hex')}`)

      // A view in the middle of a larger buffer (junk before; after too unless the tail takes the rest).
      const big = new Uint8Array(pad + le.length + (restTail ? 0 : 5)).fill(0xa5)
      big.set(le, pad)
      const view = big.subarray(pad, restTail ? undefined : pad + le.length + 5)
      const fromView = decodeStruct(name, view)
      if (!isDeepStrictEqual(fromView, value)) throw new Error(`decode from byteOffset ${pad} differs${diff(value, fromView)}`)
      return true
    }), { seed: SEED, numRuns: RUNS })
  }
})

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'))
}

function wireCode(f: () => unknown): string | undefined {
  try {
    f()
  } catch (e) {
    return isWireError(e) ? (e as LustreWireError).code : `not a wire error: ${String(e)}`
  }
  return undefined
}

t.test('exact bytes', async t => {
  const fid = { f_seq: 0x0102030405060708n, f_oid: 0x0a0b0c0d, f_ver: 0x11121314 }
  t.strictSame(encodeStruct('lu_fid', fid), hex('0807060504030201 0d0c0b0a 14131211'), 'lu_fid little-endian')
  t.strictSame(encodeStruct('lu_fid', fid, { littleEndian: false }), hex('0102030405060708 0a0b0c0d 11121314'), 'lu_fid big-endian')
  t.strictSame(decodeStruct('lu_fid', hex('0807060504030201 0d0c0b0a 14131211')), fid, 'lu_fid decodes')

  // lnet_nid.nid_num is big-endian whatever the unit's byte order.
  const nid = { nid_size: 4, nid_type: 2, nid_num: 0x0102, nid_addr: hex('c0a80105' + '00'.repeat(12)) }
  const nidBytes = hex('04 02 0102 c0a80105' + '00'.repeat(12))
  t.strictSame(encodeStruct('lnet_nid', nid), nidBytes, 'lnet_nid (LE unit)')
  t.strictSame(encodeStruct('lnet_nid', nid, { littleEndian: false }), nidBytes, 'lnet_nid (BE unit): same bytes')
  t.strictSame(decodeStruct('lnet_nid', nidBytes, { littleEndian: false }), nid, 'lnet_nid decodes in a BE unit')

  // lustre_msg_v2 header with two buffer lengths (the flexible tail counted by lm_bufcount).
  const msg = { lm_bufcount: 2, lm_secflvr: 0, lm_magic: 0x0bd00bd3, lm_repsize: 0x400, lm_cksum: 0, lm_flags: 1, lm_opc: 0, lm_padding_3: 0, lm_buflens: [184, 7] }
  const msgBytes = hex('02000000 00000000 d30bd00b 00040000 00000000 01000000 00000000 00000000 b8000000 07000000')
  t.strictSame(encodeStruct('lustre_msg_v2', msg), msgBytes, 'lustre_msg_v2 header + buflens')
  t.strictSame(decodeStruct('lustre_msg_v2', msgBytes), msg, 'lustre_msg_v2 decodes')

  // obd_uuid: a struct that is one char[40] decodes to a string.
  const uuid = new Uint8Array(40)
  uuid.set(new TextEncoder().encode('lustre-MDT0000_UUID'))
  t.equal(decodeStruct('obd_uuid', uuid), 'lustre-MDT0000_UUID', 'obd_uuid is its string')
  t.strictSame(encodeStruct('obd_uuid', 'lustre-MDT0000_UUID'), uuid, 'obd_uuid encodes NUL-padded')
  t.equal(decodeStruct('obd_uuid', new Uint8Array(40).fill(0x41)), 'A'.repeat(40), 'a full char[40] without NUL is 40 characters')

  // ost_id: union without discriminator decodes its default variant.
  const oid = hex('0100000000000000 0200000000000000')
  t.strictSame(decodeStruct('ost_id', oid), { oi: { oi_id: 1n, oi_seq: 2n } }, 'ost_id decodes as oi')
  t.strictSame(encodeStruct('ost_id', { oi: { oi_id: 1n, oi_seq: 2n } }), oid, 'ost_id encodes')

  // lu_dirent: char tail counted in bytes by lde_namelen.
  const de = { lde_fid: { f_seq: 1n, f_oid: 2, f_ver: 0 }, lde_hash: 3n, lde_reclen: 40, lde_namelen: 3, lde_attrs: 0, lde_name: 'abc' }
  const deBytes = hex('0100000000000000 02000000 00000000 0300000000000000 2800 0300 00000000 616263')
  t.strictSame(encodeStruct('lu_dirent', de), deBytes, 'lu_dirent with its name')
  t.strictSame(decodeStruct('lu_dirent', deBytes), de, 'lu_dirent decodes')
})

t.test('encoding refuses what it cannot write', async t => {
  const ib = { bits: 1n, try_bits: 2n, cancel_bits: 3n, li_gid: 0n, li_padding: 0, li_initiator_id: 0 }
  t.equal(wireCode(() => encodeStruct('ldlm_inodebits', ib)), 'LC_WIRE_BAD_VALUE', 'alias different from its target')
  t.equal(wireCode(() => encodeStruct('ldlm_inodebits', { ...ib, cancel_bits: 2n })), undefined, 'alias equal to its target')
  const decodedIb = decodeStruct<Record<string, unknown>>('ldlm_inodebits', encodeStruct('ldlm_inodebits', { ...ib, cancel_bits: 2n }))
  t.equal(decodedIb.cancel_bits, 2n, 'alias decodes to its target value')

  const fid = { f_seq: 0n, f_oid: 0, f_ver: 0 }
  t.equal(wireCode(() => encodeStruct('lu_fid', { ...fid, f_oid: 2 ** 32 })), 'LC_WIRE_BAD_VALUE', 'u32 over range')
  t.equal(wireCode(() => encodeStruct('lu_fid', { ...fid, f_oid: -1 })), 'LC_WIRE_BAD_VALUE', 'negative u32')
  t.equal(wireCode(() => encodeStruct('lu_fid', { ...fid, f_oid: 1.5 })), 'LC_WIRE_BAD_VALUE', 'non-integer')
  t.equal(wireCode(() => encodeStruct('lu_fid', { ...fid, f_seq: 1 })), 'LC_WIRE_BAD_VALUE', 'u64 given a number')
  t.equal(wireCode(() => encodeStruct('lu_fid', { ...fid, f_seq: 1n << 64n })), 'LC_WIRE_BAD_VALUE', 'u64 over range')
  t.equal(wireCode(() => encodeStruct('lu_fid', { f_seq: 0n, f_oid: 0 })), 'LC_WIRE_BAD_VALUE', 'member missing')
  t.equal(wireCode(() => encodeStruct('obd_uuid', 'x'.repeat(41))), 'LC_WIRE_BAD_VALUE', 'string longer than its char[]')
  t.equal(wireCode(() => encodeStruct('lnet_nid', { nid_size: 4, nid_type: 2, nid_num: 0, nid_addr: new Uint8Array(15) })), undefined, 'shorter bytes are padded')
  t.equal(wireCode(() => encodeStruct('lnet_nid', { nid_size: 4, nid_type: 2, nid_num: 0, nid_addr: new Uint8Array(17) })), 'LC_WIRE_BAD_VALUE', 'longer bytes refused')

  const msg = { lm_bufcount: 3, lm_secflvr: 0, lm_magic: 0, lm_repsize: 0, lm_cksum: 0, lm_flags: 0, lm_opc: 0, lm_padding_3: 0, lm_buflens: [1, 2] }
  t.equal(wireCode(() => encodeStruct('lustre_msg_v2', msg)), 'LC_WIRE_BAD_VALUE', 'count field disagreeing with its tail')

  const lnet = spec.structs.get('_lnet_hdr_nid4')!
  const u = lnet.fields.find(f => f.name === 'msg')!
  const [putType] = [...u.variants!.entries()].find(([, v]) => v.name === 'put')!
  const [ackType] = [...u.variants!.entries()].find(([, v]) => v.name === 'ack')!
  const hdr = fc.sample(structArb(lnet).filter(v => (v as Obj).type === putType), { seed: SEED, numRuns: 1 })[0] as Obj
  t.equal(wireCode(() => encodeStruct('_lnet_hdr_nid4', { ...hdr, type: ackType })), 'LC_WIRE_BAD_VALUE', 'union variant not the one its discriminator selects')
  t.equal(wireCode(() => encodeStruct('_lnet_hdr_nid4', { ...hdr, msg: {} })), undefined, 'an empty union encodes (as zeros)')
  const zeroed = decodeStruct<Obj>('_lnet_hdr_nid4', encodeStruct('_lnet_hdr_nid4', { ...hdr, msg: {} }))
  const allZero = (v: unknown): boolean =>
    v === 0 || v === 0n || v === '' || (v instanceof Uint8Array ? v.every(b => b === 0) : typeof v === 'object' && v !== null && Object.values(v).every(allZero))
  const put = (zeroed.msg as Obj).put
  t.ok(put !== undefined && allZero(put), 'and decodes as a zeroed variant')
})

// "Reserved/padding members are described like any other ... so round trips are
// exact" (spec/README.md): every byte of a struct belongs to a member, or a
// decode -> encode of real traffic zeroes it. Checked on the layouts, variants included.
const KNOWN_GAPS: Record<string, string> = {
  lov_comp_md_entry_v1: 'spec gap: byte 47 (lcme_compr_lvl:4 / lcme_compr_chunk_log_bits:4 bitfields in Lustre) is not described, so it is lost in a decode -> encode',
}

function gaps(l: StructLayout): string[] {
  if (l.self) return []
  const covered = new Array<boolean>(l.size).fill(false)
  const mark = (f: FieldLayout, off: number): void => {
    for (let i = off; i < off + f.size; i++) covered[i] = true
  }
  for (const f of l.fields) mark(f, f.offset)
  const out: string[] = []
  for (let i = 0; i < l.size; i++) {
    if (covered[i]) continue
    let j = i
    while (j < l.size && !covered[j]) j++
    out.push(i === j - 1 ? `${i}` : `${i}..${j - 1}`)
    i = j
  }
  return out
}

t.test('every byte of every struct is some member\'s', async t => {
  for (const name of names) {
    const g = gaps(spec.structs.get(name)!)
    t.strictSame(g, [], `${name}: bytes not described`, KNOWN_GAPS[name] ? { todo: KNOWN_GAPS[name] } : {})
  }
  // And the consequence, on bytes: arbitrary bytes survive decode -> encode exactly where members are integers/bytes.
  const l = spec.structs.get('lov_comp_md_entry_v1')
  if (l) {
    const raw = Uint8Array.from({ length: l.size }, (_, i) => (i * 37 + 11) & 0xff)
    const back = encodeStruct('lov_comp_md_entry_v1', decodeStruct('lov_comp_md_entry_v1', raw))
    t.strictSame(back, raw, 'lov_comp_md_entry_v1: decode -> encode keeps every byte', { todo: KNOWN_GAPS.lov_comp_md_entry_v1 })
  }
})
