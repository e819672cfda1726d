// Compiles a struct layout into one specialised encode function and one zero-value
// factory (new Function at first use), the counterparts of compile.ts's decoders.
//
// A compiled encoder writes every fixed member with an inline DataView call at its
// constant offset after an inline range check. It never reports errors itself: on the
// first value it does not accept it returns false, and encodeAt runs the generic walker,
// which throws the error with its field path. So the two agree on what is valid by
// construction of the tests (round trips and every mutation of tests/wire go through
// both), and the error messages have one source.
import type { FieldLayout, ScalarType, StructLayout } from './layout.js'
import type { Reader } from './struct-codec.js'

/** Writes the fixed members of `obj` at `off`; false when a member is missing or out of range. */
export type FixedEncoder = (w: Reader, off: number, obj: Record<string, unknown>, path: string) => boolean

export interface EncodeRuntime {
  /** the generic member encoder, for unions (it throws with the path on a bad value) */
  field(w: Reader, f: FieldLayout, off: number, v: unknown, parent: Record<string, unknown>, path: string): void
}

const utf8enc = new TextEncoder()

/** A char[size] member: NUL-padded text; false when not a string or too long. */
function putText(buf: Uint8Array, at: number, size: number, v: unknown): boolean {
  if (typeof v !== 'string' || v.length > size) return false
  let i = 0
  for (; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c >= 0x80) break
    buf[at + i] = c
  }
  if (i < v.length) {
    // Not ASCII: the UTF-8 bytes, which may be longer than the string.
    const bytes = utf8enc.encode(v)
    if (bytes.length > size) return false
    buf.set(bytes, at)
    i = bytes.length
  }
  buf.fill(0, at + i, at + size)
  return true
}

/** A bytes[size] member: zero-padded; false when not a Uint8Array or too long. */
function putBytes(buf: Uint8Array, at: number, size: number, v: unknown): boolean {
  if (!(v instanceof Uint8Array) || v.length > size) return false
  buf.set(v, at)
  if (v.length < size) buf.fill(0, at + v.length, at + size)
  return true
}

// The check each scalar type needs, as a condition on `v` that is true for a valid value;
// each is the same set as struct-codec's writeScalar accepts (integers in range).
const OK: Record<ScalarType, string> = {
  u8: `(v & 0xff) === v`,
  s8: `(v << 24 >> 24) === v`,
  u16: `(v & 0xffff) === v`,
  u16be: `(v & 0xffff) === v`,
  s16: `(v << 16 >> 16) === v`,
  u32: `(v >>> 0) === v`,
  u32be: `(v >>> 0) === v`,
  s32: `(v | 0) === v`,
  u64: `typeof v === 'bigint' && v >= 0n && v <= 0xffffffffffffffffn`,
  s64: `typeof v === 'bigint' && v >= -0x8000000000000000n && v <= 0x7fffffffffffffffn`,
}

const WRITE: Record<ScalarType, (at: string) => string> = {
  u8: at => `dv.setUint8(${at}, v)`,
  s8: at => `dv.setInt8(${at}, v)`,
  u16: at => `dv.setUint16(${at}, v, le)`,
  s16: at => `dv.setInt16(${at}, v, le)`,
  u16be: at => `dv.setUint16(${at}, v, false)`,
  u32: at => `dv.setUint32(${at}, v, le)`,
  s32: at => `dv.setInt32(${at}, v, le)`,
  u32be: at => `dv.setUint32(${at}, v, false)`,
  // Zero is the common u64 (padding, unset members): two u32 stores, no BigInt conversion.
  u64: at => `if (v === 0n) { dv.setUint32(${at}, 0); dv.setUint32(${at} + 4, 0) } else dv.setBigUint64(${at}, v, le)`,
  s64: at => `if (v === 0n) { dv.setUint32(${at}, 0); dv.setUint32(${at} + 4, 0) } else dv.setBigInt64(${at}, v, le)`,
}

const isScalar = (t: string): t is ScalarType => t in OK

const encoders = new WeakMap<StructLayout, FixedEncoder | null>()

/** The compiled encoder of a struct's fixed part, or null for a root-scalar struct (the generic walker does those). */
export function fixedEncoder(layout: StructLayout, rt: EncodeRuntime): FixedEncoder | null {
  let e = encoders.get(layout)
  if (e === undefined) {
    e = layout.self ? null : compileEncoder(layout, rt)
    encoders.set(layout, e)
  }
  return e
}

function compileEncoder(layout: StructLayout, rt: EncodeRuntime): FixedEncoder {
  const consts: unknown[] = []
  const ref = (x: unknown): string => {
    consts.push(x)
    return `C[${consts.length - 1}]`
  }
  let loops = 0
  // Statements that encode the value in `v` at byte offset expression `at`.
  const member = (f: FieldLayout, at: string, path: string): string => {
    if (isScalar(f.type)) {
      const num = f.type === 'u64' || f.type === 's64' ? '' : `typeof v !== 'number' || `
      return `if (${num}!(${OK[f.type]})) return false; ${WRITE[f.type](at)}`
    }
    switch (f.type) {
      case 'char': return `if (!putText(buf, ${at}, ${f.size}, v)) return false`
      case 'bytes': return `if (!putBytes(buf, ${at}, ${f.size}, v)) return false`
      case 'struct': {
        const inner = f.struct!.self || f.struct!.tail ? null : fixedEncoder(f.struct!, rt)
        // A nested root-scalar struct or one with a tail (none in spec/wire today) takes the generic path.
        if (!inner) return `rt.field(w, ${ref(f)}, ${at}, v, obj, ${path})`
        return `if (typeof v !== 'object' || v === null || !${ref(inner)}(w, ${at}, v, ${path})) return false`
      }
      case 'array': {
        const el = f.element!
        // Each loop has its own names: an array of arrays nests them.
        const i = `i${loops}`, a = `a${loops++}`
        const body = member(el, `${at} + ${i} * ${el.size}`, `${path} + '[' + ${i} + ']'`)
        return `if (!Array.isArray(v) || v.length !== ${f.count}) return false
    { const ${a} = v; for (let ${i} = 0; ${i} < ${f.count}; ${i}++) { const v = ${a}[${i}]; ${body} } }`
      }
      // Unions depend on a discriminator elsewhere in the parent: the generic member encoder picks the variant.
      case 'union': return `rt.field(w, ${ref(f)}, ${at}, v, obj, ${path})`
      default: throw new Error(`compile: cannot encode ${f.type}`)
    }
  }
  const lines: string[] = []
  for (const f of layout.fields) {
    const key = JSON.stringify(f.name)
    lines.push(`{ const v = obj[${key}]; ${member(f, `off + ${f.offset}`, `path + ${JSON.stringify('.' + f.name)}`)} }`)
  }
  // An alias (ldlm_inodebits.cancel_bits) may be left out, or must equal what it aliases.
  for (const a of layout.aliases) {
    lines.push(`{ const v = obj[${JSON.stringify(a.name)}]; if (v !== undefined && v !== obj[${JSON.stringify(a.aliasOf)}]) return false }`)
  }
  const body = `return function encode_${layout.name.replace(/\W/g, '_')}(w, off, obj, path) {
  const dv = w.dv, buf = w.buf, le = w.le
  ${lines.join('\n  ')}
  return true
}`
  return new Function('C', 'rt', 'putText', 'putBytes', body)(consts, rt, putText, putBytes) as FixedEncoder
}

const zeros = new WeakMap<StructLayout, () => Record<string, unknown>>()

/** A factory of a struct's all-zero value, built as one object literal. */
export function zeroFactory(layout: StructLayout, zeroField: (f: FieldLayout) => unknown): () => Record<string, unknown> {
  let z = zeros.get(layout)
  if (!z) {
    z = compileZero(layout, zeroField)
    zeros.set(layout, z)
  }
  return z
}

function compileZero(layout: StructLayout, zeroField: (f: FieldLayout) => unknown): () => Record<string, unknown> {
  if (layout.self) return () => zeroField(layout.self!) as Record<string, unknown>
  const consts: unknown[] = []
  const ref = (x: unknown): string => {
    consts.push(x)
    return `C[${consts.length - 1}]`
  }
  const expr = (f: FieldLayout): string => {
    switch (f.type) {
      case 'u64': case 's64': return '0n'
      case 'char': return `''`
      case 'bytes': return `new Uint8Array(${f.size})`
      case 'struct': return `${ref(zeroFactory(f.struct!, zeroField))}()`
      case 'array': return f.count! <= 16 ? `[${Array.from({ length: f.count! }, () => expr(f.element!)).join(', ')}]` : `Z(${ref(f)})`
      case 'union': return `Z(${ref(f)})`
      default: return '0'
    }
  }
  const lines = layout.fields.map((f, i) => `const v${i} = ${expr(f)}`)
  const at = new Map(layout.fields.map((f, i) => [f.name, `v${i}`]))
  const members = layout.fields.map(f => `${JSON.stringify(f.name)}: ${at.get(f.name)}`)
  // An alias is the very value it aliases, so that encodeAt's identity check holds.
  for (const a of layout.aliases) members.push(`${JSON.stringify(a.name)}: ${at.get(a.aliasOf!)}`)
  const t = layout.tail
  if (t) members.push(`${JSON.stringify(t.name)}: ${t.type === 'char' ? `''` : t.type === 'bytes' ? 'new Uint8Array(0)' : '[]'}`)
  const body = `return function zero_${layout.name.replace(/\W/g, '_')}() {\n  ${lines.join('\n  ')}\n  return { ${members.join(', ')} }\n}`
  return new Function('C', 'Z', body)(consts, zeroField) as () => Record<string, unknown>
}
