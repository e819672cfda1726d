// Compiles the JSON Schemas of spec/wire/ into byte layouts the codec runs on.
// The annotation convention (x-offset, x-size, x-type, unions, flexible tails) is
// defined in spec/README.md; this file is its only interpreter, so a struct is
// never described twice.
import { SpecError } from './errors.js'

export type ScalarType = 'u8' | 'u16' | 'u32' | 's8' | 's16' | 's32' | 'u16be' | 'u32be' | 'u64' | 's64'
export type XType = ScalarType | 'char' | 'bytes' | 'struct' | 'union' | 'array'

export const SCALAR_SIZES: Record<ScalarType, number> = {
  u8: 1, s8: 1, u16: 2, s16: 2, u16be: 2, u32: 4, s32: 4, u32be: 4, u64: 8, s64: 8,
}

export interface FieldLayout {
  name: string
  /** offset from the start of the enclosing struct */
  offset: number
  /** bytes; 0 for a flexible tail; for arrays the whole array */
  size: number
  type: XType
  flexible: boolean
  /** array: fixed element count (x-count) */
  count?: number
  /** flexible tail: sibling holding the element count */
  countField?: string
  /** array: one element; its size is element.size */
  element?: FieldLayout
  /** struct: the nested layout */
  struct?: StructLayout
  /** union: variant by discriminator value */
  variants?: Map<number, FieldLayout>
  /** union: variant name to layout, for encoding */
  variantsByName?: Map<string, FieldLayout>
  discriminator?: string[]
  defaultVariant?: string
  constants?: string
  flags?: boolean
  /** x-alias-of: the earlier member whose bytes this one shares */
  aliasOf?: string
}

export interface StructLayout {
  name: string
  size: number
  /** fixed members in offset order */
  fields: FieldLayout[]
  /** the flexible tail, when the struct has one */
  tail?: FieldLayout
  /** a struct that is one member (root x-type): it decodes to that member's value */
  self?: FieldLayout
  /** members sharing bytes with an earlier member */
  aliases: FieldLayout[]
}

export type SchemaNode = Record<string, unknown>

/** Looks a `$ref` up: returns the referenced struct's compiled layout. */
export type RefResolver = (ref: string, from: string) => StructLayout

const SCALARS = new Set(Object.keys(SCALAR_SIZES))

function num(node: SchemaNode, key: string, where: string): number {
  const v = node[key]
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new SpecError(where, `${key} must be a non-negative integer`)
  return v
}

function compileMember(name: string, node: SchemaNode, where: string, resolve: RefResolver, parentSize: number): FieldLayout {
  const flexible = node['x-flexible'] === true
  const offset = typeof node['x-offset'] === 'number' ? (node['x-offset'] as number) : flexible ? parentSize : NaN
  if (Number.isNaN(offset)) throw new SpecError(where, 'member has no x-offset')
  const size = flexible ? 0 : num(node, 'x-size', where)
  let type = node['x-type'] as XType | undefined
  if (type === undefined && typeof node.$ref === 'string') type = 'struct'
  if (type === undefined && node.properties) type = 'struct'
  if (type === undefined) throw new SpecError(where, 'member has no x-type')
  const f: FieldLayout = { name, offset, size, type, flexible }
  if (typeof node['x-constants'] === 'string') f.constants = node['x-constants'] as string
  if (node['x-flags'] === true) f.flags = true
  if (typeof node['x-count-field'] === 'string') f.countField = node['x-count-field'] as string
  if (typeof node['x-alias-of'] === 'string') f.aliasOf = node['x-alias-of'] as string

  if (SCALARS.has(type)) {
    if (!flexible && size !== SCALAR_SIZES[type as ScalarType]) throw new SpecError(where, `${type} must be ${SCALAR_SIZES[type as ScalarType]} bytes, not ${size}`)
  } else if (type === 'struct') {
    f.struct = typeof node.$ref === 'string'
      ? resolve(node.$ref, where)
      : compileStruct(`${where}`, { ...node, 'x-size': size }, resolve)
    if (!flexible && f.struct.size !== size) throw new SpecError(where, `nested struct is ${f.struct.size} bytes, member says ${size}`)
  } else if (type === 'union') {
    const props = (node.properties ?? {}) as Record<string, SchemaNode>
    f.variantsByName = new Map()
    for (const [vn, vnode] of Object.entries(props)) {
      // Every variant sits at offset 0; a variant the layout table does not know (ost_id.oi_fid) may omit x-offset.
      const v = compileMember(vn, { 'x-offset': 0, ...vnode }, `${where}.${vn}`, resolve, size)
      if (v.offset !== 0) throw new SpecError(`${where}.${vn}`, 'union variants sit at offset 0')
      if (v.size > size) throw new SpecError(`${where}.${vn}`, 'variant larger than its union')
      f.variantsByName.set(vn, v)
    }
    f.variants = new Map()
    const map = (node['x-variants'] ?? {}) as Record<string, string>
    for (const [val, vn] of Object.entries(map)) {
      const v = f.variantsByName.get(vn)
      if (!v) throw new SpecError(where, `x-variants names unknown variant ${vn}`)
      f.variants.set(Number(val), v)
    }
    if (typeof node['x-discriminator'] === 'string') f.discriminator = (node['x-discriminator'] as string).split('.')
    if (typeof node['x-default-variant'] === 'string') {
      f.defaultVariant = node['x-default-variant'] as string
      if (!f.variantsByName.has(f.defaultVariant)) throw new SpecError(where, `x-default-variant ${f.defaultVariant} unknown`)
    }
    if (!f.discriminator && !f.defaultVariant) throw new SpecError(where, 'union needs x-discriminator or x-default-variant')
  } else if (type === 'array') {
    const items = node.items as SchemaNode | undefined
    if (!items) throw new SpecError(where, 'array has no items')
    const itemNode: SchemaNode = { ...items, 'x-offset': 0 }
    if (itemNode['x-size'] === undefined && typeof itemNode.$ref === 'string') {
      itemNode['x-size'] = resolve(itemNode.$ref as string, where).size
    }
    f.element = compileMember(`${name}[]`, itemNode, `${where}[]`, resolve, 0)
    if (f.element.size <= 0) throw new SpecError(where, 'array element has no size')
    if (!flexible) {
      f.count = typeof node['x-count'] === 'number' ? (node['x-count'] as number) : size / f.element.size
      if (f.count * f.element.size !== size) throw new SpecError(where, `array of ${f.count} x ${f.element.size} is not ${size} bytes`)
    }
  } else if (type !== 'char' && type !== 'bytes') {
    throw new SpecError(where, `unknown x-type ${String(type)}`)
  }
  return f
}

/** Compiles one struct schema (a spec/wire file, or an inline nested object). */
export function compileStruct(name: string, schema: SchemaNode, resolve: RefResolver): StructLayout {
  const size = num(schema, 'x-size', name)
  const rootType = schema['x-type']
  if (typeof rootType === 'string' && rootType !== 'struct') {
    const self = compileMember(name, { ...schema, 'x-offset': 0 }, name, resolve, size)
    return { name, size, fields: [], self, aliases: [] }
  }
  const props = (schema.properties ?? {}) as Record<string, SchemaNode>
  const fields: FieldLayout[] = []
  const aliases: FieldLayout[] = []
  let tail: FieldLayout | undefined
  for (const [mn, mnode] of Object.entries(props)) {
    const f = compileMember(mn, mnode, `${name}.${mn}`, resolve, size)
    if (f.flexible) {
      if (tail) throw new SpecError(`${name}.${mn}`, 'only one flexible tail per struct')
      if (f.offset !== size) throw new SpecError(`${name}.${mn}`, `flexible tail must sit at the struct's end (${size})`)
      tail = f
    } else if (f.aliasOf) {
      const target = fields.find(o => o.name === f.aliasOf)
      if (!target || target.offset !== f.offset || target.size !== f.size || target.type !== f.type) {
        throw new SpecError(`${name}.${mn}`, `x-alias-of ${f.aliasOf} must name an earlier member with the same offset, size and type`)
      }
      aliases.push(f)
    } else {
      if (f.offset + f.size > size) throw new SpecError(`${name}.${mn}`, `member ends at ${f.offset + f.size}, past the struct's ${size} bytes`)
      fields.push(f)
    }
  }
  fields.sort((a, b) => a.offset - b.offset)
  for (let i = 1; i < fields.length; i++) {
    const p = fields[i - 1]
    if (fields[i].offset < p.offset + p.size) throw new SpecError(`${name}.${fields[i].name}`, `overlaps ${p.name}`)
  }
  if (tail?.countField && !fields.some(f => f.name === tail!.countField)) {
    throw new SpecError(`${name}.${tail.name}`, `x-count-field ${tail.countField} is not a member`)
  }
  return { name, size, fields, tail, aliases }
}

/** Element size of a flexible tail (1 for char/bytes). */
export function tailElementSize(f: FieldLayout): number {
  if (f.type === 'array') return f.element!.size
  if (f.type === 'char' || f.type === 'bytes') return 1
  if (f.type === 'struct') return f.struct!.size
  return SCALAR_SIZES[f.type as ScalarType] ?? 1
}
