// reference/common: connect gives an export handle, later requests must carry it,
// requests are routed to the target of their export, and errors come back as
// negative errnos (target_handle_connect, tgt_request_handle).
import t from 'tap'
import { LnetEndpoint, PtlrpcEndpoint, type Peer } from '../../src/transport/index.js'
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { E, TargetHost, TargetImport, LustreRpcError, errnoName, type Target, type TargetHandler } from '../../reference/common/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

function ost(index: number, seen: string[]): Target {
  const handlers = new Map<string, TargetHandler>([
    ['OST_GETATTR', ({ exp }) => {
      seen.push(`${index}:${exp.clientUuid}`)
      return { status: 0, fields: { RMF_OST_BODY: makeStruct('ost_body', { oa: { o_size: BigInt(index) } }) } }
    }],
  ])
  return {
    uuid: `lustre-OST000${index}_UUID`, connectOpcode: 'OST_CONNECT', disconnectOpcode: 'OST_DISCONNECT',
    supportedFlags: C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_INDEX'),
    connectData: () => ({ ocd_index: index }),
    handlers,
  }
}

async function setup(t: { teardown(fn: () => unknown): void }) {
  const sLnet = new LnetEndpoint({ nid: '127.0.0.1@tcp' })
  const cLnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid: 4242 })
  const host = new TargetHost(new PtlrpcEndpoint(sLnet))
  const seen: string[] = []
  host.add(ost(0, seen))
  host.add(ost(1, seen))
  host.serve('ost')
  const port = await sLnet.listen(0, '127.0.0.1')
  const peer: Peer = await cLnet.connect('127.0.0.1', port)
  const rpc = new PtlrpcEndpoint(cLnet)
  t.teardown(async () => { await cLnet.close(); await sLnet.close() })
  const imp = (target: string, flags = C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_INDEX') | C('OBD_CONNECT_GRANT')) =>
    new TargetImport(rpc, peer, { service: 'ost', targetUuid: target, clientUuid: 'test-client_UUID', flags, timeoutMs: 5000 })
  return { imp, seen }
}

const getattr = { format: 'RQF_OST_GETATTR', fields: { RMF_OST_BODY: makeStruct('ost_body', {}) } }

t.test('connect negotiates flags and returns a handle that routes later requests', async t => {
  const { imp, seen } = await setup(t)
  const a = imp('lustre-OST0000_UUID')
  const b = imp('lustre-OST0001_UUID')
  await a.connect()
  await b.connect()
  t.not(a.handle, 0n, 'an export handle')
  t.not(a.handle, b.handle, 'one export per target')
  t.equal(a.flags, C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_INDEX'), 'flags asked and supported; GRANT not granted')
  t.equal(b.ocd.ocd_index, 1, 'target data in the connect reply')
  const ra = await a.call(getattr)
  const rb = await b.call(getattr)
  t.equal(((ra.reply.fields.RMF_OST_BODY as { oa: { o_size: bigint } }).oa.o_size), 0n, 'routed to OST0000')
  t.equal(((rb.reply.fields.RMF_OST_BODY as { oa: { o_size: bigint } }).oa.o_size), 1n, 'routed to OST0001')
  t.same(seen, ['0:test-client_UUID', '1:test-client_UUID'])
  t.equal(await a.ping(), 0, 'ping on a live export')
})

t.test('reconnecting keeps the export; disconnect ends it', async t => {
  const { imp } = await setup(t)
  const a = imp('lustre-OST0000_UUID')
  await a.connect()
  const first = a.handle
  await a.connect()
  t.equal(a.handle, first, 'same client UUID, same export')
  t.equal(a.connCnt, 2, 'connection count goes up')
  await a.disconnect()
  a.handle = first
  t.equal(await a.ping(), E.ENOTCONN, 'the old handle is no longer an export')
})

t.test('errors come back as Lustre errnos', async t => {
  const { imp } = await setup(t)
  const ghost = imp('lustre-OST0009_UUID')
  const e1 = await ghost.connect().catch(e => e)
  t.ok(e1 instanceof LustreRpcError, 'typed error')
  t.equal((e1 as LustreRpcError).status, E.ENODEV, 'unknown target: -ENODEV')
  const a = imp('lustre-OST0000_UUID')
  const e2 = await a.call(getattr).catch(e => e)
  t.equal((e2 as LustreRpcError).status, E.ENOTCONN, 'no export yet: -ENOTCONN')
  await a.connect()
  const r = await a.call({ format: 'RQF_OST_STATFS', allowError: true })
  t.equal(r.reply.body.pb_status, E.EOPNOTSUPP, 'an opcode the target does not serve: -EOPNOTSUPP')
  t.equal(errnoName(E.ENOENT), '-ENOENT')
  t.equal(E.ENOENT, -2)
  t.equal(errnoName(-9999), '-9999')
})
