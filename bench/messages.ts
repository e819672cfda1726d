// Message-level rates: decodeMessage and encoding of the lustre_msg payloads of a
// recorded tour (every request format of spec/rpc with its reply, one error
// reply, lock callbacks), and the socklnd FrameDecoder on a concatenated stream.
// Baselines, measured in the same run on the same content:
//   decode  -> JSON.parse of the message as JSON text (what the CLI prints for it)
//   encode  -> JSON.stringify of that same plain object
//   framing -> memcpy of the same stream chunks (Uint8Array.set)
import { readFileSync } from 'node:fs'
import {
  FrameDecoder, decodeMessage, encodeFormatted, loadSpec, reencode,
  type EncodeMessageInput, type LustreMessage, type RpcFormat,
} from '../src/wire/index.js'
import { decodeTrace, jsonValue } from '../src/trace/index.js'
import type { UnitInfo } from './pcap.js'
import { fmtInt, fmtMB, fmtRate, fmtRatio, measureRate, table, type Rate } from './harness.js'

export interface MessageSample {
  /** the lustre_msg_v2 bytes as recorded */
  bytes: Uint8Array
  msg: LustreMessage
  /** for replies: the format of their request (as decodeTrace matched it by xid) */
  requestFormat?: string
  /** the format object and side, for encodeFormatted */
  format?: RpcFormat
  side: 'request' | 'reply'
  /** the same content as a plain JSON-able object and as JSON text (the baselines' input) */
  plain: unknown
  json: string
}

export interface ResultRow {
  what: string
  ours: string
  unit: string
  baseline: string
  baselineValue: string
  ratio: string
  note: string
}

const spec = loadSpec()

/** Every lustre_msg of a recorded capture, with what decoding and encoding each needs. */
export function collectSamples(pcapPath: string): MessageSample[] {
  const out: MessageSample[] = []
  for (const ev of decodeTrace(readFileSync(pcapPath))) {
    const m = ev.message
    if (!m || ev.frameUnit?.kind !== 'lnet') continue
    const bytes = ev.frameUnit.payload.slice(0, m.size)
    const side = m.kind === 'request' ? 'request' : 'reply'
    const requestFormat = side === 'reply' ? m.format : undefined
    const format = m.format ? spec.opcodes.get(m.opc)?.formats.find(f => f.name === m.format) : undefined
    const plain = jsonValue({ lustre_msg: m.header, ptlrpc_body: m.body, kind: m.kind, opcode: m.opcode, format: m.format, buffers: m.fields })
    out.push({ bytes, msg: m, requestFormat, format, side, plain, json: JSON.stringify(plain) })
  }
  return out
}

function headerOf(m: LustreMessage): EncodeMessageInput['header'] {
  const h = m.header as Record<string, number>
  return { lm_secflvr: h.lm_secflvr, lm_repsize: h.lm_repsize, lm_cksum: h.lm_cksum, lm_flags: h.lm_flags, lm_opc: h.lm_opc, lm_padding_3: h.lm_padding_3 }
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0

/** Checks that what is timed does what it should: decode agrees with the trace, encoders give the recorded bytes. */
export function checkSamples(samples: MessageSample[]): string[] {
  let decodeSame = 0
  let reencodeSame = 0
  let formattedSame = 0
  let formatted = 0
  for (const s of samples) {
    const d = decodeMessage(s.bytes, { requestFormat: s.requestFormat })
    if (d.format === s.msg.format && d.size === s.bytes.length) decodeSame++
    if (sameBytes(reencode(s.msg), s.bytes)) reencodeSame++
    if (s.format) {
      formatted++
      const e = encodeFormatted(s.format, s.side, { header: headerOf(s.msg), body: s.msg.body, bodyStruct: s.msg.bodyStruct, fields: s.msg.fields })
      if (sameBytes(e, s.bytes)) formattedSame++
    }
  }
  return [
    `decodeMessage alone picks the trace's format for ${decodeSame}/${samples.length} messages`,
    `reencode gives the recorded bytes for ${reencodeSame}/${samples.length}`,
    `encodeFormatted gives them for ${formattedSame}/${formatted} (the rest: the format lists slots the sender left out, e.g. an error reply)`,
  ]
}

export interface MessageBenchOptions {
  ops: number
  warmup: number
  maxSeconds: number
}

function rateRow(what: string, ours: Rate, baseline: string, base: Rate, note: string): ResultRow {
  return { what, ours: fmtRate(ours.perSec), unit: 'msgs/s', baseline, baselineValue: fmtRate(base.perSec), ratio: fmtRatio(ours.perSec / base.perSec), note }
}

export function benchMessages(samples: MessageSample[], o: MessageBenchOptions): ResultRow[] {
  const n = samples.length
  const at = (i: number): MessageSample => samples[i % n]
  const withFormat = samples.filter(s => s.format)
  const fmtAt = (i: number): MessageSample => withFormat[i % withFormat.length]
  const rows: ResultRow[] = []
  const opsNote = (r: Rate): string => `${fmtInt(r.ops)} ops in ${r.seconds.toFixed(1)} s`

  // Every part of the message is read: decodeMessage builds header, body and buffers on first read.
  const dec = measureRate(i => {
    const s = at(i)
    const m = decodeMessage(s.bytes, { requestFormat: s.requestFormat })
    return (m.header.lm_bufcount as number) + (m.body.pb_opc as number) + m.buffers.length
  }, o)
  const parse = measureRate(i => (JSON.parse(at(i).json) as unknown[]) ? 1 : 0, o)
  rows.push(rateRow('decode: decodeMessage, all read', dec, 'JSON.parse of the same message', parse, opsNote(dec)))

  const enc = measureRate(i => reencode(at(i).msg).length, o)
  const str = measureRate(i => JSON.stringify(at(i).plain).length, o)
  rows.push(rateRow('encode: reencode(decoded)', enc, 'JSON.stringify of the same message', str, opsNote(enc)))

  const encF = measureRate(i => {
    const s = fmtAt(i)
    return encodeFormatted(s.format!, s.side, { header: headerOf(s.msg), body: s.msg.body, bodyStruct: s.msg.bodyStruct, fields: s.msg.fields }).length
  }, o)
  const strF = measureRate(i => JSON.stringify(fmtAt(i).plain).length, o)
  rows.push(rateRow('encode: encodeFormatted', encF, 'JSON.stringify of the same message', strF, opsNote(encF)))
  return rows
}

/**
 * One direction of a socklnd connection as a byte stream: the tour's client side
 * (connreq, hello, then its LNet messages, bulk included) with the messages
 * repeated until the stream is `minBytes` long, cut into `chunk`-byte reads.
 */
export function buildStream(units: UnitInfo[], minBytes: number, chunk: number): { chunks: Uint8Array[]; bytes: number; frames: number } {
  const flow0 = units.filter(u => u.flow === units[0].flow && u.from === 'client')
  const head = flow0.filter(u => u.handshake) // connreq, hello
  const body = flow0.filter(u => !u.handshake)
  const bodyLen = body.reduce((a, u) => a + u.bytes.length, 0)
  const headLen = head.reduce((a, u) => a + u.bytes.length, 0)
  const reps = Math.max(1, Math.ceil((minBytes - headLen) / bodyLen))
  const all = new Uint8Array(headLen + reps * bodyLen)
  let off = 0
  for (const u of head) { all.set(u.bytes, off); off += u.bytes.length }
  for (let r = 0; r < reps; r++) for (const u of body) { all.set(u.bytes, off); off += u.bytes.length }
  const chunks: Uint8Array[] = []
  for (let p = 0; p < all.length; p += chunk) chunks.push(all.subarray(p, Math.min(all.length, p + chunk)))
  // frames of one pass, counted once with a fresh decoder
  const d = new FrameDecoder({ start: 'auto' })
  let frames = 0
  for (const c of chunks) frames += d.push(c).length
  return { chunks, bytes: all.length, frames }
}

export function benchFraming(stream: { chunks: Uint8Array[]; bytes: number; frames: number }, maxSeconds: number): ResultRow[] {
  const { chunks } = stream
  const n = chunks.length
  let dec = new FrameDecoder({ start: 'auto' })
  const bytesOf = (ops: number): number => {
    let b = Math.floor(ops / n) * stream.bytes
    for (let i = 0; i < ops % n; i++) b += chunks[i].length
    return b
  }
  const o = { ops: n * 8, warmup: n, maxSeconds }
  const fr = measureRate(i => {
    if (i % n === 0) dec = new FrameDecoder({ start: 'auto' })
    return dec.push(chunks[i % n]).length
  }, o)
  const dst = new Uint8Array(stream.bytes)
  const offs: number[] = []
  for (let i = 0, off = 0; i < n; off += chunks[i].length, i++) offs.push(off)
  const cp = measureRate(i => { const k = i % n; dst.set(chunks[k], offs[k]); return dst[offs[k]] }, o)
  const ours = bytesOf(fr.ops) / fr.seconds
  const base = bytesOf(cp.ops) / cp.seconds
  const framesPerSec = (fr.ops / n) * stream.frames / fr.seconds
  return [{
    what: 'socklnd FrameDecoder (64 KiB reads)',
    ours: fmtMB(ours), unit: 'MB/s', baseline: 'memcpy of the same chunks', baselineValue: fmtMB(base), ratio: fmtRatio(ours / base),
    note: `${fmtRate(framesPerSec)} frames/s; ${(bytesOf(fr.ops) / 1e6).toFixed(0)} MB in ${fr.seconds.toFixed(1)} s`,
  }]
}

export function printRows(rows: ResultRow[]): void {
  console.log(table(
    ['measure', 'ours', 'unit', 'baseline (same run)', 'baseline', 'ours/baseline', 'note'],
    rows.map(r => [r.what, r.ours, r.unit, r.baseline, r.baselineValue, r.ratio, r.note]),
    [1, 4, 5],
  ))
}
