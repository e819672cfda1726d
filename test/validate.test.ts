// Table-driven checks of src/wire/validate.ts over every struct of spec/wire: a
// zero value built from the schema validates; each u64 given as a number, each
// 32-bit integer out of range and an extra member fail at their own path. Then
// the rules that only the x-* keywords carry, and agreement with the codec: what
// the decoder produces validates exactly when the encoder accepts it.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { basename, join } from 'node:path'
import { compileStruct, type StructLayout } from '../src/wire/layout.js'
import { decodeAt, encodeAt, encodedSize, reader } from '../src/wire/struct-codec.js'
import { isWireError } from '../src/wire/errors.js'
import { constantOf, loadSpec, packageRoot } from '../src/wire/spec.js'
import { decodeMessage } from '../src/wire/lustre-msg.js'
import { encodeFormatted } from '../src/wire/lustre-msg-encode.js'
import { assertValid, validateMessage, validateStruct, WireValidationError } from '../src/wire/validate.js'

type Schema = Record<string, any>
type Seg = string | number
interface Leaf { path: Seg[]; type: string }

const WIRE = join(packageRoot(), 'spec', 'wire')
const schemas = new Map<string, Schema>(
  readdirSync(WIRE).filter(f => f.endsWith('.json')).sort()
    .map(f => [basename(f, '.json'), JSON.parse(readFileSync(join(WIRE, f), 'utf8')) as Schema] as [string, Schema])
    .filter(([, s]) => typeof s['x-lustre-struct'] === 'string'),
)
const byRef = (ref: string): Schema => schemas.get(basename(ref, '.json'))!

/** A valid zero-ish value of a schema node, and the scalar leaves it holds. */
function zero(node: Schema, path: Seg[], leaves: Leaf[]): unknown {
  if (typeof node.$ref === 'string') return zero({ ...byRef(node.$ref), ...node, $ref: undefined, 'x-type': byRef(node.$ref)['x-type'] }, path, leaves)
  const type: string = node['x-type'] ?? 'struct'
  const flexible = node['x-flexible'] === true
  switch (type) {
    case 'char': return ''
    case 'bytes': return new Uint8Array(flexible ? 0 : node['x-size'])
    case 'struct': {
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries<Schema>(node.properties ?? {})) out[k] = zero(v, [...path, k], leaves)
      return out
    }
    case 'union': {
      const dv = node['x-default-variant']
      return dv ? { [dv]: zero(node.properties[dv], [...path, dv], leaves) } : {}
    }
    case 'array': {
      // A flexible tail is empty (its count field, if any, is 0 too).
      const n = flexible ? 0 : node['x-count']
      return Array.from({ length: n }, (_, i) => zero(node.items, [...path, i], leaves))
    }
    default:
      leaves.push({ path, type })
      return type === 'u64' || type === 's64' ? 0n : 0
  }
}

const show = (path: Seg[]): string => path.reduce<string>((s, p) => typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : p, '')

function withValue(value: unknown, path: Seg[], v: unknown): unknown {
  const copy = structuredClone(value) as any
  let o = copy
  for (const p of path.slice(0, -1)) o = o[p]
  o[path[path.length - 1]] = v
  return copy
}

const failsAt = (r: ReturnType<typeof validateStruct>, path: string): boolean => !r.ok && r.errors.some(e => e.path === path)

t.test('every spec/wire struct', async t => {
  t.ok(schemas.size >= 60, `${schemas.size} structs`)
  for (const [name, schema] of schemas) {
    t.test(name, async t => {
      const leaves: Leaf[] = []
      const value = zero(schema, [], leaves)
      const ok = validateStruct(name, value)
      t.same(ok, { ok: true }, 'zero value validates')

      for (const leaf of leaves.filter(l => l.type === 'u64' || l.type === 's64')) {
        const p = show(leaf.path)
        const r = validateStruct(name, withValue(value, leaf.path, 0))
        t.ok(failsAt(r, p), `${p}: number for ${leaf.type} fails`, { errors: r.ok ? [] : r.errors })
        t.ok(failsAt(validateStruct(name, withValue(value, leaf.path, 1n << 64n)), p), `${p}: 2^64 fails`)
      }
      for (const leaf of leaves.filter(l => l.type === 'u32' || l.type === 'u32be')) {
        const p = show(leaf.path)
        t.ok(failsAt(validateStruct(name, withValue(value, leaf.path, 2 ** 32)), p), `${p}: 2^32 fails`)
        t.ok(failsAt(validateStruct(name, withValue(value, leaf.path, -1)), p), `${p}: -1 fails`)
        t.ok(failsAt(validateStruct(name, withValue(value, leaf.path, 1.5)), p), `${p}: 1.5 fails`)
      }
      for (const leaf of leaves.filter(l => l.type === 's32')) {
        const p = show(leaf.path)
        t.ok(failsAt(validateStruct(name, withValue(value, leaf.path, 2 ** 31)), p), `${p}: 2^31 fails`)
        t.ok(validateStruct(name, withValue(value, leaf.path, -(2 ** 31))).ok, `${p}: -2^31 passes`)
      }
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        t.ok(failsAt(validateStruct(name, { ...value, bogus: 1 }), 'bogus'), 'extra member fails')
        const [k] = (schema.required ?? []) as string[]
        if (k) {
          const missing: Record<string, unknown> = { ...value }
          delete missing[k]
          t.ok(failsAt(validateStruct(name, missing), k), `missing ${k} fails`)
        }
      }
    })
  }
})

function zeroOf(name: string): any {
  return zero(schemas.get(name)!, [], [])
}

t.test('rules carried by x-* keywords', async t => {
  t.match(validateStruct('obd_uuid', 'a'.repeat(40)), { ok: true }, 'char[40] holds 40 bytes')
  t.match(validateStruct('obd_uuid', 'é'.repeat(21)), { ok: false, errors: [{ path: '', message: /42 UTF-8 bytes/ }] }, 'UTF-8 length counts')
  t.match(validateStruct('obd_uuid', 5), { ok: false }, 'obd_uuid is a string')

  const nid = zeroOf('lnet_nid')
  t.ok(failsAt(validateStruct('lnet_nid', { ...nid, nid_addr: new Uint8Array(15) }), 'nid_addr'), 'bytes of the wrong length fail')
  t.ok(failsAt(validateStruct('lnet_nid', { ...nid, nid_addr: [...new Uint8Array(16)] }), 'nid_addr'), 'bytes must be a Uint8Array')
  t.ok(failsAt(validateStruct('lnet_nid', { ...nid, nid_num: 65536 }), 'nid_num'), 'u16be range')

  const dirent = zeroOf('lu_dirent')
  t.ok(validateStruct('lu_dirent', { ...dirent, lde_namelen: 3, lde_name: 'abc' }).ok, 'flexible char matches its count field')
  t.ok(failsAt(validateStruct('lu_dirent', { ...dirent, lde_namelen: 2, lde_name: 'abc' }), 'lde_name'), 'count field mismatch fails')
  const msg = zeroOf('lustre_msg_v2')
  t.ok(validateStruct('lustre_msg_v2', { ...msg, lm_bufcount: 2, lm_buflens: [184, 104] }).ok, 'lm_buflens of lm_bufcount')
  t.ok(failsAt(validateStruct('lustre_msg_v2', { ...msg, lm_bufcount: 1, lm_buflens: [184, 104] }), 'lm_buflens'), 'too many buflens')
  t.ok(failsAt(validateStruct('lustre_msg_v2', { ...msg, lm_bufcount: 1, lm_buflens: [2 ** 32] }), 'lm_buflens[0]'), 'array element range')

  const body = zeroOf('ptlrpc_body_v3')
  t.ok(failsAt(validateStruct('ptlrpc_body_v3', { ...body, pb_pre_versions: [0n, 0n, 0n] }), 'pb_pre_versions'), 'fixed array length')

  const desc = zeroOf('ldlm_lock_desc')
  const ibits = { l_inodebits: zeroOf('ldlm_inodebits') }
  const withType = (lr_type: number) => ({ ...desc, l_resource: { ...desc.l_resource, lr_type }, l_policy_data: ibits })
  t.ok(validateStruct('ldlm_lock_desc', withType(13)).ok, 'union variant selected by its discriminator')
  t.ok(validateStruct('ldlm_lock_desc', { ...withType(11), l_policy_data: {} }).ok, 'empty union always passes')
  t.ok(failsAt(validateStruct('ldlm_lock_desc', withType(11)), 'l_policy_data'), 'variant other than the selected one fails')
  t.ok(failsAt(validateStruct('ldlm_lock_desc', withType(10)), 'l_policy_data'), 'variant where none is selected fails')
  t.ok(failsAt(validateStruct('ldlm_lock_desc', { ...withType(13), l_policy_data: { ...ibits, l_extent: zeroOf('ldlm_extent') } }), 'l_policy_data'), 'two variants fail')

  const ib = zeroOf('ldlm_inodebits')
  t.ok(validateStruct('ldlm_inodebits', { ...ib, try_bits: 5n, cancel_bits: 5n }).ok, 'alias equal to its original')
  t.ok(failsAt(validateStruct('ldlm_inodebits', { ...ib, try_bits: 5n, cancel_bits: 4n }), 'cancel_bits'), 'alias differing from its original fails')

  t.ok(validateStruct('ost_id', { oi_fid: zeroOf('lu_fid') }).ok, 'ost_id holds either view')
  t.notOk(validateStruct('ost_id', { oi: zeroOf('ost_id').oi, oi_fid: zeroOf('lu_fid') }).ok, 'but not both')
  t.notOk(validateStruct('ost_id', {}).ok, 'nor none')
})

t.test('assertValid and unknown structs', async t => {
  const req = zeroOf('ldlm_request')
  req.lock_desc.l_req_mode = -1
  const e = t.throws(() => assertValid('ldlm_request', req)) as unknown
  t.ok(e instanceof WireValidationError && isWireError(e), 'a LustreWireError')
  t.match(e, { code: 'LC_WIRE_BAD_VALUE', field: 'ldlm_request.lock_desc.l_req_mode', errors: [{ path: 'lock_desc.l_req_mode' }] })
  t.doesNotThrow(() => assertValid('ldlm_request', zeroOf('ldlm_request')))
  t.throws(() => validateStruct('no_such_struct', {}), { code: 'LC_WIRE_SPEC' })
})

t.test('validateMessage paths', async t => {
  const req = zeroOf('ldlm_request')
  req.lock_desc.l_req_mode = 2 ** 32
  const niobuf = zeroOf('niobuf_remote')
  const msg = {
    header: { ...zeroOf('lustre_msg_v2'), lm_bufcount: 4, lm_buflens: [184, 104, 32, 0] },
    body: zeroOf('ptlrpc_body_v3'),
    bodyStruct: 'ptlrpc_body_v3',
    buffers: [
      { field: 'RMF_DLM_REQ', struct: 'ldlm_request', kind: 'struct', value: req },
      { field: 'RMF_NIOBUF_REMOTE', struct: 'niobuf_remote', kind: 'array', value: [niobuf, { ...niobuf, rnb_offset: 1 }] },
      { field: 'RMF_NAME', kind: 'string', value: null },
    ],
  }
  t.same(validateMessage(msg).map(e => e.path), ['buffers[0].RMF_DLM_REQ.lock_desc.l_req_mode', 'buffers[1].RMF_NIOBUF_REMOTE[1].rnb_offset'])
  msg.body.pb_opc = -1
  t.same(validateMessage({ ...msg, buffers: [{ kind: 'u64', value: 1 }] }).map(e => e.path), ['body.pb_opc', 'buffers[0]'])
  t.same(validateMessage({ ...msg, bodyStruct: 'x', buffers: [] }).map(e => e.path), ['bodyStruct'])
})

t.test('a decoded LDLM_ENQUEUE validates', async t => {
  const spec = loadSpec()
  const body = { ...zeroOf('ptlrpc_body_v3'), pb_type: Number(constantOf(spec, 'PTL_RPC_MSG_REQUEST')), pb_opc: Number(constantOf(spec, 'LDLM_ENQUEUE')), pb_jobid: 'dd.0' }
  const req = zeroOf('ldlm_request')
  req.lock_handle = [{ cookie: 5n }, { cookie: 0n }]
  req.lock_desc.l_resource.lr_type = 13
  req.lock_desc.l_policy_data = { l_inodebits: { ...zeroOf('ldlm_inodebits'), bits: 1n } }
  const format = spec.formats.get('RQF_LDLM_ENQUEUE')!
  const msg = decodeMessage(encodeFormatted(format, 'request', { body, fields: { RMF_DLM_REQ: req } }))
  t.equal(msg.format, 'RQF_LDLM_ENQUEUE')
  t.same(validateMessage(msg), [], 'no problems')
  ;(msg.fields.RMF_DLM_REQ as any).lock_desc.l_req_mode = -1
  t.same(validateMessage(msg).map(e => e.path), ['buffers[0].RMF_DLM_REQ.lock_desc.l_req_mode'])
  ;(msg.fields.RMF_DLM_REQ as any).lock_desc.l_req_mode = 0
  // Cheap enough to run on every decoded message: well under a millisecond each.
  const t0 = performance.now()
  for (let i = 0; i < 1000; i++) validateMessage(msg)
  const perMsg = (performance.now() - t0) / 1000
  t.ok(perMsg < 1, `${(perMsg * 1000).toFixed(0)} µs per message`)
})

// Random bytes through the decoder: a decoded value must validate exactly when the
// encoder takes it back, so validation and codec cannot drift apart.
t.test('decoder, validator and encoder agree', async t => {
  const layouts = new Map<string, StructLayout>()
  const layoutOf = (name: string): StructLayout => {
    let l = layouts.get(name)
    if (!l) layouts.set(name, (l = compileStruct(name, schemas.get(name)!, ref => layoutOf(basename(ref, '.json')))))
    return l
  }
  let seed = 0x2545f491
  const rnd = (): number => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) & 0xff)
  for (const name of schemas.keys()) {
    const layout = layoutOf(name)
    let decoded = 0
    let refused = 0
    const disagreements: string[] = []
    for (let i = 0; i < 48; i++) {
      // From all zeros to all random: sparse inputs keep count fields small enough to decode.
      const density = (i % 8) / 8
      const buf = Uint8Array.from({ length: layout.size + 256 }, () => (rnd() < density * 256 ? rnd() : 0))
      let value: unknown
      try {
        value = decodeAt(reader(buf), layout, 0, buf.length).value
      } catch (e) {
        if (isWireError(e)) continue
        throw e
      }
      decoded++
      const r = validateStruct(name, value)
      let encodes = true
      try {
        encodeAt(reader(new Uint8Array(encodedSize(layout, value))), layout, 0, value)
      } catch (e) {
        if (!isWireError(e)) throw e
        encodes = false
        refused++
      }
      if (r.ok !== encodes) disagreements.push(`validate ${r.ok ? 'ok' : JSON.stringify(r.errors)}, encode ${encodes}`)
    }
    t.same(disagreements, [], `${name}: ${decoded} decoded, ${refused} refused by both`)
  }
})
