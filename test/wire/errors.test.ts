// The wire layer's typed errors, table-driven: every code of WIRE_ERROR_CODES has
// a class (what code raises it) and a path through the codec that raises it;
// code, name, offset, field, value and limit are set as errors.ts documents;
// toJSON() survives JSON.stringify (bigint values as decimal strings).
import t from 'tap'
import {
  WIRE_ERROR_CODES, LustreWireError, isWireError,
  TruncatedError, BadMagicError, BadBufcountError, BufferOverLimitError, UnknownOpcodeError, UnknownMessageTypeError,
  BadVersionError, BadLengthError, BadValueError, BadNidError, SpecError,
  loadSpec, structOf, decodeStruct, encodeStruct, decodeMessage, encodeMessage, makeStruct, constantOf, parseNid,
  FrameDecoder, encodeConnreq,
  type WireErrorCode,
} from '../../src/wire/index.js'

const spec = loadSpec()
type Want = { name: string; offset?: number; field?: string; value?: number | bigint | string; limit?: number }

interface Row {
  code: WireErrorCode
  /** the class, built directly */
  make: () => LustreWireError
  want: Want
  /** a codec call that raises this code */
  trigger: () => unknown
}

const ping = (members: Record<string, unknown> = {}) => makeStruct('ptlrpc_body_v3', {
  pb_type: Number(constantOf(spec, 'PTL_RPC_MSG_REQUEST')), pb_opc: 9999, ...members,
})
const msg = (): Uint8Array => encodeMessage({ body: ping(), buffers: [] })
const setU32 = (b: Uint8Array, off: number, v: number) => { new DataView(b.buffer, b.byteOffset).setUint32(off, v, true); return b }

const rows: Row[] = [
  {
    code: 'LC_WIRE_TRUNCATED',
    make: () => new TruncatedError('lu_fid.f_oid', 8, 16, 10),
    want: { name: 'TruncatedError', offset: 8, field: 'lu_fid.f_oid', limit: 10 },
    trigger: () => decodeStruct('lu_fid', new Uint8Array(10)),
  },
  {
    code: 'LC_WIRE_BAD_MAGIC',
    make: () => new BadMagicError('lustre_msg_v2.lm_magic', 8, 0xdeadbeef),
    want: { name: 'BadMagicError', offset: 8, field: 'lustre_msg_v2.lm_magic', value: 0xdeadbeef },
    trigger: () => decodeMessage(setU32(msg(), 8, 0xdeadbeef)),
  },
  {
    code: 'LC_WIRE_BAD_BUFCOUNT',
    make: () => new BadBufcountError(0, 20, 19),
    want: { name: 'BadBufcountError', offset: 0, field: 'lustre_msg_v2.lm_bufcount', value: 20, limit: 19 },
    trigger: () => decodeMessage(setU32(msg(), 0, 0)),
  },
  {
    code: 'LC_WIRE_BUFFER_OVER_LIMIT',
    make: () => new BufferOverLimitError('_lnet_hdr_nid4.payload_length', 52, 0xffffffff, 1 << 20),
    want: { name: 'BufferOverLimitError', offset: 52, field: '_lnet_hdr_nid4.payload_length', value: 0xffffffff, limit: 1 << 20 },
    trigger: () => decodeMessage(setU32(msg(), 32, 0x7fffffff)),
  },
  {
    code: 'LC_WIRE_UNKNOWN_OPCODE',
    make: () => new UnknownOpcodeError(56, 9999),
    want: { name: 'UnknownOpcodeError', offset: 56, field: 'ptlrpc_body.pb_opc', value: 9999 },
    trigger: () => decodeMessage(msg(), { strict: true }),
  },
  {
    code: 'LC_WIRE_UNKNOWN_MSG_TYPE',
    make: () => new UnknownMessageTypeError('ksock_msg_hdr.ksh_type', 72, 0xc2),
    want: { name: 'UnknownMessageTypeError', offset: 72, field: 'ksock_msg_hdr.ksh_type', value: 0xc2 },
    trigger: () => new FrameDecoder({ start: 'message' }).push(setU32(new Uint8Array(24), 0, 0xc2)),
  },
  {
    code: 'LC_WIRE_BAD_VERSION',
    make: () => new BadVersionError('lnet_acceptor_connreq.acr_version', 4, 2),
    want: { name: 'BadVersionError', offset: 4, field: 'lnet_acceptor_connreq.acr_version', value: 2 },
    trigger: () => new FrameDecoder().push(setU32(encodeConnreq(1n), 4, 2)),
  },
  {
    code: 'LC_WIRE_BAD_LENGTH',
    make: () => new BadLengthError('RMF_NAME', 240, 5, 'string buffer is not NUL-terminated'),
    want: { name: 'BadLengthError', offset: 240, field: 'RMF_NAME', value: 5 },
    trigger: () => decodeStruct('lu_fid', new Uint8Array(17), { exact: true }),
  },
  {
    code: 'LC_WIRE_BAD_VALUE',
    make: () => new BadValueError('lu_fid.f_oid', -1, 'not a u32 integer'),
    want: { name: 'BadValueError', field: 'lu_fid.f_oid', value: -1 },
    trigger: () => encodeStruct('lu_fid', { f_seq: 0n, f_oid: -1, f_ver: 0 }),
  },
  {
    code: 'LC_WIRE_BAD_NID',
    make: () => new BadNidError('1.2.3.4@o2ib', 'network o2ib is not a TCP (socklnd) network'),
    want: { name: 'BadNidError', field: 'nid', value: '1.2.3.4@o2ib' },
    trigger: () => parseNid('1.2.3.4@o2ib'),
  },
  {
    code: 'LC_WIRE_SPEC',
    make: () => new SpecError('no_such_struct', 'struct no_such_struct is not in spec/wire'),
    want: { name: 'SpecError', field: 'no_such_struct' },
    trigger: () => structOf(spec, 'no_such_struct'),
  },
]

t.strictSame(rows.map(r => r.code).sort(), Object.keys(WIRE_ERROR_CODES).sort(), 'the table covers every code of WIRE_ERROR_CODES, once')

for (const row of rows) {
  t.test(row.code, async t => {
    const e = row.make()
    t.type(e, Error, 'is an Error')
    t.type(e, LustreWireError, 'is a LustreWireError')
    t.ok(isWireError(e), 'isWireError')
    t.equal(e.code, row.code, 'code')
    t.equal(e.name, row.want.name, 'name is the class name')
    t.equal(e.constructor.name, row.want.name)
    t.equal(e.offset, row.want.offset, 'offset')
    t.equal(e.field, row.want.field, 'field')
    t.equal(e.value, row.want.value, 'value')
    t.equal(e.limit, row.want.limit, 'limit')
    t.ok(e.message.startsWith(`${row.code}: `), 'message starts with the code')
    if (e.field !== undefined) t.match(e.message, `field ${e.field}`, 'message names the field')
    if (e.offset !== undefined) t.match(e.message, `offset ${e.offset}`, 'message names the offset')
    t.ok(typeof e.stack === 'string' && e.stack.includes(row.want.name), 'has a stack')
    t.equal(WIRE_ERROR_CODES[row.code].length > 0, true, 'the catalogue describes the code')

    const json = JSON.parse(JSON.stringify(e))
    const want: Record<string, unknown> = { code: row.code, message: e.message }
    for (const k of ['offset', 'field', 'value', 'limit'] as const) {
      const v = row.want[k]
      if (v !== undefined) want[k] = typeof v === 'bigint' ? v.toString() : v
    }
    t.strictSame(json, want, 'toJSON through JSON.stringify')

    let raised: unknown
    try {
      row.trigger()
    } catch (err) {
      raised = err
    }
    t.ok(isWireError(raised), `the codec raises it (${raised instanceof Error ? raised.message : String(raised)})`)
    if (isWireError(raised)) {
      t.equal(raised.code, row.code, 'codec path: code')
      t.equal(raised.name, row.want.name, 'codec path: class')
      t.ok(JSON.parse(JSON.stringify(raised)).code === row.code, 'codec path: serialises')
      if (row.code !== 'LC_WIRE_BAD_VALUE' && row.code !== 'LC_WIRE_BAD_NID' && row.code !== 'LC_WIRE_SPEC') {
        t.type(raised.offset, 'number', 'codec path: a decoding error has an offset')
      }
      t.type(raised.field, 'string', 'codec path: field is set')
    }
  })
}

t.test('bigint values serialise as decimal strings', async t => {
  const e = new BufferOverLimitError('lov_mds_md_v1.lmm_stripe_count', 24, 0xffffffffffffffffn, 2000)
  t.equal(e.value, 0xffffffffffffffffn, 'value kept as a bigint')
  let s = ''
  t.doesNotThrow(() => { s = JSON.stringify(e) }, 'JSON.stringify does not throw on a bigint value')
  t.strictSame(JSON.parse(s), {
    code: 'LC_WIRE_BUFFER_OVER_LIMIT', message: e.message, offset: 24, field: 'lov_mds_md_v1.lmm_stripe_count',
    value: '18446744073709551615', limit: 2000,
  })
  const v = new BadValueError('lu_fid.f_seq', -5n, 'out of u64 range')
  t.equal(JSON.parse(JSON.stringify(v)).value, '-5')
  const o = new BadValueError('x', { a: 1 }, 'not a scalar')
  t.equal(o.value, '[object Object]', 'a non-scalar value is kept as its string')
})

t.test('the base class and isWireError', async t => {
  for (const code of Object.keys(WIRE_ERROR_CODES) as WireErrorCode[]) {
    const e = new LustreWireError(code, 'x', { offset: 3, field: 'f', value: 1, limit: 2 })
    t.equal(e.name, 'LustreWireError', `${code}: name`)
    t.equal(e.message, `${code}: x (field f, offset 3)`, `${code}: message`)
    t.strictSame(e.toJSON(), { code, message: e.message, offset: 3, field: 'f', value: 1, limit: 2 }, `${code}: toJSON`)
  }
  const bare = new LustreWireError('LC_WIRE_SPEC', 'y')
  t.equal(bare.message, 'LC_WIRE_SPEC: y', 'no details, no parenthesis')
  t.strictSame(JSON.parse(JSON.stringify(bare)), { code: 'LC_WIRE_SPEC', message: 'LC_WIRE_SPEC: y' }, 'undefined details are left out')
  const zero = new LustreWireError('LC_WIRE_TRUNCATED', 'z', { offset: 0 })
  t.equal(zero.message, 'LC_WIRE_TRUNCATED: z (offset 0)', 'offset 0 is still shown')
  for (const notOurs of [new Error('x'), new RangeError('x'), { code: 'LC_WIRE_TRUNCATED' }, null, undefined, 'LC_WIRE_TRUNCATED']) {
    t.notOk(isWireError(notOurs), `isWireError(${String(notOurs)}) is false`)
  }
  t.ok(isWireError(new TruncatedError('a', 0, 1, 0)), 'subclasses are wire errors')
  // A frame that is not a LustreWireError by prototype but looks like one is not ours.
  t.notOk(isWireError(Object.assign(new Error('LC_WIRE_TRUNCATED: x'), { code: 'LC_WIRE_TRUNCATED' })), 'a look-alike is not')
})
