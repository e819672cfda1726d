// One KSOCK_MSG_LNET unit as the framing hands it out: the ksock_msg_hdr, the
// _lnet_hdr_nid4 and the payload. The two headers are kept as their 96 bytes and
// built into objects only when read: a trace decoder looks at a handful of
// members (type, NIDs, pids, match bits) of every unit and at the whole header
// of few, so the common path reads those members where they lie.
//
// The framing has already checked everything decoding could refuse (ksh_type,
// the LNet type that picks the msg variant, payload_length against the limit),
// so a lazy decode cannot throw.
import { decodeAt, type Reader } from './struct-codec.js'
import { loadSpec, structOf, constantOf } from './spec.js'
import { BufferOverLimitError, UnknownMessageTypeError } from './errors.js'
import type { FieldLayout, StructLayout } from './layout.js'

type Obj = Record<string, unknown>

const spec = loadSpec()
const KSOCK = structOf(spec, 'ksock_msg_hdr')
const LNET = structOf(spec, '_lnet_hdr_nid4')
const LNET_MSG_ACK = Number(constantOf(spec, 'LNET_MSG_ACK'))
const LNET_MSG_HELLO = Number(constantOf(spec, 'LNET_MSG_HELLO'))

function member(l: StructLayout, name: string): FieldLayout {
  const f = l.fields.find(x => x.name === name)
  if (!f) throw new Error(`${l.name} has no member ${name}`)
  return f
}

/** Offsets inside _lnet_hdr_nid4 of the members read on every unit, from its layout. */
const AT = (() => {
  const msg = member(LNET, 'msg')
  const put = msg.variantsByName?.get('put')?.struct
  if (!put) throw new Error('_lnet_hdr_nid4.msg has no put variant')
  return {
    destNid: member(LNET, 'dest_nid').offset,
    srcNid: member(LNET, 'src_nid').offset,
    destPid: member(LNET, 'dest_pid').offset,
    srcPid: member(LNET, 'src_pid').offset,
    type: member(LNET, 'type').offset,
    payloadLength: member(LNET, 'payload_length').offset,
    putMatchBits: msg.offset + member(put, 'match_bits').offset,
  }
})()

export const LNET_UNIT_OFFSETS = AT

export class LnetUnit {
  readonly kind = 'lnet' as const
  /** the unit's bytes as they arrived (FrameDecoder keepRaw) */
  raw: Uint8Array | undefined = undefined
  private _ksock: Obj | undefined = undefined
  private _hdr: Obj | undefined = undefined
  private _payload: Uint8Array | undefined = undefined

  /**
   * `buf`/`dv` hold the ksock header at `base` and the LNet header right after it;
   * `le` is the sender's byte order (the ksock header's); the LNet header is always little-endian.
   */
  constructor(
    /** stream offset of the unit's first byte */
    readonly offset: number,
    /** the payload is payloadBytes[payloadStart, payloadStart + payloadLength) */
    readonly payloadBytes: Uint8Array,
    readonly payloadStart: number,
    readonly payloadLength: number,
    private readonly buf: Uint8Array,
    private readonly dv: DataView,
    private readonly base: number,
    private readonly le: boolean,
    private readonly ksockSize: number,
  ) {}

  /** The payload as its own view (made on first read: a trace decoder reads it in place). */
  get payload(): Uint8Array {
    if (this._payload === undefined) {
      const b = this.payloadBytes
      const s = this.payloadStart
      this._payload = s === 0 && this.payloadLength === b.length ? b : b.subarray(s, s + this.payloadLength)
    }
    return this._payload
  }

  /** ksock_msg_hdr as an object (built on first read). */
  get ksock(): Obj {
    return (this._ksock ??= decodeAt(this.reader(this.le), KSOCK, this.base, this.base + KSOCK.size).value)
  }

  /** _lnet_hdr_nid4 as an object (built on first read). */
  get hdr(): Obj {
    const at = this.base + this.ksockSize
    return (this._hdr ??= decodeAt(this.reader(true), LNET, at, at + LNET.size).value)
  }

  get type(): number {
    return this.dv.getUint32(this.base + this.ksockSize + AT.type, true)
  }

  get srcNid(): bigint {
    return this.dv.getBigUint64(this.base + this.ksockSize + AT.srcNid, true)
  }

  get destNid(): bigint {
    return this.dv.getBigUint64(this.base + this.ksockSize + AT.destNid, true)
  }

  get srcPid(): number {
    return this.dv.getUint32(this.base + this.ksockSize + AT.srcPid, true)
  }

  get destPid(): number {
    return this.dv.getUint32(this.base + this.ksockSize + AT.destPid, true)
  }

  /** msg.put.match_bits: meaningful for LNET_MSG_PUT only (the caller checks type). */
  get putMatchBits(): bigint {
    return this.dv.getBigUint64(this.base + this.ksockSize + AT.putMatchBits, true)
  }

  private reader(le: boolean): Reader {
    return { buf: this.buf, dv: this.dv, le }
  }

  /** What a plain object unit would show (JSON, test comparisons). */
  toJSON(): Obj {
    return { kind: this.kind, offset: this.offset, ksock: this.ksock, hdr: this.hdr, payload: this.payload }
  }
}

/**
 * The checks framing makes on an LNet header at `at` of `dv` before one payload byte is
 * buffered: a known type (it picks the msg variant) and a payload within `maxPayload`.
 * `base` is the header's stream offset, for errors. Returns payload_length.
 */
export function checkLnetHdr(dv: DataView, at: number, base: number, maxPayload: number): number {
  const type = dv.getUint32(at + AT.type, true)
  if (type < LNET_MSG_ACK || type > LNET_MSG_HELLO) throw new UnknownMessageTypeError('_lnet_hdr_nid4.type', base + AT.type, type)
  const pl = dv.getUint32(at + AT.payloadLength, true)
  if (pl > maxPayload) throw new BufferOverLimitError('_lnet_hdr_nid4.payload_length', base + AT.payloadLength, pl, maxPayload)
  return pl
}
