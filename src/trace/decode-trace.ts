// Turns a capture into decoded LNet messages: pcap/pcapng records, TCP
// reassembly (capture layer), socklnd framing per direction, then lustre_msg_v2
// with replies decoded by the format of their request (matched on the
// requester's NID, pid and xid, as Lustre matches them).
import {
  readCapture, readCaptureFile, TcpReassembler, type CapturedPacket, type TcpConnection, type Direction,
} from '../capture/index.js'
import {
  FrameDecoder, decodeMessageIn, isWireError, nidFromWire, LUSTRE_MSG_MAGIC_V2, LUSTRE_MSG_MAGIC_V2_SWABBED,
  SOCKLND_CONSTANTS as K, type LnetFrame, type LustreMessage, type LustreWireError,
} from '../wire/index.js'
import { PendingRequests } from './pending.js'

export const LNET_MSG_NAMES = ['ACK', 'PUT', 'GET', 'REPLY', 'HELLO'] as const

export interface TraceEvent {
  /** frame where the unit's first byte is */
  frame: number
  /** frame where the unit's last byte is, when not `frame` (Wireshark shows a reassembled PDU there) */
  endFrame?: number
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
  /** largest LNet payload accepted (default LNET_MTU) */
  maxPayload?: number
}

interface HalfState {
  decoder: FrameDecoder
  broken: boolean
  /** endpoint text of this direction's sender and receiver */
  src: string
  dst: string
  /** stream offset, frame and time of every chunk from `head` on (parallel arrays, no tuples) */
  markOffsets: number[]
  markFrames: number[]
  markTimes: bigint[]
  head: number
  pushed: number
  /** where this direction's units go (made once) */
  sink?: (u: LnetFrame) => void
  /** frame of the chunk being fed: a unit completed now ends in it */
  curFrame: number
  /** the NIDs last seen in this direction and their text: a connection carries one pair, nearly always */
  lastSrc: bigint
  lastSrcText: string
  lastDst: bigint
  lastDstText: string
}

const ep = (e: { ip: string; port: number }): string => `${e.ip}:${e.port}`

/**
 * Decodes a capture given as bytes, or as a file path read in chunks (memory stays bounded
 * however large the file: a capture from a real cluster can be many gigabytes).
 */
export function* decodeTrace(input: Uint8Array | string, opts: DecodeTraceOptions = {}): Generator<TraceEvent> {
  const ports = new Set(opts.ports ?? [988])
  let out: TraceEvent[] = []
  const conns = new Map<TcpConnection, ConnState>()
  const pending = new PendingRequests()
  const newHalf = (src: string, dst: string): HalfState => ({
    decoder: new FrameDecoder({ start: 'auto', maxPayload: opts.maxPayload, copyPayload: false }),
    broken: false, src, dst, markOffsets: [], markFrames: [], markTimes: [], head: 0, pushed: 0, sink: undefined, curFrame: 0,
    lastSrc: -1n, lastSrcText: '', lastDst: -1n, lastDstText: '',
  })
  // Per connection: both directions' framing state and endpoint text, made once.
  const state = (c: TcpConnection): ConnState => {
    let st = conns.get(c)
    if (!st) {
      const client = ep(c.client)
      const server = ep(c.server)
      st = { client: newHalf(client, server), server: newHalf(server, client) }
      conns.set(c, st)
    }
    return st
  }
  const reasm = new TcpReassembler({
    data(c, from, chunk, frame, ts) {
      const h = state(c)[from]
      if (h.broken) return
      h.markOffsets.push(h.pushed)
      h.markFrames.push(frame)
      h.markTimes.push(ts)
      h.pushed += chunk.length
      h.curFrame = frame
      try {
        h.decoder.feed(chunk, h.sink ??= (u: LnetFrame) => {
          const m = mark(h, u.offset)
          const ev = toEvent(u, h.markFrames[m] ?? 0, h.markTimes[m] ?? 0n, c.id, h, pending)
          if (h.curFrame !== ev.frame) ev.endFrame = h.curFrame
          out.push(ev)
        })
      } catch (e) {
        if (!isWireError(e)) throw e
        h.broken = true
        const m = mark(h, e.offset ?? h.decoder.offset)
        out.push({ frame: h.markFrames[m] ?? frame, tsMicros: h.markTimes[m] ?? 0n, conn: c.id, src: h.src, dst: h.dst, unit: 'error', error: e })
        return
      }
      // Marks before the oldest unit still being read are no longer needed.
      if (h.head > 1024) {
        h.markOffsets.splice(0, h.head)
        h.markFrames.splice(0, h.head)
        h.markTimes.splice(0, h.head)
        h.head = 0
      }
    },
    gap(c, from, missing, atFrame) {
      const st = state(c)
      const h = st[from]
      out.push({ frame: atFrame, tsMicros: 0n, conn: c.id, src: h.src, dst: h.dst, unit: 'gap', gapBytes: missing })
      // Framing is lost at a hole: start again, looking for a unit at the next byte.
      st[from] = newHalf(h.src, h.dst)
    },
  }, { serverPorts: ports })
  const packets = typeof input === 'string' ? readCaptureFile(input, { unsupportedLinkType: 'skip' }) : readCapture(input, { unsupportedLinkType: 'skip' })
  for (const p of packets as Iterable<CapturedPacket>) {
    if (!ports.has(p.src.port) && !ports.has(p.dst.port)) continue
    reasm.push(p)
    // Events are handed out in batches: fewer generator resumptions than one per packet.
    if (out.length >= 256) {
      const batch = out
      out = []
      yield* batch
    }
  }
  reasm.finish()
  yield* out
}

interface ConnState {
  client: HalfState
  server: HalfState
}

/** Index of the chunk holding stream offset `offset` (marks are in stream order). */
function mark(h: HalfState, offset: number): number {
  const o = h.markOffsets
  while (h.head + 1 < o.length && o[h.head + 1] <= offset) h.head++
  return h.head
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

/** Whether p[start, start + length) begins as a lustre_msg_v2 (its magic at byte 8). */
function isLustreMsg(p: Uint8Array, start: number, length: number): boolean {
  if (length < 12) return false
  const o = start + 8
  const m = (p[o] | (p[o + 1] << 8) | (p[o + 2] << 16) | (p[o + 3] << 24)) >>> 0
  return m === LUSTRE_MSG_MAGIC_V2 || m === LUSTRE_MSG_MAGIC_V2_SWABBED
}

/** Options handed to every decodeMessageIn call (it keeps no reference to them): one object, not one per message. */
const decodeOpts: { requestFormat: string | undefined } = { requestFormat: undefined }

function toEvent(u: LnetFrame, frame: number, tsMicros: bigint, conn: number, h: HalfState, pending: PendingRequests): TraceEvent {
  if (u.kind !== 'lnet') return { frame, tsMicros, conn, src: h.src, dst: h.dst, unit: u.kind, frameUnit: u }
  // The few header members every unit needs, read in place (the header object is built only if asked for).
  const type = u.type
  const srcNid = u.srcNid
  const destNid = u.destNid
  // One literal shape per event; the unit stays attached (it points into the capture, freed with the event).
  const ev: TraceEvent = {
    frame, tsMicros, conn, src: h.src, dst: h.dst,
    unit: 'lnet', frameUnit: u, lnetType: LNET_MSG_NAMES[type] ?? String(type),
    srcNid: srcNid === h.lastSrc ? h.lastSrcText : (h.lastSrcText = nidText((h.lastSrc = srcNid))),
    dstNid: destNid === h.lastDst ? h.lastDstText : (h.lastDstText = nidText((h.lastDst = destNid))),
    message: undefined, bulkBytes: undefined, error: undefined, gapBytes: undefined, endFrame: undefined,
  }
  if (type !== K.LNET_MSG_PUT && type !== K.LNET_MSG_REPLY) return ev
  if (!isLustreMsg(u.payloadBytes, u.payloadStart, u.payloadLength)) {
    if (u.payloadLength) ev.bulkBytes = u.payloadLength
    return ev
  }
  // An RPC travels in a PUT whose match bits are its xid; a REPLY (to a GET) has none.
  const xid = type === K.LNET_MSG_PUT ? u.putMatchBits : 0n
  try {
    // A reply's requester is its destination; a request's requester is its source.
    decodeOpts.requestFormat = pending.get(destNid, u.destPid, xid)
    const msg = decodeMessageIn(u.payloadBytes, u.payloadStart, u.payloadLength, decodeOpts)
    ev.message = msg
    if (msg.kind === 'request' && msg.format) pending.set(srcNid, u.srcPid, xid, msg.format)
    else if (msg.kind !== 'request') pending.delete(destNid, u.destPid, xid)
  } catch (e) {
    if (!isWireError(e)) throw e
    ev.error = e
  }
  return ev
}
