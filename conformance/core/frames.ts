// The frames of a test's pcap that a failure is about: the request of its last exchange
// (found by xid) and the reply to it on the same connection. Numbers are
// Wireshark's (1-based), at the frame where each message ends, where tshark shows it.
import { decodeTrace, type TraceEvent } from '../../src/trace/index.js'
import type { Exchange } from './test.js'

const matchBits = (e: TraceEvent): bigint | undefined => (e.frameUnit?.kind === 'lnet' && e.lnetType === 'PUT' ? e.frameUnit.putMatchBits : undefined)

/**
 * Request and reply frames of `x` in `pcap`; empty when the pcap does not hold them. The xid
 * finds the request (the format is not compared: the trace picks formats by what the request
 * holds, and may name another of the opcode's); the reply is the same xid back on its connection.
 */
export function exchangeFrames(pcap: Uint8Array, x: Exchange): number[] {
  const xid = BigInt(x.xid)
  let request: TraceEvent | undefined
  for (const e of decodeTrace(pcap)) {
    if (e.unit !== 'lnet' || !e.message || matchBits(e) !== xid) continue
    if (!request && e.message.kind === 'request') request = e
    else if (request && e.message.kind !== 'request' && e.conn === request.conn && e.src === request.dst) {
      return [request.endFrame ?? request.frame, e.endFrame ?? e.frame]
    }
  }
  return request ? [request.endFrame ?? request.frame] : []
}
