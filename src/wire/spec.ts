// Loads spec/ (wire schemas, constants, rpc formats) once and compiles it.
// The codec reads the protocol only through this registry.
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { dirname, join, basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SpecError } from './errors.js'
import { compileStruct, type SchemaNode, type StructLayout } from './layout.js'

export interface ConstantGroup {
  name: string
  kind: 'enum' | 'flags' | 'values'
  byName: Map<string, bigint>
  /** value -> first name, for enums (flags decode bit by bit) */
  byValue: Map<bigint, string>
}

export interface RpcFieldDef {
  name: string
  kind: 'struct' | 'array' | 'string' | 'bytes' | 'u32' | 'u64'
  struct?: string
  size?: number
  maxLength?: number
  bySize?: Record<string, string>
  byMagic?: Record<string, string>
  constants?: string
}

export interface RpcSlot {
  field: string
  struct?: string
  optional?: boolean
}

export interface RpcFormat {
  name: string
  opcode: string
  select?: { field: string; path: string; equals?: Array<string | number>; bitsSet?: Array<string | number> }
  request: RpcSlot[]
  reply: RpcSlot[]
}

export interface RpcOpcode {
  opcode: string
  opc: number
  services: string[]
  requestPortal: Record<string, string>
  replyPortal: Record<string, string>
  bulk: 'none' | 'get_source' | 'put_sink'
  bulkPortal?: string
  formats: RpcFormat[]
}

export interface Spec {
  dir: string
  schemas: Map<string, SchemaNode>
  structs: Map<string, StructLayout>
  constants: Map<string, ConstantGroup>
  /** every constant by name, across groups */
  constant: Map<string, bigint>
  fields: Map<string, RpcFieldDef>
  opcodes: Map<number, RpcOpcode>
  opcodesByName: Map<string, RpcOpcode>
  formats: Map<string, RpcFormat>
}

let root: string | undefined

/** The package root: the nearest folder above this module with spec/wire. */
export function packageRoot(): string {
  if (root) return root
  root = findRoot()
  return root
}

function findRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(d, 'spec', 'wire')) && existsSync(join(d, 'package.json'))) return d
    d = dirname(d)
  }
  throw new SpecError('spec', 'cannot find the spec/ folder above ' + fileURLToPath(import.meta.url))
}

function readJsonDir(dir: string): Array<[string, SchemaNode]> {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter(n => n.endsWith('.json'))
    .sort()
    .map(n => {
      try {
        return [n, JSON.parse(readFileSync(join(dir, n), 'utf8')) as SchemaNode] as [string, SchemaNode]
      } catch (e) {
        throw new SpecError(n, `not JSON: ${(e as Error).message}`)
      }
    })
}

function loadConstants(dir: string): Map<string, ConstantGroup> {
  const groups = new Map<string, ConstantGroup>()
  for (const [file, doc] of readJsonDir(dir)) {
    const values = doc['x-lustre-constants'] as Record<string, number | string> | undefined
    if (!values) continue
    const name = basename(file, '.json')
    const g: ConstantGroup = { name, kind: (doc['x-kind'] as ConstantGroup['kind']) ?? 'values', byName: new Map(), byValue: new Map() }
    for (const [k, v] of Object.entries(values)) {
      const b = BigInt(v)
      g.byName.set(k, b)
      if (!g.byValue.has(b)) g.byValue.set(b, k)
    }
    groups.set(name, g)
  }
  return groups
}

let cached: Spec | undefined

/** The spec of this package, loaded and compiled on first use. */
export function loadSpec(dirArg?: string): Spec {
  // The hot path (every message decoded) asks for the default spec: no file system work then.
  if (cached && (dirArg === undefined || cached.dir === dirArg)) return cached
  const dir = dirArg ?? join(packageRoot(), 'spec')
  const schemas = new Map<string, SchemaNode>()
  for (const [file, doc] of readJsonDir(join(dir, 'wire'))) {
    if (typeof doc['x-lustre-struct'] === 'string') schemas.set(basename(file, '.json'), doc)
  }
  const structs = new Map<string, StructLayout>()
  const compiling = new Set<string>()
  const get = (name: string): StructLayout => {
    const have = structs.get(name)
    if (have) return have
    const schema = schemas.get(name)
    if (!schema) throw new SpecError(name, `no spec/wire/${name}.json`)
    if (compiling.has(name)) throw new SpecError(name, 'struct refers to itself')
    compiling.add(name)
    const l = compileStruct(name, schema, (ref, from) => {
      const target = basename(ref.split('#')[0], '.json')
      if (!target) throw new SpecError(from, `unsupported $ref ${ref}`)
      return get(target)
    })
    compiling.delete(name)
    structs.set(name, l)
    return l
  }
  for (const name of schemas.keys()) get(name)

  const constants = loadConstants(join(dir, 'constants'))
  const constant = new Map<string, bigint>()
  for (const g of constants.values()) for (const [k, v] of g.byName) if (!constant.has(k)) constant.set(k, v)

  const fields = new Map<string, RpcFieldDef>()
  const opcodes = new Map<number, RpcOpcode>()
  const opcodesByName = new Map<string, RpcOpcode>()
  const formats = new Map<string, RpcFormat>()
  for (const [file, doc] of readJsonDir(join(dir, 'rpc'))) {
    if (file === 'fields.json') {
      for (const [k, v] of Object.entries(doc.fields as Record<string, RpcFieldDef>)) fields.set(k, v)
      continue
    }
    if (typeof doc.opcode !== 'string' || !Array.isArray(doc.formats)) continue
    const opc = constant.get(doc.opcode)
    if (opc === undefined) throw new SpecError(file, `opcode ${doc.opcode} is not in spec/constants`)
    const slot = (s: string | RpcSlot): RpcSlot => (typeof s === 'string' ? { field: s } : s)
    const op: RpcOpcode = {
      opcode: doc.opcode,
      opc: Number(opc),
      services: (doc.services as string[]) ?? [],
      requestPortal: (doc.requestPortal as Record<string, string>) ?? {},
      replyPortal: (doc.replyPortal as Record<string, string>) ?? {},
      bulk: (doc.bulk as RpcOpcode['bulk']) ?? 'none',
      bulkPortal: doc.bulkPortal as string | undefined,
      formats: (doc.formats as Array<Record<string, unknown>>).map(f => ({
        name: f.name as string,
        opcode: doc.opcode as string,
        select: f.select as RpcFormat['select'],
        request: (f.request as Array<string | RpcSlot>).map(slot),
        reply: (f.reply as Array<string | RpcSlot>).map(slot),
      })),
    }
    opcodes.set(op.opc, op)
    opcodesByName.set(op.opcode, op)
    // A format name shared by opcodes (RQF_MDS_DISCONNECT) keeps its first opcode here; decoding looks within the opcode.
    for (const f of op.formats) if (!formats.has(f.name)) formats.set(f.name, f)
  }
  for (const f of formats.values()) {
    for (const s of [...f.request, ...f.reply]) {
      const def = fields.get(s.field)
      if (!def) throw new SpecError(f.name, `${s.field} is not in spec/rpc/fields.json`)
      for (const st of [s.struct, def.struct, ...Object.values(def.bySize ?? {}), ...Object.values(def.byMagic ?? {})]) {
        if (st && !structs.has(st)) throw new SpecError(`${f.name}.${s.field}`, `struct ${st} is not in spec/wire`)
      }
    }
  }
  cached = { dir, schemas, structs, constants, constant, fields, opcodes, opcodesByName, formats }
  return cached
}

/** A constant's value by Lustre name; throws when spec/constants lacks it. */
export function constantOf(spec: Spec, name: string): bigint {
  const v = spec.constant.get(name)
  if (v === undefined) throw new SpecError(name, `constant ${name} is not in spec/constants`)
  return v
}

export function structOf(spec: Spec, name: string): StructLayout {
  const l = spec.structs.get(name)
  if (!l) throw new SpecError(name, `struct ${name} is not in spec/wire`)
  return l
}
