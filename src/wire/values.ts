// Zero values of structs, built from their layouts: the starting point of every
// message a tool builds, so that callers name only the members they mean.
import type { FieldLayout, StructLayout } from './layout.js'
import { loadSpec, structOf } from './spec.js'
import { zeroFactory } from './compile-encode.js'

function zeroField(f: FieldLayout): unknown {
  switch (f.type) {
    case 'u64': case 's64': return 0n
    case 'char': return ''
    case 'bytes': return new Uint8Array(f.size)
    case 'struct': return zeroValue(f.struct!)
    case 'union': return f.defaultVariant ? { [f.defaultVariant]: zeroField(f.variantsByName!.get(f.defaultVariant)!) } : {}
    case 'array': return f.flexible ? [] : Array.from({ length: f.count! }, () => zeroField(f.element!))
    default: return 0
  }
}

/** The all-zero value of a struct (flexible tails empty, unions without a variant). */
export function zeroValue(layout: StructLayout): Record<string, unknown> {
  return zeroFactory(layout, zeroField)()
}

type Deep = { [k: string]: unknown }

function merge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base
  if (base && over && typeof base === 'object' && typeof over === 'object' && !Array.isArray(over) && !(over instanceof Uint8Array)) {
    const out: Deep = { ...(base as Deep) }
    for (const k in over as Deep) out[k] = merge((base as Deep)[k], (over as Deep)[k])
    return out
  }
  return over
}

/** Struct `name` with zeros everywhere but the members given (nested objects merge). */
export function makeStruct<T = Record<string, unknown>>(name: string, members: Deep = {}): T {
  const layout = structOf(loadSpec(), name)
  const v = merge(zeroValue(layout), members) as Deep
  // Keep aliases (ldlm_inodebits.cancel_bits) equal to what they alias unless set.
  for (const a of layout.aliases) if (!(a.name in members)) v[a.name] = v[a.aliasOf!]
  return v as T
}
