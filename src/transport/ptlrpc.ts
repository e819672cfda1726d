// PtlRPC over an LNet endpoint, as Lustre's ptlrpc moves messages:
//  - a request is an LNet PUT of a lustre_msg_v2 to the service's request portal,
//    with match bits = the request's xid and no ACK;
//  - the reply is a PUT back to the client's reply portal with the same match bits;
//  - bulk data moves by LNet on a bulk portal with the request's pb_mbits: the
//    server GETs the client's pages for a write and PUTs pages for a read.
// One endpoint can call and serve at once, so a server calls back its clients
// (LDLM ASTs) over the connection they opened.
import {
  decodeMessage, encodeFormatted, loadSpec, constantOf, isWireError, makeStruct,
  type LustreMessage, type RpcFormat, type Spec,
} from '../wire/index.js'
import type { LnetEndpoint, Peer, Incoming } from './lnet.js'
import { TransportError } from './errors.js'
import { buildBody, replyBodyFor, errorReply, type BodyFields } from './ptlrpc-body.js'

/** LNet moves at most LNET_MTU (1 MiB) per memory descriptor; larger bulks use consecutive match bits. */
export const BULK_MD_SIZE = 1 << 20

/**
 * Xids step as ptlrpc_next_xid steps them, by PTLRPC_BULK_OPS_COUNT: a bulk's MDs take the
 * match bits xid .. xid + n - 1, so the next request's xid must start past them. 16 here
 * leaves room for 16 MiB RPCs (16 LNET_MTU MDs).
 */
export const XID_STEP = 16

export interface CallOptions {
  format: string | RpcFormat
  /** the opcode, when the format serves several (RQF_MDS_DISCONNECT: MDS_ and MGS_DISCONNECT) */
  opcode?: string
  portal: number
  replyPortal: number
  fields?: Record<string, unknown>
  body?: BodyFields
  /** OST_WRITE-like: the server will GET these bytes */
  bulkSource?: Uint8Array
  /** OST_READ-like: the server will PUT up to this many bytes */
  bulkSinkLength?: number
  /** OST_READ-like, into the caller's bytes: the server PUTs straight into them (no copy after) */
  bulkSink?: Uint8Array
  bulkPortal?: number
  timeoutMs?: number
  lmFlags?: number
  /** changes the encoded request before it is sent (a conformance test's malformed request); the reply is still read by the format */
  mutate?: (bytes: Uint8Array) => Uint8Array
}

export interface CallResult {
  reply: LustreMessage
  xid: bigint
  /** bytes the server PUT into the bulk sink */
  bulk?: Uint8Array
  /** length of the reply message as it arrived (lustre_msg_v2 says how long it should be) */
  replyLength: number
}

export interface ServerRequest {
  peer: Peer
  xid: bigint
  portal: number
  msg: LustreMessage
  format: RpcFormat | undefined
  /** GETs `length` bytes of the client's bulk source (its pages, for a write) */
  bulkGet(length: number, portal: number): Promise<Uint8Array>
  /** PUTs bytes into the client's bulk sink (for a read) */
  bulkPut(data: Uint8Array, portal: number): Promise<void>
}

export interface ReplySpec {
  status?: number
  fields?: Record<string, unknown>
  body?: BodyFields
  /**
   * The ptlrpc_error() path, for refusals before any handler ran and for serious errors (a
   * request that cannot be unpacked): the body alone, typed PTL_RPC_MSG_ERR (REPLY for -ENOENT
   * and the few others ptlrpc_send_error() spares). Without it, a non-zero status is a handler's
   * failure, sent as tgt_handle_request0() sends it: a PTL_RPC_MSG_REPLY with every buffer of
   * the format, the fixed-size structs the handler left unset zeroed (they were packed before it ran).
   */
  error?: boolean
  /** when the handler swapped formats (an intent decided late) */
  format?: string
  /** changes the encoded reply before it is sent (a deliberately wrong server's fault switch) */
  mutate?: (bytes: Uint8Array) => Uint8Array
}

export type Handler = (req: ServerRequest) => Promise<ReplySpec> | ReplySpec

export interface PtlrpcOptions {
  spec?: Spec
  /** first xid; later ones count up (Lustre seeds from the clock) */
  xidBase?: bigint
  defaultTimeoutMs?: number
}

export class PtlrpcEndpoint {
  readonly spec: Spec
  private xid: bigint
  private readonly services = new Map<number, { replyPortal: number; handler: Handler }>()
  private readonly timeoutMs: number

  constructor(readonly lnet: LnetEndpoint, opts: PtlrpcOptions = {}) {
    this.spec = opts.spec ?? loadSpec()
    // Lustre seeds xids from the clock so that a restarted client does not reuse them.
    this.xid = opts.xidBase ?? (BigInt(Date.now()) << 16n)
    this.timeoutMs = opts.defaultTimeoutMs ?? 30_000
    // RPCs in flight when the endpoint closes end now, not at their timeout.
    lnet.onClose(() => {
      const err = new TransportError('LC_RPC_CLOSED', 'the LNet endpoint was closed while the RPC was in flight')
      for (const w of this.replyWaiters.values()) w.fail(err)
    })
  }

  nextXid(): bigint {
    this.xid += BigInt(XID_STEP)
    return this.xid
  }

  private format(f: string | RpcFormat): RpcFormat {
    if (typeof f !== 'string') return f
    const fmt = this.spec.formats.get(f)
    if (!fmt) throw new TransportError('LC_LNET_CONFIG', `no request format ${f} in spec/rpc`)
    return fmt
  }

  /** Sends a request and waits for its reply (and bulk, when asked). */
  async call(peer: Peer, o: CallOptions): Promise<CallResult> {
    const fmt = this.format(o.format)
    const op = this.spec.opcodesByName.get(o.opcode ?? fmt.opcode)
    if (!op) throw new TransportError('LC_LNET_CONFIG', `no opcode ${o.opcode ?? fmt.opcode} in spec/rpc`)
    const bulkBytes = o.bulkSource?.length ?? o.bulkSink?.length ?? o.bulkSinkLength ?? 0
    if (bulkBytes > XID_STEP * BULK_MD_SIZE) throw new TransportError('LC_LNET_CONFIG', `${fmt.name}: a bulk of ${bulkBytes} bytes needs more than ${XID_STEP} MDs`)
    const xid = this.nextXid()
    const bulkBits = o.bulkSource || o.bulkSink || o.bulkSinkLength !== undefined ? xid : 0n
    const body = buildBody(this.spec, { ...o.body, pb_opc: op.opc, pb_mbits: bulkBits }, 'request')
    const encoded = encodeFormatted(fmt, 'request', { body, fields: o.fields ?? {}, header: { lm_flags: o.lmFlags ?? 0 } }, this.spec)
    const bytes = o.mutate ? o.mutate(encoded) : encoded
    const detach: Array<{ detach(): void }> = []
    let sink: Uint8Array | undefined
    let sinkGot = 0
    const bulkPortal = o.bulkPortal ?? (op.bulkPortal ? Number(constantOf(this.spec, op.bulkPortal)) : 0)
    if (o.bulkSource) {
      for (let i = 0; i * BULK_MD_SIZE < o.bulkSource.length || i === 0; i++) {
        detach.push(this.lnet.attachMd({ portal: bulkPortal, matchBits: bulkBits + BigInt(i), peer, kind: 'source', buffer: o.bulkSource.subarray(i * BULK_MD_SIZE, (i + 1) * BULK_MD_SIZE) }))
      }
    }
    if (o.bulkSink || o.bulkSinkLength !== undefined) {
      sink = o.bulkSink ?? new Uint8Array(o.bulkSinkLength!)
      for (let i = 0; i * BULK_MD_SIZE < sink.length || i === 0; i++) {
        detach.push(this.lnet.attachMd({
          portal: bulkPortal, matchBits: bulkBits + BigInt(i), peer, kind: 'sink', buffer: sink.subarray(i * BULK_MD_SIZE, (i + 1) * BULK_MD_SIZE),
          onEvent: ev => { sinkGot = Math.max(sinkGot, i * BULK_MD_SIZE + ev.offset + ev.length) },
        }))
      }
    }
    let replyBytes: Uint8Array | undefined
    let wake: (() => void) | undefined
    let fail: ((e: Error) => void) | undefined
    const arrived = new Promise<void>((r, j) => { wake = r; fail = j })
    // The reply lands through a portal-bound handler, since its size is not known in advance.
    this.replyWaiters.set(`${o.replyPortal}:${xid}`, { deliver: b => { replyBytes = b; wake!() }, fail: e => fail!(e) })
    this.ensureReplyPortal(o.replyPortal)
    let timer: NodeJS.Timeout | undefined
    try {
      await this.lnet.put(peer, { portal: o.portal, matchBits: xid, hdrData: 0n, offset: 0, ack: false }, bytes)
      await Promise.race([
        arrived,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TransportError('LC_RPC_TIMEOUT', `${fmt.name} xid ${xid}: no reply in ${o.timeoutMs ?? this.timeoutMs} ms`)), o.timeoutMs ?? this.timeoutMs)
        }),
      ])
    } finally {
      if (timer) clearTimeout(timer)
      this.replyWaiters.delete(`${o.replyPortal}:${xid}`)
      for (const d of detach) d.detach()
    }
    let reply: LustreMessage
    try {
      reply = decodeMessage(replyBytes!, { requestFormat: fmt.name, spec: this.spec })
    } catch (e) {
      throw new TransportError('LC_RPC_BAD_REPLY', `${fmt.name} xid ${xid}: ${(e as Error).message}`, e, xid)
    }
    return { reply, xid, bulk: sink?.subarray(0, sinkGot), replyLength: replyBytes!.length }
  }

  private readonly replyWaiters = new Map<string, { deliver(b: Uint8Array): void; fail(e: Error): void }>()
  private readonly replyPortals = new Set<number>()

  private ensureReplyPortal(portal: number): void {
    if (this.replyPortals.has(portal)) return
    this.replyPortals.add(portal)
    this.lnet.bindPortal(portal, m => {
      const w = this.replyWaiters.get(`${portal}:${m.body.match_bits as bigint}`)
      if (w) w.deliver(m.payload)
      else this.lnet.log(`ptlrpc: reply on portal ${portal} for xid ${String(m.body.match_bits)} that nobody waits for; dropped`)
    })
  }

  /** Serves requests that arrive on `portal`; replies go to `replyPortal`. */
  serve(portal: number, replyPortal: number, handler: Handler): void {
    this.services.set(portal, { replyPortal, handler })
    this.lnet.bindPortal(portal, m => {
      // Whatever a request does to a handler, the service keeps serving: log and move on.
      this.onRequest(portal, m).catch(e => this.lnet.log(`ptlrpc: request on portal ${portal} failed: ${(e as Error).stack ?? e}`))
    })
  }

  private async onRequest(portal: number, m: Incoming): Promise<void> {
    const svc = this.services.get(portal)!
    const xid = m.body.match_bits as bigint
    let msg: LustreMessage
    try {
      msg = decodeMessage(m.payload, { spec: this.spec, strict: false })
      if (msg.kind !== 'request') throw new TransportError('LC_RPC_BAD_REPLY', `pb_type ${String(msg.body.pb_type)} on a request portal`)
    } catch (e) {
      if (!isWireError(e) && !(e instanceof TransportError)) throw e
      // Malformed request: answer -EPROTO (as the reference promises) and keep the connection.
      this.lnet.log(`ptlrpc: malformed request xid ${xid} from peer: ${(e as Error).message}`)
      return this.send(m.peer, svc.replyPortal, xid, errorReply(this.spec, -71, 0, m.payload))
    }
    const fmt = msg.format ? this.spec.formats.get(msg.format) : undefined
    const req: ServerRequest = {
      peer: m.peer, xid, portal, msg, format: fmt,
      bulkGet: (length, bulkPortal) => this.bulkGet(m.peer, msg.body.pb_mbits as bigint, length, bulkPortal),
      bulkPut: (data, bulkPortal) => this.bulkPut(m.peer, msg.body.pb_mbits as bigint, data, bulkPortal),
    }
    let spec: ReplySpec
    try {
      spec = await svc.handler(req)
    } catch (e) {
      this.lnet.log(`ptlrpc: handler for ${msg.opcode ?? msg.opc} failed: ${(e as Error).stack ?? e}`)
      spec = { status: -5 /* EIO: the handler broke, the client learns only that */, error: true }
    }
    const op = this.spec.opcodes.get(msg.opc)
    const replyFmt = spec.format ? op?.formats.find(f => f.name === spec.format) ?? this.spec.formats.get(spec.format) : fmt
    let bytes: Uint8Array
    try {
      if (spec.error || !replyFmt) {
        bytes = errorReply(this.spec, spec.status ?? (replyFmt ? 0 : -95 /* EOPNOTSUPP */), msg.opc, undefined, msg.body, spec.body)
      } else {
        const body = replyBodyFor(this.spec, msg.body, { ...spec.body, pb_status: spec.status ?? 0 })
        const fields = spec.status ? this.packedFields(replyFmt, spec.fields ?? {}) : spec.fields ?? {}
        bytes = encodeFormatted(replyFmt, 'reply', { body, fields }, this.spec)
      }
    } catch (e) {
      // A reply the handler built wrongly is our bug, not the client's: it learns -EIO.
      this.lnet.log(`ptlrpc: reply to ${msg.opcode ?? msg.opc} xid ${xid} could not be encoded: ${(e as Error).message}`)
      bytes = errorReply(this.spec, -5, msg.opc, undefined, msg.body)
    }
    if (spec.mutate) bytes = spec.mutate(bytes)
    return this.send(m.peer, svc.replyPortal, xid, bytes)
  }

  /** A failed handler's reply fields: what it set, and every fixed-size struct of the format it did not, zeroed. */
  private packedFields(fmt: RpcFormat, fields: Record<string, unknown>): Record<string, unknown> {
    const out = { ...fields }
    for (const slot of fmt.reply.slice(1)) {
      const def = this.spec.fields.get(slot.field)
      if (out[slot.field] === undefined && def?.kind === 'struct' && def.struct) out[slot.field] = makeStruct(def.struct, {})
    }
    return out
  }

  private async send(peer: Peer, portal: number, xid: bigint, bytes: Uint8Array): Promise<void> {
    try {
      await this.lnet.put(peer, { portal, matchBits: xid, hdrData: 0n, offset: 0, ack: false }, bytes)
    } catch (e) {
      this.lnet.log(`ptlrpc: could not send reply xid ${xid}: ${(e as Error).message}`)
    }
  }

  /** A bulk of `length` bytes takes the match bits mbits .. mbits + MDs - 1, which must stay u64. */
  private checkBits(mbits: bigint, length: number): void {
    const last = mbits + BigInt(Math.max(0, Math.ceil(length / BULK_MD_SIZE) - 1))
    if (last > 0xffffffffffffffffn) throw new TransportError('LC_RPC_BULK', `bulk of ${length} bytes at match bits ${mbits} runs past 2^64`)
  }

  private async bulkGet(peer: Peer, mbits: bigint, length: number, portal: number): Promise<Uint8Array> {
    this.checkBits(mbits, length)
    if (length <= BULK_MD_SIZE) {
      // One MD: the REPLY's payload is the bulk, no assembly copy.
      const b = await this.lnet.get(peer, { portal, matchBits: mbits, length, timeoutMs: this.timeoutMs })
      if (b.length < length) throw new TransportError('LC_RPC_BULK', `bulk GET bits ${mbits}: ${b.length} of ${length} bytes came`)
      return b.length === length ? b : b.subarray(0, length)
    }
    const out = new Uint8Array(length)
    const parts: Promise<void>[] = []
    for (let i = 0; i * BULK_MD_SIZE < length; i++) {
      const n = Math.min(BULK_MD_SIZE, length - i * BULK_MD_SIZE)
      parts.push(this.lnet.get(peer, { portal, matchBits: mbits + BigInt(i), length: n, timeoutMs: this.timeoutMs }).then(b => {
        // A client whose pages are shorter than its niobufs said: the transfer fails, nothing is padded.
        if (b.length < n) throw new TransportError('LC_RPC_BULK', `bulk GET bits ${mbits + BigInt(i)}: ${b.length} of ${n} bytes came`)
        out.set(b.subarray(0, n), i * BULK_MD_SIZE)
      }))
    }
    await Promise.all(parts)
    return out
  }

  private async bulkPut(peer: Peer, mbits: bigint, data: Uint8Array, portal: number): Promise<void> {
    this.checkBits(mbits, data.length)
    const parts: Promise<void>[] = []
    for (let i = 0; i * BULK_MD_SIZE < data.length; i++) {
      parts.push(this.lnet.put(peer, { portal, matchBits: mbits + BigInt(i), ack: true, timeoutMs: this.timeoutMs }, data.subarray(i * BULK_MD_SIZE, (i + 1) * BULK_MD_SIZE)))
    }
    await Promise.all(parts)
  }
}
