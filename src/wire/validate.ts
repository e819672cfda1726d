// Validates decoded (or hand-built) wire values against the JSON Schemas of
// spec/wire with ajv. Plain JSON Schema cannot say "bigint" or "Uint8Array", so
// the layout annotations are registered as ajv keywords and the ones that carry a
// rule check it: x-type (JS type, integer range, byte length), x-count,
// x-count-field, x-discriminator and x-alias-of. The rules are the encoder's
// (struct-codec.ts), so a value that validates is one the codec can write; the one
// exception is a union without discriminator (ost_id), where the schema allows any
// single variant and the encoder today only its x-default-variant.
import { readFileSync, readdirSync } from 'node:fs'
import { Buffer } from 'node:buffer'
import { basename, join } from 'node:path'
import { Ajv2020, type AnySchemaObject, type ErrorObject, type FuncKeywordDefinition, type ValidateFunction } from 'ajv/dist/2020.js'
import { LustreWireError, SpecError } from './errors.js'
import { packageRoot } from './spec.js'
import type { WireStructName, WireStructs } from '../generated/wire-types.js'

export interface ValidationIssue {
  /** dotted path under Lustre's member names, relative to what was validated ('' = the value itself) */
  path: string
  message: string
}

export type ValidationResult = { ok: true } | { ok: false; errors: ValidationIssue[] }

/** Thrown by assertValid: LC_WIRE_BAD_VALUE, `field` = struct.path of the first problem. */
export class WireValidationError extends LustreWireError {
  readonly errors: ValidationIssue[]
  constructor(struct: string, errors: ValidationIssue[]) {
    const first = errors[0]
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''
    super('LC_WIRE_BAD_VALUE', `${struct}: ${first.message}${more}`, { field: joinPath(struct, first.path) })
    this.errors = errors
  }
}

const SCHEMA_BASE = 'https://lustre-conformance.example/spec/wire/'

const INT_RANGES: Record<string, [number, number]> = {
  u8: [0, 0xff], s8: [-0x80, 0x7f], u16: [0, 0xffff], u16be: [0, 0xffff], s16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff], u32be: [0, 0xffffffff], s32: [-0x80000000, 0x7fffffff],
}
const BIG_RANGES: Record<string, [bigint, bigint]> = {
  u64: [0n, 0xffffffffffffffffn], s64: [-0x8000000000000000n, 0x7fffffffffffffffn],
}

// Keywords that only document the layout; ajv's strict mode refuses unknown ones.
const ANNOTATIONS = ['x-lustre-struct', 'x-size', 'x-offset', 'x-flexible', 'x-variants', 'x-default-variant',
  'x-constants', 'x-flags', 'x-lustre-name', 'tsType']

type Check = (data: unknown, parent: unknown) => string | undefined

/** A compiled keyword from a check returning an error message or undefined. */
function keyword(name: string, schemaType: FuncKeywordDefinition['schemaType'], make: (value: any, parentSchema: AnySchemaObject) => Check | undefined): FuncKeywordDefinition {
  return {
    keyword: name,
    schemaType,
    errors: true,
    compile(value: unknown, parentSchema: AnySchemaObject) {
      const check = make(value, parentSchema)
      const fn: ((data: unknown, cxt?: { parentData?: unknown }) => boolean) & { errors?: Partial<ErrorObject>[] } =
        (data, cxt) => {
          const message = check?.(data, cxt?.parentData)
          if (message === undefined) return true
          fn.errors = [{ keyword: name, message, params: {} }]
          return false
        }
      return fn
    },
  }
}

const isPlainObject = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v)

const describe = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : v instanceof Uint8Array ? 'a Uint8Array' : `a ${typeof v}`

/** x-type: the JS value the codec decodes to and can encode. */
function typeCheck(type: string, schema: AnySchemaObject): Check {
  const flexible = schema['x-flexible'] === true
  const size = typeof schema['x-size'] === 'number' ? (schema['x-size'] as number) : undefined
  const ints = INT_RANGES[type]
  if (ints) {
    const [lo, hi] = ints
    return v => (typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi ? undefined
      : typeof v === 'number' ? `${v} is not a ${type} (${lo}..${hi})` : `${type} must be a number, not ${describe(v)}`)
  }
  const bigs = BIG_RANGES[type]
  if (bigs) {
    const [lo, hi] = bigs
    return v => (typeof v !== 'bigint' ? `${type} must be a bigint, not ${describe(v)}`
      : v < lo || v > hi ? `${v} is out of ${type} range` : undefined)
  }
  switch (type) {
    case 'char':
      return v => {
        if (typeof v !== 'string') return `char must be a string, not ${describe(v)}`
        const n = Buffer.byteLength(v, 'utf8')
        return !flexible && size !== undefined && n > size ? `${n} UTF-8 bytes do not fit in char[${size}]` : undefined
      }
    case 'bytes':
      return v => {
        if (!(v instanceof Uint8Array)) return `bytes must be a Uint8Array, not ${describe(v)}`
        return !flexible && size !== undefined && v.length !== size ? `needs ${size} bytes, has ${v.length}` : undefined
      }
    case 'struct':
    case 'union':
      return v => (isPlainObject(v) ? undefined : `${type} must be an object, not ${describe(v)}`)
    case 'array':
      return v => (Array.isArray(v) ? undefined : `array must be an array, not ${describe(v)}`)
    default:
      throw new SpecError(String(schema.title ?? type), `unknown x-type ${type}`)
  }
}

function lookup(obj: unknown, path: string[]): unknown {
  let v = obj
  for (const p of path) v = isPlainObject(v) ? (v as Record<string, unknown>)[p] : undefined
  return v
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (a instanceof Uint8Array && b instanceof Uint8Array) return a.length === b.length && a.every((x, i) => x === b[i])
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]))
  if (!isPlainObject(a) || !isPlainObject(b)) return false
  const ka = Object.keys(a as object), kb = Object.keys(b as object)
  return ka.length === kb.length && ka.every(k => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

const KEYWORDS: FuncKeywordDefinition[] = [
  keyword('x-type', 'string', (t: string, ps) => typeCheck(t, ps)),
  keyword('x-count', 'number', (n: number) => v => (Array.isArray(v) && v.length !== n ? `needs ${n} elements, has ${v.length}` : undefined)),
  // The tail's length must be what its count member says (the encoder refuses otherwise).
  keyword('x-count-field', 'string', (field: string, ps) => (v, parent) => {
    if (!isPlainObject(parent)) return undefined
    const c = (parent as Record<string, unknown>)[field]
    if (typeof c !== 'number' && typeof c !== 'bigint') return undefined
    const n = typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : Array.isArray(v) || v instanceof Uint8Array ? v.length : undefined
    if (n === undefined || Number(c) === n) return undefined
    const unit = ps['x-type'] === 'array' ? 'elements' : 'bytes'
    return `has ${n} ${unit} but ${field} says ${c}`
  }),
  // A union may hold no variant, or the one its discriminator selects.
  keyword('x-discriminator', 'string', (disc: string, ps) => {
    const path = disc.split('.')
    const variants = (ps['x-variants'] ?? {}) as Record<string, string>
    return (v, parent) => {
      if (!isPlainObject(v) || !isPlainObject(parent)) return undefined
      const d = lookup(parent, path)
      const selected = typeof d === 'number' || typeof d === 'bigint' ? variants[String(d)] : undefined
      const wrong = Object.keys(v as object).find(k => k !== selected)
      return wrong === undefined ? undefined : `holds ${wrong}, but ${disc} = ${String(d)} selects ${selected ?? 'no variant'}`
    }
  }),
  keyword('x-alias-of', 'string', (of: string) => (v, parent) =>
    isPlainObject(parent) && of in (parent as object) && !sameValue(v, (parent as Record<string, unknown>)[of])
      ? `differs from ${of}, whose bytes it shares` : undefined),
]

/** JSON pointer (/lock_desc/l_req_mode, /lock_handle/0) to a dotted path (lock_desc.l_req_mode, lock_handle[0]). */
function dotted(pointer: string, extra?: string): string {
  const segs = pointer === '' ? [] : pointer.slice(1).split('/').map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  if (extra !== undefined) segs.push(extra)
  let out = ''
  for (const s of segs) out += /^\d+$/.test(s) ? `[${s}]` : out === '' ? s : `.${s}`
  return out
}

function joinPath(prefix: string, path: string): string {
  return path === '' ? prefix : prefix === '' ? path : path.startsWith('[') ? prefix + path : `${prefix}.${path}`
}

/** ajv errors as issues: one per path, the annotation keywords' (more precise) first. */
function issues(errors: ErrorObject[]): ValidationIssue[] {
  const byPath = new Map<string, ValidationIssue & { own: boolean }>()
  for (const e of errors) {
    let path: string, message: string
    if (e.keyword === 'required') {
      path = dotted(e.instancePath, (e.params as { missingProperty: string }).missingProperty)
      message = 'member missing'
    } else if (e.keyword === 'additionalProperties') {
      path = dotted(e.instancePath, (e.params as { additionalProperty: string }).additionalProperty)
      message = 'not a member of the struct'
    } else {
      path = dotted(e.instancePath)
      message = e.message ?? `fails ${e.keyword}`
    }
    const own = e.keyword.startsWith('x-')
    const have = byPath.get(path)
    if (!have || (own && !have.own)) byPath.set(path, { path, message, own })
  }
  return [...byPath.values()].map(({ path, message }) => ({ path, message }))
}

/** The spec/wire schemas compiled by ajv, each on first use. */
export class WireValidator {
  private readonly ajv: Ajv2020
  private readonly names: Set<string>
  private readonly compiled = new Map<string, ValidateFunction>()

  constructor(wireDir = join(packageRoot(), 'spec', 'wire')) {
    this.ajv = new Ajv2020({ allErrors: true, strict: true })
    this.ajv.addVocabulary(ANNOTATIONS)
    for (const k of KEYWORDS) this.ajv.addKeyword(k)
    this.names = new Set()
    for (const file of readdirSync(wireDir).filter(n => n.endsWith('.json')).sort()) {
      let schema: AnySchemaObject
      try {
        schema = JSON.parse(readFileSync(join(wireDir, file), 'utf8')) as AnySchemaObject
      } catch (e) {
        throw new SpecError(file, `not JSON: ${(e as Error).message}`)
      }
      if (typeof schema['x-lustre-struct'] !== 'string') continue
      this.ajv.addSchema(schema, schema.$id ?? SCHEMA_BASE + file)
      this.names.add(basename(file, '.json'))
    }
  }

  structNames(): string[] {
    return [...this.names]
  }

  private validator(struct: string): ValidateFunction {
    let fn = this.compiled.get(struct)
    if (fn) return fn
    if (!this.names.has(struct)) throw new SpecError(struct, `struct ${struct} is not in spec/wire`)
    try {
      fn = this.ajv.getSchema(SCHEMA_BASE + struct + '.json')
    } catch (e) {
      throw new SpecError(struct, `ajv cannot compile spec/wire/${struct}.json: ${(e as Error).message}`)
    }
    if (!fn) throw new SpecError(struct, `spec/wire/${struct}.json has $id other than ${SCHEMA_BASE}${struct}.json`)
    this.compiled.set(struct, fn)
    return fn
  }

  validate(struct: string, value: unknown): ValidationResult {
    const fn = this.validator(struct)
    return fn(value) ? { ok: true } : { ok: false, errors: issues(fn.errors ?? []) }
  }
}

let shared: WireValidator | undefined
const defaultValidator = (): WireValidator => (shared ??= new WireValidator())

/** Checks a value (decoded, or built to be encoded) against spec/wire/<struct>.json. */
export function validateStruct(struct: WireStructName | (string & {}), value: unknown): ValidationResult {
  return defaultValidator().validate(struct, value)
}

/** Like validateStruct, but throws WireValidationError (LC_WIRE_BAD_VALUE) on the first problem. */
export function assertValid<N extends WireStructName>(struct: N, value: unknown): asserts value is WireStructs[N]
export function assertValid(struct: string, value: unknown): void
export function assertValid(struct: string, value: unknown): void {
  const r = defaultValidator().validate(struct, value)
  if (!r.ok) throw new WireValidationError(struct, r.errors)
}

/** The parts of a decoded message (lustre-msg.ts's LustreMessage) that are checked. */
export interface MessageToValidate {
  header: unknown
  body: unknown
  bodyStruct: string
  buffers: ReadonlyArray<{ field?: string; struct?: string; kind: string; value: unknown }>
}

/**
 * Every problem in a decoded message: header, body and buffers 1..n. Paths start
 * with `header`, `body` or `buffers[i].<RMF_* field or struct>`, where i indexes
 * msg.buffers (wire buffer i + 1, since buffer 0 is the body).
 */
export function validateMessage(msg: MessageToValidate, validator = defaultValidator()): ValidationIssue[] {
  const out: ValidationIssue[] = []
  const check = (prefix: string, struct: string, value: unknown): void => {
    const r = validator.validate(struct, value)
    if (!r.ok) for (const e of r.errors) out.push({ path: joinPath(prefix, e.path), message: e.message })
  }
  check('header', 'lustre_msg_v2', msg.header)
  if (msg.bodyStruct !== 'ptlrpc_body_v3' && msg.bodyStruct !== 'ptlrpc_body_v2') {
    out.push({ path: 'bodyStruct', message: `${msg.bodyStruct} is not a ptlrpc_body` })
  } else check('body', msg.bodyStruct, msg.body)
  msg.buffers.forEach((b, i) => {
    const prefix = joinPath(`buffers[${i}]`, b.field ?? b.struct ?? '')
    const bad = (message: string): void => void out.push({ path: prefix, message })
    // An empty buffer decodes as null whatever the field holds.
    if (b.value === null) return
    switch (b.kind) {
      case 'struct':
        if (b.struct) check(prefix, b.struct, b.value)
        else bad('struct buffer names no struct')
        return
      case 'array':
        if (!b.struct) return bad('array buffer names no struct')
        if (!Array.isArray(b.value)) return bad(`array buffer holds ${describe(b.value)}`)
        b.value.forEach((el, j) => check(`${prefix}[${j}]`, b.struct!, el))
        return
      case 'string':
        if (typeof b.value !== 'string') bad(`string buffer holds ${describe(b.value)}`)
        return
      case 'u32':
      case 'u64': {
        const m = typeCheck(b.kind, {})(b.value, undefined)
        if (m) bad(m)
        return
      }
      case 'bytes':
        if (!(b.value instanceof Uint8Array)) bad(`bytes buffer holds ${describe(b.value)}`)
        return
      default:
        bad(`unknown buffer kind ${b.kind}`)
    }
  })
  return out
}
