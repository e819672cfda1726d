// Every struct of spec/wire, cut short at every byte: decoding a strict prefix of
// a valid encoding throws LustreWireError LC_WIRE_TRUNCATED naming the member
// that does not fit (err.field) and where it starts (err.offset). The only
// prefixes that may decode are those of a struct whose flexible tail takes "the
// rest of the buffer", and only when the cut falls on an element boundary: they
// decode to the same value with fewer tail elements.
//
// Prefixes are views (subarray) of the encoding, so a read past the prefix shows
// up as a RangeError from DataView, not as silently read bytes.
import t from 'tap'
import fc from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import { loadSpec, decodeStruct, encodeStruct, isWireError, type StructLayout } from '../../src/wire/index.js'
import { runProperty, structArb, tailElementSize } from '../helpers/arbitraries.js'

const SEED = 0x5eed0002
const RUNS = 12
t.comment(`fast-check seed ${SEED}, ${RUNS} values per struct, every prefix of each`)

const spec = loadSpec()
const names = [...spec.structs.keys()].sort()
type Obj = Record<string, unknown>

/** What the codec must report for a prefix of `p` bytes that cuts the fixed part. */
function expectedMissing(layout: StructLayout, p: number): { field: string; offset: number } {
  if (layout.self) return { field: layout.name, offset: 0 }
  const f = layout.fields.find(x => x.offset + x.size > p)
  // Every member fits but the struct's trailing padding does not: the struct itself is named.
  if (!f) return { field: layout.name, offset: 0 }
  return { field: `${layout.name}.${f.name}`, offset: f.offset }
}

/** The value with its rest-of-buffer tail cut to `n` elements. */
function withTail(layout: StructLayout, value: Obj, n: number): Obj {
  const tl = layout.tail!
  const v = value[tl.name]
  const cut = typeof v === 'string' ? v.slice(0, n) : (v as Uint8Array | unknown[]).slice(0, n)
  return { ...value, [tl.name]: cut }
}

function describe(e: unknown): string {
  return isWireError(e) ? `${e.code} field=${e.field} offset=${e.offset}` : `non-wire ${String(e)}`
}

// Prefixes of rest-of-buffer tails that end inside an element: decoding them
// succeeds by dropping the partial element. Collected for the todo test below.
const partialAccepted: string[] = []

t.test('every strict prefix of every struct', async t => {
  for (const name of names) {
    const layout = spec.structs.get(name)!
    const tl = layout.tail
    const restTail = tl !== undefined && tl.countField === undefined
    runProperty(t, name, fc.property(structArb(layout), value => {
      const full = encodeStruct(name, value)
      for (let p = 0; p < full.length; p++) {
        const prefix = full.subarray(0, p)
        let got: unknown
        let err: unknown
        try {
          got = decodeStruct(name, prefix)
        } catch (e) {
          err = e
        }
        if (p >= layout.size && restTail) {
          const el = tailElementSize(tl!)
          if ((p - layout.size) % el === 0) {
            if (err !== undefined) throw new Error(`prefix ${p} on an element boundary: ${describe(err)}`)
            const want = withTail(layout, value as Obj, (p - layout.size) / el)
            if (!isDeepStrictEqual(got, want)) throw new Error(`prefix ${p} decodes to something else than the value with fewer elements`)
            continue
          }
          // Inside an element: the partial element must not be decoded. Whether it
          // is refused or dropped is checked by the todo test.
          if (err === undefined) {
            const n = ((got as Obj)[tl!.name] as { length: number }).length
            if (n !== Math.floor((p - layout.size) / el)) throw new Error(`prefix ${p}: ${n} tail elements decoded`)
            if (partialAccepted.length < 5) partialAccepted.push(`${name}: ${p} of ${full.length} bytes decodes with ${n} elements`)
            continue
          }
        }
        if (err === undefined) throw new Error(`prefix ${p} of ${full.length} decoded without error`)
        if (!isWireError(err)) throw new Error(`prefix ${p}: ${describe(err)}`)
        if (err.code !== 'LC_WIRE_TRUNCATED') throw new Error(`prefix ${p}: ${err.code}, want LC_WIRE_TRUNCATED`)
        if (typeof err.field !== 'string' || typeof err.offset !== 'number') throw new Error(`prefix ${p}: field/offset not set (${describe(err)})`)
        const want = p < layout.size ? expectedMissing(layout, p) : { field: `${name}.${tl!.name}`, offset: layout.size }
        if (err.field !== want.field || err.offset !== want.offset) {
          throw new Error(`prefix ${p}: ${describe(err)}, want field=${want.field} offset=${want.offset}`)
        }
      }
      return true
    }), { seed: SEED, numRuns: RUNS })
  }
})

t.test('the whole encoding is not a prefix: it decodes', async t => {
  for (const name of names) {
    const layout = spec.structs.get(name)!
    const [value] = fc.sample(structArb(layout), { seed: SEED, numRuns: 1 })
    t.strictSame(decodeStruct(name, encodeStruct(name, value)), value, name)
  }
})

const restTails = names.filter(n => { const l = spec.structs.get(n)!; return l.tail && !l.tail.countField && tailElementSize(l.tail) > 1 })

// Known codec issue: assertions carry { todo } so they run and show "not ok # TODO" without failing the suite.
const BUG_PARTIAL = 'codec bug: decodeAt takes floor(rest / element size) tail elements and silently drops a partial trailing element instead of raising LC_WIRE_TRUNCATED'

t.test('rest-of-buffer tails: a prefix inside an element is truncated', async t => {
  t.ok(restTails.length > 0, `structs with such a tail: ${restTails.join(', ')}`)
  for (const name of restTails) {
    const layout = spec.structs.get(name)!
    const el = tailElementSize(layout.tail!)
    const [value] = fc.sample(structArb(layout, { maxTail: 2 }).filter(v => ((v as Obj)[layout.tail!.name] as unknown[]).length === 2), { seed: SEED, numRuns: 1 })
    const full = encodeStruct(name, value)
    const p = layout.size + el + 1
    let code: string | undefined
    try {
      decodeStruct(name, full.subarray(0, p))
    } catch (e) {
      code = isWireError(e) ? e.code : String(e)
    }
    t.equal(code, 'LC_WIRE_TRUNCATED', `${name}: ${p} of ${full.length} bytes (1 byte into element 2)`)
  }
  if (partialAccepted.length) t.comment(`e.g. ${partialAccepted.join('; ')}`)
})
