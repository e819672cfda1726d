// lustre_msg_v2 framing and whole-message decoding through spec/rpc formats (encoding is in lustre-msg-encode.ts).
// Framing (pack_generic.c's rule): a 32-byte header, lm_bufcount u32 lengths, the
// header padded to 8, then every buffer padded to 8. Buffer 0 is ptlrpc_body
// (v3, 184 bytes; v2, 152 bytes, still decoded).
import { BadBufcountError, BadLengthError, BadMagicError, TruncatedError, UnknownOpcodeError, BufferOverLimitError, isWireError } from './errors.js'
import { decodeFixed, wholeReader, type Reader } from './struct-codec.js'
import type { StructLayout } from './layout.js'
import { alternatives, checkBuffer, decodeBuffer, type BufferSpec, type DecodedBuffer } from './buffer-codec.js'
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

const hots = new WeakMap<Spec, { msg: StructLayout; v3: StructLayout; v2: StructLayout }>()

/** The layouts every message needs, looked up once per spec. */
function hot(spec: Spec): { msg: StructLayout; v3: StructLayout; v2: StructLayout } {
  let h = hots.get(spec)
  if (!h) {
    h = { msg: structOf(spec, 'lustre_msg_v2'), v3: structOf(spec, 'ptlrpc_body_v3'), v2: structOf(spec, 'ptlrpc_body_v2') }
    hots.set(spec, h)
  }
  return h
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
  const f = frame(buf, 0, buf.length, opts, false)
  return { r: f.r, header: headerOf(f.r, f.offsets, f.lengths), offsets: f.offsets, lengths: f.lengths, size: f.size }
}

/** The lustre_msg_v2 header as an object (lm_buflens included). */
function headerOf(r: Reader, offsets: number[], lengths: number[]): Record<string, unknown> {
  // The header ends where buffer 0 starts (padded to 8).
  const at = offsets[0] - round8(MSG_HEADER_SIZE + 4 * lengths.length)
  // The fixed header through its compiled decoder; lm_buflens, the tail counted by lm_bufcount, is known already.
  const header = decodeFixed(r, hot(loadSpec()).msg, at)
  header.lm_buflens = lengths
  return header
}

interface Framed {
  r: Reader
  /** where buffer i starts and how long it is, in r's terms */
  offsets: number[]
  lengths: number[]
  /** message bytes, header and padded buffers */
  size: number
}

/**
 * Framing only: byte order, buffer lengths and offsets, every length checked. The message is
 * bytes[start, start + length). With `inPlace`, the reader is the whole underlying buffer and
 * offsets are absolute (errors then carry absolute offsets too: callers retry without inPlace to
 * report them); otherwise offsets count from the message's first byte.
 */
function frame(bytes: Uint8Array, start: number, length: number, opts: { maxBuffer?: number }, inPlace: boolean): Framed {
  if (length < 12) throw new TruncatedError('lustre_msg_v2.lm_magic', 8, 12, length)
  const m = start + 8
  const magic = (bytes[m] | (bytes[m + 1] << 8) | (bytes[m + 2] << 16) | (bytes[m + 3] << 24)) >>> 0
  let le: boolean
  if (magic === LUSTRE_MSG_MAGIC_V2) le = true
  else if (magic === LUSTRE_MSG_MAGIC_V2_SWABBED) le = false
  else throw new BadMagicError('lustre_msg_v2.lm_magic', 8, magic)
  let r: Reader
  let base: number
  if (inPlace) {
    r = wholeReader(bytes, le)
    base = bytes.byteOffset + start
  } else {
    const buf = start === 0 && length === bytes.length ? bytes : bytes.subarray(start, start + length)
    r = { buf, dv: new DataView(buf.buffer, buf.byteOffset, buf.byteLength), le }
    base = 0
  }
  const dv = r.dv
  const bufcount = dv.getUint32(base, le)
  if (bufcount < 1 || bufcount > MAX_BUFCOUNT) throw new BadBufcountError(0, bufcount, MAX_BUFCOUNT)
  const hdrLen = MSG_HEADER_SIZE + 4 * bufcount
  // Lustre wants the padded header and every padded buffer inside the message (lustre_unpack_msg_v2).
  if (length < round8(hdrLen)) throw new TruncatedError(`lustre_msg_v2.lm_buflens`, MSG_HEADER_SIZE, round8(hdrLen), length)
  const lengths = new Array<number>(bufcount)
  const offsets = new Array<number>(bufcount)
  const maxBuffer = opts.maxBuffer ?? 4 * 1024 * 1024 + 4096
  let off = round8(hdrLen)
  for (let i = 0; i < bufcount; i++) {
    const len = dv.getUint32(base + MSG_HEADER_SIZE + 4 * i, le)
    if (len > maxBuffer) throw new BufferOverLimitError(`lustre_msg_v2.lm_buflens[${i}]`, MSG_HEADER_SIZE + 4 * i, len, maxBuffer)
    if (off + round8(len) > length) throw new TruncatedError(`lustre_msg_v2.buffer[${i}]`, off, round8(len), Math.max(0, length - off))
    lengths[i] = len
    offsets[i] = base + off
    off += round8(len)
  }
  return { r, offsets, lengths, size: Math.min(off, length) }
}

const byName = new WeakMap<RpcOpcode, Map<string, RpcFormat>>()

/** An opcode's formats by name, made once. */
function formatsByName(op: RpcOpcode): Map<string, RpcFormat> {
  let m = byName.get(op)
  if (!m) {
    m = new Map()
    for (const f of op.formats) if (!m.has(f.name)) m.set(f.name, f)
    byName.set(op, m)
  }
  return m
}

/** Decodes a whole lustre_msg_v2 into typed buffers named by Lustre's RMF_* fields. */
export function decodeMessage(buf: Uint8Array, opts: DecodeOptions = {}): LustreMessage {
  return decodeMessageIn(buf, 0, buf.length, opts)
}

/** decodeMessage of bytes[start, start + length), read where it lies (no copy, no view). */
export function decodeMessageIn(bytes: Uint8Array, start: number, length: number, opts: DecodeOptions = {}): LustreMessage {
  // Framing errors already name message-relative offsets; only the buffers' checks run in place.
  const framed = frame(bytes, start, length, opts, true)
  try {
    return decodeFramed(framed, opts)
  } catch (e) {
    // Read in place, offsets are absolute: decode again relative to the message, so the
    // error (thrown again, the same one) names the message's own offsets.
    if (!isWireError(e) || bytes.byteOffset + start === 0) throw e
    return decodeFramed(frame(bytes, start, length, opts, false), opts)
  }
}

function decodeFramed({ r, offsets, lengths, size }: Framed, opts: DecodeOptions): LustreMessage {
  const spec = opts.spec ?? loadSpec()
  const bodyLen = lengths[0]
  const bodyStruct = bodyLen >= 184 ? 'ptlrpc_body_v3' : bodyLen >= 152 ? 'ptlrpc_body_v2' : undefined
  if (!bodyStruct) throw new BadLengthError('ptlrpc_body', offsets[0], bodyLen, `ptlrpc_body of ${bodyLen} bytes (needs 152 or 184)`)
  // pb_type and pb_opc sit at the same offsets in v2 and v3: read them without building the body.
  const opc = r.dv.getUint32(offsets[0] + 16, r.le)
  const kind = kindOf(spec, r.dv.getUint32(offsets[0] + 8, r.le))
  const op = spec.opcodes.get(opc)
  if (!op && opts.strict) throw new UnknownOpcodeError(offsets[0] + 16, opc)
  let format: RpcFormat | undefined
  if (op) {
    if (kind === 'request') format = selectRequestFormat(spec, op, r, offsets, lengths)
    // Format names are not unique across opcodes (MGS_DISCONNECT uses RQF_MDS_DISCONNECT): look within the opcode.
    else format = (opts.requestFormat !== undefined ? formatsByName(op).get(opts.requestFormat) : undefined) ?? op.formats[0]
  }
  const slots = format ? (kind === 'request' ? format.request : format.reply) : NO_SLOTS
  const specs = format ? bufferSpecs(spec, slots) : NO_SPECS
  // Every check that decoding a buffer could fail is made now, so a malformed message is refused
  // here with its typed error; the objects themselves are built when first read.
  for (let i = 1; i < offsets.length; i++) checkBuffer(spec, r, specs[i] ?? NO_SPEC, i, offsets[i], lengths[i])
  const bodyLayout = bodyStruct === 'ptlrpc_body_v3' ? hot(spec).v3 : hot(spec).v2
  return new DecodedMessage(spec, r, bodyStruct, bodyLayout, kind, opc, op?.opcode, format?.name, size, offsets, lengths, slots, specs)
}

/**
 * A decoded message whose body and buffers are built on first read (the message was fully
 * checked when it was made). Reading `body`, `buffers` or `fields` gives plain objects.
 */
class DecodedMessage implements LustreMessage {
  private _body: Record<string, unknown> | undefined
  private _buffers: DecodedBuffer[] | undefined
  private _fields: Record<string, unknown> | undefined

  constructor(
    private readonly spec: Spec,
    private readonly r: Reader,
    readonly bodyStruct: 'ptlrpc_body_v3' | 'ptlrpc_body_v2',
    private readonly bodyLayout: StructLayout,
    readonly kind: LustreMessage['kind'],
    readonly opc: number,
    readonly opcode: string | undefined,
    readonly format: string | undefined,
    readonly size: number,
    private readonly offsets: number[],
    private readonly lengths: number[],
    private readonly slots: RpcSlot[],
    private readonly specs: BufferSpec[],
  ) {}

  private _header: Record<string, unknown> | undefined

  get header(): Record<string, unknown> {
    return (this._header ??= headerOf(this.r, this.offsets, this.lengths))
  }

  set header(v: Record<string, unknown>) {
    this._header = v
  }

  get littleEndian(): boolean {
    return this.r.le
  }

  get body(): Record<string, unknown> {
    return (this._body ??= decodeFixed(this.r, this.bodyLayout, this.offsets[0]))
  }

  set body(v: Record<string, unknown>) {
    this._body = v
  }

  get buffers(): DecodedBuffer[] {
    if (!this._buffers) {
      const { offsets, lengths, specs } = this
      const out = new Array<DecodedBuffer>(offsets.length - 1)
      for (let i = 1; i < offsets.length; i++) out[i - 1] = decodeBuffer(this.spec, this.r, specs[i] ?? NO_SPEC, i, offsets[i], lengths[i])
      this._buffers = out
    }
    return this._buffers
  }

  set buffers(v: DecodedBuffer[]) {
    this._buffers = v
  }

  get fields(): Record<string, unknown> {
    return (this._fields ??= fieldsBuilder(this.slots, this.offsets.length)(this.buffers))
  }

  set fields(v: Record<string, unknown>) {
    this._fields = v
  }

  /** JSON and spreads see what a plain decoded message would hold. */
  toJSON(): Record<string, unknown> {
    const { littleEndian, header, body, bodyStruct, kind, opc, opcode, format, buffers, fields, size } = this
    return { littleEndian, header, body, bodyStruct, kind, opc, opcode, format, buffers, fields, size }
  }
}

const NO_SLOTS: RpcSlot[] = []
type FieldsBuilder = (buffers: DecodedBuffer[]) => Record<string, unknown>
const builders = new WeakMap<RpcSlot[], FieldsBuilder[]>()

/**
 * `fields` by RMF name, as one object literal per (format side, buffer count): the keys are those
 * of the buffers present, so every message of a format gets the same object shape.
 */
function fieldsBuilder(slots: RpcSlot[], count: number): FieldsBuilder {
  let byCount = builders.get(slots)
  if (!byCount) builders.set(slots, (byCount = []))
  let f = byCount[count]
  if (!f) {
    const seen = new Set<string>()
    const members: string[] = []
    for (let i = 1; i < count; i++) {
      const name = slots[i]?.field
      if (name && !seen.has(name)) {
        seen.add(name)
        members.push(`${JSON.stringify(name)}: b[${i - 1}].value`)
      }
    }
    f = new Function('b', `return { ${members.join(', ')} }`) as FieldsBuilder
    byCount[count] = f
  }
  return f
}

const NO_SPEC: BufferSpec = {}
const NO_SPECS: BufferSpec[] = []
const slotSpecs = new WeakMap<RpcSlot[], BufferSpec[]>()

/** The buffer specs of a format side, resolved once (field definitions looked up by name). */
function bufferSpecs(spec: Spec, slots: RpcSlot[]): BufferSpec[] {
  let out = slotSpecs.get(slots)
  if (!out) {
    out = slots.map(s => {
      const def = spec.fields.get(s.field)
      return { field: s.field, def, struct: s.struct, alt: def && (def.bySize || def.byMagic) ? alternatives(def) : undefined }
    })
    slotSpecs.set(slots, out)
  }
  return out
}

export type { RpcOpcode }
