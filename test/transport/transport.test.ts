// LNet over TCP and PtlRPC between real endpoints on loopback (ephemeral ports).
import t from 'tap'
import { connect } from 'node:net'
import { LnetEndpoint, PtlrpcEndpoint, type Peer, type TransportError } from '../../src/transport/index.js'
import {
  constantOf, loadSpec, encodeConnreq, encodeHello, encodeLnetFrame, encodeFormatted, decodeMessage, nidToWire,
  FrameDecoder, makeStruct,
} from '../../src/wire/index.js'
import { buildBody } from '../../src/transport/index.js'

const spec = loadSpec()
const P = (n: string): number => Number(constantOf(spec, n))

async function pair(t: { teardown(fn: () => unknown): void }, opts: { logs?: string[] } = {}) {
  const log = (l: string): void => { opts.logs?.push(l) }
  const sl = new LnetEndpoint({ nid: '127.0.0.1@tcp', log })
  const cl = new LnetEndpoint({ nid: '127.0.0.3@tcp', bindAddress: '127.0.0.3', log })
  const server = new PtlrpcEndpoint(sl)
  const client = new PtlrpcEndpoint(cl)
  const port = await sl.listen(0, '127.0.0.1')
  t.teardown(async () => { await cl.close(); await sl.close() })
  return { sl, cl, server, client, port }
}

t.test('OBD_PING round trip: reply matched by xid, status and opcode echoed', async t => {
  const { cl, server, client, port } = await pair(t)
  server.serve(P('OST_REQUEST_PORTAL'), P('OSC_REPLY_PORTAL'), () => ({ status: 0, body: { pb_last_committed: 7n } }))
  const peer = await cl.connect('127.0.0.1', port)
  t.equal(peer.nid, nidToWire('127.0.0.1@tcp'), 'peer NID learnt from its hello')
  for (let i = 0; i < 3; i++) {
    const r = await client.call(peer, { format: 'RQF_OBD_PING', portal: P('OST_REQUEST_PORTAL'), replyPortal: P('OSC_REPLY_PORTAL') })
    t.equal(r.reply.kind, 'reply')
    t.equal(r.reply.opcode, 'OBD_PING')
    t.equal(r.reply.body.pb_last_committed, 7n)
  }
})

t.test('bulk: a 2.5 MiB write is GOT over three MDs and a read is PUT back', async t => {
  const { cl, server, client, port } = await pair(t)
  let stored: Uint8Array = new Uint8Array(0)
  server.serve(P('OST_IO_PORTAL'), P('OSC_REPLY_PORTAL'), async req => {
    const n = (req.msg.fields.RMF_NIOBUF_REMOTE as Array<{ rnb_len: number }>)[0].rnb_len
    if (req.msg.opcode === 'OST_WRITE') stored = await req.bulkGet(n, P('OST_BULK_PORTAL'))
    else await req.bulkPut(stored.subarray(0, n), P('OST_BULK_PORTAL'))
    return { status: 0, fields: { RMF_OST_BODY: makeStruct('ost_body') } }
  })
  const peer = await cl.connect('127.0.0.1', port)
  const data = new Uint8Array(2.5 * 1024 * 1024).map((_, i) => (i * 31 + (i >> 12)) & 0xff)
  const io = (len: number) => ({
    RMF_OST_BODY: makeStruct('ost_body'),
    RMF_OBD_IOOBJ: [makeStruct('obd_ioobj', { ioo_bufcnt: 1 })],
    RMF_NIOBUF_REMOTE: [makeStruct('niobuf_remote', { rnb_len: len })],
  })
  const w = await client.call(peer, { format: 'RQF_OST_BRW_WRITE', portal: P('OST_IO_PORTAL'), replyPortal: P('OSC_REPLY_PORTAL'), fields: io(data.length), bulkSource: data })
  t.equal(w.reply.body.pb_status, 0)
  t.same(Buffer.from(stored), Buffer.from(data), 'server got every byte')
  const r = await client.call(peer, { format: 'RQF_OST_BRW_READ', portal: P('OST_IO_PORTAL'), replyPortal: P('OSC_REPLY_PORTAL'), fields: io(data.length), bulkSinkLength: data.length })
  t.same(Buffer.from(r.bulk!), Buffer.from(data), 'client read every byte back')
})

t.test('a server calls back its client over the connection the client opened', async t => {
  const { cl, sl, server, client, port } = await pair(t)
  let seen = 0
  client.serve(P('LDLM_CB_REQUEST_PORTAL'), P('LDLM_CB_REPLY_PORTAL'), req => {
    seen++
    t.equal(req.msg.opcode, 'LDLM_BL_CALLBACK')
    return { status: 0 }
  })
  await cl.connect('127.0.0.1', port)
  const clientPeer: Peer = { nid: cl.nid, pid: cl.pid }
  t.ok(sl.isConnected(clientPeer), 'server knows the client by the NID in its hello')
  const r = await server.call(clientPeer, {
    format: 'RQF_LDLM_BL_CALLBACK', portal: P('LDLM_CB_REQUEST_PORTAL'), replyPortal: P('LDLM_CB_REPLY_PORTAL'),
    fields: { RMF_DLM_REQ: makeStruct('ldlm_request', { lock_count: 1, lock_handle: [{ cookie: 5n }, { cookie: 0n }] }) },
  })
  t.equal(r.reply.kind, 'reply')
  t.equal(seen, 1)
})

t.test('garbage from one peer closes that connection only; others keep being served', async t => {
  const logs: string[] = []
  const { cl, server, client, port } = await pair(t, { logs })
  server.serve(P('MDS_REQUEST_PORTAL'), P('MDC_REPLY_PORTAL'), () => ({ status: 0 }))
  const peer = await cl.connect('127.0.0.1', port)
  const bad = connect({ host: '127.0.0.1', port })
  const closed = new Promise<void>(r => bad.on('close', () => r()))
  bad.on('error', () => {})
  bad.write(Buffer.alloc(64, 0x41))
  await closed
  t.ok(logs.some(l => /LC_LNET_PROTOCOL|LC_WIRE_BAD_MAGIC/.test(l)), `the reason is logged: ${logs.find(l => l.includes('closing'))}`)
  const r = await client.call(peer, { format: 'RQF_OBD_PING', portal: P('MDS_REQUEST_PORTAL'), replyPortal: P('MDC_REPLY_PORTAL') })
  t.equal(r.reply.kind, 'reply', 'the well-behaved client is still served')
})

t.test('a payload length claiming 4 GiB is refused after the header, before allocation', async t => {
  const logs: string[] = []
  const { port } = await pair(t, { logs })
  const { sock, frame } = await rawPeer(port)
  const f = frame({ portal: 12, bits: 1n }, undefined)
  new DataView(f.buffer).setUint32(24 + 28, 0xffffffff, true)
  const closed = new Promise<void>(r => sock.on('close', () => r()))
  sock.write(f)
  await closed
  t.ok(logs.some(l => l.includes('LC_WIRE_BUFFER_OVER_LIMIT')), 'closed for the oversized payload_length')
})

t.test('a malformed request inside a valid LNet PUT gets -EPROTO; the connection stays up', async t => {
  const { cl, sl, server, client, port } = await pair(t)
  server.serve(P('OST_REQUEST_PORTAL'), P('OSC_REPLY_PORTAL'), () => ({ status: 0 }))
  const peer = await cl.connect('127.0.0.1', port)
  // A well-formed request whose buffer count is then corrupted.
  const good = encodeFormatted(spec.formats.get('RQF_OBD_PING')!, 'request', { body: buildBody(spec, { pb_opc: P('OBD_PING') }, 'request'), fields: {} })
  const bad = good.slice()
  new DataView(bad.buffer).setUint32(0, 99, true)
  let reply: Uint8Array | undefined
  const got = new Promise<void>(r => {
    cl.bindPortal(P('OSC_REPLY_PORTAL'), m => { reply = m.payload; r() })
  })
  await cl.put(peer, { portal: P('OST_REQUEST_PORTAL'), matchBits: 77n }, bad)
  await got
  const m = decodeMessage(reply!)
  t.equal(m.kind, 'error')
  t.equal(m.body.pb_status, -71, '-EPROTO')
  t.ok(cl.isConnected(peer) && sl !== undefined, 'still connected')
  void client
})

t.test('the frame decoder takes the same stream in any chunking', async t => {
  const stream = Buffer.concat([encodeConnreq(1n), encodeHello({ srcNid: 1n, dstNid: 2n, srcPid: 1, dstPid: 2, srcIncarnation: 3n, dstIncarnation: 0n, ctype: 0 })])
  for (const size of [1, 3, 7, 16, 57, stream.length]) {
    const d = new FrameDecoder({ start: 'connreq' })
    const kinds: string[] = []
    for (let i = 0; i < stream.length; i += size) for (const f of d.push(stream.subarray(i, i + size))) kinds.push(f.kind)
    t.same(kinds, ['connreq', 'hello'], `chunks of ${size}`)
  }
})

t.test('a GET or acked PUT that matches nothing at the peer times out and is forgotten', async t => {
  const { cl, port } = await pair(t)
  const peer = await cl.connect('127.0.0.1', port)
  // The server has no MD on this portal: LNet drops the GET and the PUT, no REPLY or ACK comes.
  const get = await cl.get(peer, { portal: P('OST_BULK_PORTAL'), matchBits: 99n, length: 10, timeoutMs: 150 }).catch(e => e as TransportError)
  t.equal((get as TransportError).code, 'LC_RPC_TIMEOUT', 'GET: LC_RPC_TIMEOUT')
  const put = await cl.put(peer, { portal: P('OST_BULK_PORTAL'), matchBits: 98n, ack: true, timeoutMs: 150 }, new Uint8Array(8)).catch(e => e as TransportError)
  t.equal((put as TransportError).code, 'LC_RPC_TIMEOUT', 'acked PUT: LC_RPC_TIMEOUT')
})

t.test('a client bulk shorter than the server asks for fails the transfer, with nothing padded', async t => {
  const { cl, server, client, port } = await pair(t)
  let outcome = ''
  server.serve(P('OST_IO_PORTAL'), P('OSC_REPLY_PORTAL'), async req => {
    try {
      await req.bulkGet(4096, P('OST_BULK_PORTAL'))
      outcome = 'got'
    } catch (e) {
      outcome = (e as TransportError).code
    }
    return { status: outcome === 'got' ? 0 : -5, error: outcome !== 'got' }
  })
  const peer = await cl.connect('127.0.0.1', port)
  const r = await client.call(peer, {
    format: 'RQF_OST_BRW_WRITE', portal: P('OST_IO_PORTAL'), replyPortal: P('OSC_REPLY_PORTAL'), bulkSource: new Uint8Array(100),
    fields: { RMF_OST_BODY: makeStruct('ost_body'), RMF_OBD_IOOBJ: [makeStruct('obd_ioobj', { ioo_bufcnt: 1 })], RMF_NIOBUF_REMOTE: [makeStruct('niobuf_remote', { rnb_len: 4096 })] },
  })
  t.equal(outcome, 'LC_RPC_BULK', 'the server learns the bulk was short')
  t.equal(r.reply.body.pb_status, -5, 'and can fail the RPC')
})

/** A raw socklnd peer at 127.0.0.4 (connreq and hello done), for sending what no endpoint would. */
async function rawPeer(port: number) {
  const sock = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.4' })
  sock.on('error', () => {})
  await new Promise<void>(r => sock.on('connect', () => r()))
  const me = nidToWire('127.0.0.4@tcp')
  sock.write(encodeConnreq(nidToWire('127.0.0.1@tcp')))
  sock.write(encodeHello({ srcNid: me, dstNid: nidToWire('127.0.0.1@tcp'), srcPid: 12345, dstPid: 12345, srcIncarnation: 1n, dstIncarnation: 0n, ctype: 0 }))
  const noWmd = { wh_interface_cookie: 0xffffffffffffffffn, wh_object_cookie: 0xffffffffffffffffn }
  const frame = (o: { srcPid?: number; portal: number; bits: bigint; offset?: number; ack?: boolean }, payload: Uint8Array | undefined) => encodeLnetFrame({
    dest_nid: nidToWire('127.0.0.1@tcp'), src_nid: me, dest_pid: 12345, src_pid: o.srcPid ?? 12345, type: 1, payload_length: 0,
    msg: { put: { ack_wmd: o.ack ? { wh_interface_cookie: 1n, wh_object_cookie: 7n } : noWmd, match_bits: o.bits, hdr_data: 0n, ptl_index: o.portal, offset: o.offset ?? 0 } },
  }, payload)
  const put = (o: Parameters<typeof frame>[0], payload: Uint8Array) => sock.write(frame(o, payload))
  return { sock, put, frame }
}

t.test('an ACK asked for under another pid, or a PUT past the end of an MD, harms no one', async t => {
  const { sl, cl, server, client, port } = await pair(t)
  server.serve(P('MDS_REQUEST_PORTAL'), P('MDC_REPLY_PORTAL'), () => ({ status: 0 }))
  sl.attachMd({ portal: P('OST_BULK_PORTAL'), matchBits: 5n, kind: 'sink', buffer: new Uint8Array(10) })
  const raw = await rawPeer(port)
  await new Promise(r => setTimeout(r, 50))
  // The sender claims another pid on its own connection; the ACK goes back on that connection.
  raw.put({ srcPid: 999, portal: P('OST_BULK_PORTAL'), bits: 5n, ack: true }, new Uint8Array(4))
  // An offset beyond the MD's 10 bytes: nothing is written, nothing throws.
  raw.put({ portal: P('OST_BULK_PORTAL'), bits: 5n, offset: 100 }, new Uint8Array(4))
  await new Promise(r => setTimeout(r, 100))
  const peer = await cl.connect('127.0.0.1', port)
  const r = await client.call(peer, { format: 'RQF_OBD_PING', portal: P('MDS_REQUEST_PORTAL'), replyPortal: P('MDC_REPLY_PORTAL') })
  t.equal(r.reply.kind, 'reply', 'the server is alive and serves others')
  raw.sock.destroy()
})

t.test('a bulk whose match bits would pass 2^64 fails cleanly, and the RPC still gets its reply', async t => {
  const { cl, server, port } = await pair(t)
  let code = ''
  server.serve(P('OST_IO_PORTAL'), P('OSC_REPLY_PORTAL'), async req => {
    try {
      await req.bulkPut(new Uint8Array(2 << 20), P('OST_BULK_PORTAL'))
    } catch (e) {
      code = (e as TransportError).code
    }
    return { status: code ? -5 : 0, error: !!code }
  })
  // The next xid is 2^64 - 1: a 2 MiB bulk would need match bits 2^64.
  const client = new PtlrpcEndpoint(cl, { xidBase: 0xffffffffffffffffn - 16n })
  const peer = await cl.connect('127.0.0.1', port)
  const r = await client.call(peer, {
    format: 'RQF_OST_BRW_READ', portal: P('OST_IO_PORTAL'), replyPortal: P('OSC_REPLY_PORTAL'), bulkSinkLength: 1 << 20, timeoutMs: 5000,
    fields: { RMF_OST_BODY: makeStruct('ost_body'), RMF_OBD_IOOBJ: [makeStruct('obd_ioobj', { ioo_bufcnt: 1 })], RMF_NIOBUF_REMOTE: [makeStruct('niobuf_remote', { rnb_len: 2 << 20 })] },
  }).catch(e => e as TransportError)
  t.equal(code, 'LC_RPC_BULK', 'the server learns the bulk cannot be addressed')
  t.equal((r as { reply?: { body: { pb_status: number } } }).reply?.body.pb_status, -5, 'and the client gets its error reply')
})
