// Picks the request format (RQF_*) of a request, as Lustre's handlers do: MDS_REINT
// by the record's opcode, LDLM_ENQUEUE by the intent it carries. Only the buffer
// the selector names is read, so selection is cheap and independent of the rest.
import { decodeBuffer } from './buffer-codec.js'
import type { Reader } from './struct-codec.js'
import type { RpcFormat, RpcOpcode, Spec } from './spec.js'
import { isWireError } from './errors.js'

function valueAt(v: unknown, path: string): unknown {
  let cur = v
  for (const p of path.split('.').filter(Boolean)) cur = (cur as Record<string, unknown> | null | undefined)?.[p]
  return cur
}

function resolve(spec: Spec, x: string | number): bigint | undefined {
  if (typeof x === 'number') return BigInt(x)
  return spec.constant.get(x)
}

function matches(spec: Spec, format: RpcFormat, r: Reader, offsets: number[], lengths: number[]): boolean {
  const sel = format.select
  if (!sel) return false
  const index = format.request.findIndex(s => s.field === sel.field)
  if (index < 1 || index >= offsets.length || lengths[index] === 0) return false
  let v: unknown
  try {
    v = valueAt(decodeBuffer(spec, r, { field: sel.field, def: spec.fields.get(sel.field) }, index, offsets[index], lengths[index]).value, sel.path)
  } catch (e) {
    // A selector buffer that does not decode does not select; the full decode reports it.
    if (isWireError(e)) return false
    throw e
  }
  if (typeof v !== 'number' && typeof v !== 'bigint') return false
  const have = BigInt(v)
  if (sel.equals && !sel.equals.some(x => resolve(spec, x) === have)) return false
  if (sel.bitsSet) {
    for (const x of sel.bitsSet) {
      const bit = resolve(spec, x)
      if (bit === undefined || (have & bit) !== bit) return false
    }
  }
  return true
}

/** The last format whose selector matches, else the opcode's first (default) format. */
export function selectRequestFormat(spec: Spec, op: RpcOpcode, r: Reader, offsets: number[], lengths: number[]): RpcFormat {
  for (let i = op.formats.length - 1; i >= 0; i--) {
    if (matches(spec, op.formats[i], r, offsets, lengths)) return op.formats[i]
  }
  return op.formats.find(f => !f.select) ?? op.formats[0]
}
