// Records what endpoints send and receive into one pcap: each socklnd connection
// becomes a synthesized TCP flow, each unit (connreq, hello, NOOP, LNet message)
// its own segment(s), as tshark's LNet dissector needs them.
import { PcapWriter, type PcapFlow } from '../capture/index.js'
import type { ConnRecorder, RecorderFactory } from '../transport/index.js'

export interface RecordedUnit {
  flow: number
  from: 'client' | 'server'
  bytes: Uint8Array
}

export interface TourRecording {
  factory: RecorderFactory
  /** every unit in the order it was recorded (kept for replaying into larger captures) */
  units: RecordedUnit[]
  close(): Promise<void>
  path: string
}

export interface RecordOptions {
  /**
   * The server port to show in the capture (default 988, LNet's port, which tshark
   * decodes as LNet without -d). Headers are synthesized, so tests that listen on
   * ephemeral ports still produce captures that read like a real cluster's.
   */
  showServerPort?: number
  /** keep every recorded unit in `units` (default true; the bench replays them). Off for long recordings. */
  keepUnits?: boolean
}

export function pcapRecorderFactory(path: string, opts: RecordOptions = {}): TourRecording {
  const writer = new PcapWriter(path)
  const units: RecordedUnit[] = []
  const keep = opts.keepUnits ?? true
  let flows = 0
  const factory: RecorderFactory = conn => {
    const id = flows++
    // The connecting side is the TCP client whichever endpoint records.
    const active = conn.role === 'active'
    const shown = opts.showServerPort ?? 988
    const local = { ip: conn.localIp.replace(/^::ffff:/, ''), port: active ? conn.localPort : shown }
    const remote = { ip: conn.remoteIp.replace(/^::ffff:/, ''), port: active ? shown : conn.remotePort }
    const flow: PcapFlow = active ? writer.flow(local, remote) : writer.flow(remote, local)
    let open = true
    const rec: ConnRecorder = {
      record(direction, bytes) {
        if (!open) return
        const from = (direction === 'sent') === active ? 'client' : 'server'
        flow.send(from, bytes)
        if (keep) units.push({ flow: id, from, bytes })
      },
      close() {
        if (!open) return
        open = false
        flow.close(active ? 'client' : 'server')
      },
    }
    return rec
  }
  return { factory, units, path, close: () => writer.close() }
}
