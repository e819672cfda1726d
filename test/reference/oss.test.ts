// reference/oss: a real OssServer on an ephemeral loopback port with its objects in a
// temporary directory, driven through TargetImport as the client and the MDS drive it.
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync, readFileSync, existsSync, statfsSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LnetEndpoint, PtlrpcEndpoint } from '../../src/transport/index.js'
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { E, TargetImport } from '../../reference/common/index.js'
import { OssServer, type OssOptions } from '../../reference/oss/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const FLID = C('OBD_MD_FLID')
const FLGROUP = C('OBD_MD_FLGROUP')
const EOF = C('OBD_OBJECT_EOF')
const MiB = 1 << 20
const FLAGS = ['VERSION', 'INDEX', 'BRW_SIZE', 'GRANT', 'FID', 'FULL20', 'BULK_MBITS'].reduce((f, n) => f | C(`OBD_CONNECT_${n}`), 0n)

type Oa = Record<string, unknown> & { o_valid: bigint; o_oi: { oi: { oi_id: bigint; oi_seq: bigint } }; o_size: bigint; o_blocks: bigint; o_grant: bigint }

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'lc-oss-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function startOss(t: Test, o: Partial<OssOptions> & { dir: string }): Promise<{ oss: OssServer; logs: string[] }> {
  const logs: string[] = []
  const oss = new OssServer({ osts: 2, port: 0, log: l => logs.push(l), ...o })
  await oss.start()
  t.teardown(() => oss.close())
  return { oss, logs }
}

let clientPid = 5000
/** A client endpoint connected to the OSS; imp(i) is an import of OST i (not yet connected). */
async function clientOf(t: Test, oss: OssServer, fsname = 'lustre') {
  const lnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid: clientPid++ })
  const peer = await lnet.connect('127.0.0.1', oss.port)
  const rpc = new PtlrpcEndpoint(lnet)
  t.teardown(() => lnet.close())
  return (index: number, flags = FLAGS, ocd: Record<string, unknown> = { ocd_brw_size: 4 * MiB, ocd_grant: 32 * MiB, ocd_index: index }) =>
    new TargetImport(rpc, peer, { service: 'ost', targetUuid: `${fsname}-OST${index.toString(16).padStart(4, '0')}_UUID`, clientUuid: 'oss-test-client_UUID', flags, ocd, timeoutMs: 20_000 })
}

async function connected(t: Test, oss: OssServer, index: number): Promise<TargetImport> {
  const imp = (await clientOf(t, oss))(index)
  await imp.connect()
  return imp
}

const oid = (id: bigint, seq = 0n) => ({ oi: { oi_id: id, oi_seq: seq } })
const body = (oa: Record<string, unknown>) => makeStruct('ost_body', { oa: { o_valid: FLID | FLGROUP, ...oa } })
const oaOf = (r: { reply: { fields: Record<string, unknown> } }): Oa => (r.reply.fields.RMF_OST_BODY as { oa: Oa }).oa
const status = (r: { reply: { body: Record<string, unknown> } }): number => r.reply.body.pb_status as number

async function create(imp: TargetImport, upTo: bigint): Promise<bigint> {
  const r = await imp.call({ format: 'RQF_OST_CREATE', fields: { RMF_OST_BODY: body({ o_oi: oid(upTo) }) } })
  return oaOf(r).o_oi.oi.oi_id
}

function ioFields(id: bigint, ranges: Array<{ offset: number; length: number; flags?: number }>, oa: Record<string, unknown> = {}, bufcnt = ranges.length) {
  return {
    RMF_OST_BODY: body({ o_oi: oid(id), ...oa }),
    RMF_OBD_IOOBJ: [makeStruct('obd_ioobj', { ioo_oid: oid(id), ioo_bufcnt: bufcnt })],
    RMF_NIOBUF_REMOTE: ranges.map(x => makeStruct('niobuf_remote', { rnb_offset: BigInt(x.offset), rnb_len: x.length, rnb_flags: x.flags ?? 0 })),
  }
}

async function write(imp: TargetImport, id: bigint, pieces: Array<[number, Uint8Array]>, oa: Record<string, unknown> = {}, flags = 0) {
  const src = Buffer.concat(pieces.map(p => p[1]))
  return imp.call({ format: 'RQF_OST_BRW_WRITE', fields: ioFields(id, pieces.map(([offset, d]) => ({ offset, length: d.length, flags })), oa), bulkSource: src, allowError: true })
}

async function read(imp: TargetImport, id: bigint, ranges: Array<[number, number]>, oa: Record<string, unknown> = {}) {
  const total = ranges.reduce((n, r) => n + r[1], 0)
  const r = await imp.call({ format: 'RQF_OST_BRW_READ', fields: ioFields(id, ranges.map(([offset, length]) => ({ offset, length })), oa), bulkSinkLength: total, allowError: true })
  return { r, data: Buffer.from(r.bulk ?? new Uint8Array(0)) }
}

const objCall = (imp: TargetImport, format: string, id: bigint, oa: Record<string, unknown> = {}) =>
  imp.call({ format, fields: { RMF_OST_BODY: body({ o_oi: oid(id), ...oa }) }, allowError: true })

/** Bytes that differ from offset to offset, so that a misplaced range shows. */
const pattern = (n: number, seed: number): Buffer => Buffer.from(new Uint8Array(n).map((_, i) => (i * 131 + seed * 7 + (i >> 9)) & 0xff))

t.test('connect: negotiated flags, index, brw size, grant; ping', async t => {
  const { oss } = await startOss(t, { dir: tempDir(t) })
  t.match(oss.nid, '127.0.0.1@tcp')
  t.ok(oss.port > 0, 'an ephemeral port')
  const imp = await clientOf(t, oss)
  const a = imp(1, FLAGS | C('OBD_CONNECT_IBITS') | C('OBD_CONNECT_CKSUM'), { ocd_brw_size: 16 * MiB, ocd_grant: 256 * MiB, ocd_cksum_types: 4, ocd_index: 1 })
  await a.connect()
  t.equal(a.flags, FLAGS, 'asked & supported: IBITS and CKSUM are not granted')
  t.equal(a.ocd.ocd_index, 1, 'ocd_index is the OST index')
  t.equal(a.ocd.ocd_brw_size, 4 * MiB, 'brw size at most 4 MiB')
  t.equal(a.ocd.ocd_grant, 64 * MiB, 'grant at most 64 MiB')
  t.equal(a.ocd.ocd_cksum_types, 0, 'no checksum types without OBD_CONNECT_CKSUM')
  t.ok((a.ocd.ocd_version as number) >= 0x02000000, 'a 2.x server version')
  const b = imp(0, FLAGS, { ocd_brw_size: 0, ocd_grant: MiB })
  await b.connect()
  t.equal(b.ocd.ocd_index, 0)
  t.equal(b.ocd.ocd_brw_size, MiB, 'asked 0: 1 MiB')
  t.equal(b.ocd.ocd_grant, MiB, 'asked less than the cap: what was asked')
  t.equal(await a.ping(), 0, 'ping')
  await b.disconnect()
  const gone = await b.call({ format: 'RQF_OST_STATFS', allowError: true })
  t.equal(gone.reply.body.pb_status, E.ENOTCONN, 'after OST_DISCONNECT: -ENOTCONN')
  t.equal(await a.ping(), 0, 'the other export lives on')
  const ghost = imp(2)
  t.equal(await ghost.connect().then(() => 0, e => (e as { status: number }).status), E.ENODEV, 'an OST this OSS does not serve: -ENODEV')
  // ofd_parse_connect_data: OBD_CONNECT_INDEX with another index is a misconfigured client.
  const wrong = imp(1, FLAGS, { ocd_brw_size: MiB, ocd_index: 0 })
  t.equal(await wrong.connect().then(() => 0, e => (e as { status: number }).status), E.EBADF, 'OST0001 asked as index 0: -EBADF')
  t.equal(await imp(1, FLAGS & ~C('OBD_CONNECT_INDEX'), { ocd_brw_size: MiB }).connect().then(() => 0, e => (e as { status: number }).status), 0, 'without OBD_CONNECT_INDEX no index is checked')
})

t.test('OST_CREATE: creates up to the id asked, answers the last id, lays objects out as ldiskfs does', async t => {
  const dir = tempDir(t)
  const { oss } = await startOss(t, { dir })
  const imp = await connected(t, oss, 0)
  t.equal(await create(imp, 0n), 0n, 'id 0 asks the last id: none yet')
  t.equal(await create(imp, 40n), 40n, 'a batch of 40')
  t.equal(await create(imp, 20n), 40n, 'an id already created: nothing new')
  t.equal(await create(imp, 0n), 40n)
  for (const id of [1, 31, 32, 33, 40]) t.ok(existsSync(join(dir, 'ost0', 'O', '0', `d${id % 32}`, String(id))), `object ${id} in d${id % 32}`)
  t.notOk(existsSync(join(dir, 'ost0', 'O', '0', 'd9', '41')), 'nothing past the last id')
  t.equal(readFileSync(join(dir, 'ost0', 'O', '0', 'LAST_ID')).readBigUInt64LE(0), 40n, 'LAST_ID holds the last id (u64 LE)')
  const g = oaOf(await objCall(imp, 'RQF_OST_GETATTR', 7n))
  t.equal(g.o_size, 0n, 'a new object is empty')
  t.equal(g.o_oi.oi.oi_id, 7n)
  t.equal(g.o_valid & (FLID | FLGROUP | C('OBD_MD_FLSIZE') | C('OBD_MD_FLBLOCKS') | C('OBD_MD_FLMTIME')), FLID | FLGROUP | C('OBD_MD_FLSIZE') | C('OBD_MD_FLBLOCKS') | C('OBD_MD_FLMTIME'))
  const r = await imp.call({ format: 'RQF_OST_CREATE', fields: { RMF_OST_BODY: body({ o_oi: oid(50n, 5n) }) }, allowError: true })
  t.equal(status(r), E.EINVAL, 'another sequence: -EINVAL')
})

t.test('OST_WRITE / OST_READ: several offsets, sparse and unaligned ranges, reads past the end', async t => {
  const { oss } = await startOss(t, { dir: tempDir(t) })
  const imp = await connected(t, oss, 0)
  await create(imp, 4n)
  const a = pattern(100, 1)
  const b = pattern(3, 2)
  const c = pattern(4099, 3)
  let w = await write(imp, 1n, [[0, a], [5000, b]])
  t.equal(status(w), 0, 'two niobufs in one write')
  t.same(w.reply.fields.RMF_RCS, new Uint8Array(8), 'RMF_RCS: one u32 0 per niobuf')
  t.equal(oaOf(w).o_size, 5003n, 'the write reply gives the new size')
  w = await write(imp, 1n, [[MiB + 7, c]])
  t.equal(status(w), 0, 'an unaligned write far past the end')
  t.equal(oaOf(await objCall(imp, 'RQF_OST_GETATTR', 1n)).o_size, BigInt(MiB + 7 + c.length), 'getattr size')
  const { r, data } = await read(imp, 1n, [[0, 100], [100, 4899], [4999, 5], [MiB, 4200]])
  t.equal(status(r), 0)
  t.equal(data.length, 100 + 4899 + 5 + 4200, 'every byte asked for')
  t.same(data.subarray(0, 100), a, 'first range')
  t.same(data.subarray(100, 4999), Buffer.alloc(4899), 'the hole reads as zeros')
  t.same(data.subarray(4999, 5004), Buffer.from([0, ...b, 0]), 'unaligned range around the 3 bytes')
  t.same(data.subarray(5004, 5011), Buffer.alloc(7), 'hole before the far write')
  t.same(data.subarray(5011, 5011 + 4099), c, 'the far write')
  t.same(data.subarray(5011 + 4099), Buffer.alloc(94), 'past the end: zeros')
  t.equal(oaOf(r).o_size, BigInt(MiB + 7 + c.length), 'the read reply gives the object size')
  const beyond = await read(imp, 2n, [[10 * MiB, 4096]])
  t.same(beyond.data, Buffer.alloc(4096), 'an empty object reads as zeros')
  t.equal(oaOf(beyond.r).o_size, 0n)
  const over = await write(imp, 1n, [[2, Buffer.from('XY')]])
  t.equal(status(over), 0)
  t.same((await read(imp, 1n, [[0, 6]])).data, Buffer.concat([a.subarray(0, 2), Buffer.from('XY'), a.subarray(4, 6)]), 'overwrite in place')
})

t.test('a 3 MiB write of three niobufs, read back whole and across ranges', async t => {
  const { oss } = await startOss(t, { dir: tempDir(t) })
  const imp = await connected(t, oss, 1)
  await create(imp, 1n)
  const parts: Array<[number, Buffer]> = [[0, pattern(MiB, 4)], [MiB + 4096, pattern(MiB, 5)], [2 * MiB + 12288, pattern(MiB, 6)]]
  const w = await write(imp, 1n, parts)
  t.equal(status(w), 0, '3 MiB over three bulk MDs')
  t.equal(oaOf(w).o_size, BigInt(3 * MiB + 12288))
  const back = await read(imp, 1n, parts.map(([o, d]) => [o, d.length]))
  t.same(back.data, Buffer.concat(parts.map(p => p[1])), 'every byte back, in niobuf order')
  const across = await read(imp, 1n, [[MiB - 10, 4096 + 20]])
  t.same(across.data, Buffer.concat([parts[0][1].subarray(MiB - 10), Buffer.alloc(4096), parts[1][1].subarray(0, 10)]), 'a range across a gap')
})

t.test('OST_PUNCH truncates, grows, zeros a range; OST_SETATTR never truncates', async t => {
  const { oss } = await startOss(t, { dir: tempDir(t) })
  const imp = await connected(t, oss, 0)
  await create(imp, 1n)
  const d = pattern(10000, 7)
  await write(imp, 1n, [[0, d]])
  let p = await objCall(imp, 'RQF_OST_PUNCH', 1n, { o_size: 4096n, o_blocks: EOF })
  t.equal(status(p), 0)
  t.equal(oaOf(p).o_size, 4096n, 'punch to EOF: size = start')
  t.same((await read(imp, 1n, [[4000, 200]])).data, Buffer.concat([d.subarray(4000, 4096), Buffer.alloc(104)]), 'the cut part reads as zeros')
  p = await objCall(imp, 'RQF_OST_PUNCH', 1n, { o_size: 1_000_000n, o_blocks: EOF })
  t.equal(oaOf(await objCall(imp, 'RQF_OST_GETATTR', 1n)).o_size, 1_000_000n, 'truncate up grows the object sparsely')
  p = await objCall(imp, 'RQF_OST_PUNCH', 1n, { o_size: 100n, o_blocks: 200n })
  t.equal(status(p), 0)
  t.equal(oaOf(p).o_size, 1_000_000n, 'a range punch keeps the size')
  t.same((await read(imp, 1n, [[98, 104]])).data, Buffer.concat([d.subarray(98, 100), Buffer.alloc(100), d.subarray(200, 202)]), 'the range is zeros')
  t.equal(status(await objCall(imp, 'RQF_OST_PUNCH', 1n, { o_size: 200n, o_blocks: 100n })), E.EINVAL, 'reversed range: -EINVAL')
  t.equal(status(await objCall(imp, 'RQF_OST_SETATTR', 1n, { o_valid: FLID | FLGROUP | C('OBD_MD_FLSIZE'), o_size: 0n })), E.EPERM, 'setattr with a size: -EPERM')
  const s = await objCall(imp, 'RQF_OST_SETATTR', 1n, { o_valid: FLID | FLGROUP | C('OBD_MD_FLMTIME'), o_mtime: 1_600_000_000n })
  t.equal(status(s), 0)
  t.equal(oaOf(s).o_mtime, 1_600_000_000n, 'mtime set')
  t.equal(oaOf(await objCall(imp, 'RQF_OST_GETATTR', 1n)).o_mtime, 1_600_000_000n, 'and kept')
})

t.test('OST_DESTROY, then the object is gone; OST_SYNC; OST_STATFS', async t => {
  const dir = tempDir(t)
  const { oss } = await startOss(t, { dir })
  const imp = await connected(t, oss, 1)
  await create(imp, 3n)
  await write(imp, 2n, [[0, Buffer.from('data')]])
  const sy = await objCall(imp, 'RQF_OST_SYNC', 2n)
  t.equal(status(sy), 0, 'sync an object')
  t.equal(oaOf(sy).o_size, 4n, 'sync reply has its attributes')
  t.equal(status(await objCall(imp, 'RQF_OST_SYNC', 0n)), 0, 'sync the whole OST')
  t.equal(status(await imp.call({ format: 'RQF_OST_DESTROY', fields: { RMF_OST_BODY: body({ o_oi: oid(2n) }) }, allowError: true })), 0, 'destroy')
  t.notOk(existsSync(join(dir, 'ost1', 'O', '0', 'd2', '2')), 'the file is gone')
  t.equal(status(await objCall(imp, 'RQF_OST_GETATTR', 2n)), E.ENOENT, 'getattr: -ENOENT')
  t.equal(status(await write(imp, 2n, [[0, Buffer.from('x')]])), E.ENOENT, 'write: -ENOENT')
  t.equal(status((await read(imp, 2n, [[0, 1]])).r), E.ENOENT, 'read: -ENOENT')
  t.equal(status(await imp.call({ format: 'RQF_OST_DESTROY', fields: { RMF_OST_BODY: body({ o_oi: oid(2n) }) }, allowError: true })), E.ENOENT, 'destroy again: -ENOENT')
  t.equal(await create(imp, 0n), 3n, 'ids are not reused')
  const st = await imp.call({ format: 'RQF_OST_STATFS' })
  const os = st.reply.fields.RMF_OBD_STATFS as Record<string, unknown>
  const host = statfsSync(join(dir, 'ost1'), { bigint: true })
  t.equal(os.os_bsize, 4096)
  t.equal(os.os_namelen, 255)
  t.equal(os.os_type, host.type, 'os_type: the host file system magic')
  t.equal(os.os_blocks, (host.blocks * host.bsize) / 4096n, 'blocks in 4 KiB units')
  t.ok((os.os_bavail as bigint) <= (os.os_bfree as bigint) && (os.os_bfree as bigint) <= (os.os_blocks as bigint), 'avail <= free <= total')
  t.equal(Buffer.from(os.os_fsid as Uint8Array).toString('latin1').replace(/\0+$/, ''), 'lustre-OST0001_UUID', 'os_fsid names the OST')
  t.ok((os.os_maxbytes as bigint) > 0n)
})

t.test('errors: bad export handle, bad object ids, malformed BRW; the server keeps serving', async t => {
  const { oss } = await startOss(t, { dir: tempDir(t) })
  const imp = await connected(t, oss, 0)
  await create(imp, 2n)
  const handle = imp.handle
  imp.handle = handle + 12345n
  t.equal(status(await objCall(imp, 'RQF_OST_GETATTR', 1n)), E.ENOTCONN, 'unknown export handle: -ENOTCONN')
  imp.handle = handle
  t.equal(status(await objCall(imp, 'RQF_OST_GETATTR', 0n)), E.ENOENT, 'object 0: -ENOENT')
  t.equal(status(await objCall(imp, 'RQF_OST_GETATTR', 3n)), E.ENOENT, 'past the last id: -ENOENT')
  t.equal(status(await objCall(imp, 'RQF_OST_GETATTR', 1n << 40n)), E.ENOENT, 'a large id: -ENOENT')
  t.equal(status(await objCall(imp, 'RQF_OST_GETATTR', 0xffffffffffffffffn)), E.EBADF, 'an id wider than 48 bits: -EBADF')
  t.equal(status(await imp.call({ format: 'RQF_OST_CREATE', fields: { RMF_OST_BODY: body({ o_oi: oid(1n << 48n) }) }, allowError: true })), E.EBADF, 'create past 48 bits: -EBADF')
  t.equal(status(await imp.call({ format: 'RQF_OST_GETATTR', fields: { RMF_OST_BODY: body({ o_oi: oid(1n, 0x200000400n) }) }, allowError: true })), E.EINVAL, 'a FID sequence: -EINVAL')
  const x = Buffer.from('x')
  const bad = (fields: Record<string, unknown>, bulk = x) => imp.call({ format: 'RQF_OST_BRW_WRITE', fields, bulkSource: bulk, allowError: true }).then(status)
  t.equal(await bad(ioFields(1n, [{ offset: 0, length: 1 }], {}, 2)), E.EPROTO, 'ioo_bufcnt != niobufs: -EPROTO')
  t.equal(await bad(ioFields(1n, [{ offset: 0, length: 1 }], {}, 0)), E.EPROTO, 'ioo_bufcnt 0: -EPROTO')
  t.equal(await bad({ ...ioFields(1n, [{ offset: 0, length: 1 }]), RMF_OBD_IOOBJ: [makeStruct('obd_ioobj', { ioo_bufcnt: 1 }), makeStruct('obd_ioobj', { ioo_bufcnt: 0 })] }), E.EPROTO, 'two obd_ioobj: -EPROTO')
  t.equal(await bad(ioFields(1n, [{ offset: 4096, length: 10 }, { offset: 0, length: 10 }])), E.EINVAL, 'unsorted niobufs: -EINVAL')
  t.equal(await bad(ioFields(1n, [{ offset: 0, length: 10 }, { offset: 5, length: 10 }])), E.EINVAL, 'overlapping niobufs: -EINVAL')
  t.equal(await bad(ioFields(1n, [{ offset: 0, length: 0 }])), E.EINVAL, 'empty niobuf: -EINVAL')
  t.equal(await bad(ioFields(1n, [{ offset: 0, length: 3 * MiB }, { offset: 3 * MiB, length: MiB + 1 }])), E.EINVAL, 'more than 4 MiB: -EINVAL')
  t.equal(await bad(ioFields(1n, [{ offset: 2 ** 50, length: 1 }])), E.EFBIG, 'past the largest object: -EFBIG')
  t.equal(await bad(ioFields(1n, [{ offset: 0, length: 1 }], { o_oi: oid(9n) })), E.ENOENT, 'BRW to an object not created: -ENOENT')
  const wrongPortal = await imp.rpc.call(imp.peer, {
    format: 'RQF_OST_BRW_READ', portal: Number(C('OST_REQUEST_PORTAL')), replyPortal: Number(C('OSC_REPLY_PORTAL')),
    fields: ioFields(1n, [{ offset: 0, length: 1 }]), body: { pb_handle: { cookie: imp.handle } }, bulkSinkLength: 1,
  })
  t.equal(status(wrongPortal), E.EPROTO, 'bulk I/O off OST_IO_PORTAL: -EPROTO')
  t.equal(status(await imp.call({ format: 'RQF_OST_GETATTR', fields: {}, allowError: true })), E.EPROTO, 'no ost_body: -EPROTO')
  t.equal(await imp.ping(), 0, 'still serving')
  t.equal(oaOf(await objCall(imp, 'RQF_OST_GETATTR', 1n)).o_size, 0n, 'nothing was written by the refused requests')
})

t.test('grant: a write spends and gets back its pages, a read gives none', async t => {
  const { oss } = await startOss(t, { dir: tempDir(t) })
  const imp = await connected(t, oss, 0)
  await create(imp, 1n)
  const FLGRANT = C('OBD_MD_FLGRANT')
  const w = await write(imp, 1n, [[100, pattern(5000, 9)]], { o_valid: FLID | FLGROUP | FLGRANT, o_grant: 32n << 20n }, Number(C('OBD_BRW_FROM_GRANT')))
  t.equal(status(w), 0)
  t.ok(oaOf(w).o_valid & FLGRANT, 'FLGRANT in the reply')
  t.equal(oaOf(w).o_grant, 8192n, 'two pages spent, two pages given back')
  const r = await read(imp, 1n, [[0, 10]], { o_valid: FLID | FLGROUP | FLGRANT, o_grant: 32n << 20n })
  t.equal(oaOf(r.r).o_grant, 0n, 'reads give no grant')
  const plain = await write(imp, 1n, [[0, Buffer.from('z')]])
  t.equal(oaOf(plain).o_valid & FLGRANT, 0n, 'no FLGRANT asked, none answered')
})

t.test('restart on the same directory: data and last id survive; two OSTs keep separate objects', async t => {
  const dir = tempDir(t)
  const first = new OssServer({ dir, osts: 2, port: 0 })
  t.teardown(() => first.close())
  await first.start()
  const i0 = await connected(t, first, 0)
  const i1 = await connected(t, first, 1)
  t.equal(await create(i0, 5n), 5n)
  t.equal(await create(i1, 2n), 2n)
  await write(i0, 1n, [[0, Buffer.from('on OST0000')], [70000, Buffer.from('far')]])
  await write(i1, 1n, [[0, Buffer.from('on OST0001')]])
  t.same((await read(i0, 1n, [[0, 10]])).data, Buffer.from('on OST0000'), 'OST0000 object 1')
  t.same((await read(i1, 1n, [[0, 10]])).data, Buffer.from('on OST0001'), 'OST0001 object 1 is another object')
  t.equal(status(await objCall(i1, 'RQF_OST_GETATTR', 4n)), E.ENOENT, 'OST0001 has only 2 objects')
  t.equal(status(await objCall(i0, 'RQF_OST_SYNC', 1n)), 0)
  await first.close()

  const { oss } = await startOss(t, { dir })
  const j0 = await connected(t, oss, 0)
  const j1 = await connected(t, oss, 1)
  t.equal(await create(j0, 0n), 5n, 'OST0000 last id survives')
  t.equal(await create(j1, 0n), 2n, 'OST0001 last id survives')
  t.same((await read(j0, 1n, [[0, 10], [70000, 3]])).data, Buffer.from('on OST0000far'), 'data survive')
  t.same((await read(j1, 1n, [[0, 10]])).data, Buffer.from('on OST0001'))
  t.equal(await create(j0, 7n), 7n, 'creation goes on after the last id')
  await oss.close()

  // Without LAST_ID (lost in a crash) the last id is found again from the objects.
  unlinkSync(join(dir, 'ost0', 'O', '0', 'LAST_ID'))
  const third = await startOss(t, { dir })
  t.equal(await create(await connected(t, third.oss, 0), 0n), 7n, 'rebuilt by scanning the object directories')
})

t.test('firstIndex: an OSS serving OST0002 only', async t => {
  const dir = tempDir(t)
  const { oss } = await startOss(t, { dir, osts: 1, firstIndex: 2, fsname: 'testfs' })
  const imp = await clientOf(t, oss, 'testfs')
  const a = imp(2)
  t.equal(a.opts.targetUuid, 'testfs-OST0002_UUID')
  await a.connect()
  t.equal(a.ocd.ocd_index, 2)
  t.equal(await create(a, 3n), 3n)
  t.ok(existsSync(join(dir, 'ost2', 'O', '0', 'd3', '3')), 'objects under ost2/')
  const b = imp(0)
  t.equal(await b.connect().then(() => 0, e => (e as { status: number }).status), E.ENODEV, 'OST0000 is not here')
  t.throws(() => new OssServer({ dir, osts: 0 }), 'no OSTs: refused')
  t.throws(() => new OssServer({ dir, osts: 2, firstIndex: 0xffff }), 'indexes past 0xffff: refused')
})

t.test('precreation comes in batches of at most 2048 per request; far ahead, only the last batch', async t => {
  const dir = tempDir(t)
  const { oss } = await startOss(t, { dir })
  const max = C('OST_MAX_PRECREATE')
  const per = 2048n
  const i0 = await connected(t, oss, 0)
  t.equal(await create(i0, per + 500n), per, 'one batch per request')
  t.equal(await create(i0, per + 500n), per + 500n, 'the rest on the next request')
  const i1 = await connected(t, oss, 1)
  const far = 6n * max + 17n
  t.equal(await create(i1, far), far, 'more than five OST_MAX_PRECREATE ahead: the last id moves up')
  t.equal(status(await objCall(i1, 'RQF_OST_GETATTR', 5n)), E.ENOENT, 'ids skipped over do not exist')
  t.equal(status(await objCall(i1, 'RQF_OST_GETATTR', far - per)), E.ENOENT, 'nor the one before the last batch')
  t.equal(status(await objCall(i1, 'RQF_OST_GETATTR', far - per + 1n)), 0, 'the last batch does')
})

t.test('concurrent writes, reads and truncates stay whole', async t => {
  const { oss } = await startOss(t, { dir: tempDir(t) })
  const imp = await connected(t, oss, 0)
  await create(imp, 4n)
  const jobs: Array<Promise<unknown>> = []
  for (let i = 0; i < 24; i++) {
    const id = BigInt(1 + (i % 4))
    jobs.push(write(imp, id, [[i * 8192, pattern(8192, i)]]).then(r => t.equal(status(r), 0, `write ${i}`)))
  }
  await Promise.all(jobs)
  for (let o = 1; o <= 4; o++) {
    const { data } = await read(imp, BigInt(o), [[0, 24 * 8192]])
    for (let i = o - 1; i < 24; i += 4) t.same(data.subarray(i * 8192, (i + 1) * 8192), pattern(8192, i), `object ${o} block ${i}`)
  }
  const mixed = await Promise.all([
    write(imp, 1n, [[0, pattern(MiB, 99)]]),
    objCall(imp, 'RQF_OST_PUNCH', 1n, { o_size: 0n, o_blocks: EOF }),
    read(imp, 1n, [[0, MiB]]).then(x => x.r),
  ])
  t.same(mixed.map(status), [0, 0, 0], 'all answered')
  const size = oaOf(await objCall(imp, 'RQF_OST_GETATTR', 1n)).o_size
  t.ok(size === 0n || size === BigInt(MiB), `the object is wholly before or after the truncate (size ${size})`)
})
