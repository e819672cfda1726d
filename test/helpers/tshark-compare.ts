// Wireshark as an oracle for any recorded exchange: every frame must dissect with no
// malformed frame and no expert item at warning or above (but the known limits the
// caller lists), and tshark's field values must equal our decoder's, frame by frame.
// Used by the wire foundation's tour and by the reference cluster's recording.
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { decodeTrace, type TraceEvent } from '../../src/trace/index.js'
import { loadSpec, structOf, type StructLayout } from '../../src/wire/index.js'
import { validateMessage } from '../../src/wire/validate.js'

export const haveTshark = spawnSync('tshark', ['--version']).status === 0
const spec = loadSpec()

export interface TsharkLimit { opcode: string; format: string; kind: string; expert: string; why: string }

/** The part of a tap Test this helper uses. */
export interface Checker {
  ok(v: unknown, msg: string): unknown
  fail(msg: string): unknown
  same(a: unknown, b: unknown, msg: string): unknown
}

// tshark's known limit: a PUT to a bulk portal reports lnet.bad_buflen (shared/tools/tshark-scan.sh).
const FLAGGED = '(_ws.malformed || _ws.expert.severity >= 6291456) && !(lnet.bad_buflen && lnet.ptl_index in {5,8,11,14,33})'

type Values = bigint[]
type Extract = (ev: TraceEvent) => Values

/** Every value of struct `want` inside a decoded value of `layout` (walking nested structs, arrays, unions). */
function collect(layout: StructLayout, value: unknown, want: string, out: unknown[]): void {
  if (layout.name === want) out.push(value)
  if (!value || typeof value !== 'object' || layout.self) return
  const v = value as Record<string, unknown>
  for (const f of [...layout.fields, ...(layout.tail ? [layout.tail] : [])]) {
    const x = v[f.name]
    if (f.struct) collect(f.struct, x, want, out)
    else if (f.element?.struct && Array.isArray(x)) for (const e of x) collect(f.element.struct, e, want, out)
    else if (f.type === 'union' && x && typeof x === 'object') {
      for (const [k, inner] of Object.entries(x)) {
        const variant = f.variantsByName?.get(k)
        if (variant?.struct) collect(variant.struct, inner, want, out)
      }
    }
  }
}

function structsIn(ev: TraceEvent, want: string): Array<Record<string, unknown>> {
  const m = ev.message
  if (!m) return []
  const out: unknown[] = []
  collect(structOf(spec, m.bodyStruct), m.body, want, out)
  for (const b of m.buffers) {
    if (!b.struct || b.value === null) continue
    const l = structOf(spec, b.struct)
    for (const v of Array.isArray(b.value) && b.kind === 'array' ? b.value : [b.value]) collect(l, v, want, out)
  }
  return out as Array<Record<string, unknown>>
}

const big = (x: unknown): bigint => BigInt(x as number | bigint)
const body = (k: string): Extract => ev => (ev.message ? [big(ev.message.body[k])] : [])
const lockDescs = (ev: TraceEvent) => structsIn(ev, 'ldlm_lock_desc')

const FIELDS: Record<string, Extract> = {
  'lnet.msg_dst_match_bits': ev => {
    const msg = (ev.frameUnit?.kind === 'lnet' ? ev.frameUnit.hdr.msg : {}) as Record<string, Record<string, unknown>>
    const b = msg.put ?? msg.get ?? msg.ack
    return b ? [big(b.match_bits)] : []
  },
  'lnet.ptl_index': ev => {
    const msg = (ev.frameUnit?.kind === 'lnet' ? ev.frameUnit.hdr.msg : {}) as Record<string, Record<string, unknown>>
    const b = msg.put ?? msg.get
    return b ? [big(b.ptl_index)] : []
  },
  'lustre.ptlrpc_body.pb_opc': body('pb_opc'),
  'lustre.ptlrpc_body.pb_type': body('pb_type'),
  'lustre.ptlrpc_body.pb_status': body('pb_status'),
  'lustre.ptlrpc_body.pb_transno': body('pb_transno'),
  'lustre.ptlrpc_body.pb_last_committed': body('pb_last_committed'),
  'lustre.ldlm_lock_desc.l_req_mode': ev => lockDescs(ev).map(d => big(d.l_req_mode)),
  'lustre.ldlm_lock_desc.l_granted_mode': ev => lockDescs(ev).map(d => big(d.l_granted_mode)),
  'lustre.ldlm_resource_desc.lr_type': ev => structsIn(ev, 'ldlm_resource_desc').map(d => big(d.lr_type)),
  'lustre.ldlm_extent.start': ev => structsIn(ev, 'ldlm_extent').map(d => big(d.start)),
  'lustre.ldlm_extent.end': ev => structsIn(ev, 'ldlm_extent').map(d => big(d.end)),
  'lustre.ldlm_inodebits.bits': ev => structsIn(ev, 'ldlm_inodebits').map(d => big(d.bits)),
  'lustre.ldlm_res_id.name': ev => structsIn(ev, 'ldlm_resource_desc').filter(d => d.lr_type !== 13).flatMap(d => ((d.lr_name as { name: bigint[] }).name).map(big)),
  'lustre.ldlm_res_id.bits': ev => structsIn(ev, 'ldlm_resource_desc').filter(d => d.lr_type === 13).flatMap(d => ((d.lr_name as { name: bigint[] }).name).map(big)),
  // Zero cookies are left out: tshark and spec/ differ on which zeroed members are handles.
  'lustre.lustre_handle.cookie': ev => structsIn(ev, 'lustre_handle').map(h => big(h.cookie)).filter(c => c !== 0n),
  'lustre.obd_connect_data.ocd_connect_flags': ev => structsIn(ev, 'obd_connect_data').map(d => big(d.ocd_connect_flags)),
  'lustre.ldlm_intent.opc': ev => structsIn(ev, 'ldlm_intent').map(d => big(d.opc)),
}

const sorted = (v: bigint[]): string[] => v.map(String).sort()

export interface CompareResult {
  /** LNet messages we decoded */
  lnet: number
  /** lustre messages compared */
  messages: number
  compared: number
  /** opcodes of the messages compared */
  opcodes: Set<string>
}

/** Runs tshark over `pcap` and checks it against our decoder (see the file comment). */
export function compareWithTshark(t: Checker, pcap: string, limits: TsharkLimit[] = []): CompareResult {
  const EXPECTED = { limits }
  const ours = [...decodeTrace(readFileSync(pcap))].filter(e => e.unit === 'lnet')
  // tshark shows a message reassembled from several segments at its last frame.
  const shownAt = (e: TraceEvent): number => e.endFrame ?? e.frame
  const byFrame = new Map(ours.map(e => [shownAt(e), e]))
  const flagged = execFileSync('tshark', ['-r', pcap, '-Y', FLAGGED, '-T', 'fields', '-E', 'separator=\t', '-e', 'frame.number', '-e', 'lnet.bad_buflen', '-e', '_ws.malformed', '-e', '_ws.expert.message'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  const seenLimits = new Set<number>()
  for (const line of flagged.split('\n').filter(Boolean)) {
    // lnet.bad_buflen is itself an Error/Malformed expert item; a dissector exception would say "Exception".
    const [frame, badBuflen, malformed, message] = line.split('\t')
    const ev = byFrame.get(Number(frame))
    const m = ev?.message
    const i = EXPECTED.limits.findIndex(l => m && l.opcode === m.opcode && l.format === m.format && l.kind === m.kind && l.expert === 'lnet.bad_buflen' && badBuflen && !/Exception/.test(message ?? '') && malformed !== undefined)
    if (i < 0) t.fail(`frame ${frame} ${m?.opcode ?? ''} ${m?.kind ?? ''} flagged by tshark: ${message}`)
    else seenLimits.add(i)
  }
  EXPECTED.limits.forEach((l, i) => t.ok(seenLimits.has(i), `known tshark limit still shows (else drop it from tshark-expected.json): ${l.opcode} ${l.kind}`))

  const names = Object.keys(FIELDS)
  const out = execFileSync('tshark', ['-r', pcap, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', '-E', 'separator=\t', '-e', 'frame.number', '-e', 'lnet.msg_type', ...names.flatMap(n => ['-e', n])], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] })
  const theirs = new Map<number, { lnet: boolean; fields: Map<string, bigint[]> }>()
  for (const line of out.split('\n')) {
    if (!line) continue
    const cols = line.split('\t')
    const fields = new Map<string, bigint[]>()
    names.forEach((n, i) => fields.set(n, cols[i + 2] ? cols[i + 2].split(',').map(x => BigInt(x)) : []))
    theirs.set(Number(cols[0]), { lnet: cols[1] !== '', fields })
  }

  let compared = 0
  let messages = 0
  const opcodes = new Set<string>()
  for (const ev of ours) {
    const th = theirs.get(shownAt(ev))
    if (!th?.lnet) { t.fail(`frame ${ev.frame}: tshark saw no LNet message where we decoded ${ev.lnetType}`); continue }
    if (ev.error) t.fail(`frame ${ev.frame}: our decoder failed: ${ev.error.message}`)
    const dissected = (th.fields.get('lustre.ptlrpc_body.pb_opc') ?? []).length > 0
    if (ev.message) {
      messages++
      if (ev.message.opcode) opcodes.add(ev.message.opcode)
      const issues = validateMessage(ev.message)
      if (issues.length) t.same(issues, [], `frame ${ev.frame}: decoded message validates against spec/wire`)
      t.ok(dissected, `frame ${ev.frame}: tshark dissected ${ev.message.opcode} ${ev.message.kind}`)
    }
    for (const n of names) {
      if (!n.startsWith('lnet.') && !dissected) continue
      const want = sorted(FIELDS[n](ev))
      const got = sorted((th.fields.get(n) ?? []).filter(x => n !== 'lustre.lustre_handle.cookie' || x !== 0n))
      if (want.join() !== got.join()) t.same(got, want, `frame ${ev.frame} ${ev.message?.opcode ?? ev.lnetType} ${ev.message?.kind ?? ''}: ${n}`)
      compared++
    }
  }
  return { lnet: ours.length, messages, compared, opcodes }
}
