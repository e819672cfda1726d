// Names for numbers: a value of a constants group (LCK_PW for 2 in lck_mode), the
// flag names of a bit set, and a walk that annotates a decoded struct with them
// for people (decode output, reports). Machines keep reading the numbers.
import { loadSpec } from './spec.js'
import type { FieldLayout, StructLayout } from './layout.js'

export function constantName(group: string, value: number | bigint): string | undefined {
  return loadSpec().constants.get(group)?.byValue.get(BigInt(value))
}

/** Names of the set bits of `value` in a flags group; bits no name covers are given in hex. */
export function flagNames(group: string, value: number | bigint): string[] {
  const g = loadSpec().constants.get(group)
  let rest = BigInt.asUintN(64, BigInt(value))
  if (!g) return rest ? [`0x${rest.toString(16)}`] : []
  const out: string[] = []
  for (const [name, bit] of g.byName) {
    if (bit !== 0n && (bit & (bit - 1n)) === 0n && (rest & bit) === bit) {
      out.push(name)
      rest &= ~bit
    }
  }
  if (rest) out.push(`0x${rest.toString(16)}`)
  return out
}

function annotateField(f: FieldLayout, v: unknown, out: Record<string, unknown>): void {
  if (!f.constants || (typeof v !== 'number' && typeof v !== 'bigint')) return
  if (f.flags) out[`${f.name}@names`] = flagNames(f.constants, v)
  else {
    const n = constantName(f.constants, v)
    if (n) out[`${f.name}@name`] = n
  }
}

/** A copy of a decoded struct with `member@name` / `member@names` beside members that take constants. */
export function describeValue(layout: StructLayout, value: unknown): unknown {
  if (layout.self || typeof value !== 'object' || value === null) return value
  const v = value as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const f of [...layout.fields, ...(layout.tail ? [layout.tail] : [])]) {
    const x = v[f.name]
    if (f.type === 'struct' && f.struct) out[f.name] = describeValue(f.struct, x)
    else if (f.type === 'array' && f.element?.struct && Array.isArray(x)) out[f.name] = x.map(e => describeValue(f.element!.struct!, e))
    else if (f.type === 'union' && x && typeof x === 'object') {
      const [k] = Object.keys(x)
      const variant = k ? f.variantsByName?.get(k) : undefined
      out[f.name] = variant?.struct ? { [k]: describeValue(variant.struct, (x as Record<string, unknown>)[k]) } : x
    } else out[f.name] = x
    annotateField(f, x, out)
  }
  for (const a of layout.aliases) out[a.name] = v[a.name]
  return out
}
