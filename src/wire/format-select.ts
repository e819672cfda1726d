// Picks the request format (RQF_*) of a request, as Lustre's handlers do: MDS_REINT
// by the record's opcode, LDLM_ENQUEUE by the intent it carries. Only the buffer
// the selector names is read, so selection is cheap and independent of the rest.
import { decodeBuffer } from './buffer-codec.js'
import { readScalar, type Reader } from './struct-codec.js'
import type { RpcFormat, RpcOpcode, Spec } from './spec.js'
import { SCALAR_SIZES, type ScalarType, type StructLayout } from './layout.js'
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

interface Probe {
  index: number
  /** where the selected integer sits in its buffer, when the path reaches a fixed scalar */
  offset?: number
  type?: ScalarType
  /** `equals`, resolved to values (undefined: no equality condition) */
  equals?: Set<bigint>
  /** the same values that are exact as Numbers, for a selector read as a Number */
  equalsNum?: Set<number>
  /** `bitsSet` ORed into one mask (undefined: none; a name the spec lacks makes it never match) */
  mask?: bigint
  /** mask as a Number, when it fits in 32 bits */
  maskNum?: number
  never: boolean
}

const probes = new WeakMap<RpcFormat, Probe>()

/** Resolves a selector once: its buffer index and, through fixed members, the scalar it reads. */
function probeOf(spec: Spec, format: RpcFormat): Probe {
  let p = probes.get(format)
  if (p) return p
  const sel = format.select!
  p = { index: format.request.findIndex(s => s.field === sel.field), never: false }
  if (sel.equals) {
    p.equals = new Set(sel.equals.map(x => resolve(spec, x)).filter((x): x is bigint => x !== undefined))
    p.equalsNum = new Set([...p.equals].filter(x => x <= BigInt(Number.MAX_SAFE_INTEGER)).map(Number))
  }
  if (sel.bitsSet) {
    p.mask = 0n
    for (const x of sel.bitsSet) {
      const bit = resolve(spec, x)
      if (bit === undefined) p.never = true
      else p.mask |= bit
    }
    if (p.mask <= 0xffffffffn) p.maskNum = Number(p.mask)
  }
  const def = spec.fields.get(sel.field)
  let layout: StructLayout | undefined = def?.kind === 'struct' && def.struct && !def.bySize && !def.byMagic ? spec.structs.get(def.struct) : undefined
  let offset = 0
  const parts = sel.path.split('.').filter(Boolean)
  for (let i = 0; layout && i < parts.length; i++) {
    const f = layout.fields.find(x => x.name === parts[i])
    if (!f) break
    offset += f.offset
    if (i === parts.length - 1 && f.type in SCALAR_SIZES) {
      p.offset = offset
      p.type = f.type as ScalarType
    }
    layout = f.type === 'struct' ? f.struct : undefined
  }
  probes.set(format, p)
  return p
}

function matches(spec: Spec, format: RpcFormat, r: Reader, offsets: number[], lengths: number[]): boolean {
  const sel = format.select
  if (!sel) return false
  const probe = probeOf(spec, format)
  const index = probe.index
  if (index < 1 || index >= offsets.length || lengths[index] === 0) return false
  let v: unknown
  if (probe.type !== undefined && probe.offset! + SCALAR_SIZES[probe.type] <= lengths[index]) {
    // The common case: one integer at a known place, no decoding of the buffer.
    v = readScalar(r, probe.type, offsets[index] + probe.offset!)
  } else {
    try {
      v = valueAt(decodeBuffer(spec, r, { field: sel.field, def: spec.fields.get(sel.field) }, index, offsets[index], lengths[index]).value, sel.path)
    } catch (e) {
      // A selector buffer that does not decode does not select; the full decode reports it.
      if (isWireError(e)) return false
      throw e
    }
  }
  if (probe.never) return false
  if (typeof v === 'number' && v >= 0 && v <= 0xffffffff && (probe.mask === undefined || probe.maskNum !== undefined)) {
    // Most selectors are u32 members: compare as Numbers, no BigInt per message.
    if (probe.equalsNum && !probe.equalsNum.has(v)) return false
    return probe.maskNum === undefined || ((v & probe.maskNum) >>> 0) === probe.maskNum
  }
  if (typeof v !== 'number' && typeof v !== 'bigint') return false
  const have = BigInt(v)
  if (probe.equals && !probe.equals.has(have)) return false
  if (probe.mask !== undefined && (have & probe.mask) !== probe.mask) return false
  return true
}

/** The last format whose selector matches, else the opcode's first (default) format. */
export function selectRequestFormat(spec: Spec, op: RpcOpcode, r: Reader, offsets: number[], lengths: number[]): RpcFormat {
  for (let i = op.formats.length - 1; i >= 0; i--) {
    if (matches(spec, op.formats[i], r, offsets, lengths)) return op.formats[i]
  }
  return op.formats.find(f => !f.select) ?? op.formats[0]
}
