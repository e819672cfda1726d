// Convenience entry points over the layout engine: a struct by name, whole buffer.
import { BadLengthError } from './errors.js'
import { decodeAt, encodeAt, encodedSize, reader } from './struct-codec.js'
import { loadSpec, structOf } from './spec.js'

/** Decodes struct `name` from the start of `buf` (little-endian unless told). */
export function decodeStruct<T = Record<string, unknown>>(name: string, buf: Uint8Array, opts: { littleEndian?: boolean; exact?: boolean } = {}): T {
  const layout = structOf(loadSpec(), name)
  const { value, size } = decodeAt(reader(buf, opts.littleEndian ?? true), layout, 0, buf.length)
  if (opts.exact && size !== buf.length) throw new BadLengthError(name, size, buf.length, `${buf.length - size} bytes follow the struct`)
  return value as T
}

/** Encodes `value` as struct `name`, flexible tail included. */
export function encodeStruct(name: string, value: unknown, opts: { littleEndian?: boolean } = {}): Uint8Array {
  const layout = structOf(loadSpec(), name)
  const out = new Uint8Array(encodedSize(layout, value))
  encodeAt(reader(out, opts.littleEndian ?? true), layout, 0, value)
  return out
}
