// Incremental decoder of one direction of a socklnd TCP connection. Bytes come in
// any chunking; whole units come out: the acceptor connect request, the hello,
// NOOPs and LNet messages with their payload.
//
// Memory is bounded by what a frame may declare: a header is at most 96 bytes, a
// hello at most 56 + 4 * MAX_HELLO_IPS, and a payload is checked against
// maxPayload (LNET_MTU by default) before one byte of it is buffered.
import { BadMagicError } from './errors.js'
import {
  CONNREQ_SIZE, HELLO_V3_SIZE, KSOCK_HDR_SIZE, LNET_HDR_SIZE, K, swab32,
  decodeConnreq, decodeHello, decodeKsockHdr, helloLength, ksockType, type Obj,
} from './socklnd.js'
import { LnetUnit, checkLnetHdr } from './lnet-unit.js'
import { wholeReader } from './struct-codec.js'

/** `raw` (with keepRaw) holds the unit's bytes exactly as they arrived. */
export type LnetFrame =
  | { kind: 'connreq'; offset: number; littleEndian: boolean; connreq: Obj; raw?: Uint8Array }
  | { kind: 'hello'; offset: number; littleEndian: boolean; hello: Obj; raw?: Uint8Array }
  | { kind: 'noop'; offset: number; ksock: Obj; raw?: Uint8Array }
  | LnetUnit

/** Where the stream starts: a connecting side sends a connreq first, an accepting side a hello. */
export type StreamStart = 'connreq' | 'hello' | 'message' | 'auto'

export interface FrameDecoderOptions {
  start?: StreamStart
  /** largest LNet payload accepted (default LNET_MTU, 1 MiB) */
  maxPayload?: number
  /** give every unit its raw bytes (for capture); costs one copy per unit */
  keepRaw?: boolean
  /**
   * Give each completed unit payload and headers of its own (default true), so a unit stays
   * valid whatever becomes of the chunks it came in. Bytes of a unit still incomplete are
   * kept as views of their chunks until it completes: a caller must not overwrite a chunk
   * it pushed (node's sockets hand out a fresh one per read). Readers of immutable bytes (a
   * capture file in memory) pass false and get views for the units too.
   */
  copyPayload?: boolean
}

const EMPTY = new Uint8Array(0)

type State = 'auto' | 'connreq' | 'hello-head' | 'hello' | 'ksock' | 'lnet-hdr' | 'payload'

export class FrameDecoder {
  private state: State
  private chunks: Uint8Array[] = []
  /** bytes of chunks[0] already consumed */
  private headOff = 0
  private buffered = 0
  /** stream offset of the first buffered byte */
  private consumed = 0
  private need = 0
  private le = true
  private frameStart = 0
  /** the current unit's headers: a view of the caller's buffer, or a copy */
  private headBuf: Uint8Array | undefined
  private headDv: DataView | undefined
  private headBase = 0
  /** a ksock header read before its LNet header arrived */
  private ksockBytes: Uint8Array | undefined
  private readonly maxPayload: number
  private readonly keepRaw: boolean
  private readonly copyPayload: boolean

  constructor(opts: FrameDecoderOptions = {}) {
    this.maxPayload = opts.maxPayload ?? K.LNET_MTU
    this.keepRaw = opts.keepRaw ?? false
    this.copyPayload = opts.copyPayload ?? true
    this.state = 'auto'
    this.enter(opts.start === 'connreq' ? 'connreq' : opts.start === 'hello' ? 'hello-head' : opts.start === 'message' ? 'ksock' : 'auto')
  }

  /** Bytes of the stream read so far (offsets in errors and frames are in these terms). */
  get offset(): number {
    return this.consumed
  }

  /** Bytes held waiting for the rest of a unit. */
  get pending(): number {
    return this.buffered
  }

  /** Byte order of the peer, as told by its hello or connreq magic. */
  get littleEndian(): boolean {
    return this.le
  }

  private enter(s: State): void {
    this.state = s
    switch (s) {
      case 'auto': this.need = 4; break
      case 'connreq': this.need = CONNREQ_SIZE; break
      case 'hello-head': this.need = 8; break
      case 'hello': break
      case 'ksock': this.need = KSOCK_HDR_SIZE; break
      case 'lnet-hdr': this.need = LNET_HDR_SIZE; break
      case 'payload': break
    }
  }

  private setHead(head: Uint8Array): void {
    this.headBuf = head
    this.headDv = new DataView(head.buffer, head.byteOffset, head.byteLength)
    this.headBase = 0
  }

  private keep(b: Uint8Array): Uint8Array | undefined {
    return this.keepRaw ? b.slice() : undefined
  }

  /** `n` buffered bytes as one array (a view when they lie in one chunk), dropped unless `peek`. */
  private take(n: number, peek = false): Uint8Array {
    let out: Uint8Array
    const c = this.chunks[0]
    const h = this.headOff
    if (c.length - h >= n) {
      out = c.subarray(h, h + n)
    } else {
      out = new Uint8Array(n)
      let got = 0
      for (let i = 0; got < n; i++) {
        const from = i === 0 ? h : 0
        const k = Math.min(this.chunks[i].length - from, n - got)
        out.set(this.chunks[i].subarray(from, from + k), got)
        got += k
      }
    }
    if (!peek) this.drop(n)
    return out
  }

  // Consumed bytes of the first chunk are skipped by offset, not cut off with a new view.
  private drop(n: number): void {
    this.buffered -= n
    this.consumed += n
    while (n > 0) {
      const left = this.chunks[0].length - this.headOff
      if (left <= n) {
        n -= left
        this.chunks.shift()
        this.headOff = 0
      } else {
        this.headOff += n
        n = 0
      }
    }
  }

  /** Feeds bytes; returns every unit they complete. Throws LustreWireError on garbage (the stream is then unusable). */
  push(chunk: Uint8Array): LnetFrame[] {
    const out: LnetFrame[] = []
    this.feed(chunk, f => { out.push(f) })
    return out
  }

  /** Like push, handing each unit to `sink` as it completes (no array per call, for hot loops). */
  feed(chunk: Uint8Array, sink: (f: LnetFrame) => void): void {
    if (chunk.length) {
      this.chunks.push(chunk)
      this.buffered += chunk.length
    }
    while (this.buffered >= this.need && (this.need > 0 || this.state === 'payload')) {
      const f = this.step()
      if (f) sink(f)
    }
  }

  private step(): LnetFrame | undefined {
    const at = this.consumed
    switch (this.state) {
      case 'auto': {
        const b = this.take(4, true)
        const v = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true)
        if (v === K.ACCEPTOR_MAGIC || v === swab32(K.ACCEPTOR_MAGIC)) this.enter('connreq')
        else if (v === K.HELLO_MAGIC || v === swab32(K.HELLO_MAGIC) || v === K.TCP_MAGIC || v === swab32(K.TCP_MAGIC)) this.enter('hello-head')
        else if (v === K.MSG_NOOP || v === K.MSG_LNET) { this.le = true; this.enter('ksock') }
        else if (v === swab32(K.MSG_NOOP) || v === swab32(K.MSG_LNET)) { this.le = false; this.enter('ksock') }
        else throw new BadMagicError('socklnd stream', at, v)
        return undefined
      }
      case 'connreq': {
        const b = this.take(CONNREQ_SIZE)
        const { le, value } = decodeConnreq(b, at)
        this.le = le
        this.enter('hello-head')
        return { kind: 'connreq', offset: at, littleEndian: le, connreq: value, raw: this.keep(b) }
      }
      case 'hello-head': {
        // The hello's length is known once kshm_nips (at 52) is in; read the fixed part first.
        const head = this.take(8, true)
        const { le } = helloLength(head, at)
        this.le = le
        this.state = 'hello'
        this.need = HELLO_V3_SIZE
        return undefined
      }
      case 'hello': {
        const { length } = helloLength(this.take(this.need, true), at)
        if (length > this.need) { this.need = length; return undefined }
        const b = this.take(length)
        const hello = decodeHello(b, this.le)
        this.enter('ksock')
        return { kind: 'hello', offset: at, littleEndian: this.le, hello, raw: this.keep(b) }
      }
      case 'ksock': {
        const c = this.chunks[0]
        // Fast path: both headers are in the first chunk; check them in place, no copy, no object.
        if (c.length - this.headOff >= KSOCK_HDR_SIZE + LNET_HDR_SIZE && !this.keepRaw) {
          const w = wholeReader(c, true)
          const o = c.byteOffset + this.headOff
          if (w.dv.getUint32(o, this.le) === K.MSG_LNET) {
            this.frameStart = at
            this.need = checkLnetHdr(w.dv, o + KSOCK_HDR_SIZE, at + KSOCK_HDR_SIZE, this.maxPayload)
            if (this.copyPayload) this.setHead(c.slice(this.headOff, this.headOff + KSOCK_HDR_SIZE + LNET_HDR_SIZE))
            else { this.headBuf = w.buf; this.headDv = w.dv; this.headBase = o }
            this.drop(KSOCK_HDR_SIZE + LNET_HDR_SIZE)
            this.state = 'payload'
            return undefined
          }
        }
        // One take: a bad type makes the stream unusable, so nothing needs to stay buffered for it.
        const kb = this.take(KSOCK_HDR_SIZE)
        const t = ksockType(kb, this.le, at)
        this.frameStart = at
        if (t === K.MSG_NOOP) return { kind: 'noop', offset: at, ksock: decodeKsockHdr(kb, this.le), raw: this.keep(kb) }
        // Kept as taken until the LNet header joins it in a head of its own (lnet-hdr below).
        this.ksockBytes = kb
        this.enter('lnet-hdr')
        return undefined
      }
      case 'lnet-hdr': {
        // The headers came in pieces: join them in one array of their own.
        const head = new Uint8Array(KSOCK_HDR_SIZE + LNET_HDR_SIZE)
        head.set(this.ksockBytes!, 0)
        head.set(this.take(LNET_HDR_SIZE), KSOCK_HDR_SIZE)
        this.ksockBytes = undefined
        this.setHead(head)
        this.need = checkLnetHdr(this.headDv!, KSOCK_HDR_SIZE, this.frameStart + KSOCK_HDR_SIZE, this.maxPayload)
        this.state = 'payload'
        return undefined
      }
      case 'payload': {
        const n = this.need
        const c = this.chunks[0]
        let bytes: Uint8Array
        let start = 0
        if (n === 0) bytes = EMPTY
        else if (!this.copyPayload && c.length - this.headOff >= n) {
          // Immutable input and the payload in one chunk: the unit points into the chunk, no view made.
          bytes = c
          start = this.headOff
          this.drop(n)
        } else {
          // Otherwise the payload is the decoder's own copy: a caller may reuse its chunk after push() returns.
          bytes = c.length - this.headOff >= n ? this.take(n).slice() : this.take(n)
        }
        const f = new LnetUnit(this.frameStart, bytes, start, n, this.headBuf!, this.headDv!, this.headBase, this.le, KSOCK_HDR_SIZE)
        if (this.keepRaw) {
          const raw = new Uint8Array(KSOCK_HDR_SIZE + LNET_HDR_SIZE + n)
          raw.set(this.headBuf!.subarray(this.headBase, this.headBase + KSOCK_HDR_SIZE + LNET_HDR_SIZE), 0)
          raw.set(bytes.subarray(start, start + n), KSOCK_HDR_SIZE + LNET_HDR_SIZE)
          f.raw = raw
        }
        this.headBuf = undefined
        this.headDv = undefined
        this.enter('ksock')
        return f
      }
    }
  }
}
