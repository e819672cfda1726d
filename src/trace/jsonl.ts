// One JSON object per decoded unit, for `lustre-conformance decode`. u64 values
// are decimal strings (JSON numbers lose them), byte arrays hex, and members
// keep Lustre's names; with `names`, constants are named beside their values.
import { describeValue, loadSpec, structOf } from '../wire/index.js'
import type { TraceEvent } from './decode-trace.js'

const HEX_LIMIT = 64

export function jsonValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString()
  if (v instanceof Uint8Array) {
    const hex = Buffer.from(v.subarray(0, HEX_LIMIT)).toString('hex')
    return v.length > HEX_LIMIT ? `${hex}...(${v.length} bytes)` : hex
  }
  if (Array.isArray(v)) return v.map(jsonValue)
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) o[k] = jsonValue(x)
    return o
  }
  return v
}

function named(struct: string | undefined, v: unknown, names: boolean): unknown {
  if (!names || !struct) return v
  const spec = loadSpec()
  return spec.structs.has(struct) ? describeValue(structOf(spec, struct), v) : v
}

export function eventToJson(ev: TraceEvent, opts: { names?: boolean } = {}): Record<string, unknown> {
  const names = opts.names ?? false
  const o: Record<string, unknown> = { frame: ev.frame, ...(ev.endFrame !== undefined ? { end_frame: ev.endFrame } : {}), time: ev.tsMicros ? Number(ev.tsMicros) / 1e6 : undefined, conn: ev.conn, src: ev.src, dst: ev.dst, unit: ev.unit }
  const u = ev.frameUnit
  if (ev.unit === 'lnet' && u?.kind === 'lnet') {
    o.src_nid = ev.srcNid
    o.dst_nid = ev.dstNid
    o.lnet = { type: ev.lnetType, ...(named('_lnet_hdr_nid4', u.hdr, names) as Record<string, unknown>) }
  } else if (u?.kind === 'connreq') o.connreq = u.connreq
  else if (u?.kind === 'hello') o.hello = u.hello
  const m = ev.message
  if (m) {
    o.lustre_msg = named('lustre_msg_v2', m.header, names)
    o.ptlrpc_body = named(m.bodyStruct, m.body, names)
    o.kind = m.kind
    o.opcode = m.opcode ?? m.opc
    o.format = m.format
    const bufs: Record<string, unknown> = {}
    for (const b of m.buffers) bufs[b.field ?? `buffer${b.index}`] = b.kind === 'array' && Array.isArray(b.value) ? b.value.map(x => named(b.struct, x, names)) : named(b.struct, b.value, names)
    o.buffers = bufs
  }
  if (ev.bulkBytes !== undefined) o.bulk_bytes = ev.bulkBytes
  if (ev.gapBytes !== undefined) o.gap_bytes = ev.gapBytes
  if (ev.error) o.error = ev.error.toJSON()
  return jsonValue(o) as Record<string, unknown>
}
