// lustre_msg_v2 encoding: a header, lm_bufcount u32 lengths, the header padded to 8,
// then every buffer padded to 8 (lustre_pack_request / lustre_msg_buf_v2), with buffer 0
// the ptlrpc_body. Messages are built from explicit buffers or from a format's fields.
import { BadBufcountError, BadValueError } from './errors.js'
import { reader } from './struct-codec.js'
import { prepareBuffer, type EncodeBuffer } from './buffer-codec.js'
import { loadSpec, type RpcFormat } from './spec.js'
import { LUSTRE_MSG_MAGIC_V2, MAX_BUFCOUNT, MSG_HEADER_SIZE, round8, type LustreMessage } from './lustre-msg.js'

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

