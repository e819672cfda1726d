// lustre_msg_v2 framing (pack_generic.c): a 32-byte header and lm_bufcount u32
// lengths, padded to 8; then each buffer, padded to 8. Buffer 0 is the
// ptlrpc_body (v3, 184 bytes, or v2, 152). Exact bytes of a message written out
// by hand, the error of each framing rule, byte-swapped senders, and
// reencode(decodeMessage(x)) === x for messages generated from spec/rpc formats.
import t from 'tap'
import fc from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import {
  loadSpec, constantOf, decodeMessage, encodeMessage, encodeFormatted, reencode, frameMessage, round8, makeStruct,
  isWireError, MAX_BUFCOUNT,
  type LustreWireError,
} from '../../src/wire/index.js'
import { formatPairs, messageArb, runProperty } from '../helpers/arbitraries.js'

const SEED = 0x5eed0005
t.comment(`fast-check seed ${SEED}`)

const spec = loadSpec()
const REQUEST = Number(constantOf(spec, 'PTL_RPC_MSG_REQUEST'))
const REPLY = Number(constantOf(spec, 'PTL_RPC_MSG_REPLY'))
/** An opcode spec/rpc does not describe: its buffers stay raw bytes. */
const NO_OPC = 9999
t.notOk(spec.opcodes.has(NO_OPC), `opcode ${NO_OPC} has no format`)

type Obj = Record<string, unknown>

function wireError(f: () => unknown): LustreWireError | string {
  try {
    f()
  } catch (e) {
    return isWireError(e) ? e : `not a wire error: ${String(e)}`
  }
  return 'no error'
}

function body(members: Obj = {}, v2 = false): Obj {
  return makeStruct(v2 ? 'ptlrpc_body_v2' : 'ptlrpc_body_v3', { pb_type: REQUEST, pb_version: 0x00040003, pb_opc: NO_OPC, ...members })
}

/** The message below, written byte by byte: 3 buffers (184, 5, 3 bytes). */
function handBuilt(): Uint8Array {
  const out = new Uint8Array(248)
  const dv = new DataView(out.buffer)
  dv.setUint32(0, 3, true) // lm_bufcount
  dv.setUint32(4, 0, true) // lm_secflvr
  dv.setUint32(8, 0x0bd00bd3, true) // lm_magic
  dv.setUint32(12, 1024, true) // lm_repsize
  dv.setUint32(16, 0, true) // lm_cksum
  dv.setUint32(20, 1, true) // lm_flags
  dv.setUint32(24, 0, true) // lm_opc
  dv.setUint32(28, 0, true) // lm_padding_3
  dv.setUint32(32, 184, true) // lm_buflens[0]
  dv.setUint32(36, 5, true) // lm_buflens[1]
  dv.setUint32(40, 3, true) // lm_buflens[2]
  // 44..47: header padding (32 + 4*3 = 44 -> 48)
  // ptlrpc_body_v3 at 48
  dv.setUint32(48 + 8, REQUEST, true) // pb_type
  dv.setUint32(48 + 12, 0x00040003, true) // pb_version
  dv.setUint32(48 + 16, NO_OPC, true) // pb_opc
  dv.setBigUint64(48 + 24, 0x1122334455667788n, true) // pb_last_xid
  out.set([0x6a, 0x6f, 0x62], 48 + 152) // pb_jobid "job"
  // buffer 1 at 232: "abcd\0", padded to 240
  out.set([0x61, 0x62, 0x63, 0x64, 0x00], 232)
  // buffer 2 at 240: 01 02 03, padded to 248
  out.set([1, 2, 3], 240)
  return out
}

t.test('framing: exact bytes of a small message', async t => {
  const want = handBuilt()
  const got = encodeMessage({
    header: { lm_repsize: 1024, lm_flags: 1 },
    body: body({ pb_last_xid: 0x1122334455667788n, pb_jobid: 'job' }),
    buffers: [{ kind: 'string', value: 'abcd' }, { kind: 'bytes', value: Uint8Array.of(1, 2, 3) }],
  })
  t.equal(Buffer.from(got).toString('hex'), Buffer.from(want).toString('hex'), 'encodeMessage writes the hand-built bytes')

  const m = decodeMessage(want)
  t.equal(m.littleEndian, true)
  t.equal(m.size, 248, 'size counts the header and every padded buffer')
  t.equal(m.bodyStruct, 'ptlrpc_body_v3')
  t.equal(m.kind, 'request')
  t.equal(m.opc, NO_OPC)
  t.equal(m.opcode, undefined, 'no opcode name')
  t.equal(m.header.lm_bufcount, 3)
  t.equal(m.header.lm_repsize, 1024)
  t.equal(m.header.lm_flags, 1)
  t.strictSame(m.header.lm_buflens, [184, 5, 3])
  t.equal(m.body.pb_last_xid, 0x1122334455667788n)
  t.equal(m.body.pb_jobid, 'job')
  t.equal(m.buffers.length, 2, 'buffers 1..n')
  t.strictSame(m.buffers.map(b => [b.index, b.length]), [[1, 5], [2, 3]])
  t.strictSame(m.buffers[0].value, Uint8Array.of(0x61, 0x62, 0x63, 0x64, 0), 'an undescribed buffer stays raw bytes')
  t.strictSame(m.buffers[1].value, Uint8Array.of(1, 2, 3))
  t.equal(Buffer.from(reencode(m)).toString('hex'), Buffer.from(want).toString('hex'), 'reencode gives the bytes back')

  const f = frameMessage(want)
  t.strictSame(f.offsets, [48, 232, 240], 'buffer offsets')
  t.strictSame(f.lengths, [184, 5, 3])
})

t.test('framing: header size is round_up(32 + 4 * bufcount, 8), every buffer padded to 8', async t => {
  for (let n = 1; n <= MAX_BUFCOUNT; n++) {
    const lens = Array.from({ length: n - 1 }, (_, i) => (i * 5) % 13)
    const buffers = lens.map(l => ({ kind: 'bytes' as const, value: new Uint8Array(l).fill(0xee) }))
    const bytes = encodeMessage({ body: body(), buffers })
    const hdr = Math.ceil((32 + 4 * n) / 8) * 8
    t.equal(round8(32 + 4 * n), hdr, `round8 for ${n} buffers`)
    const want = hdr + 184 + lens.reduce((s, l) => s + Math.ceil(l / 8) * 8, 0)
    t.equal(bytes.length, want, `${n} buffers: ${want} bytes`)
    const f = frameMessage(bytes)
    let off = hdr
    const offs = [hdr]
    for (const l of [184, ...lens].slice(0, -1)) offs.push((off += Math.ceil(l / 8) * 8))
    t.strictSame(f.offsets, offs, `${n} buffers: offsets`)
    // Padding is zeros.
    for (let i = 32 + 4 * n; i < hdr; i++) if (bytes[i] !== 0) t.fail(`header padding byte ${i} is ${bytes[i]}`)
    lens.forEach((l, i) => {
      for (let k = l; k < Math.ceil(l / 8) * 8; k++) if (bytes[offs[i + 1] + k] !== 0) t.fail(`buffer ${i + 1} padding byte ${k} not zero`)
    })
  }
})

t.test('framing errors', async t => {
  const good = handBuilt()
  const patch = (off: number, v: number): Uint8Array => {
    const b = good.slice()
    new DataView(b.buffer).setUint32(off, v, true)
    return b
  }
  for (const n of [0, MAX_BUFCOUNT + 1, 20, 0xffffffff]) {
    const e = wireError(() => decodeMessage(patch(0, n)))
    t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_BAD_BUFCOUNT', `bufcount ${n}`)
    if (typeof e !== 'string') {
      t.equal(e.offset, 0, 'at offset 0')
      t.equal(e.field, 'lustre_msg_v2.lm_bufcount')
      t.equal(e.value, n)
    }
  }
  const many = Array.from({ length: MAX_BUFCOUNT }, () => ({ kind: 'bytes' as const, value: new Uint8Array(1) }))
  const ee = wireError(() => encodeMessage({ body: body(), buffers: many }))
  t.equal(typeof ee === 'string' ? ee : ee.code, 'LC_WIRE_BAD_BUFCOUNT', 'encoding 20 buffers is refused')
  t.equal(decodeMessage(encodeMessage({ body: body(), buffers: many.slice(1) })).buffers.length, MAX_BUFCOUNT - 1, '19 buffers are fine')

  for (const magic of [0, 0x0bd00bd4, 0x0bd00bd2, 0xd30bd00c, 0xffffffff]) {
    const e = wireError(() => decodeMessage(patch(8, magic)))
    t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_BAD_MAGIC', `magic 0x${magic.toString(16)}`)
    if (typeof e !== 'string') {
      t.equal(e.offset, 8, 'at offset 8')
      t.equal(e.field, 'lustre_msg_v2.lm_magic')
      t.equal(e.value, magic)
    }
  }

  // buffer 2 claims 9 bytes: it starts at 240, the message ends at 248.
  let e = wireError(() => decodeMessage(patch(40, 9)))
  t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_TRUNCATED', 'a buflen past the end')
  if (typeof e !== 'string') {
    t.equal(e.offset, 240, 'offset is where the buffer starts')
    t.equal(e.field, 'lustre_msg_v2.buffer[2]')
  }
  e = wireError(() => decodeMessage(patch(36, 0x7fffffff)))
  t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_BUFFER_OVER_LIMIT', 'a buflen over the limit')
  if (typeof e !== 'string') t.equal(e.offset, 36, 'offset of lm_buflens[1]')
  e = wireError(() => decodeMessage(patch(36, 100), { maxBuffer: 99 }))
  t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_BUFFER_OVER_LIMIT', 'maxBuffer is honoured')

  e = wireError(() => decodeMessage(handBuilt().subarray(0, 8)))
  t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_TRUNCATED', 'too short for lm_magic')
})

t.test('framing errors: ptlrpc_body size', async t => {
  const b = encodeMessage({ body: body({}, true), bodyStruct: 'ptlrpc_body_v2', buffers: [] })
  t.equal(new DataView(b.buffer).getUint32(32, true), 152, 'v2 body is 152 bytes')
  const m = decodeMessage(b)
  t.equal(m.bodyStruct, 'ptlrpc_body_v2', 'decoded as ptlrpc_body_v2')
  t.equal(m.body.pb_opc, NO_OPC)
  t.equal(m.body.pb_type, REQUEST)
  t.notOk('pb_jobid' in m.body, 'v2 has no pb_jobid')
  t.strictSame(reencode(m), b, 'v2 reencodes as v2')

  const short = encodeMessage({ body: body(), buffers: [] })
  const dv = new DataView(short.buffer)
  dv.setUint32(32, 100, true)
  const e = wireError(() => decodeMessage(short))
  t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_BAD_LENGTH', 'a 100-byte ptlrpc_body')
  if (typeof e !== 'string') t.equal(e.offset, 40, 'at the body')
})

t.test('unknown opcode under strict', async t => {
  const e = wireError(() => decodeMessage(handBuilt(), { strict: true }))
  t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_UNKNOWN_OPCODE')
  if (typeof e !== 'string') {
    t.equal(e.offset, 48 + 16, 'offset of pb_opc')
    t.equal(e.value, NO_OPC)
  }
})

t.test('big-endian sender', async t => {
  const input = {
    header: { lm_repsize: 1024, lm_flags: 1, lm_cksum: 0xdeadbeef },
    body: body({ pb_last_xid: 0x1122334455667788n, pb_jobid: 'job', pb_status: -2 }),
    buffers: [{ kind: 'string' as const, value: 'abcd' }, { kind: 'u32' as const, value: 0x01020304 }, { kind: 'u64' as const, value: 0x0102030405060708n }],
  }
  const le = encodeMessage(input)
  const be = encodeMessage({ ...input, bigEndian: true })
  t.equal(be.length, le.length, 'same size')
  t.strictSame([...be.subarray(8, 12)], [0x0b, 0xd0, 0x0b, 0xd3], 'lm_magic in big-endian order')
  t.strictSame([...be.subarray(0, 4)], [0, 0, 0, 4], 'lm_bufcount big-endian')
  const ml = decodeMessage(le)
  const mb = decodeMessage(be)
  t.equal(ml.littleEndian, true)
  t.equal(mb.littleEndian, false, 'detected as big-endian')
  t.strictSame(mb.header, ml.header, 'same header values')
  t.strictSame(mb.body, ml.body, 'same body values')
  t.strictSame(mb.buffers[0].value, ml.buffers[0].value, 'an undescribed buffer is raw bytes, in the sender\'s order')
  t.strictSame(mb.buffers[1].value, Uint8Array.of(1, 2, 3, 4), 'u32 written big-endian')
  t.strictSame(ml.buffers[1].value, Uint8Array.of(4, 3, 2, 1), 'u32 written little-endian')
  t.strictSame(mb.buffers[2].value, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), 'u64 written big-endian')
  t.strictSame(reencode(mb), be, 'reencodes big-endian')
})

// ---- generated messages -------------------------------------------------------

const pairs = formatPairs(spec)
t.ok(pairs.length > 10, `${pairs.length} (opcode, format) pairs in spec/rpc`)

const RUNS = 40

t.test('reencode(decodeMessage(x)) is x for generated messages', async t => {
  t.comment(`${RUNS} messages per format and side`)
  for (const { op, format } of pairs) {
    for (const side of ['request', 'reply'] as const) {
      runProperty(t, `${op.opcode} ${format.name} ${side}`, fc.property(messageArb(spec, op, format, side), g => {
        const m = decodeMessage(g.bytes, side === 'reply' ? { requestFormat: format.name } : {})
        if (m.littleEndian === g.bigEndian) throw new Error('byte order not detected')
        if (m.opcode !== op.opcode) throw new Error(`opcode ${m.opcode}`)
        // Requests select their format from their own bytes; replies are told it.
        if (m.format !== format.name) throw new Error(`decoded with format ${m.format}`)
        // Selector buffers were patched after encoding (makeSelect): compared through reencode only.
        const patched = new Set(op.formats.map(f => (side === 'request' ? f.select?.field : undefined)))
        for (const [k, v] of Object.entries(g.fields)) {
          if (!patched.has(k) && !isDeepStrictEqual(m.fields[k], v)) throw new Error(`${k} decodes to ${String(m.fields[k])}`)
        }
        if (!isDeepStrictEqual(m.body, g.body)) throw new Error('body decodes differently')
        const again = reencode(m)
        if (!isDeepStrictEqual(again, g.bytes)) {
          const at = again.findIndex((x, i) => x !== g.bytes[i])
          throw new Error(`reencode differs at byte ${at} (lengths ${again.length}/${g.bytes.length})`)
        }
        return true
      }), { seed: SEED, numRuns: RUNS })
    }
  }
})

t.test('every strict prefix of a message is refused', async t => {
  let cutPadding = 0
  let inHeader = 0
  runProperty(t, 'prefixes', fc.property(fc.constantFrom(...pairs), fc.constantFrom('request' as const, 'reply' as const), fc.integer(), (pf, side, seed) => {
    const [g] = fc.sample(messageArb(spec, pf.op, pf.format, side), { seed, numRuns: 1 })
    const full = g.bytes
    const f = frameMessage(full)
    const hdrLen = 32 + 4 * f.lengths.length
    const lastEnd = f.offsets[f.offsets.length - 1] + f.lengths[f.lengths.length - 1]
    for (let p = 0; p < full.length; p++) {
      // Cuts inside lm_buflens (or the fixed header after lm_magic) are the todo test below.
      if (p >= 12 && p < hdrLen) { inHeader++; continue }
      const e = wireError(() => decodeMessage(full.subarray(0, p), side === 'reply' ? { requestFormat: pf.format.name } : {}))
      if (e === 'no error') {
        // Only the padding of the last buffer is missing: see the todo test.
        if (p >= lastEnd) { cutPadding++; continue }
        throw new Error(`prefix ${p} of ${full.length} decodes`)
      }
      if (typeof e === 'string') throw new Error(`prefix ${p} of ${full.length}: ${e}`)
      if (e.code !== 'LC_WIRE_TRUNCATED') throw new Error(`prefix ${p} of ${full.length}: ${e.code}, want LC_WIRE_TRUNCATED`)
      if (typeof e.offset !== 'number' || typeof e.field !== 'string') throw new Error(`prefix ${p}: offset/field unset`)
      if (e.offset > full.length) throw new Error(`prefix ${p}: error offset ${e.offset} is past the message`)
    }
    return true
  }), { seed: SEED, numRuns: 60 })
  t.comment(`${cutPadding} prefixes missing only the last buffer's padding decoded; ${inHeader} header cuts left to the todo test`)
})

// Known codec bugs: the assertions below carry { todo } so that they run and show
// "not ok ... # TODO" without failing the suite; drop the todo once fixed.
const BUG_HEADER_CUT = 'codec bug: frameMessage decodes the header with end = 32 + 4 * lm_bufcount, not min(that, buf.length): a message of 12 .. 31 + 4n bytes throws RangeError from DataView instead of LC_WIRE_TRUNCATED'
const BUG_LAST_PADDING = 'codec differs from Lustre: frameMessage checks off + buflen; lustre_unpack_msg_v2 requires the sum of round_up(buflen, 8), so a message without its last buffer\'s padding is refused there'

t.test('a message cut inside its header is truncated', async t => {
  const full = handBuilt() // lm_bufcount 3: header 44 bytes (48 padded)
  for (const p of [12, 16, 31, 32, 36, 43]) {
    const e = wireError(() => decodeMessage(full.subarray(0, p)))
    t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_TRUNCATED', `${p} of 248 bytes`)
  }
  const e = wireError(() => frameMessage(full.slice(0, 16)))
  t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_TRUNCATED', 'frameMessage, 16 bytes')
})

t.test('a message missing its last buffer\'s padding is refused, as lustre_unpack_msg_v2 does', async t => {
  const full = handBuilt() // last buffer: 3 bytes at 240, padded to 248
  const e = wireError(() => decodeMessage(full.subarray(0, 243)))
  t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_TRUNCATED', '243 of 248 bytes')
})

t.test('header members are range-checked when encoding', async t => {
  for (const [k, v] of [['lm_repsize', -1], ['lm_flags', 2 ** 32 + 5], ['lm_cksum', 1.5], ['lm_secflvr', 2 ** 32]] as const) {
    const e = wireError(() => encodeMessage({ header: { [k]: v }, body: body(), buffers: [] }))
    t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_BAD_VALUE', `${k} = ${v}`)
  }
})

t.test('fields holding one of several structs (bySize / byMagic)', async t => {
  const BUG_PICK = 'codec bug: prepareBuffer tries the candidate structs in Object.values order ("40" before "56") and keeps the first that encodes; encodeAt ignores members the struct does not have, so a larger struct\'s value is silently written as a smaller one'
  const BUG_DECODE = 'codec asymmetry: decodeBuffer consults bySize/byMagic only for kind "struct"; RMF_DLM_LVB and RMF_MDT_MD are kind "bytes" in spec/rpc/fields.json, so what was encoded from a struct decodes as raw bytes'
  const enqueue = spec.opcodesByName.get('LDLM_ENQUEUE')!
  const fmt = enqueue.formats.find(f => f.name === 'RQF_LDLM_ENQUEUE')!
  const reply = (fields: Record<string, unknown>, f = fmt, opc = enqueue.opc) =>
    encodeFormatted(f, 'reply', { body: body({ pb_type: REPLY, pb_opc: opc }), fields })
  const lvb = makeStruct('ost_lvb', { lvb_size: 12345n, lvb_mtime_ns: 7 })
  const m = decodeMessage(reply({ RMF_DLM_REP: makeStruct('ldlm_reply'), RMF_DLM_LVB: lvb }), { requestFormat: fmt.name })
  const buf = m.buffers.find(b => b.field === 'RMF_DLM_LVB')!
  t.equal(buf.length, 56, 'an ost_lvb value is sent as 56 bytes (ost_lvb), not 40 (ost_lvb_v1)')
  t.strictSame(m.fields.RMF_DLM_LVB, lvb, 'and decodes back to the ost_lvb value')
  const lvb1 = makeStruct('ost_lvb_v1', { lvb_size: 1n })
  const m1 = decodeMessage(reply({ RMF_DLM_REP: makeStruct('ldlm_reply'), RMF_DLM_LVB: lvb1 }), { requestFormat: fmt.name })
  t.equal(m1.buffers.find(b => b.field === 'RMF_DLM_LVB')!.length, 40, 'an ost_lvb_v1 value is 40 bytes')

  const getattr = spec.opcodesByName.get('MDS_GETATTR')!
  const gf = getattr.formats[0]
  const v3 = makeStruct('lov_mds_md_v3', { lmm_magic: 0x0bd30bd0, lmm_pool_name: 'flash', lmm_stripe_count: 1, lmm_objects: [makeStruct('lov_ost_data_v1')] })
  const m3 = decodeMessage(reply({ RMF_MDT_MD: v3 }, gf, getattr.opc), { requestFormat: gf.name })
  const b3 = m3.buffers.find(b => b.field === 'RMF_MDT_MD')!
  t.equal(b3.length, 48 + 24, 'a lov_mds_md_v3 value with one object is 72 bytes, pool name included')
  t.strictSame(m3.fields.RMF_MDT_MD, v3, 'and decodes back to lov_mds_md_v3 by its magic')
})
