// reference/mds: the MDS answers MDS_* requests as reference/README.md and Lustre's
// MDT do (mdt_handler.c, mdt_reint.c, mdt_open.c), over real LNet/PtlRPC, with its
// OST objects precreated on a real OssServer. Requests are packed as mdc_lib.c packs them.
import t, { type Test } from 'tap'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LnetEndpoint, PtlrpcEndpoint, type CallResult } from '../../src/transport/index.js'
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { E, TargetImport, LustreRpcError } from '../../reference/common/index.js'
import { MdsServer, type MdsOptions } from '../../reference/mds/index.js'
import { OssServer } from '../../reference/oss/index.js'

const spec = loadSpec()
const CB = (n: string): bigint => constantOf(spec, n)
const C = (n: string): number => Number(constantOf(spec, n))
type Obj = Record<string, unknown>
interface Fid { f_seq: bigint; f_oid: number; f_ver: number }

const ROOT: Fid = { f_seq: 0x200000007n, f_oid: 1, f_ver: 0 }
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const MiB = 1 << 20
const END = CB('MDS_DIR_END_OFF')
const FLAGS = CB('OBD_CONNECT_VERSION') | CB('OBD_CONNECT_IBITS') | CB('OBD_CONNECT_FID') | CB('OBD_CONNECT_FULL20') |
  CB('OBD_CONNECT_ATTRFID') | CB('OBD_CONNECT_MAX_EASIZE') | CB('OBD_CONNECT_BULK_MBITS') | CB('OBD_CONNECT_64BITHASH')
const OPEN_CREAT = C('MDS_OPEN_CREAT')
const OPEN_EXCL = C('MDS_OPEN_EXCL')
const FMODE_WRITE = C('MDS_FMODE_WRITE')
const AGAIN = async (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** lov_user_md_v1 bytes: magic, RAID0, stripe size, count and offset (0xffff = -1). */
function lum(size: number, count: number, offset: number, magic = C('LOV_USER_MAGIC_V1')): Uint8Array {
  const b = new Uint8Array(32)
  const dv = new DataView(b.buffer)
  dv.setUint32(0, magic, true)
  dv.setUint32(4, C('LOV_PATTERN_RAID0'), true)
  dv.setUint32(24, size, true)
  dv.setUint16(28, count & 0xffff, true)
  dv.setUint16(30, offset & 0xffff, true)
  return b
}

let pid = 5000

/** A small MDC: requests packed as mdc_*_pack() packs them, on one import. */
class Mdc {
  constructor(readonly imp: TargetImport, readonly lnet: LnetEndpoint) {}

  static async connect(port: number, uuid = `client-${pid}_UUID`): Promise<Mdc> {
    const lnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid: pid++ })
    const peer = await lnet.connect('127.0.0.1', port)
    const imp = new TargetImport(new PtlrpcEndpoint(lnet), peer, { service: 'mds', targetUuid: 'lustre-MDT0000_UUID', clientUuid: uuid, flags: FLAGS | CB('OBD_CONNECT_ACL'), ocd: { ocd_ibits_known: 0xffn }, timeoutMs: 20_000 })
    await imp.connect()
    return new Mdc(imp, lnet)
  }

  call(format: string, fields: Obj, extra: Obj = {}): Promise<CallResult> {
    return this.imp.call({ format, fields, ...extra })
  }

  body(r: CallResult): Obj { return r.reply.fields.RMF_MDT_BODY as Obj }
  fid(r: CallResult): Fid { return this.body(r).mbo_fid1 as Fid }

  root() { return this.call('RQF_MDS_GET_ROOT', { RMF_MDT_BODY: makeStruct('mdt_body', {}) }) }
  getattr(fid: Fid, valid = 0n) {
    return this.call('RQF_MDS_GETATTR', { RMF_MDT_BODY: makeStruct('mdt_body', { mbo_fid1: fid, mbo_valid: CB('OBD_MD_FLID') | valid }) })
  }
  lookup(dir: Fid, name: string, valid = 0n) {
    return this.call('RQF_MDS_GETATTR_NAME', { RMF_MDT_BODY: makeStruct('mdt_body', { mbo_fid1: dir, mbo_valid: CB('OBD_MD_FLID') | valid }), RMF_NAME: name })
  }
  create(dir: Fid, name: string, mode: number, o: { ea?: Uint8Array; symlink?: string; fid?: Fid } = {}) {
    const rec = makeStruct('mdt_rec_create', { cr_opcode: C('REINT_CREATE'), cr_fid1: dir, cr_fid2: o.fid ?? {}, cr_mode: mode, cr_fsuid: 500, cr_fsgid: 500, cr_umask: 0o022 })
    if (o.symlink) return this.call('RQF_MDS_REINT_CREATE_SYM', { RMF_REC_REINT: rec, RMF_NAME: name, RMF_SYMTGT: o.symlink })
    return this.call('RQF_MDS_REINT_CREATE_ACL', { RMF_REC_REINT: rec, RMF_NAME: name, ...(o.ea ? { RMF_EADATA: o.ea } : {}) })
  }
  mkdir(dir: Fid, name: string) { return this.create(dir, name, S_IFDIR | 0o755) }
  open(dir: Fid, name: string, flags: number, ea?: Uint8Array) {
    const rec = makeStruct('mdt_rec_create', { cr_opcode: C('REINT_OPEN'), cr_fid1: dir, cr_mode: S_IFREG | 0o644, cr_flags_l: flags, cr_fsuid: 500, cr_fsgid: 500 })
    return this.call('RQF_MDS_REINT_OPEN', { RMF_REC_REINT: rec, RMF_NAME: name, ...(ea ? { RMF_EADATA: ea } : {}) })
  }
  close(fid: Fid, handle: bigint) {
    return this.call('RQF_MDS_CLOSE', {
      RMF_MDT_EPOCH: makeStruct('mdt_ioepoch', { mio_open_handle: { cookie: handle } }),
      RMF_REC_REINT: makeStruct('mdt_rec_setattr', { sa_opcode: C('REINT_SETATTR'), sa_fid: fid }),
    })
  }
  setattr(fid: Fid, valid: bigint, rec: Obj = {}, ea?: Uint8Array) {
    return this.call('RQF_MDS_REINT_SETATTR', {
      RMF_REC_REINT: makeStruct('mdt_rec_setattr', { sa_opcode: C('REINT_SETATTR'), sa_fid: fid, sa_valid: valid, ...rec }), ...(ea ? { RMF_EADATA: ea } : {}),
    })
  }
  unlink(dir: Fid, name: string, mode = 0) {
    return this.call('RQF_MDS_REINT_UNLINK', { RMF_REC_REINT: makeStruct('mdt_rec_unlink', { ul_opcode: C('REINT_UNLINK'), ul_fid1: dir, ul_mode: mode }), RMF_NAME: name })
  }
  rename(sdir: Fid, sname: string, tdir: Fid, tname: string) {
    return this.call('RQF_MDS_REINT_RENAME', { RMF_REC_REINT: makeStruct('mdt_rec_rename', { rn_opcode: C('REINT_RENAME'), rn_fid1: sdir, rn_fid2: tdir }), RMF_NAME: sname, RMF_SYMTGT: tname })
  }
  link(obj: Fid, dir: Fid, name: string) {
    return this.call('RQF_MDS_REINT_LINK', { RMF_REC_REINT: makeStruct('mdt_rec_link', { lk_opcode: C('REINT_LINK'), lk_fid1: obj, lk_fid2: dir }), RMF_NAME: name })
  }
  readpage(dir: Fid, cookie: bigint, bytes: number) {
    return this.call('RQF_MDS_READPAGE', {
      RMF_MDT_BODY: makeStruct('mdt_body', { mbo_fid1: dir, mbo_valid: CB('OBD_MD_FLID'), mbo_size: cookie, mbo_nlink: bytes, mbo_mode: C('LUDA_FID') | C('LUDA_TYPE') }),
    }, { bulkSinkLength: bytes })
  }
  async close_(): Promise<void> { await this.lnet.close() }
}

/** The status a request ended with (0, or the negative errno of a LustreRpcError). */
async function status(p: Promise<unknown>): Promise<number> {
  try { await p; return 0 } catch (e) { if (e instanceof LustreRpcError) return e.status; throw e }
}

interface Dirent { name: string; hash: bigint; fid: Fid; type: number }
/** Reads lu_dirpage pages as a client does (lu_dirent_start / lu_dirent_next / lu_dirent_type_get). */
function parsePages(buf: Uint8Array): { entries: Dirent[]; end: bigint; flags: number[] } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const entries: Dirent[] = []
  const flags: number[] = []
  let end = 0n
  for (let p = 0; p + 4096 <= buf.length; p += 4096) {
    end = dv.getBigUint64(p + 8, true)
    flags.push(dv.getUint32(p + 16, true))
    if (dv.getUint32(p + 16, true) & C('LDF_EMPTY')) continue
    for (let off = p + 24; ;) {
      const reclen = dv.getUint16(off + 24, true)
      const namelen = dv.getUint16(off + 26, true)
      const attrs = dv.getUint32(off + 28, true)
      const name = Buffer.from(buf.subarray(off + 32, off + 32 + namelen)).toString('utf8')
      const type = attrs & C('LUDA_TYPE') ? dv.getUint16(off + 32 + ((namelen + 1) & ~1), true) : 0
      entries.push({ name, hash: dv.getBigUint64(off + 16, true), fid: { f_seq: dv.getBigUint64(off, true), f_oid: dv.getUint32(off + 8, true), f_ver: dv.getUint32(off + 12, true) }, type })
      if (!reclen) break
      off += reclen
    }
  }
  return { entries, end, flags }
}

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>(r => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise<void>(r => s.close(() => r()))
  return port
}

interface Setup { dir: string; mds: MdsServer; oss?: OssServer; mdc: Mdc; client(): Promise<Mdc>; restart(): Promise<Mdc>; ost(i: number): Promise<TargetImport> }

async function setup(t: Test, o: { osts?: number; mds?: Partial<MdsOptions> } = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'lc-mds-'))
  const osts = o.osts ?? 0
  const oss = osts ? new OssServer({ dir, osts, host: '127.0.0.1', port: 0 }) : undefined
  await oss?.start()
  const opts = (): MdsOptions => ({ dir, osts: Array.from({ length: osts }, (_, i) => ({ index: i, host: '127.0.0.1', port: oss!.port, nid: oss!.nid })), port: 0, precreateBatch: 8, ...o.mds })
  const clients: Mdc[] = []
  const lnets: LnetEndpoint[] = []
  const s: Setup = {
    dir, oss, mds: new MdsServer(opts()), mdc: undefined as unknown as Mdc,
    client: async () => { const c = await Mdc.connect(s.mds.port); clients.push(c); return c },
    restart: async () => { await s.mds.close(); s.mds = new MdsServer(opts()); await s.mds.start(); return s.client() },
    ost: async i => {
      const lnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid: pid++ })
      lnets.push(lnet)
      const imp = new TargetImport(new PtlrpcEndpoint(lnet), await lnet.connect('127.0.0.1', oss!.port), { service: 'ost', targetUuid: `lustre-OST000${i}_UUID`, clientUuid: `probe-${pid}_UUID`, flags: CB('OBD_CONNECT_VERSION') })
      await imp.connect()
      return imp
    },
  }
  t.teardown(async () => {
    for (const c of clients) await c.close_()
    for (const l of lnets) await l.close()
    await s.mds.close()
    await oss?.close()
    rmSync(dir, { recursive: true, force: true })
  })
  await s.mds.start()
  s.mdc = await s.client()
  return s
}

/** Whether an OST object exists (OST_GETATTR status). */
async function objectStatus(imp: TargetImport, oid: bigint): Promise<number> {
  const r = await imp.call({ format: 'RQF_OST_GETATTR', allowError: true, fields: { RMF_OST_BODY: makeStruct('ost_body', { oa: { o_valid: CB('OBD_MD_FLID') | CB('OBD_MD_FLGROUP'), o_oi: { oi: { oi_id: oid, oi_seq: 0n } } } }) } })
  return r.reply.body.pb_status as number
}

interface Lmm { lmm_magic: number; lmm_stripe_size: number; lmm_stripe_count: number; lmm_layout_gen: number; lmm_oi: { oi: { oi_id: bigint; oi_seq: bigint } }; lmm_objects: Array<{ l_ost_idx: number; l_ost_oi: { oi: { oi_id: bigint } } }> }
const lmmOf = (r: CallResult): Lmm => r.reply.fields.RMF_MDT_MD as Lmm
const stripes = (r: CallResult): number[] => lmmOf(r).lmm_objects.map(o => o.l_ost_idx)

t.test('connect, ping, get root, getattr, disconnect', async t => {
  const s = await setup(t)
  const c = s.mdc
  t.equal(c.imp.flags, FLAGS, 'negotiated flags = asked & supported (no ACL)')
  t.equal(c.imp.ocd.ocd_connect_flags2, 0n, 'nothing of flags2 granted')
  t.ok(Number(c.imp.ocd.ocd_max_easize) >= 32, 'ocd_max_easize')
  t.equal(c.imp.ocd.ocd_ibits_known, 0x7fn, 'ibits known, masked to MDS_INODELOCK_FULL')
  t.equal(await c.imp.ping(), 0, 'ping')
  const root = await c.root()
  t.same(c.fid(root), ROOT, 'root FID [FID_SEQ_ROOT:1:0]')
  const a = c.body(await c.getattr(ROOT))
  t.equal(a.mbo_mode, S_IFDIR | 0o755)
  t.equal(a.mbo_nlink, 2)
  t.equal(await status(c.getattr({ f_seq: 0n, f_oid: 0, f_ver: 0 })), E.EPROTO, 'zero FID: -EPROTO')
  t.equal(await status(c.getattr({ f_seq: 0x200000400n, f_oid: 999, f_ver: 0 })), E.ENOENT, 'unknown FID: -ENOENT')
  t.equal(await status(c.call('RQF_MDS_REINT', { RMF_REC_REINT: makeStruct('mdt_rec_reint', { rr_opcode: C('REINT_SETXATTR') }) })), E.EOPNOTSUPP, 'REINT_SETXATTR is not served')
  t.equal(await status(c.call('RQF_MDS_GET_ROOT', { RMF_MDT_BODY: makeStruct('mdt_body', {}), RMF_NAME: 'nope' })), E.ENOENT, 'unknown fileset')
  const exportsOf = (): string[] => {
    const db = new Database(join(s.dir, 'mdt0', 'mdt.db'), { readonly: true })
    try { return (db.prepare('SELECT client_uuid FROM exports').all() as Array<{ client_uuid: string }>).map(r => r.client_uuid) } finally { db.close() }
  }
  t.same(exportsOf(), [c.imp.opts.clientUuid], 'the export is recorded in the database')
  await c.imp.disconnect()
  t.equal(await c.imp.ping(), E.ENOTCONN, 'no export after disconnect')
  t.same(exportsOf(), [], 'and its record goes with it')
})

t.test('mkdir, create, symlink, lookup, getattr, names', async t => {
  const { mdc: c } = await setup(t)
  const d = c.fid(await c.mkdir(ROOT, 'dir'))
  t.equal(c.body(await c.getattr(ROOT)).mbo_nlink, 3, 'a subdirectory adds a link to its parent')
  t.equal(await status(c.mkdir(ROOT, 'dir')), E.EEXIST, 'mkdir of an existing name')
  const f = await c.create(d, 'file', S_IFREG | 0o666)
  t.equal(c.body(f).mbo_mode, S_IFREG | 0o644, 'umask applied (mdd_acl_init without default ACL)')
  t.equal(c.body(f).mbo_uid, 500)
  const l = c.fid(await c.create(d, 'link', S_IFLNK | 0o777, { symlink: '../some/target' }))
  const la = await c.getattr(l, CB('OBD_MD_LINKNAME'))
  t.same(Buffer.from(la.reply.fields.RMF_MDT_MD as Uint8Array).toString(), '../some/target\0', 'symlink target with its NUL')
  t.equal(c.body(la).mbo_eadatasize, 15)
  const look = await c.lookup(d, 'file')
  t.same(c.fid(look), c.fid(f), 'lookup finds the created object')
  t.same(c.fid(await c.lookup(d, '..')), ROOT, '".." is the parent')
  t.same(c.fid(await c.lookup(d, '.')), d, '"." is the directory')
  t.equal(await status(c.lookup(d, 'missing')), E.ENOENT)
  t.equal(await status(c.lookup(c.fid(f), 'x')), E.ENOTDIR, 'lookup in a file')
  t.equal(await status(c.mkdir(d, 'a/b')), E.EPROTO, 'a name with "/" is malformed')
  t.equal(await status(c.mkdir(d, 'x'.repeat(256))), E.ENAMETOOLONG, '256-byte name')
  t.equal(await status(c.mkdir(d, 'é'.repeat(128))), E.ENAMETOOLONG, '256 bytes of UTF-8')
  t.equal(await status(c.mkdir(d, 'x'.repeat(255))), 0, '255-byte name')
  t.equal(await status(c.create(d, 'nul', 0o644)), E.EINVAL, 'no file type')
  const mine = { f_seq: 0x200000400n, f_oid: 0x7000, f_ver: 0 }
  t.same(c.fid(await c.mkdir(ROOT, 'chosen').then(() => c.create(ROOT, 'byfid', S_IFREG | 0o600, { fid: mine }))), mine, 'a client FID is honoured')
  t.equal(await status(c.create(ROOT, 'byfid2', S_IFREG | 0o600, { fid: mine })), E.EEXIST, 'a FID in use')
})

t.test('open-create with layouts, round robin, precreated objects on the OSTs', async t => {
  const s = await setup(t, { osts: 4 })
  const c = s.mdc
  const a = await c.open(ROOT, 'a', OPEN_CREAT | FMODE_WRITE, lum(MiB, 2, 1))
  t.equal(lmmOf(a).lmm_magic, C('LOV_MAGIC_V1'))
  t.equal(lmmOf(a).lmm_stripe_size, MiB)
  t.same(stripes(a), [1, 2], '-c 2 -i 1: OSTs 1 and 2')
  t.same(lmmOf(a).lmm_oi.oi, { oi_id: BigInt(c.fid(a).f_oid), oi_seq: c.fid(a).f_seq }, 'lmm_oi from the FID')
  t.ok(((c.body(a).mbo_valid as bigint) & CB('OBD_MD_FLEASIZE')) !== 0n, 'FLEASIZE')
  t.equal(c.body(a).mbo_eadatasize, 32 + 2 * 24)
  const handle = (c.body(a).mbo_open_handle as { cookie: bigint }).cookie
  t.not(handle, 0n, 'an open handle')
  t.ok(a.reply.body.pb_transno as bigint > 0n, 'a create has a transno')
  const probe = await s.ost(2)
  t.equal(await objectStatus(probe, lmmOf(a).lmm_objects[1].l_ost_oi.oi.oi_id), 0, 'the object exists on OST 2')
  t.equal(await status(c.close(c.fid(a), handle)), 0, 'close')
  t.equal(await status(c.close(c.fid(a), handle)), E.ESTALE, 'second close: -ESTALE')

  const defaults = await Promise.all(['d0', 'd1', 'd2', 'd3'].map(async n => stripes(await c.open(ROOT, n, OPEN_CREAT))))
  t.same(defaults.map(x => x.length), [1, 1, 1, 1], 'default count 1')
  t.same(new Set(defaults.flat()).size, 4, 'round robin: four files on four OSTs')
  t.same(lmmOf(await c.open(ROOT, 'all', OPEN_CREAT, lum(0, -1, -1))).lmm_objects.length, 4, '-c -1: every OST')
  t.same(stripes(await c.open(ROOT, 'wrap', OPEN_CREAT, lum(0, 3, 3))), [3, 0, 1], 'offset 3 wraps modulo 4')
  t.equal(lmmOf(await c.open(ROOT, 'big', OPEN_CREAT, lum(0, 9, -1))).lmm_stripe_count, 4, 'count capped at the OSTs')
  const again = await c.open(ROOT, 'a', FMODE_WRITE)
  t.same(lmmOf(again).lmm_objects, lmmOf(a).lmm_objects, 'reopen: same layout')
  t.equal(again.reply.body.pb_transno, 0n, 'an open that creates nothing has no transno')
  t.equal(await status(c.open(ROOT, 'a', OPEN_CREAT | OPEN_EXCL)), E.EEXIST, 'O_EXCL')
  t.equal(await status(c.open(ROOT, 'none', 0)), E.ENOENT, 'open without O_CREAT')
  await c.mkdir(ROOT, 'sub')
  t.equal(await status(c.open(ROOT, 'sub', FMODE_WRITE)), E.EISDIR, 'directory for writing')
  t.equal(await status(c.open(ROOT, 'bad', OPEN_CREAT, lum(MiB, 1, -1, 0x12345678))), E.EINVAL, 'bad lov_user_md magic')
  t.equal(await status(c.open(ROOT, 'bad', OPEN_CREAT, lum(1000, 1, -1))), E.EINVAL, 'stripe size not a multiple of 64 KiB')
  t.equal(await status(c.open(ROOT, 'bad', OPEN_CREAT, lum(MiB, 1, 7))), E.EINVAL, 'offset names no OST')
  // 30 single-stripe files on OST 0 at once take several precreate batches (8 each).
  const ids = await Promise.all(Array.from({ length: 30 }, async (_, i) => lmmOf(await c.open(ROOT, `p${i}`, OPEN_CREAT, lum(0, 1, 0))).lmm_objects[0].l_ost_oi.oi.oi_id))
  t.equal(new Set(ids).size, 30, 'distinct objects across concurrent refills')
  const p0 = await s.ost(0)
  for (const id of [ids[0], ids[29]]) t.equal(await objectStatus(p0, id), 0, `object ${id} precreated on OST 0`)
})

t.test('directory default layout: set, read back, inherited, removed', async t => {
  const s = await setup(t, { osts: 3, mds: { defaultStripe: { size: 2 * MiB, count: 1 } } })
  const c = s.mdc
  const d = c.fid(await c.mkdir(ROOT, 'striped'))
  await c.setattr(d, 0n, {}, lum(4 * MiB, 2, -1))
  const g = await c.getattr(d, CB('OBD_MD_FLDIREA'))
  t.ok(((c.body(g).mbo_valid as bigint) & CB('OBD_MD_FLDIREA')) !== 0n, 'OBD_MD_FLDIREA')
  t.match(lmmOf(g), { lmm_magic: C('LOV_USER_MAGIC_V1'), lmm_stripe_size: 4 * MiB, lmm_stripe_count: 2, lmm_layout_gen: 0xffff }, 'default read back (offset in place of layout_gen)')
  const f = await c.open(d, 'f', OPEN_CREAT)
  t.match(lmmOf(f), { lmm_stripe_size: 4 * MiB, lmm_stripe_count: 2 }, 'a new file inherits it')
  t.match(lmmOf(await c.open(d, 'g', OPEN_CREAT, lum(0, 1, -1))), { lmm_stripe_size: 4 * MiB, lmm_stripe_count: 1 }, 'what the request leaves 0 comes from the default')
  t.match(lmmOf(await c.open(ROOT, 'h', OPEN_CREAT)), { lmm_stripe_size: 2 * MiB, lmm_stripe_count: 1 }, 'elsewhere: the filesystem default')
  await c.setattr(ROOT, 0n, {}, lum(0, -1, -1))
  const other = c.fid(await c.mkdir(ROOT, 'plain'))
  t.equal(lmmOf(await c.open(other, 'x', OPEN_CREAT)).lmm_stripe_count, 3, "a directory without a default takes the root's")
  await c.setattr(d, 0n, {}, lum(0, 0, -1))
  t.notOk((await c.getattr(d, CB('OBD_MD_FLDIREA'))).reply.fields.RMF_MDT_MD, 'size 0, count 0, offset -1 removes it')
  t.equal(await status(c.setattr(c.fid(f), 0n, {}, lum(MiB, 1, -1))), E.EEXIST, 'a file with objects keeps its layout')
  t.equal(await status(c.setattr(d, 0n, {}, lum(MiB, 1, -1, 0xdeadbeef))), E.EINVAL, 'bad magic')
  const fa = await c.setattr(c.fid(f), CB('MDS_ATTR_MODE') | CB('MDS_ATTR_UID') | CB('MDS_ATTR_MTIME') | CB('MDS_ATTR_SIZE'), { sa_mode: 0o600, sa_uid: 42, sa_mtime: 1234n, sa_size: 77n })
  t.match(c.body(fa), { mbo_mode: S_IFREG | 0o600, mbo_uid: 42, mbo_mtime: 1234n, mbo_size: 77n }, 'setattr by sa_valid')
  t.equal(await status(c.setattr(d, CB('MDS_ATTR_SIZE'), { sa_size: 1n })), E.EISDIR, 'truncate of a directory')
})

t.test('readdir of 10,000 entries, page by page from cookies', async t => {
  const { mdc: c } = await setup(t)
  const d = c.fid(await c.mkdir(ROOT, 'big'))
  const names = Array.from({ length: 10_000 }, (_, i) => (i % 97 === 0 ? `ünï-${i}` : `f${i}`))
  for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map(n => c.create(d, n, S_IFREG | 0o644)))
  const seen = new Map<string, number>()
  let cookie = 0n
  let calls = 0
  let lastHash = -1n
  const bad: string[] = []
  for (;;) {
    const r = await c.readpage(d, cookie, 8192)
    calls++
    const p = parsePages(r.bulk!)
    for (const e of p.entries) {
      seen.set(e.name, (seen.get(e.name) ?? 0) + 1)
      if (e.name === '.' || e.name === '..') continue
      if (!(e.hash > lastHash && e.hash < END)) bad.push(`${e.name}: hash out of order`)
      if (e.type !== S_IFREG) bad.push(`${e.name}: type ${e.type}`)
      lastHash = e.hash
    }
    if (p.end === END) break
    cookie = p.end
    if (calls > 1000) throw new Error('readdir does not end')
  }
  t.same(bad, [], 'entries in hash order, below MDS_DIR_END_OFF, typed S_IFREG')
  t.ok(calls >= 40, `${calls} READPAGE calls of 2 pages (about 200 entries each)`)
  t.equal(seen.size, 10_002, 'every name, with "." and ".."')
  t.ok([...seen.values()].every(v => v === 1), 'each exactly once')
  t.ok(names.every(n => seen.has(n)))
  const one = await c.readpage(d, 0n, 1 << 20)
  t.equal(parsePages(one.bulk!).entries.length, 10_002, 'or 1 MiB at once')
  const empty = c.fid(await c.mkdir(d, 'empty-dir'))
  const e = parsePages((await c.readpage(empty, 0n, 4096)).bulk!)
  t.same(e.entries.map(x => x.name), ['.', '..'])
  t.same(e.entries[1].fid, d, '".." names the parent')
  const past = parsePages((await c.readpage(empty, END, 4096)).bulk!)
  t.same([past.entries.length, past.end, past.flags[0]], [0, END, C('LDF_EMPTY')], 'past the end: an empty page')
  t.equal(await status(c.readpage(d, 0n, 100)), E.EINVAL, 'less than a page')
})

t.test('rename', async t => {
  const s = await setup(t, { osts: 2 })
  const c = s.mdc
  const a = c.fid(await c.mkdir(ROOT, 'a'))
  const b = c.fid(await c.mkdir(a, 'b'))
  const x = c.fid(await c.mkdir(ROOT, 'x'))
  await c.create(x, 'inner', S_IFREG | 0o644)
  const f = await c.open(ROOT, 'f', OPEN_CREAT)
  const g = await c.open(ROOT, 'g', OPEN_CREAT)
  await c.close(c.fid(g), (c.body(g).mbo_open_handle as { cookie: bigint }).cookie)
  t.equal(await status(c.rename(ROOT, 'a', b, 'a2')), E.EINVAL, 'into its own subtree')
  t.equal(await status(c.rename(ROOT, 'a', a, 'a2')), E.EINVAL, 'into itself')
  t.equal(await status(c.rename(ROOT, 'a', ROOT, 'x')), E.ENOTEMPTY, 'over a non-empty directory')
  t.equal(await status(c.rename(ROOT, 'a', ROOT, 'f')), E.ENOTDIR, 'directory over a file')
  t.equal(await status(c.rename(ROOT, 'f', ROOT, 'a')), E.EISDIR, 'file over a directory')
  t.equal(await status(c.rename(ROOT, 'nope', ROOT, 'z')), E.ENOENT)
  t.equal(await status(c.rename(ROOT, 'f', ROOT, 'f')), 0, 'onto itself: nothing to do')
  await c.rename(a, 'b', ROOT, 'b')
  t.same(c.fid(await c.lookup(ROOT, 'b')), b, 'moved')
  t.equal(await status(c.lookup(a, 'b')), E.ENOENT, 'old name gone')
  t.equal(c.body(await c.getattr(a)).mbo_nlink, 2, 'old parent lost the ".." link')
  t.equal(c.body(await c.getattr(ROOT)).mbo_nlink, 5, 'new parent gained it')
  t.same(c.fid(await c.lookup(b, '..')), ROOT, '".." follows')
  const gObj = lmmOf(g).lmm_objects[0]
  const over = await c.rename(ROOT, 'f', ROOT, 'g')
  t.match(c.body(over), { mbo_fid1: c.fid(g), mbo_nlink: 0 }, 'reply: the replaced target, gone')
  t.same(c.fid(await c.lookup(ROOT, 'g')), c.fid(f))
  const probe = await s.ost(gObj.l_ost_idx)
  for (let i = 0; i < 50 && await objectStatus(probe, gObj.l_ost_oi.oi.oi_id) === 0; i++) await AGAIN(50)
  t.equal(await objectStatus(probe, gObj.l_ost_oi.oi.oi_id), E.ENOENT, "the replaced file's object is destroyed")
  await c.mkdir(ROOT, 'e')
  t.equal(await status(c.rename(ROOT, 'b', ROOT, 'e')), 0, 'directory over an empty directory')
})

t.test('link, unlink, rmdir and link counts; open-unlinked files live until closed', async t => {
  const s = await setup(t, { osts: 1 })
  const c = s.mdc
  const d = c.fid(await c.mkdir(ROOT, 'd'))
  const o = await c.open(d, 'f', OPEN_CREAT)
  const f = c.fid(o)
  t.equal(c.body(await c.link(f, ROOT, 'f1')).mbo_nlink, 2)
  t.equal(c.body(await c.link(f, d, 'f2')).mbo_nlink, 3)
  t.equal(await status(c.link(f, d, 'f2')), E.EEXIST)
  t.equal(await status(c.link(d, ROOT, 'dlink')), E.EPERM, 'hard link to a directory')
  const proj = c.fid(await c.mkdir(ROOT, 'proj'))
  await c.setattr(proj, CB('MDS_ATTR_ATTR_FLAG') | CB('MDS_ATTR_PROJID'), { sa_attr_flags: C('LUSTRE_PROJINHERIT_FL'), sa_projid: 7 })
  t.equal(await status(c.link(f, proj, 'f3')), E.EXDEV, 'link into a project-inherit tree of another project')
  t.equal(await status(c.rename(ROOT, 'd', proj, 'd')), E.EXDEV, 'rename of a directory into it')
  t.equal(c.body(await c.mkdir(proj, 'inner')).mbo_projid, 7, 'new directories inherit the project')
  t.equal(c.body(await c.unlink(d, 'f2')).mbo_nlink, 2, 'reply: the object as left')
  t.equal(await status(c.unlink(ROOT, 'd', S_IFDIR)), E.ENOTEMPTY, 'rmdir of a non-empty directory')
  t.equal(await status(c.unlink(ROOT, 'f1', S_IFDIR)), E.ENOTDIR, 'rmdir of a file')
  t.equal(await status(c.unlink(ROOT, 'd', S_IFREG)), E.EISDIR, 'unlink of a directory')
  t.equal(await status(c.unlink(ROOT, 'zz')), E.ENOENT)
  await c.unlink(ROOT, 'f1')
  const last = await c.unlink(d, 'f')
  t.equal(c.body(last).mbo_nlink, 0, 'last name gone')
  t.equal(c.body(await c.getattr(f)).mbo_nlink, 0, 'still open: still there')
  const obj = lmmOf(o).lmm_objects[0].l_ost_oi.oi.oi_id
  const probe = await s.ost(0)
  t.equal(await objectStatus(probe, obj), 0, 'its object too')
  await c.close(f, (c.body(o).mbo_open_handle as { cookie: bigint }).cookie)
  t.equal(await status(c.getattr(f)), E.ENOENT, 'gone at last close')
  for (let i = 0; i < 50 && await objectStatus(probe, obj) === 0; i++) await AGAIN(50)
  t.equal(await objectStatus(probe, obj), E.ENOENT, 'object destroyed on the OST')
  t.equal(c.body(await c.unlink(ROOT, 'd', S_IFDIR)).mbo_nlink, 0, 'rmdir')
  t.equal(c.body(await c.getattr(ROOT)).mbo_nlink, 3, 'parent link count back (2 + proj)')
})

t.test('transnos: one per update, committed at once; data survives a restart', async t => {
  const s = await setup(t, { osts: 2 })
  let c = s.mdc
  const seen: bigint[] = []
  for (const n of ['t1', 't2', 't3']) {
    const r = await c.mkdir(ROOT, n)
    seen.push(r.reply.body.pb_transno as bigint)
    t.equal(r.reply.body.pb_last_committed, r.reply.body.pb_transno, 'synchronous commit')
  }
  t.same(seen, [seen[0], seen[0] + 1n, seen[0] + 2n], 'transnos count up')
  const look = await c.lookup(ROOT, 't1')
  t.equal(look.reply.body.pb_transno, 0n, 'a read has no transno')
  t.equal(look.reply.body.pb_last_committed, seen[2])
  t.equal((await c.mkdir(ROOT, 't1').catch(e => e) as LustreRpcError).status, E.EEXIST)
  t.equal((await c.lookup(ROOT, 't2')).reply.body.pb_last_committed, seen[2], 'a failed update uses no transno')
  const f = await c.open(ROOT, 'kept', OPEN_CREAT, lum(MiB, 2, -1))
  const sub = c.fid(await c.mkdir(ROOT, 'withdef'))
  await c.setattr(sub, 0n, {}, lum(2 * MiB, 1, 1))
  const before = (await c.lookup(ROOT, 'kept')).reply.body.pb_last_committed as bigint
  c = await s.restart()
  const k = await c.lookup(ROOT, 'kept', CB('OBD_MD_FLEASIZE'))
  t.same(c.fid(k), c.fid(f), 'lookup after restart')
  t.same(lmmOf(k).lmm_objects, lmmOf(f).lmm_objects, 'same layout')
  t.match(lmmOf(await c.getattr(sub, CB('OBD_MD_FLDIREA'))), { lmm_stripe_size: 2 * MiB, lmm_layout_gen: 1 }, 'directory default kept')
  const n = await c.mkdir(ROOT, 't4')
  t.equal(n.reply.body.pb_transno, before + 1n, 'transnos go on from the last committed')
  const g = await c.open(ROOT, 'new', OPEN_CREAT, lum(0, 2, -1))
  const old = new Set(lmmOf(f).lmm_objects.map(o => `${o.l_ost_idx}:${o.l_ost_oi.oi.oi_id}`))
  t.ok(lmmOf(g).lmm_objects.every(o => !old.has(`${o.l_ost_idx}:${o.l_ost_oi.oi.oi_id}`)), 'no object handed out twice')
  const names = parsePages((await c.readpage(ROOT, 0n, 4096)).bulk!).entries.map(e => e.name).sort()
  t.same(names, ['.', '..', 'kept', 'new', 't1', 't2', 't3', 't4', 'withdef'])
})

t.test('statfs, and an OST that comes up after the MDS', async t => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'lc-mds-late-'))
  const mds = new MdsServer({ dir, osts: [{ index: 0, host: '127.0.0.1', port, nid: '127.0.0.1@tcp' }], port: 0 })
  let oss: OssServer | undefined
  t.teardown(async () => { await mds.close(); await oss?.close(); rmSync(dir, { recursive: true, force: true }) })
  await mds.start()
  const c = await Mdc.connect(mds.port)
  t.teardown(() => c.close_())
  t.equal(await status(c.open(ROOT, 'early', OPEN_CREAT)), E.ENOSPC, 'no OST up: -ENOSPC')
  t.equal(await status(c.mkdir(ROOT, 'dirs-need-no-ost')), 0)
  oss = new OssServer({ dir, osts: 1, host: '127.0.0.1', port })
  await oss.start()
  const f = await c.open(ROOT, 'late', OPEN_CREAT)
  t.same(stripes(f), [0], 'the OST is connected on demand')
  const own = (await c.call('RQF_MDS_STATFS', {})).reply.fields.RMF_OBD_STATFS as Obj
  t.match(own, { os_namelen: 255 })
  t.ok((own.os_files as bigint) - (own.os_ffree as bigint) >= 3n, 'inodes in use')
  const sum = (await c.call('RQF_MDS_STATFS_NEW', { RMF_MDT_BODY: makeStruct('mdt_body', { mbo_valid: CB('OBD_MD_FLAGSTATFS') }) })).reply.fields.RMF_OBD_STATFS as Obj
  t.equal(sum.os_bsize, 4096)
  t.ok((sum.os_blocks as bigint) > 0n, 'OST space summed')
})
