// Which values the encoder takes, member by member. Encoding runs a compiled encoder
// per struct and falls back to the generic walker only to report a refused value; this
// walks every scalar, char and bytes member of every struct (through nested structs and
// fixed arrays) and holds the pair to one rule: a value at either end of the member's
// range round-trips, and one just past it, of the wrong type, or missing, is a
// BadValueError that names that member's path.
import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import {
  loadSpec, zeroValue, encodeStruct, decodeStruct, isWireError, BadValueError,
  type FieldLayout, type StructLayout,
} from '../../src/wire/index.js'
import { SCALAR_RANGE, isScalar } from '../helpers/arbitraries.js'

const spec = loadSpec()
type Obj = Record<string, unknown>

/** A leaf member: how to reach it in a value (keys and indexes) and its path as errors print it. */
interface Leaf { keys: Array<string | number>; path: string; f: FieldLayout }

function leaves(layout: StructLayout, keys: Array<string | number>, path: string, out: Leaf[]): Leaf[] {
  for (const f of layout.fields) visit(f, [...keys, f.name], `${path}.${f.name}`, out)
  return out
}

function visit(f: FieldLayout, keys: Array<string | number>, path: string, out: Leaf[]): void {
  if (isScalar(f.type) || f.type === 'char' || f.type === 'bytes') out.push({ keys, path, f })
  else if (f.type === 'struct' && !f.struct!.self && !f.struct!.tail) leaves(f.struct!, keys, path, out)
  // First and last element of a fixed array: the loop's bounds.
  else if (f.type === 'array') for (const i of new Set([0, f.count! - 1])) visit(f.element!, [...keys, i], `${path}[${i}]`, out)
}

function withLeaf(base: Obj, keys: Array<string | number>, v: unknown, remove = false): Obj {
  const copy = structuredClone(base)
  let at: Record<string | number, unknown> = copy
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string | number, unknown>
  const last = keys[keys.length - 1]
  if (remove) delete at[last]
  else at[last] = v
  return copy
}

function valid(f: FieldLayout): unknown[] {
  if (isScalar(f.type)) {
    const [lo, hi] = SCALAR_RANGE[f.type]
    const big = f.type === 'u64' || f.type === 's64'
    return [lo, hi, (lo + hi) / 2n].map(x => (big ? x : Number(x)))
  }
  if (f.type === 'char') return ['', 'x'.repeat(f.size), 'é'.repeat(Math.floor(f.size / 2))]
  return [new Uint8Array(f.size).fill(0xa5), new Uint8Array(0)]
}

function invalid(f: FieldLayout): unknown[] {
  if (isScalar(f.type)) {
    const [lo, hi] = SCALAR_RANGE[f.type]
    if (f.type === 'u64' || f.type === 's64') return [lo - 1n, hi + 1n, 0, '0', null]
    return [Number(lo) - 1, Number(hi) + 1, 0.5, NaN, 0n, '0', null]
  }
  if (f.type === 'char') return ['x'.repeat(f.size + 1), 'é'.repeat(Math.floor(f.size / 2) + 1), 7, new Uint8Array(1)]
  return [new Uint8Array(f.size + 1), 'ab', [1, 2]]
}

/** The error's field, or a string saying what happened instead. */
function refusal(name: string, v: Obj): string {
  try {
    encodeStruct(name, v)
    return 'accepted'
  } catch (e) {
    if (!(e instanceof BadValueError) || !isWireError(e)) return `not a BadValueError: ${String(e)}`
    return (e as BadValueError).field ?? 'no field'
  }
}

t.test('every leaf member of every struct: its range accepted, the rest refused with its path', async t => {
  let checked = 0
  for (const [name, layout] of spec.structs) {
    if (layout.self) continue
    const zero = zeroValue(layout)
    const problems: string[] = []
    for (const leaf of leaves(layout, [], name, [])) {
      // A member that decides a union's variant changes what else must be there: the round-trip tests cover those.
      // A tail's count must match the tail: a non-zero count with an empty tail is refused by design.
      const isCount = leaf.keys.length === 1 && leaf.keys[0] === layout.tail?.countField
      for (const v of isCount ? [] : valid(leaf.f)) {
        const value = withLeaf(zero, leaf.keys, v)
        let back: unknown
        try {
          back = decodeStruct(name, encodeStruct(name, value))
        } catch (e) {
          if (e instanceof BadValueError && e.field !== leaf.path) continue // a union discriminator set to another variant
          problems.push(`${leaf.path} = ${String(v)}: ${String(e)}`)
          continue
        }
        let got: unknown = back
        for (const k of leaf.keys) got = (got as Record<string | number, unknown>)[k]
        const want = v instanceof Uint8Array && v.length < leaf.f.size ? new Uint8Array(leaf.f.size) : v
        if (!isDeepStrictEqual(got, want)) problems.push(`${leaf.path} = ${String(v)} came back as ${String(got)}`)
        checked++
      }
      for (const v of [...invalid(leaf.f), undefined]) {
        const value = withLeaf(zero, leaf.keys, v, v === undefined && leaf.keys.length === 1)
        const r = refusal(name, value)
        if (r !== leaf.path) problems.push(`${leaf.path} = ${typeof v === 'string' ? JSON.stringify(v) : String(v)}: ${r}`)
        checked++
      }
    }
    t.same(problems, [], name)
  }
  t.ok(checked > 5000, `${checked} values checked`)
})

t.test('an alias may be left out or equal its target, nothing else', async t => {
  const base = zeroValue(spec.structs.get('ldlm_inodebits')!)
  t.ok(encodeStruct('ldlm_inodebits', { ...base, try_bits: 5n, cancel_bits: 5n }))
  const without: Obj = { ...base, try_bits: 5n }
  delete without.cancel_bits
  t.ok(encodeStruct('ldlm_inodebits', without))
  t.equal(refusal('ldlm_inodebits', { ...base, try_bits: 5n, cancel_bits: 6n }), 'ldlm_inodebits.cancel_bits')
})

t.test('a zero value is fresh each time: nothing is shared between two of them', async t => {
  const layout = spec.structs.get('mdt_body')!
  const a = zeroValue(layout)
  const b = zeroValue(layout)
  t.not(a.mbo_fid1, b.mbo_fid1)
  ;(a.mbo_fid1 as Obj).f_oid = 7
  t.equal((b.mbo_fid1 as Obj).f_oid, 0)
  t.same(decodeStruct('mdt_body', encodeStruct('mdt_body', b)), b)
})
