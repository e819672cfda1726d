// The large-capture benchmark: a >= 50 MiB pcap made by replaying a recorded
// tour over several TCP connections, decoded by decodeTrace (as objects, and as
// the CLI's JSON Lines) and by `tshark -r FILE -T fields -e lustre.ptlrpc_body.pb_opc`,
// each timed by wall clock from reading the file to the last output byte.
import { closeSync, openSync, statSync, writeSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { PcapWriter, MAX_TCP_PAYLOAD, TcpReassembler, readCaptureFile, type PcapFlow, type TcpConnection } from '../src/capture/index.js'
import { FrameDecoder, LUSTRE_MSG_MAGIC_V2, LUSTRE_MSG_MAGIC_V2_SWABBED } from '../src/wire/index.js'
import { decodeTrace, eventToJson } from '../src/trace/index.js'
import type { RecordedUnit } from '../src/tour/index.js'
import { cpuSeconds, nowMs } from './harness.js'

/** Bytes a frame adds around its TCP payload: pcap record header, Ethernet, IPv4, TCP. */
const FRAME_OVERHEAD = 16 + 14 + 20 + 20

/** A lustre_msg_v2 starts with lm_bufcount, lm_secflvr, then its magic. */
export function isLustreMsgMagic(p: Uint8Array): boolean {
  if (p.length < 12) return false
  const m = (p[8] | (p[9] << 8) | (p[10] << 16) | (p[11] << 24)) >>> 0
  return m === LUSTRE_MSG_MAGIC_V2 || m === LUSTRE_MSG_MAGIC_V2_SWABBED
}

export interface UnitInfo extends RecordedUnit {
  /** socklnd handshake (connreq or hello): sent once per connection */
  handshake: boolean
  /** LNet messages whose payload is a lustre_msg */
  lustreMsgs: number
  /** LNet payload bytes that are not a lustre_msg (bulk) */
  bulkBytes: number
  /** lustre_msg bytes */
  msgBytes: number
}

/** Decodes each unit's socklnd frames (per flow and direction) to tell handshakes, RPC messages and bulk apart. */
export function classifyUnits(units: RecordedUnit[]): UnitInfo[] {
  const decoders = new Map<string, FrameDecoder>()
  return units.map(u => {
    const k = `${u.flow}:${u.from}`
    let d = decoders.get(k)
    if (!d) decoders.set(k, d = new FrameDecoder({ start: 'auto' }))
    const frames = d.push(u.bytes)
    const info: UnitInfo = { ...u, handshake: frames.length > 0, lustreMsgs: 0, bulkBytes: 0, msgBytes: 0 }
    for (const f of frames) {
      if (f.kind !== 'connreq' && f.kind !== 'hello') info.handshake = false
      if (f.kind !== 'lnet') continue
      if (isLustreMsgMagic(f.payload)) { info.lustreMsgs++; info.msgBytes += f.payload.length } else info.bulkBytes += f.payload.length
    }
    return info
  })
}

export interface GeneratedPcap {
  path: string
  bytes: number
  flows: number
  replays: number
  /** units per replay of the tour (handshakes excluded) */
  unitsPerReplay: number
  msgsPerReplay: number
  /** lustre_msg count in the whole file */
  messages: number
  msgBytes: number
  bulkBytes: number
  packets: number
  seconds: number
}

/**
 * Writes a pcap of at least `minBytes`: `flows` connections (client 10.0.1.N:1021-1023,
 * server 10.0.0.1:988, each opened with the tour's connreq and hellos), each
 * replaying the tour's messages in turn, round-robin, one tour per connection per round.
 */
export async function generatePcap(path: string, units: UnitInfo[], flows: number, minBytes: number): Promise<GeneratedPcap> {
  const t0 = nowMs()
  const tourFlows = [...new Set(units.map(u => u.flow))]
  const bySource = tourFlows.map(f => {
    const us = units.filter(u => u.flow === f)
    return { head: us.filter(u => u.handshake), body: us.filter(u => !u.handshake) }
  })
  const wireSize = (u: UnitInfo): number => u.bytes.length + FRAME_OVERHEAD * Math.ceil(u.bytes.length / MAX_TCP_PAYLOAD)
  const w = new PcapWriter(path)
  let written = 24
  const out: Array<{ flow: PcapFlow; src: (typeof bySource)[number] }> = []
  for (let i = 0; i < flows; i++) {
    const src = bySource[i % bySource.length]
    const flow = w.flow({ ip: `10.0.1.${i + 1}`, port: 1023 - (i % 3) }, { ip: '10.0.0.1', port: 988 })
    written += 3 * FRAME_OVERHEAD
    for (const u of src.head) { flow.send(u.from, u.bytes); written += wireSize(u) }
    out.push({ flow, src })
  }
  let replays = 0
  let messages = 0
  let msgBytes = 0
  let bulkBytes = 0
  while (written < minBytes) {
    for (const { flow, src } of out) {
      for (const u of src.body) {
        flow.send(u.from, u.bytes)
        written += wireSize(u)
        messages += u.lustreMsgs
        msgBytes += u.msgBytes
        bulkBytes += u.bulkBytes
      }
      replays++
    }
  }
  for (const { flow } of out) flow.close('client')
  await w.close()
  const body0 = bySource[0].body
  return {
    path, bytes: statSync(path).size, flows, replays, unitsPerReplay: body0.length,
    msgsPerReplay: body0.reduce((a, u) => a + u.lustreMsgs, 0), messages, msgBytes, bulkBytes,
    packets: w.packetCount, seconds: (nowMs() - t0) / 1000,
  }
}

export interface DecodeRun {
  seconds: number
  cpu: number
  events: number
  messages: number
  errors: number
  /** lustre_msg count by opc */
  opcs: Map<number, number>
  jsonBytes: number
}

/**
 * decodeTrace over the file, read in chunks as the CLI reads it, timed from opening
 * the file to the last event. With
 * `json`, every event the CLI prints is serialised as `lustre-conformance decode`
 * does (eventToJson + JSON.stringify, lines joined 256 at a time) and written to /dev/null.
 */
export function runOurDecode(path: string, json: boolean): DecodeRun {
  const t0 = nowMs()
  const c0 = process.cpuUsage()
  const r: DecodeRun = { seconds: 0, cpu: 0, events: 0, messages: 0, errors: 0, opcs: new Map(), jsonBytes: 0 }
  const fd = json ? openSync('/dev/null', 'w') : -1
  const lines: string[] = []
  const flush = (): void => {
    if (!lines.length) return
    const text = lines.join('\n') + '\n'
    r.jsonBytes += text.length
    writeSync(fd, text)
    lines.length = 0
  }
  try {
    for (const ev of decodeTrace(path, { ports: [988] })) {
      r.events++
      if (ev.error) r.errors++
      if (ev.message) {
        r.messages++
        // Read the field tshark is asked for (-e lustre.ptlrpc_body.pb_opc): the same work on both sides.
        const opc = ev.message.body.pb_opc as number
        r.opcs.set(opc, (r.opcs.get(opc) ?? 0) + 1)
      }
      if (json) {
        if (ev.unit === 'connreq' || ev.unit === 'hello' || ev.unit === 'noop') continue
        lines.push(JSON.stringify(eventToJson(ev)))
        if (lines.length >= 256) flush()
      }
    }
    flush()
  } finally {
    if (fd >= 0) closeSync(fd)
  }
  r.seconds = (nowMs() - t0) / 1000
  r.cpu = cpuSeconds(c0)
  return r
}

export interface StageRun {
  seconds: number
  cpu: number
  units: number
}

/**
 * The stages under decodeTrace, for where the time goes: pcap records and TCP
 * reassembly alone, then with socklnd framing too, set up as decodeTrace sets it up
 * (a FrameDecoder per direction, units handed to a sink, payloads left in place), read
 * in chunks from the file as decodeTrace reads it.
 */
export function runStages(path: string, framing: boolean): StageRun {
  const t0 = nowMs()
  const c0 = process.cpuUsage()
  let units = 0
  const decoders = new Map<TcpConnection, { client: FrameDecoder; server: FrameDecoder }>()
  const count = (): void => { units++ }
  const reasm = new TcpReassembler({
    data(c, from, chunk) {
      if (!framing) { units += chunk.length > 0 ? 1 : 0; return }
      let d = decoders.get(c)
      if (!d) {
        const make = (): FrameDecoder => new FrameDecoder({ start: 'auto', copyPayload: false })
        decoders.set(c, d = { client: make(), server: make() })
      }
      d[from].feed(chunk, count)
    },
  }, { serverPorts: [988] })
  for (const p of readCaptureFile(path, { unsupportedLinkType: 'skip' })) reasm.push(p)
  reasm.finish()
  return { seconds: (nowMs() - t0) / 1000, cpu: cpuSeconds(c0), units }
}

export const TSHARK_FIELD = 'lustre.ptlrpc_body.pb_opc'

export interface TsharkProbe {
  path?: string
  version?: string
  /** why the comparison is skipped */
  skip?: string
}

export function probeTshark(): TsharkProbe {
  const v = spawnSync('tshark', ['--version'], { encoding: 'utf8' })
  if (v.error) return { skip: `tshark not found (${(v.error as NodeJS.ErrnoException).code ?? v.error.message})` }
  if (v.status !== 0) return { skip: `tshark --version exited ${v.status}` }
  const which = spawnSync('sh', ['-c', 'command -v tshark'], { encoding: 'utf8' })
  return { path: which.stdout.trim() || 'tshark', version: v.stdout.split('\n')[0] }
}

export interface TsharkRun {
  seconds: number
  /** user + system seconds of tshark (from the shell's `times`), when known */
  cpu?: number
  /** pb_opc values by opc (counting mode only) */
  opcs?: Map<number, number>
  values?: number
}

const tsharkArgs = (file: string): string[] => ['-r', file, '-T', 'fields', '-e', TSHARK_FIELD]

/**
 * `tshark -r FILE -T fields -e lustre.ptlrpc_body.pb_opc > /dev/null`, wall time
 * (and CPU time: a shell runs it and reports its children's times).
 */
export function runTshark(tshark: string, file: string): TsharkRun {
  return runProcess(tshark, tsharkArgs(file))
}

/**
 * Our CLI asked the same question as tshark, as a process from start to exit:
 * `lustre-conformance decode FILE --field ptlrpc_body.pb_opc > /dev/null`.
 */
export function runOurCli(file: string): TsharkRun {
  const bin = fileURLToPath(new URL('../../bin/lustre-conformance.js', import.meta.url))
  return runProcess(process.execPath, [bin, 'decode', file, '--field', 'ptlrpc_body.pb_opc'])
}

function runProcess(cmd: string, args: string[]): TsharkRun {
  const script = '"$0" "$@" >/dev/null; s=$?; times; exit $s'
  const t0 = nowMs()
  const r = spawnSync('sh', ['-c', script, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  const seconds = (nowMs() - t0) / 1000
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}: ${r.stderr}`)
  // `times` prints the shell's user and system time, then its children's: "0m2.18s 0m0.17s"
  const t = [...r.stdout.matchAll(/(\d+)m([\d.]+)s/g)].map(m => Number(m[1]) * 60 + Number(m[2]))
  return { seconds, cpu: t.length === 4 ? t[2] + t[3] : undefined }
}

/** The same command with its output read back, to count the pb_opc values (a frame may list several, comma-separated). */
export function countTshark(tshark: string, file: string): TsharkRun {
  const t0 = nowMs()
  const r = spawnSync(tshark, tsharkArgs(file), { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28 })
  const seconds = (nowMs() - t0) / 1000
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`tshark exited ${r.status}: ${r.stderr}`)
  const opcs = new Map<number, number>()
  let values = 0
  for (const line of r.stdout.split('\n')) {
    if (!line.trim()) continue
    for (const v of line.split(',')) {
      const opc = Number(v.trim())
      values++
      opcs.set(opc, (opcs.get(opc) ?? 0) + 1)
    }
  }
  return { seconds, opcs, values }
}

/** Opcodes whose counts differ between two histograms, as "opc: a vs b". */
export function histogramDiff(a: Map<number, number>, b: Map<number, number>): string[] {
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => x - y)
  return keys.filter(k => (a.get(k) ?? 0) !== (b.get(k) ?? 0)).map(k => `${k}: ${a.get(k) ?? 0} vs ${b.get(k) ?? 0}`)
}

export const fileBytes = (path: string): number => statSync(path).size
