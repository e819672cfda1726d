// Decodes and encodes one struct by its compiled layout. One engine for every
// struct of spec/wire: nothing here knows a struct by name.
//
// Lustre sends little-endian; a byte-swapped peer is detected by magic one level
// up (socklnd hello, lustre_msg) and the whole unit is then read with le=false,
// which is what Lustre's per-struct swabbers amount to for integer members.
import { BadValueError, TruncatedError } from './errors.js'
import { SCALAR_SIZES, tailElementSize, type FieldLayout, type ScalarType, type StructLayout } from './layout.js'
import { fixedDecoder, type CompileRuntime } from './compile.js'
import { fixedEncoder, type EncodeRuntime } from './compile-encode.js'

export interface Reader {
  buf: Uint8Array
  dv: DataView
  le: boolean
}

export function reader(buf: Uint8Array, le = true): Reader {
  return { buf, dv: new DataView(buf.buffer, buf.byteOffset, buf.byteLength), le }
}

// Readers over whole ArrayBuffers, one per buffer and byte order. Chunks of a capture or a
// socket are views into a few large buffers, so hot paths read headers and messages where
// they lie, at absolute offsets (buf.byteOffset + ...), with no DataView made per unit.
const wholeLe = new WeakMap<ArrayBufferLike, Reader>()
const wholeBe = new WeakMap<ArrayBufferLike, Reader>()

/** A reader over the whole ArrayBuffer under `buf` (offsets into it are absolute). */
export function wholeReader(buf: Uint8Array, le: boolean): Reader {
  const m = le ? wholeLe : wholeBe
  let r = m.get(buf.buffer)
  if (!r) {
    r = { buf: new Uint8Array(buf.buffer), dv: new DataView(buf.buffer), le }
    m.set(buf.buffer, r)
  }
  return r
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const latin1 = new TextDecoder('latin1')
const utf8enc = new TextEncoder()

/**
 * Bytes [start, end) as text: ASCII fast path, then UTF-8; bytes that are not
 * UTF-8 (Lustre names are bytes) are shown one character per byte rather than
 * replaced, so nothing is hidden from the reader.
 */
export function readText(buf: Uint8Array, start: number, end: number): string {
  let s = ''
  for (let i = start; i < end; i++) {
    const b = buf[i]
    if (b >= 0x80) {
      try {
        return utf8.decode(buf.subarray(start, end))
      } catch {
        return latin1.decode(buf.subarray(start, end))
      }
    }
    s += String.fromCharCode(b)
  }
  return s
}

function readCharArray(buf: Uint8Array, start: number, size: number): string {
  let end = start
  const lim = start + size
  while (end < lim && buf[end] !== 0) end++
  return readText(buf, start, end)
}

/** One integer member of type `t` at `off`, in the reader's byte order (big-endian types aside). */
export function readScalar(r: Reader, t: ScalarType, off: number): number | bigint {
  const dv = r.dv
  switch (t) {
    case 'u8': return dv.getUint8(off)
    case 's8': return dv.getInt8(off)
    case 'u16': return dv.getUint16(off, r.le)
    case 's16': return dv.getInt16(off, r.le)
    case 'u32': return dv.getUint32(off, r.le)
    case 's32': return dv.getInt32(off, r.le)
    // Big-endian members (lnet_nid) are big-endian whatever the sender's order.
    case 'u16be': return dv.getUint16(off, false)
    case 'u32be': return dv.getUint32(off, false)
    case 'u64': return dv.getBigUint64(off, r.le)
    case 's64': return dv.getBigInt64(off, r.le)
  }
}

function lookup(obj: Record<string, unknown>, path: string[]): unknown {
  let v: unknown = obj
  for (const p of path) v = (v as Record<string, unknown> | undefined)?.[p]
  return v
}

/** The variant a union holds, given the struct that contains it. */
export function unionVariant(f: FieldLayout, parent: Record<string, unknown>): FieldLayout | undefined {
  if (f.discriminator) {
    const d = lookup(parent, f.discriminator)
    return typeof d === 'number' ? f.variants!.get(d) : undefined
  }
  return f.variantsByName!.get(f.defaultVariant!)
}

function decodeField(r: Reader, f: FieldLayout, off: number, parent: Record<string, unknown>, path: string): unknown {
  switch (f.type) {
    case 'char': return readCharArray(r.buf, off, f.size)
    case 'bytes': return r.buf.slice(off, off + f.size)
    case 'struct': return decodeAt(r, f.struct!, off, off + f.size, path).value
    case 'union': {
      const v = unionVariant(f, parent)
      if (!v) return {}
      return { [v.name]: decodeField(r, v, off, parent, `${path}.${v.name}`) }
    }
    case 'array': {
      const el = f.element!
      const out = new Array(f.count!)
      for (let i = 0; i < f.count!; i++) out[i] = decodeField(r, el, off + i * el.size, parent, `${path}[${i}]`)
      return out
    }
    default: return readScalar(r, f.type as ScalarType, off)
  }
}

function firstMissing(layout: StructLayout, start: number, end: number): FieldLayout | undefined {
  return layout.fields.find(f => start + f.offset + f.size > end)
}

/**
 * Decodes the struct at [off, end) of the reader. A flexible tail takes its
 * count field, or else every whole element left before `end`.
 */
export function decodeAt(r: Reader, layout: StructLayout, off: number, end: number, path = layout.name): { value: Record<string, unknown>; size: number } {
  if (off + layout.size > end) {
    const f = firstMissing(layout, off, end)
    throw new TruncatedError(f ? `${path}.${f.name}` : path, f ? off + f.offset : off, layout.size, Math.max(0, end - off))
  }
  // The fixed part fits: the compiled decoder reads it (no member can fail once the size is there).
  const obj = fixedDecoder(layout, RT)(r, off)
  if (layout.self) return { value: obj, size: layout.size }
  let size = layout.size
  const t = layout.tail
  if (t) {
    const start = off + layout.size
    const el = tailElementSize(t)
    const room = Math.floor((end - start) / el)
    let count = room
    if (t.countField) {
      const c = obj[t.countField]
      count = typeof c === 'bigint' ? Number(c) : (c as number)
      if (count > room) throw new TruncatedError(`${path}.${t.name}`, start, count * el, end - start)
    } else if ((end - start) % el !== 0) {
      // A tail that fills its buffer must end on an element boundary: a partial element is a cut.
      throw new TruncatedError(`${path}.${t.name}`, start, (room + 1) * el, end - start)
    }
    obj[t.name] = decodeTail(r, t, start, count, obj, path)
    size += count * el
  }
  return { value: obj, size }
}

function decodeTail(r: Reader, t: FieldLayout, start: number, count: number, parent: Record<string, unknown>, path: string): unknown {
  if (t.type === 'char') return readText(r.buf, start, start + count)
  if (t.type === 'bytes') return r.buf.slice(start, start + count)
  const el = t.type === 'array' ? t.element! : { ...t, flexible: false, size: tailElementSize(t), offset: 0 }
  const out = new Array(count)
  // Every element fits (count was checked against the room left), so none can fail.
  if (el.type === 'struct' && !el.struct!.tail) {
    const one = fixedDecoder(el.struct!, RT)
    for (let i = 0; i < count; i++) out[i] = one(r, start + i * el.size)
  } else if (el.type in SCALAR_SIZES) {
    for (let i = 0; i < count; i++) out[i] = readScalar(r, el.type as ScalarType, start + i * el.size)
  } else {
    for (let i = 0; i < count; i++) out[i] = decodeField(r, el, start + i * el.size, parent, `${path}.${t.name}[${i}]`)
  }
  return out
}

/** The fixed part of a struct that is known to fit (a flexible tail's key is left undefined). */
export function decodeFixed(r: Reader, layout: StructLayout, off: number): Record<string, unknown> {
  return fixedDecoder(layout, RT)(r, off)
}

/** What compiled decoders call back into: text, unions, and nested structs with tails. */
const RT: CompileRuntime = {
  chars: readCharArray,
  union(f, r, off, disc) {
    const v = f.discriminator ? (typeof disc === 'number' ? f.variants!.get(disc) : undefined) : f.variantsByName!.get(f.defaultVariant!)
    if (!v) return {}
    const value = v.type === 'struct' && !v.struct!.tail ? fixedDecoder(v.struct!, RT)(r, off) : decodeField(r, v, off, {}, v.name)
    return { [v.name]: value }
  },
  nested(layout, r, off) {
    return decodeAt(r, layout, off, off + layout.size).value
  },
}

// ---- encoding -------------------------------------------------------------

const RANGES: Record<string, [number, number]> = {
  u8: [0, 0xff], s8: [-0x80, 0x7f], u16: [0, 0xffff], u16be: [0, 0xffff], s16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff], u32be: [0, 0xffffffff], s32: [-0x80000000, 0x7fffffff],
}

function writeScalar(dv: DataView, t: ScalarType, off: number, v: unknown, le: boolean, path: string): void {
  if (t === 'u64' || t === 's64') {
    if (typeof v !== 'bigint') throw new BadValueError(path, v, `${t} needs a bigint`)
    if (t === 'u64' ? v < 0n || v > 0xffffffffffffffffn : v < -0x8000000000000000n || v > 0x7fffffffffffffffn) throw new BadValueError(path, v, `out of ${t} range`)
    if (t === 'u64') dv.setBigUint64(off, v, le)
    else dv.setBigInt64(off, v, le)
    return
  }
  const [lo, hi] = RANGES[t]
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new BadValueError(path, v, `not a ${t} integer`)
  switch (t) {
    case 'u8': dv.setUint8(off, v); break
    case 's8': dv.setInt8(off, v); break
    case 'u16': dv.setUint16(off, v, le); break
    case 's16': dv.setInt16(off, v, le); break
    case 'u16be': dv.setUint16(off, v, false); break
    case 'u32': dv.setUint32(off, v, le); break
    case 's32': dv.setInt32(off, v, le); break
    case 'u32be': dv.setUint32(off, v, false); break
  }
}

function writeBytes(buf: Uint8Array, off: number, size: number, v: unknown, path: string, text: boolean): void {
  let bytes: Uint8Array
  if (text) {
    if (typeof v !== 'string') throw new BadValueError(path, v, 'needs a string')
    bytes = utf8enc.encode(v)
  } else {
    if (!(v instanceof Uint8Array)) throw new BadValueError(path, v, 'needs a Uint8Array')
    bytes = v
  }
  if (bytes.length > size) throw new BadValueError(path, bytes.length, `${bytes.length} bytes do not fit in ${size}`)
  buf.set(bytes, off)
  buf.fill(0, off + bytes.length, off + size)
}

function encodeField(w: Reader, f: FieldLayout, off: number, v: unknown, parent: Record<string, unknown>, path: string): void {
  switch (f.type) {
    case 'char': return writeBytes(w.buf, off, f.size, v, path, true)
    case 'bytes': return writeBytes(w.buf, off, f.size, v, path, false)
    case 'struct': encodeAt(w, f.struct!, off, v, path); return
    case 'union': {
      if (typeof v !== 'object' || v === null) throw new BadValueError(path, v, 'union needs an object')
      w.buf.fill(0, off, off + f.size)
      const chosen = unionVariant(f, parent)
      const keys = Object.keys(v)
      if (keys.length === 0) return
      if (keys.length > 1 || !chosen || keys[0] !== chosen.name) {
        throw new BadValueError(path, keys.join(','), `union holds ${chosen ? chosen.name : 'no variant'} for its discriminator`)
      }
      encodeField(w, chosen, off, (v as Record<string, unknown>)[chosen.name], parent, `${path}.${chosen.name}`)
      return
    }
    case 'array': {
      if (!Array.isArray(v) || v.length !== f.count) throw new BadValueError(path, Array.isArray(v) ? v.length : String(v), `needs an array of ${f.count}`)
      const el = f.element!
      for (let i = 0; i < f.count!; i++) encodeField(w, el, off + i * el.size, v[i], parent, `${path}[${i}]`)
      return
    }
    default: writeScalar(w.dv, f.type as ScalarType, off, v, w.le, path)
  }
}

const ERT: EncodeRuntime = { field: (w, f, off, v, parent, path) => encodeField(w, f, off, v, parent, path) }

/** Bytes the value takes on the wire (fixed part plus its flexible tail). */
export function encodedSize(layout: StructLayout, value: unknown): number {
  const t = layout.tail
  if (!t) return layout.size
  if (typeof value !== 'object' || value === null) throw new BadValueError(layout.name, String(value), 'struct needs an object')
  const v = (value as Record<string, unknown>)[t.name]
  const el = tailElementSize(t)
  if (t.type === 'char') return layout.size + (typeof v === 'string' ? utf8enc.encode(v).length : 0)
  if (t.type === 'bytes') return layout.size + (v instanceof Uint8Array ? v.length : 0)
  return layout.size + (Array.isArray(v) ? v.length : 0) * el
}

/** Writes the value at `off`; returns the bytes written. The caller sized the buffer with encodedSize. */
export function encodeAt(w: Reader, layout: StructLayout, off: number, value: unknown, path = layout.name): number {
  if (layout.self) {
    encodeField(w, layout.self, off, value, {}, path)
    return layout.size
  }
  if (typeof value !== 'object' || value === null) throw new BadValueError(path, String(value), 'struct needs an object')
  const obj = value as Record<string, unknown>
  // The compiled encoder writes valid values; on anything else the walker below says what is wrong.
  if (!fixedEncoder(layout, ERT)!(w, off, obj, path)) {
    for (const f of layout.fields) {
      if (!(f.name in obj)) throw new BadValueError(`${path}.${f.name}`, 'undefined', 'member missing')
      encodeField(w, f, off + f.offset, obj[f.name], obj, `${path}.${f.name}`)
    }
    for (const a of layout.aliases) {
      const v = obj[a.name]
      if (v !== undefined && v !== obj[a.aliasOf!]) throw new BadValueError(`${path}.${a.name}`, String(v), `shares bytes with ${a.aliasOf}, which holds ${String(obj[a.aliasOf!])}`)
    }
    throw new Error(`encodeAt: the compiled encoder of ${layout.name} refused a value the walker accepts`)
  }
  let size = layout.size
  const t = layout.tail
  if (t) {
    const v = obj[t.name]
    const tpath = `${path}.${t.name}`
    const start = off + layout.size
    if (t.type === 'char' || t.type === 'bytes') {
      const bytes = t.type === 'char' ? (typeof v === 'string' ? utf8enc.encode(v) : undefined) : v instanceof Uint8Array ? v : undefined
      if (!bytes) throw new BadValueError(tpath, String(v), `needs ${t.type === 'char' ? 'a string' : 'a Uint8Array'}`)
      w.buf.set(bytes, start)
      size += bytes.length
    } else {
      if (!Array.isArray(v)) throw new BadValueError(tpath, String(v), 'needs an array')
      const el = t.type === 'array' ? t.element! : { ...t, flexible: false, size: tailElementSize(t), offset: 0 }
      for (let i = 0; i < v.length; i++) encodeField(w, el, start + i * el.size, v[i], obj, `${tpath}[${i}]`)
      size += v.length * el.size
    }
    if (t.countField) {
      const c = obj[t.countField]
      const n = t.type === 'char' || t.type === 'bytes' ? size - layout.size : (v as unknown[]).length
      if (Number(c) !== n) throw new BadValueError(`${path}.${t.countField}`, String(c), `says ${String(c)} but ${t.name} has ${n}`)
    }
  }
  return size
}

export function scalarSize(t: ScalarType): number {
  return SCALAR_SIZES[t]
}
