// Field extraction for `decode --field PATH`, the counterpart of tshark's -T fields -e:
// one tab-separated line per LNet message. Paths name the same members the JSON Lines
// output shows: frame, src, dst, src_nid, dst_nid, opcode, kind, format, lnet.<header>,
// lustre_msg.<header>, ptlrpc_body.<member>, buffers.<RMF_NAME>.<member>...
import type { TraceEvent } from './decode-trace.js'

export type FieldGetter = (ev: TraceEvent) => unknown

const TOP: Record<string, FieldGetter> = {
  frame: ev => ev.frame,
  src: ev => ev.src,
  dst: ev => ev.dst,
  src_nid: ev => ev.srcNid,
  dst_nid: ev => ev.dstNid,
  lnet_type: ev => ev.lnetType,
  opcode: ev => ev.message?.opcode ?? ev.message?.opc,
  kind: ev => ev.message?.kind,
  format: ev => ev.message?.format,
  bulk_bytes: ev => ev.bulkBytes,
  error: ev => ev.error?.code,
}

const ROOTS: Record<string, FieldGetter> = {
  lnet: ev => (ev.frameUnit?.kind === 'lnet' ? ev.frameUnit.hdr : undefined),
  lustre_msg: ev => ev.message?.header,
  ptlrpc_body: ev => ev.message?.body,
  buffers: ev => ev.message?.fields,
}

/** A getter for one path; throws a plain Error naming the path when its root is unknown. */
export function fieldGetter(path: string): FieldGetter {
  const parts = path.split('.').filter(Boolean)
  if (parts.length === 1 && TOP[parts[0]]) return TOP[parts[0]]
  const root = ROOTS[parts[0]]
  if (!root) throw new Error(`--field ${path}: a path starts with one of ${[...Object.keys(TOP), ...Object.keys(ROOTS)].join(', ')}`)
  const rest = parts.slice(1)
  return ev => {
    let v: unknown = root(ev)
    for (const p of rest) {
      if (v === null || v === undefined) return undefined
      v = (v as Record<string, unknown>)[p]
    }
    return v
  }
}

/** The text tshark-style output shows for a value: decimal integers, hex bytes, comma-joined arrays. */
export function fieldText(v: unknown): string {
  if (v === undefined || v === null) return ''
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (typeof v === 'string') return v
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
  if (Array.isArray(v)) return v.map(fieldText).join(',')
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))
}
