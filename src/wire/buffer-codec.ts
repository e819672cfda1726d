// One lustre_msg_v2 buffer as a request message field (RMF_* of spec/rpc/fields.json):
// a struct, an array of structs, a NUL-terminated string, a scalar or opaque bytes.
import { BadLengthError, BufferOverLimitError, BadValueError } from './errors.js'
import { decodeAt, encodeAt, encodedSize, readScalar, readText, reader, type Reader } from './struct-codec.js'
import { tailElementSize, type ScalarType, type StructLayout } from './layout.js'
import type { RpcFieldDef, Spec } from './spec.js'
import { structOf } from './spec.js'

export interface BufferSpec {
  /** RMF_* name, absent for buffers a format does not describe */
  field?: string
  def?: RpcFieldDef
  /** the struct a format asks for in place of the field's own (MDS_REINT records) */
  struct?: string
  /** def's bySize/byMagic as numeric maps, when resolved ahead (see alternatives) */
  alt?: Alternatives
}

export interface Alternatives {
  bySize: Map<number, string>
  byMagic: Map<number, string>
}

export interface DecodedBuffer {
  index: number
  field?: string
  /** spec/wire struct the value was read as, for struct/array buffers */
  struct?: string
  kind: RpcFieldDef['kind']
  length: number
  value: unknown
}

const enc = new TextEncoder()

/** Which struct a struct/array buffer holds, by the format, the buffer's size or its magic. */
export function structFor(r: Reader, spec: BufferSpec, off: number, len: number): string | undefined {
  if (spec.struct) return spec.struct
  const def = spec.def
  if (!def) return undefined
  return altStruct(r, spec, off, len) ?? def.struct
}

/** The struct a field's bySize/byMagic names for this buffer, if any. */
function altStruct(r: Reader, spec: BufferSpec, off: number, len: number): string | undefined {
  const def = spec.def
  if (!def || !(def.bySize || def.byMagic)) return undefined
  const alt = spec.alt ?? alternatives(def)
  const bySize = alt.bySize.get(len)
  if (bySize) return bySize
  if (alt.byMagic.size && len >= 4) return alt.byMagic.get(r.dv.getUint32(off, r.le))
  return undefined
}

const alts = new WeakMap<RpcFieldDef, Alternatives>()

/** bySize/byMagic as numeric maps, built once per field definition. */
export function alternatives(def: RpcFieldDef): Alternatives {
  let a = alts.get(def)
  if (!a) {
    a = {
      bySize: new Map(Object.entries(def.bySize ?? {}).map(([k, v]) => [Number(k), v])),
      byMagic: new Map(Object.entries(def.byMagic ?? {}).map(([k, v]) => [Number(k), v])),
    }
    alts.set(def, a)
  }
  return a
}

/** The field's name in errors (built only when one is thrown). */
function pathOf(field: string | undefined, index: number): string {
  return field ?? `buffer[${index}]`
}

/** One shape for every decoded buffer (V8 keeps a single hidden class). */
function out(index: number, field: string | undefined, kind: RpcFieldDef['kind'], struct: string | undefined, length: number, value: unknown): DecodedBuffer {
  return { index, field, struct, kind, length, value }
}

export function decodeBuffer(spec: Spec, r: Reader, b: BufferSpec, index: number, off: number, len: number): DecodedBuffer {
  const def = b.def
  const field = b.field
  if (!def || len === 0) return out(index, field, def?.kind ?? 'bytes', undefined, len, len === 0 ? null : r.buf.slice(off, off + len))
  switch (def.kind) {
    case 'string': {
      let nul = off
      while (nul < off + len && r.buf[nul] !== 0) nul++
      if (nul === off + len) throw new BadLengthError(pathOf(field, index), off, len, 'string buffer is not NUL-terminated')
      if (def.maxLength !== undefined && nul - off > def.maxLength) throw new BufferOverLimitError(pathOf(field, index), off, nul - off, def.maxLength)
      return out(index, field, 'string', undefined, len, readText(r.buf, off, nul))
    }
    case 'u32':
      if (len < 4) throw new BadLengthError(pathOf(field, index), off, len, 'u32 buffer shorter than 4 bytes')
      return out(index, field, 'u32', undefined, len, r.dv.getUint32(off, r.le))
    case 'u64':
      if (len < 8) throw new BadLengthError(pathOf(field, index), off, len, 'u64 buffer shorter than 8 bytes')
      return out(index, field, 'u64', undefined, len, r.dv.getBigUint64(off, r.le))
    case 'struct': {
      const st = structFor(r, b, off, len)
      if (!st) return out(index, field, 'bytes', undefined, len, r.buf.slice(off, off + len))
      return structBuffer(spec, r, field, st, index, off, len)
    }
    case 'array': {
      const st = structFor(r, b, off, len)!
      const layout = structOf(spec, st)
      if (len % layout.size !== 0) throw new BadLengthError(pathOf(field, index), off, len, `array buffer of ${len} bytes is not whole ${st} (${layout.size} bytes)`)
      const n = len / layout.size
      const values = new Array(n)
      for (let i = 0; i < n; i++) values[i] = decodeAt(r, layout, off + i * layout.size, off + (i + 1) * layout.size, st).value
      return out(index, field, 'array', st, len, values)
    }
    default: {
      // An opaque field may still hold a known struct, told by its size or magic (RMF_DLM_LVB, RMF_MDT_MD).
      const st = altStruct(r, b, off, len)
      if (st) return structBuffer(spec, r, field, st, index, off, len)
      return out(index, field, 'bytes', undefined, len, r.buf.slice(off, off + len))
    }
  }
}

function structBuffer(spec: Spec, r: Reader, field: string | undefined, st: string, index: number, off: number, len: number): DecodedBuffer {
  const layout = spec.structs.get(st) ?? structOf(spec, st)
  // A struct that fits cannot fail in decodeAt, so its path is only built for a short buffer.
  const value = layout.size <= len ? decodeAt(r, layout, off, off + len, st).value : decodeAt(r, layout, off, off + len, `${pathOf(field, index)}:${st}`).value
  return out(index, field, 'struct', st, len, value)
}

/**
 * Makes every check decodeBuffer would make, without building the value: the same conditions,
 * and where one fails the decoder itself is run so that it throws its own error.
 */
export function checkBuffer(spec: Spec, r: Reader, b: BufferSpec, index: number, off: number, len: number): void {
  const def = b.def
  if (!def || len === 0) return
  switch (def.kind) {
    case 'string': {
      let nul = off
      while (nul < off + len && r.buf[nul] !== 0) nul++
      if (nul === off + len || (def.maxLength !== undefined && nul - off > def.maxLength)) decodeBuffer(spec, r, b, index, off, len)
      return
    }
    case 'u32': case 'u64':
      if (len < (def.kind === 'u32' ? 4 : 8)) decodeBuffer(spec, r, b, index, off, len)
      return
    case 'struct': {
      const st = structFor(r, b, off, len)
      if (st && !fitsStruct(spec.structs.get(st) ?? structOf(spec, st), r, off, off + len)) decodeBuffer(spec, r, b, index, off, len)
      return
    }
    case 'array': {
      const st = structFor(r, b, off, len)!
      const layout = spec.structs.get(st) ?? structOf(spec, st)
      if (len % layout.size !== 0) decodeBuffer(spec, r, b, index, off, len)
      else if (layout.tail) {
        for (let i = 0; i < len / layout.size; i++) if (!fitsStruct(layout, r, off + i * layout.size, off + (i + 1) * layout.size)) decodeBuffer(spec, r, b, index, off, len)
      }
      return
    }
    default: {
      const st = altStruct(r, b, off, len)
      if (st && !fitsStruct(spec.structs.get(st) ?? structOf(spec, st), r, off, off + len)) decodeBuffer(spec, r, b, index, off, len)
    }
  }
}

/** Whether decodeAt would accept a struct at [off, end): its size, and its tail's count and alignment. */
function fitsStruct(layout: StructLayout, r: Reader, off: number, end: number): boolean {
  if (off + layout.size > end) return false
  const t = layout.tail
  if (!t) return true
  const start = off + layout.size
  const el = tailElementSize(t)
  if (!t.countField) return (end - start) % el === 0
  const cf = layout.fields.find(f => f.name === t.countField)!
  const c = Number(readScalar(r, cf.type as ScalarType, off + cf.offset))
  return c <= Math.floor((end - start) / el)
}

/** A buffer to encode: its field (or kind) and value; `length` pads a buffer past its content. */
export interface EncodeBuffer {
  field?: string
  kind?: RpcFieldDef['kind']
  struct?: string
  value: unknown
  length?: number
}

export interface PreparedBuffer {
  length: number
  write(w: Reader, off: number): void
}

/** Works out a buffer's length and how to write it, checking the value against its field. */
export function prepareBuffer(spec: Spec, b: EncodeBuffer, def: RpcFieldDef | undefined): PreparedBuffer {
  const kind = b.kind ?? def?.kind ?? 'bytes'
  const path = b.field ?? kind
  const v = b.value
  const fit = (n: number): number => {
    if (b.length !== undefined && b.length < n) throw new BadValueError(path, b.length, `length ${b.length} is shorter than the content (${n})`)
    return b.length ?? n
  }
  if (v === null || v === undefined) return { length: fit(0), write: (w, off) => { w.buf.fill(0, off, off + (b.length ?? 0)) } }
  if ((kind === 'bytes' || kind === 'struct') && !b.struct && typeof v === 'object' && !(v instanceof Uint8Array) && def) {
    // A field that holds one of several structs (RMF_DLM_LVB, layouts): the value's shape says which.
    const candidates = [def.struct, ...Object.values(def.bySize ?? {}), ...Object.values(def.byMagic ?? {})].filter((x): x is string => !!x)
    // Only a struct with exactly the value's members can hold it (ost_lvb is not ost_lvb_v1 plus extras).
    const keys = Object.keys(v).sort().join()
    const members = (st: string): string => {
      const l = structOf(spec, st)
      return [...l.fields, ...l.aliases, ...(l.tail ? [l.tail] : [])].map(f => f.name).sort().join()
    }
    for (const st of candidates) {
      if (members(st) !== keys) continue
      try {
        const p = prepareBuffer(spec, { ...b, kind: 'struct', struct: st }, def)
        const probe = reader(new Uint8Array(p.length))
        p.write(probe, 0)
        return p
      } catch (e) {
        if (!(e instanceof BadValueError)) throw e
      }
    }
    throw new BadValueError(path, candidates.join('|'), `value fits none of ${candidates.join(', ') || 'no struct'}`)
  }
  switch (kind) {
    case 'string': {
      if (typeof v !== 'string') throw new BadValueError(path, String(v), 'needs a string')
      const bytes = enc.encode(v)
      if (bytes.includes(0)) throw new BadValueError(path, v, 'string holds a NUL')
      if (def?.maxLength !== undefined && bytes.length > def.maxLength) throw new BadValueError(path, bytes.length, `longer than ${def.maxLength}`)
      // A string field of fixed size (RMF_TGTUUID: 39) is sent at that size, NUL-padded, as Lustre packs obd_uuid.
      const declared = def?.size !== undefined && def.size > bytes.length ? def.size : 0
      const length = fit(Math.max(bytes.length + 1, declared))
      return { length, write: (w, off) => { w.buf.set(bytes, off); w.buf.fill(0, off + bytes.length, off + length) } }
    }
    case 'u32': {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new BadValueError(path, String(v), 'not a u32')
      return { length: fit(4), write: (w, off) => w.dv.setUint32(off, v, w.le) }
    }
    case 'u64': {
      if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n) throw new BadValueError(path, String(v), 'not a u64 bigint')
      return { length: fit(8), write: (w, off) => w.dv.setBigUint64(off, v, w.le) }
    }
    case 'struct': {
      const st = b.struct ?? def?.struct
      if (!st) return prepareBuffer(spec, { ...b, kind: 'bytes' }, def)
      const layout = structOf(spec, st)
      const length = fit(encodedSize(layout, v as Record<string, unknown>))
      return { length, write: (w, off) => { w.buf.fill(0, off, off + length); encodeAt(w, layout, off, v, `${path}:${st}`) } }
    }
    case 'array': {
      const st = b.struct ?? def?.struct
      if (!st || !Array.isArray(v)) throw new BadValueError(path, String(v), 'array buffer needs a struct and an array')
      const layout = structOf(spec, st)
      const length = fit(layout.size * v.length)
      return { length, write: (w, off) => { v.forEach((e, i) => encodeAt(w, layout, off + i * layout.size, e, `${path}[${i}]`)) } }
    }
    default: {
      if (!(v instanceof Uint8Array)) throw new BadValueError(path, String(v), 'needs a Uint8Array')
      const length = fit(v.length)
      return { length, write: (w, off) => { w.buf.set(v, off); w.buf.fill(0, off + v.length, off + length) } }
    }
  }
}
