// lustre_msg_v2 framing and whole-message decoding through spec/rpc formats.
// Framing (pack_generic.c's rule): a 32-byte header, lm_bufcount u32 lengths, the
// header padded to 8, then every buffer padded to 8. Buffer 0 is ptlrpc_body
// (v3, 184 bytes; v2, 152 bytes, still decoded).
import { BadBufcountError, BadLengthError, BadValueError, BadMagicError, TruncatedError, UnknownOpcodeError, BufferOverLimitError } from './errors.js'
import { decodeAt, reader, type Reader } from './struct-codec.js'
import { decodeBuffer, prepareBuffer, type BufferSpec, type DecodedBuffer, type EncodeBuffer } from './buffer-codec.js'
import { loadSpec, structOf, constantOf, type RpcFormat, type RpcOpcode, type RpcSlot, type Spec } from './spec.js'
import { selectRequestFormat } from './format-select.js'

export const LUSTRE_MSG_MAGIC_V2 = 0x0bd00bd3
export const LUSTRE_MSG_MAGIC_V2_SWABBED = 0xd30bd00b
/** Lustre refuses more buffers than this (PTLRPC_MAX_BUFCOUNT). */
export const MAX_BUFCOUNT = 19
export const MSG_HEADER_SIZE = 32

export const round8 = (n: number): number => (n + 7) & ~7

export type MessageKind = 'request' | 'reply' | 'error'

export interface LustreMessage {
  /** false when the sender was big-endian (magic swapped) */
  littleEndian: boolean
  header: Record<string, unknown>
  body: Record<string, unknown>
  bodyStruct: 'ptlrpc_body_v3' | 'ptlrpc_body_v2'
  kind: MessageKind | 'unknown'
  opc: number
  opcode?: string
  format?: string
  /** buffers 1..n (buffer 0 is `body`) */
  buffers: DecodedBuffer[]
  /** decoded buffers by RMF_* name */
  fields: Record<string, unknown>
  /** total bytes, header and padded buffers */
  size: number
}

export interface DecodeOptions {
  /** for replies: the request format (from the request with the same xid) */
  requestFormat?: string
  /** throw UnknownOpcodeError for an opcode without a format; otherwise buffers stay raw */
  strict?: boolean
  /** largest single buffer accepted (default 4 MiB + 4 KiB) */
  maxBuffer?: number
  spec?: Spec
}

const kinds = new WeakMap<Spec, Map<number, LustreMessage['kind']>>()

/** pb_type to request/reply/error, by the spec's PTL_RPC_MSG_* (looked up once per spec). */
function kindOf(spec: Spec, pbType: number): LustreMessage['kind'] {
  let m = kinds.get(spec)
  if (!m) {
    m = new Map([
      [Number(constantOf(spec, 'PTL_RPC_MSG_REQUEST')), 'request'],
      [Number(constantOf(spec, 'PTL_RPC_MSG_REPLY')), 'reply'],
      [Number(constantOf(spec, 'PTL_RPC_MSG_ERR')), 'error'],
    ])
    kinds.set(spec, m)
  }
  return m.get(pbType) ?? 'unknown'
}

/** Reads the header and buffer offsets; cheap, no buffer is decoded. */
export function frameMessage(buf: Uint8Array, opts: { maxBuffer?: number } = {}): { r: Reader; header: Record<string, unknown>; offsets: number[]; lengths: number[]; size: number } {
  if (buf.length < 12) throw new TruncatedError('lustre_msg_v2.lm_magic', 8, 12, buf.length)
  const probe = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const magic = probe.getUint32(8, true)
  let le: boolean
  if (magic === LUSTRE_MSG_MAGIC_V2) le = true
  else if (magic === LUSTRE_MSG_MAGIC_V2_SWABBED) le = false
  else throw new BadMagicError('lustre_msg_v2.lm_magic', 8, magic)
  const r: Reader = { buf, dv: probe, le }
  const bufcount = r.dv.getUint32(0, le)
  if (bufcount < 1 || bufcount > MAX_BUFCOUNT) throw new BadBufcountError(0, bufcount, MAX_BUFCOUNT)
  const spec = loadSpec()
  const hdrLen = MSG_HEADER_SIZE + 4 * bufcount
  // Lustre wants the padded header and every padded buffer inside the message (lustre_unpack_msg_v2).
  if (buf.length < round8(hdrLen)) throw new TruncatedError(`lustre_msg_v2.lm_buflens`, MSG_HEADER_SIZE, round8(hdrLen), buf.length)
  const header = decodeAt(r, structOf(spec, 'lustre_msg_v2'), 0, hdrLen).value
  const lengths = header.lm_buflens as number[]
  const offsets: number[] = []
  const maxBuffer = opts.maxBuffer ?? 4 * 1024 * 1024 + 4096
  let off = round8(hdrLen)
  for (let i = 0; i < bufcount; i++) {
    const len = lengths[i]
    if (len > maxBuffer) throw new BufferOverLimitError(`lustre_msg_v2.lm_buflens[${i}]`, MSG_HEADER_SIZE + 4 * i, len, maxBuffer)
    if (off + round8(len) > buf.length) throw new TruncatedError(`lustre_msg_v2.buffer[${i}]`, off, round8(len), Math.max(0, buf.length - off))
    offsets.push(off)
    off += round8(len)
  }
  return { r, header, offsets, lengths, size: Math.min(off, buf.length) }
}

/** Decodes a whole lustre_msg_v2 into typed buffers named by Lustre's RMF_* fields. */
export function decodeMessage(buf: Uint8Array, opts: DecodeOptions = {}): LustreMessage {
  const spec = opts.spec ?? loadSpec()
  const { r, header, offsets, lengths, size } = frameMessage(buf, opts)
  const bodyLen = lengths[0]
  const bodyStruct = bodyLen >= 184 ? 'ptlrpc_body_v3' : bodyLen >= 152 ? 'ptlrpc_body_v2' : undefined
  if (!bodyStruct) throw new BadLengthError('ptlrpc_body', offsets[0], bodyLen, `ptlrpc_body of ${bodyLen} bytes (needs 152 or 184)`)
  const body = decodeAt(r, structOf(spec, bodyStruct), offsets[0], offsets[0] + bodyLen, bodyStruct).value
  const opc = body.pb_opc as number
  const kind = kindOf(spec, body.pb_type as number)
  const op = spec.opcodes.get(opc)
  if (!op && opts.strict) throw new UnknownOpcodeError(offsets[0] + 16, opc)
  let format: RpcFormat | undefined
  if (op) {
    if (kind === 'request') format = selectRequestFormat(spec, op, r, offsets, lengths)
    // Format names are not unique across opcodes (MGS_DISCONNECT uses RQF_MDS_DISCONNECT): look within the opcode.
    else format = op.formats.find(f => f.name === opts.requestFormat) ?? op.formats[0]
  }
  const msg: LustreMessage = { littleEndian: r.le, header, body, bodyStruct, kind, opc, opcode: op?.opcode, format: format?.name, buffers: [], fields: {}, size }
  const specs = format ? bufferSpecs(spec, kind === 'request' ? format.request : format.reply) : NO_SPECS
  for (let i = 1; i < offsets.length; i++) {
    const b = decodeBuffer(spec, r, specs[i] ?? NO_SPEC, i, offsets[i], lengths[i])
    msg.buffers.push(b)
    if (b.field) msg.fields[b.field] = b.value
  }
  return msg
}

const NO_SPEC: BufferSpec = {}
const NO_SPECS: BufferSpec[] = []
const slotSpecs = new WeakMap<RpcSlot[], BufferSpec[]>()

/** The buffer specs of a format side, resolved once (field definitions looked up by name). */
function bufferSpecs(spec: Spec, slots: RpcSlot[]): BufferSpec[] {
  let out = slotSpecs.get(slots)
  if (!out) {
    out = slots.map(s => ({ field: s.field, def: spec.fields.get(s.field), struct: s.struct }))
    slotSpecs.set(slots, out)
  }
  return out
}

export interface EncodeMessageInput {
  /** lustre_msg_v2 header members other than lm_bufcount, lm_magic and lm_buflens */
  header?: Partial<Record<'lm_secflvr' | 'lm_repsize' | 'lm_cksum' | 'lm_flags' | 'lm_opc' | 'lm_padding_3', number>>
  body: Record<string, unknown>
  bodyStruct?: 'ptlrpc_body_v3' | 'ptlrpc_body_v2'
  buffers: EncodeBuffer[]
  /** write big-endian, as a big-endian Lustre node would (for tests of byte-swap detection) */
  bigEndian?: boolean
}

/** Encodes a message from explicit buffers (buffer 0, the body, is added). */
export function encodeMessage(input: EncodeMessageInput, spec = loadSpec()): Uint8Array {
  const bodyStruct = input.bodyStruct ?? 'ptlrpc_body_v3'
  const all: EncodeBuffer[] = [{ field: 'RMF_PTLRPC_BODY', kind: 'struct', struct: bodyStruct, value: input.body }, ...input.buffers]
  if (all.length > MAX_BUFCOUNT) throw new BadBufcountError(0, all.length, MAX_BUFCOUNT)
  const prepared = all.map(b => prepareBuffer(spec, b, b.field ? spec.fields.get(b.field) : undefined))
  const hdrLen = round8(MSG_HEADER_SIZE + 4 * all.length)
  const total = prepared.reduce((n, p) => n + round8(p.length), hdrLen)
  const out = new Uint8Array(total)
  const w = reader(out, !input.bigEndian)
  const h = input.header ?? {}
  for (const [k, v] of Object.entries(h)) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff)) throw new BadValueError(`lustre_msg_v2.${k}`, String(v), 'not a u32')
  }
  const dv = w.dv
  dv.setUint32(0, all.length, w.le)
  dv.setUint32(4, h.lm_secflvr ?? 0, w.le)
  dv.setUint32(8, LUSTRE_MSG_MAGIC_V2, w.le)
  dv.setUint32(12, h.lm_repsize ?? 0, w.le)
  dv.setUint32(16, h.lm_cksum ?? 0, w.le)
  dv.setUint32(20, h.lm_flags ?? 0, w.le)
  dv.setUint32(24, h.lm_opc ?? 0, w.le)
  dv.setUint32(28, h.lm_padding_3 ?? 0, w.le)
  let off = hdrLen
  prepared.forEach((p, i) => {
    dv.setUint32(MSG_HEADER_SIZE + 4 * i, p.length, w.le)
    p.write(w, off)
    off += round8(p.length)
  })
  return out
}

/**
 * Encodes a message of a format: `fields` maps RMF_* names to values; slots the
 * format lists but `fields` lacks are sent empty, as Lustre packs every field of
 * a format and gives an absent one length 0.
 */
export function encodeFormatted(
  format: RpcFormat,
  side: 'request' | 'reply',
  input: Omit<EncodeMessageInput, 'buffers'> & { fields: Record<string, unknown> },
  spec = loadSpec(),
): Uint8Array {
  const slots = side === 'request' ? format.request : format.reply
  for (const k of Object.keys(input.fields)) {
    if (!slots.some(s => s.field === k)) throw new BadValueError(k, format.name, `${format.name} ${side} has no ${k}`)
  }
  const buffers: EncodeBuffer[] = slots.slice(1).map(s => ({ field: s.field, struct: s.struct, value: input.fields[s.field] ?? null }))
  return encodeMessage({ ...input, buffers }, spec)
}

/** Re-encodes a decoded message, byte for byte when it was well-formed. */
export function reencode(msg: LustreMessage, spec = loadSpec()): Uint8Array {
  const h = msg.header as Record<string, number>
  return encodeMessage({
    header: { lm_secflvr: h.lm_secflvr, lm_repsize: h.lm_repsize, lm_cksum: h.lm_cksum, lm_flags: h.lm_flags, lm_opc: h.lm_opc, lm_padding_3: h.lm_padding_3 },
    body: msg.body,
    bodyStruct: msg.bodyStruct,
    bigEndian: !msg.littleEndian,
    buffers: msg.buffers.map(b => ({ field: b.field, kind: b.kind, struct: b.struct, value: b.value, length: b.length })),
  }, spec)
}

export type { RpcOpcode }
