// Turns a capture into decoded LNet messages: pcap/pcapng records, TCP
// reassembly (capture layer), socklnd framing per direction, then lustre_msg_v2
// with replies decoded by the format of their request (matched on the
// requester's NID, pid and xid, as Lustre matches them).
import {
  readCapture, TcpReassembler, type CapturedPacket, type TcpConnection, type Direction,
} from '../capture/index.js'
import {
  FrameDecoder, decodeMessage, isWireError, nidFromWire, LUSTRE_MSG_MAGIC_V2, LUSTRE_MSG_MAGIC_V2_SWABBED,
  SOCKLND_CONSTANTS as K, type LnetFrame, type LustreMessage, type LustreWireError,
} from '../wire/index.js'

export const LNET_MSG_NAMES = ['ACK', 'PUT', 'GET', 'REPLY', 'HELLO'] as const

export interface TraceEvent {
  /** frame where the unit's first byte is */
  frame: number
  tsMicros: bigint
  conn: number
  src: string
  dst: string
  unit: 'lnet' | 'connreq' | 'hello' | 'noop' | 'gap' | 'error'
  frameUnit?: LnetFrame
  lnetType?: string
  srcNid?: string
  dstNid?: string
  /** a decoded lustre_msg_v2 (requests, replies) */
  message?: LustreMessage
  /** payload that is not a lustre_msg (bulk data), its length */
  bulkBytes?: number
  error?: LustreWireError
  gapBytes?: number
}

export interface DecodeTraceOptions {
  /** TCP ports decoded as LNet (default 988) */
  ports?: number[]
  /** keep the raw LnetFrame on each event */
  keepFrames?: boolean
  /** largest LNet payload accepted (default LNET_MTU) */
  maxPayload?: number
}

interface HalfState {
  decoder: FrameDecoder
  broken: boolean
  /** (stream offset, frame, ts) of every chunk not yet passed */
  marks: Array<[number, number, bigint]>
  pushed: number
}

const ep = (e: { ip: string; port: number }): string => `${e.ip}:${e.port}`
/** Requests whose replies we have not seen are forgotten past this many. */
const MAX_PENDING = 100_000

export function* decodeTrace(bytes: Uint8Array, opts: DecodeTraceOptions = {}): Generator<TraceEvent> {
  const ports = new Set(opts.ports ?? [988])
  const out: TraceEvent[] = []
  const halves = new Map<string, HalfState>()
  const pending = new PendingRequests()
  const half = (c: TcpConnection, from: Direction): HalfState => {
    const k = `${c.id}:${from}`
    let h = halves.get(k)
    if (!h) {
      h = { decoder: new FrameDecoder({ start: 'auto', maxPayload: opts.maxPayload, copyPayload: false }), broken: false, marks: [], pushed: 0 }
      halves.set(k, h)
    }
    return h
  }
  const where = (h: HalfState, offset: number): [number, bigint] => {
    while (h.marks.length > 1 && h.marks[1][0] <= offset) h.marks.shift()
    return h.marks.length ? [h.marks[0][1], h.marks[0][2]] : [0, 0n]
  }
  const reasm = new TcpReassembler({
    data(c, from, chunk, frame, ts) {
      const h = half(c, from)
      if (h.broken) return
      h.marks.push([h.pushed, frame, ts])
      h.pushed += chunk.length
      const src = ep(from === 'client' ? c.client : c.server)
      const dst = ep(from === 'client' ? c.server : c.client)
      let units: LnetFrame[]
      try {
        units = h.decoder.push(chunk)
      } catch (e) {
        if (!isWireError(e)) throw e
        h.broken = true
        const [f, t] = where(h, e.offset ?? h.decoder.offset)
        out.push({ frame: f || frame, tsMicros: t, conn: c.id, src, dst, unit: 'error', error: e })
        return
      }
      for (const u of units) {
        const [f, t] = where(h, u.offset)
        out.push(toEvent(u, { frame: f, tsMicros: t, conn: c.id, src, dst }, pending, opts.keepFrames ?? false))
      }
    },
    gap(c, from, missing, atFrame) {
      const h = half(c, from)
      out.push({ frame: atFrame, tsMicros: 0n, conn: c.id, src: ep(from === 'client' ? c.client : c.server), dst: ep(from === 'client' ? c.server : c.client), unit: 'gap', gapBytes: missing })
      // Framing is lost at a hole: start again, looking for a unit at the next byte.
      halves.set(`${c.id}:${from}`, { decoder: new FrameDecoder({ start: 'auto', maxPayload: opts.maxPayload, copyPayload: false }), broken: false, marks: [], pushed: 0 })
      void h
    },
  }, { serverPorts: ports })
  for (const p of readCapture(bytes, { unsupportedLinkType: 'skip' }) as Iterable<CapturedPacket>) {
    if (!ports.has(p.src.port) && !ports.has(p.dst.port)) continue
    reasm.push(p)
    if (out.length) yield* out.splice(0)
  }
  reasm.finish()
  if (out.length) yield* out.splice(0)
}

const nidNames = new Map<bigint, string>()

/** NID text, remembered: a capture holds few NIDs and many messages. */
function nidText(nid: bigint): string {
  let s = nidNames.get(nid)
  if (s === undefined) {
    s = nidFromWire(nid)
    if (nidNames.size < 65536) nidNames.set(nid, s)
  }
  return s
}

function isLustreMsg(p: Uint8Array): boolean {
  if (p.length < 12) return false
  const m = (p[8] | (p[9] << 8) | (p[10] << 16) | (p[11] << 24)) >>> 0
  return m === LUSTRE_MSG_MAGIC_V2 || m === LUSTRE_MSG_MAGIC_V2_SWABBED
}

/**
 * Requests waiting for their reply, by requester (NID, pid) and xid: the format a
 * reply is decoded with. Keyed without building strings (one lookup per message).
 */
export class PendingRequests {
  private readonly byPeer = new Map<bigint, Map<bigint, string>>()
  private count = 0

  constructor(private readonly limit = MAX_PENDING) {}

  private peer(nid: bigint, pid: number): bigint {
    return (nid << 32n) | BigInt(pid)
  }

  get(nid: bigint, pid: number, xid: bigint): string | undefined {
    return this.byPeer.get(this.peer(nid, pid))?.get(xid)
  }

  set(nid: bigint, pid: number, xid: bigint, format: string): void {
    const k = this.peer(nid, pid)
    let m = this.byPeer.get(k)
    if (!m) this.byPeer.set(k, (m = new Map()))
    if (!m.has(xid)) this.count++
    m.set(xid, format)
    // Requests whose replies the capture never shows are forgotten, oldest first.
    if (this.count > this.limit) {
      const first = m.keys().next().value as bigint
      m.delete(first)
      this.count--
    }
  }

  delete(nid: bigint, pid: number, xid: bigint): void {
    if (this.byPeer.get(this.peer(nid, pid))?.delete(xid)) this.count--
  }
}

function toEvent(u: LnetFrame, base: Pick<TraceEvent, 'frame' | 'tsMicros' | 'conn' | 'src' | 'dst'>, pending: PendingRequests, keep: boolean): TraceEvent {
  if (u.kind !== 'lnet') return { ...base, unit: u.kind, frameUnit: u }
  const hdr = u.hdr
  const type = hdr.type as number
  // One literal shape per event; the unit stays attached (its payload is a view, freed with the event).
  void keep
  const ev: TraceEvent = {
    frame: base.frame, tsMicros: base.tsMicros, conn: base.conn, src: base.src, dst: base.dst,
    unit: 'lnet', frameUnit: u, lnetType: LNET_MSG_NAMES[type] ?? String(type),
    srcNid: nidText(hdr.src_nid as bigint), dstNid: nidText(hdr.dest_nid as bigint),
    message: undefined, bulkBytes: undefined, error: undefined, gapBytes: undefined,
  }
  if (type !== K.LNET_MSG_PUT && type !== K.LNET_MSG_REPLY) return ev
  if (!isLustreMsg(u.payload)) {
    if (u.payload.length) ev.bulkBytes = u.payload.length
    return ev
  }
  const xid = ((hdr.msg as Record<string, Record<string, unknown>>).put?.match_bits as bigint | undefined) ?? 0n
  try {
    // A reply's requester is its destination; a request's requester is its source.
    const requestFormat = pending.get(hdr.dest_nid as bigint, hdr.dest_pid as number, xid)
    const msg = decodeMessage(u.payload, { requestFormat })
    ev.message = msg
    if (msg.kind === 'request' && msg.format) pending.set(hdr.src_nid as bigint, hdr.src_pid as number, xid, msg.format)
    else if (msg.kind !== 'request') pending.delete(hdr.dest_nid as bigint, hdr.dest_pid as number, xid)
  } catch (e) {
    if (!isWireError(e)) throw e
    ev.error = e
  }
  return ev
}
