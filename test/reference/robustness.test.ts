// No input crashes a reference server, and it keeps serving: requests of every MDS and
// OST format, sent on a live export, with random bytes of their buffers overwritten.
// Each must be answered with a decodable reply whose status is 0 or a negative errno
// (the transport answers what does not decode with -EPROTO), and afterwards the servers
// still answer pings and ordinary requests from another client.
import t from 'tap'
import fc from 'fast-check'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LnetEndpoint, buildBody, type Peer } from '../../src/transport/index.js'
import { constantOf, decodeMessage, encodeFormatted, loadSpec, type RpcFormat } from '../../src/wire/index.js'
import { sampleFields } from '../../src/tour/index.js'
import { startCluster } from '../../reference/cluster/index.js'
import { LustreClient } from '../../reference/client/index.js'
import { TargetImport, userLnetPid } from '../../reference/common/index.js'
import { PtlrpcEndpoint } from '../../src/transport/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const SEED = Number(process.env.LC_SEED ?? 20261127)

interface Target { service: 'mds' | 'ost'; peer: Peer; lnet: LnetEndpoint; handle: bigint; formats: RpcFormat[] }

/** Sends raw request bytes to `portal` with match bits `xid` and waits for the reply's bytes. */
function rawCall(lnet: LnetEndpoint, peer: Peer, portal: number, replyPortal: number, xid: bigint, bytes: Uint8Array, waiters: Map<bigint, (b: Uint8Array) => void>): Promise<Uint8Array | undefined> {
  return new Promise(resolve => {
    const timer = setTimeout(() => { waiters.delete(xid); resolve(undefined) }, 5000)
    waiters.set(xid, b => { clearTimeout(timer); waiters.delete(xid); resolve(b) })
    lnet.put(peer, { portal, matchBits: xid, ack: false }, bytes).catch(() => resolve(undefined))
  })
}

t.test('mutated requests of every format get a reply, and the servers keep serving', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lc-robust-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startCluster({ dir, osts: 2, mdsPort: 0, ossPort: 0 })
  t.teardown(() => c.stop())

  // A connected export on each service (requests without one stop at -ENOTCONN, before any handler).
  const targets: Target[] = []
  const waiters = new Map<bigint, (b: Uint8Array) => void>()
  for (const [service, addr, uuid] of [['mds', c.mdsAddress, 'lustre-MDT0000_UUID'], ['ost', c.ossAddresses[0], 'lustre-OST0000_UUID']] as const) {
    const lnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid: userLnetPid() })
    t.teardown(() => lnet.close())
    const [host, port] = addr.split(':')
    const peer = await lnet.connect(host, Number(port))
    const imp = new TargetImport(new PtlrpcEndpoint(lnet), peer, {
      service, targetUuid: uuid, clientUuid: `robust-${service}_UUID`, timeoutMs: 5000,
      flags: C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20') | C('OBD_CONNECT_BULK_MBITS') | C('OBD_CONNECT_IBITS'),
    })
    await imp.connect()
    for (const p of [Number(C('MDC_REPLY_PORTAL')), Number(C('OSC_REPLY_PORTAL'))]) lnet.bindPortal(p, m => waiters.get(m.body.match_bits as bigint)?.(m.payload))
    const formats = [...spec.opcodes.values()]
      .filter(op => op.requestPortal[service] && !op.opcode.endsWith('_CONNECT') && !op.opcode.endsWith('_DISCONNECT') && !op.opcode.startsWith('LDLM_'))
      .flatMap(op => op.formats.filter(f => f.opcode === op.opcode))
    targets.push({ service, peer, lnet, handle: imp.handle, formats })
  }

  let xid = 1n << 40n
  let answered = 0
  const statuses = new Map<number, number>()
  await fc.assert(fc.asyncProperty(
    fc.nat(), fc.nat(), fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 12 }),
    async (ti, fi, flips) => {
      const tg = targets[ti % targets.length]
      const fmt = tg.formats[fi % tg.formats.length]
      const op = spec.opcodesByName.get(fmt.opcode)!
      xid += 16n
      // Bulk opcodes get what a client offers: MDs at the request's match bits (1 MiB each, as
      // the transport splits bulks), so that a server's GET or PUT is answered and it replies.
      const detach: Array<{ detach(): void }> = []
      if (op.bulk && op.bulkPortal) {
        for (let i = 0; i < 4; i++) {
          detach.push(tg.lnet.attachMd({ portal: Number(C(op.bulkPortal)), matchBits: xid + BigInt(i), peer: tg.peer, kind: op.bulk === 'get_source' ? 'source' : 'sink', buffer: new Uint8Array(1 << 20) }))
        }
      }
      const body = buildBody(spec, { pb_opc: op.opc, pb_handle: { cookie: tg.handle }, pb_conn_cnt: 1, pb_timeout: 100, pb_mbits: op.bulk ? xid : 0n }, 'request')
      const bytes = encodeFormatted(fmt, 'request', { body, fields: sampleFields(fmt, 'request', { lockType: tg.service === 'ost' ? 'extent' : 'ibits', handle: tg.handle, seq: 1 }) }, spec)
      // Mutate only past buffer 0 (the body keeps the export handle and opcode, so handlers run).
      const start = 8 * Math.ceil((32 + 4 * new DataView(bytes.buffer).getUint32(0, true)) / 8) + 184
      if (bytes.length > start) for (const f of flips) bytes[start + (f.at % (bytes.length - start))] = f.byte
      const reply = await rawCall(tg.lnet, tg.peer, Number(C(op.requestPortal[tg.service])), Number(C(op.replyPortal[tg.service])), xid, bytes, waiters)
      for (const d of detach) d.detach()
      if (!reply) throw new Error(`${fmt.name}: no reply within 5 s`)
      const m = decodeMessage(reply, { requestFormat: fmt.name })
      const status = m.body.pb_status as number
      if (!Number.isInteger(status) || status > 0) throw new Error(`${fmt.name}: status ${status}`)
      answered++
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    }), { seed: SEED, numRuns: 200, endOnFailure: true })
  t.equal(answered, 200, `every mutated request answered; statuses ${[...statuses].map(([s, n]) => `${s} x${n}`).join(', ')}`)

  // The servers still work for a client that had nothing to do with any of it.
  const client = await LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses })
  t.teardown(() => client.close())
  t.equal(await client.ping(), 0, 'MDS answers a ping')
  await client.mkdir('/after')
  await client.writeFile('/after/f', new Uint8Array(70000).fill(7))
  t.equal((await client.readFile('/after/f')).length, 70000, 'and does metadata and I/O')
})
