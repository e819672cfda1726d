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
  const pending = new Map<string, string>()
  const half = (c: TcpConnection, from: Direction): HalfState => {
    const k = `${c.id}:${from}`
    let h = halves.get(k)
    if (!h) {
      h = { decoder: new FrameDecoder({ start: 'auto', maxPayload: opts.maxPayload }), broken: false, marks: [], pushed: 0 }
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
      halves.set(`${c.id}:${from}`, { decoder: new FrameDecoder({ start: 'auto', maxPayload: opts.maxPayload }), broken: false, marks: [], pushed: 0 })
      void h
    },
  }, { serverPorts: ports })
  for (const p of readCapture(bytes, { unsupportedLinkType: 'skip' }) as Iterable<CapturedPacket>) {
    if (!ports.has(p.src.port) && !ports.has(p.dst.port)) continue
    reasm.push(p)
    if (out.length) yield* out.splice(0)
    if (pending.size > MAX_PENDING) pending.delete(pending.keys().next().value as string)
  }
  reasm.finish()
  if (out.length) yield* out.splice(0)
}

function isLustreMsg(p: Uint8Array): boolean {
  if (p.length < 12) return false
  const m = (p[8] | (p[9] << 8) | (p[10] << 16) | (p[11] << 24)) >>> 0
  return m === LUSTRE_MSG_MAGIC_V2 || m === LUSTRE_MSG_MAGIC_V2_SWABBED
}

function toEvent(u: LnetFrame, base: Pick<TraceEvent, 'frame' | 'tsMicros' | 'conn' | 'src' | 'dst'>, pending: Map<string, string>, keep: boolean): TraceEvent {
  if (u.kind !== 'lnet') return { ...base, unit: u.kind, frameUnit: u }
  const hdr = u.hdr
  const type = hdr.type as number
  const ev: TraceEvent = {
    ...base, unit: 'lnet', lnetType: LNET_MSG_NAMES[type] ?? String(type),
    srcNid: nidFromWire(hdr.src_nid as bigint), dstNid: nidFromWire(hdr.dest_nid as bigint),
    frameUnit: keep ? u : { ...u, payload: new Uint8Array(0), raw: undefined },
  }
  if (type !== K.LNET_MSG_PUT && type !== K.LNET_MSG_REPLY) return ev
  if (!isLustreMsg(u.payload)) {
    if (u.payload.length) ev.bulkBytes = u.payload.length
    return ev
  }
  const xid = ((hdr.msg as Record<string, Record<string, unknown>>).put?.match_bits as bigint | undefined) ?? 0n
  try {
    // A reply's requester is its destination; a request's requester is its source.
    const replyKey = `${String(hdr.dest_nid)}:${String(hdr.dest_pid)}:${xid}`
    const requestFormat = pending.get(replyKey)
    const msg = decodeMessage(u.payload, { requestFormat })
    ev.message = msg
    if (msg.kind === 'request' && msg.format) pending.set(`${String(hdr.src_nid)}:${String(hdr.src_pid)}:${xid}`, msg.format)
    else if (msg.kind !== 'request') pending.delete(replyKey)
  } catch (e) {
    if (!isWireError(e)) throw e
    ev.error = e
  }
  return ev
}
