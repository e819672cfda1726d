// Compiles a struct layout into one specialised decode function (new Function at
// first use): every fixed member is read with an inline DataView call at its
// constant offset, and the object is built as a single literal, so V8 keeps one
// shape per struct. The generic walker in struct-codec.ts stays the reference:
// it decodes flexible tails and produces every error (with its field path), and
// the round-trip tests hold both to the same bytes.
import type { FieldLayout, ScalarType, StructLayout } from './layout.js'
import type { Reader } from './struct-codec.js'

/** Decodes the fixed part of a struct at `off`; the caller has checked that it fits. */
export type FixedDecoder = (r: Reader, off: number) => Record<string, unknown>

export interface CompileRuntime {
  chars(buf: Uint8Array, start: number, size: number): string
  union(f: FieldLayout, r: Reader, off: number, discriminator: unknown): unknown
  nested(layout: StructLayout, r: Reader, off: number): unknown
}

const READ: Record<ScalarType, (at: string) => string> = {
  u8: at => `dv.getUint8(${at})`,
  s8: at => `dv.getInt8(${at})`,
  u16: at => `dv.getUint16(${at}, le)`,
  s16: at => `dv.getInt16(${at}, le)`,
  u32: at => `dv.getUint32(${at}, le)`,
  s32: at => `dv.getInt32(${at}, le)`,
  u16be: at => `dv.getUint16(${at}, false)`,
  u32be: at => `dv.getUint32(${at}, false)`,
  // Zero u64s (padding, unset members) are common: the 0n literal is shared, a read BigInt is a new heap object.
  u64: at => `U64(dv, ${at}, le)`,
  s64: at => `S64(dv, ${at}, le)`,
}

// Zero and all-ones u64s (padding, unset members, LNET_WIRE_HANDLE_COOKIE_NONE) are common: the
// literals are shared constants, while every BigInt read from a DataView is a new heap object.
function U64(dv: DataView, at: number, le: boolean): bigint {
  const a = dv.getUint32(at, true)
  const b = dv.getUint32(at + 4, true)
  if ((a | b) === 0) return 0n
  if ((a & b) === -1) return 0xffffffffffffffffn
  return dv.getBigUint64(at, le)
}

function S64(dv: DataView, at: number, le: boolean): bigint {
  const a = dv.getUint32(at, true)
  const b = dv.getUint32(at + 4, true)
  if ((a | b) === 0) return 0n
  if ((a & b) === -1) return -1n
  return dv.getBigInt64(at, le)
}

const SCALAR = new Set(Object.keys(READ))
/** Fixed arrays up to this many elements are unrolled; longer ones loop. */
const UNROLL = 16

const cache = new WeakMap<StructLayout, FixedDecoder>()

export function fixedDecoder(layout: StructLayout, rt: CompileRuntime): FixedDecoder {
  let d = cache.get(layout)
  if (!d) {
    d = compile(layout, rt)
    cache.set(layout, d)
  }
  return d
}

function compile(layout: StructLayout, rt: CompileRuntime): FixedDecoder {
  const consts: unknown[] = []
  const ref = (x: unknown): string => {
    consts.push(x)
    return `C[${consts.length - 1}]`
  }
  const lines: string[] = []
  const locals = new Map<string, string>()

  const expr = (f: FieldLayout, at: string): string => {
    if (SCALAR.has(f.type)) return READ[f.type as ScalarType](at)
    switch (f.type) {
      case 'char': return `rt.chars(buf, ${at}, ${f.size})`
      case 'bytes': return `buf.slice(${at}, ${at} + ${f.size})`
      // A nested struct with a flexible tail (none in spec/wire today) goes through the generic walker.
      case 'struct': return f.struct!.tail ? `rt.nested(${ref(f.struct)}, r, ${at})` : `${ref(fixedDecoder(f.struct!, rt))}(r, ${at})`
      case 'array': {
        const el = f.element!
        if (f.count! <= UNROLL) {
          const items = Array.from({ length: f.count! }, (_, i) => expr(el, `${at} + ${i * el.size}`))
          return `[${items.join(', ')}]`
        }
        return `${ref(arrayReader(el, f.count!, rt))}(r, ${at})`
      }
      default: throw new Error(`compile: no expression for ${f.type}`)
    }
  }

  if (layout.self) {
    lines.push(`return ${layout.self.type === 'union' ? `rt.union(${ref(layout.self)}, r, off, undefined)` : expr(layout.self, 'off')}`)
  } else {
    layout.fields.forEach((f, i) => {
      const v = `v${i}`
      locals.set(f.name, v)
      const at = `off + ${f.offset}`
      if (f.type === 'union') {
        // The discriminator is an earlier member (or a member of one): read it from the locals,
        // and pick the variant with a chain of comparisons, each building a one-key literal.
        const head = f.discriminator ? locals.get(f.discriminator[0]) : undefined
        if (f.discriminator && head) {
          const disc = [head, ...f.discriminator.slice(1).map(p => JSON.stringify(p))].reduce((a, p) => `${a}[${p}]`)
          let chain = '{}'
          for (const [value, variant] of [...f.variants!].reverse()) {
            const inner = variant.type === 'union' || (variant.type === 'struct' && variant.struct!.tail) ? null : expr(variant, at)
            const lit = inner === null ? `rt.union(${ref(f)}, r, ${at}, ${value})` : `{ ${JSON.stringify(variant.name)}: ${inner} }`
            chain = `(d === ${value} ? ${lit} : ${chain})`
          }
          lines.push(`const ${v} = ((d) => ${chain})(${disc})`)
        } else {
          lines.push(`const ${v} = rt.union(${ref(f)}, r, ${at}, undefined)`)
        }
      } else {
        lines.push(`const ${v} = ${expr(f, at)}`)
      }
    })
    const members = layout.fields.map(f => `${JSON.stringify(f.name)}: ${locals.get(f.name)}`)
    for (const a of layout.aliases) members.push(`${JSON.stringify(a.name)}: ${locals.get(a.aliasOf!)}`)
    // A flexible tail is filled in afterwards by the generic walker; reserve its key so the shape is fixed.
    if (layout.tail) members.push(`${JSON.stringify(layout.tail.name)}: undefined`)
    lines.push(`return { ${members.join(', ')} }`)
  }
  const body = `return function decode_${layout.name.replace(/\W/g, '_')}(r, off) {\n  const dv = r.dv, buf = r.buf, le = r.le\n  ${lines.join('\n  ')}\n}`
  return new Function('C', 'rt', 'U64', 'S64', body)(consts, rt, U64, S64) as FixedDecoder
}

function arrayReader(el: FieldLayout, count: number, rt: CompileRuntime): (r: Reader, off: number) => unknown[] {
  const one = fixedDecoder({ name: `${el.name}`, size: el.size, fields: [{ ...el, name: 'x', offset: 0 }], aliases: [] }, rt)
  return (r, off) => {
    const out = new Array(count)
    for (let i = 0; i < count; i++) out[i] = one(r, off + i * el.size).x
    return out
  }
}
