// Shared set-up for the reference MDS tests: an MDS (and an OSS when OSTs are wanted)
// in a temporary directory, an MDC-like request helper, and readers of what the MDS
// sends back (layouts, readdir pages). Not a test file itself (tap skips test/helpers).
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LnetEndpoint, PtlrpcEndpoint, type CallResult } from '../../src/transport/index.js'
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { TargetImport, LustreRpcError } from '../../reference/common/index.js'
import { MdsServer, type MdsOptions } from '../../reference/mds/index.js'
import { OssServer } from '../../reference/oss/index.js'

export const spec = loadSpec()
export const CB = (n: string): bigint => constantOf(spec, n)
export const C = (n: string): number => Number(constantOf(spec, n))
export type Obj = Record<string, unknown>
export interface Fid { f_seq: bigint; f_oid: number; f_ver: number }

export const ROOT: Fid = { f_seq: 0x200000007n, f_oid: 1, f_ver: 0 }
export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000
export const MiB = 1 << 20
export const END = CB('MDS_DIR_END_OFF')
export const FLAGS = CB('OBD_CONNECT_VERSION') | CB('OBD_CONNECT_IBITS') | CB('OBD_CONNECT_FID') | CB('OBD_CONNECT_FULL20') |
  CB('OBD_CONNECT_ATTRFID') | CB('OBD_CONNECT_MAX_EASIZE') | CB('OBD_CONNECT_BULK_MBITS') | CB('OBD_CONNECT_64BITHASH')
export const OPEN_CREAT = C('MDS_OPEN_CREAT')
export const OPEN_EXCL = C('MDS_OPEN_EXCL')
export const FMODE_WRITE = C('MDS_FMODE_WRITE')
export const AGAIN = async (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** lov_user_md_v1 bytes: magic, RAID0, stripe size, count and offset (0xffff = -1). */
export function lum(size: number, count: number, offset: number, magic = C('LOV_USER_MAGIC_V1')): Uint8Array {
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
export class Mdc {
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
export async function status(p: Promise<unknown>): Promise<number> {
  try { await p; return 0 } catch (e) { if (e instanceof LustreRpcError) return e.status; throw e }
}

export interface Dirent { name: string; hash: bigint; fid: Fid; type: number }
/** Reads lu_dirpage pages as a client does (lu_dirent_start / lu_dirent_next / lu_dirent_type_get). */
export function parsePages(buf: Uint8Array): { entries: Dirent[]; end: bigint; flags: number[] } {
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

export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>(r => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise<void>(r => s.close(() => r()))
  return port
}

export interface Setup { dir: string; mds: MdsServer; oss?: OssServer; mdc: Mdc; client(): Promise<Mdc>; restart(): Promise<Mdc>; ost(i: number): Promise<TargetImport> }

export async function setup(t: Test, o: { osts?: number; mds?: Partial<MdsOptions> } = {}): Promise<Setup> {
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
export async function objectStatus(imp: TargetImport, oid: bigint): Promise<number> {
  const r = await imp.call({ format: 'RQF_OST_GETATTR', allowError: true, fields: { RMF_OST_BODY: makeStruct('ost_body', { oa: { o_valid: CB('OBD_MD_FLID') | CB('OBD_MD_FLGROUP'), o_oi: { oi: { oi_id: oid, oi_seq: 0n } } } }) } })
  return r.reply.body.pb_status as number
}

export interface Lmm { lmm_magic: number; lmm_stripe_size: number; lmm_stripe_count: number; lmm_layout_gen: number; lmm_oi: { oi: { oi_id: bigint; oi_seq: bigint } }; lmm_objects: Array<{ l_ost_idx: number; l_ost_oi: { oi: { oi_id: bigint } } }> }
export const lmmOf = (r: CallResult): Lmm => r.reply.fields.RMF_MDT_MD as Lmm
export const stripes = (r: CallResult): number[] => lmmOf(r).lmm_objects.map(o => o.l_ost_idx)

