// Every request the client sends to the MDS, packed in one place the way Lustre's mdc
// packs them (mdc_lib.c: __mdc_pack_body, mdc_pack_body, mdc_getattr_pack,
// mdc_readdir_pack, mdc_create_pack, mdc_open_pack, mdc_setattr_pack_rec, mdc_close_pack,
// mdc_unlink_pack, mdc_link_pack, mdc_rename_pack). Differences from a kernel client:
//  - files are created and opened with a plain MDS_REINT/REINT_OPEN, not an LDLM_ENQUEUE
//    open intent, since this client takes no locks;
//  - new objects get cr_fid2 = zero FID and the MDS allocates the FID (reference/README.md);
//  - suppgids are -1 (no supplementary group to offer), capabilities are all or nothing.
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import type { TargetImport } from '../common/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const N = (n: string): number => Number(C(n))

export interface Fid { seq: bigint; oid: number; ver: number }
export const ZERO_FID: Fid = { seq: 0n, oid: 0, ver: 0 }
export const wireFid = (f: Fid) => ({ f_seq: f.seq, f_oid: f.oid, f_ver: f.ver })
const fromWire = (f: { f_seq: bigint; f_oid: number; f_ver: number }): Fid => ({ seq: f.f_seq, oid: f.f_oid, ver: f.f_ver })

export const S_IFMT = 0o170000
export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000
const NO_GROUP = 0xffffffff // suppgid -1
const UMASK = 0o022

/** Who the requests act as (current_fsuid/fsgid/cap in a kernel client). */
export interface Creds { uid: number; gid: number; cap: number }

export function processCreds(): Creds {
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  // ll_capability_u32(current_cap()): root has every capability, others none.
  return { uid, gid, cap: uid === 0 ? 0xffffffff : 0 }
}

/** The mdt_body of a reply, plus the layout/link buffer that came with it. */
export interface MdAttr {
  fid: Fid
  valid: bigint
  mode: number
  uid: number
  gid: number
  nlink: number
  size: bigint
  atime: bigint
  mtime: bigint
  ctime: bigint
  openHandle: bigint
  /** RMF_MDT_MD as decoded: a lov_mds_md_v1 object, raw bytes, or undefined */
  md?: unknown
}

type Body = Record<string, unknown> & {
  mbo_fid1: { f_seq: bigint; f_oid: number; f_ver: number }; mbo_valid: bigint; mbo_mode: number; mbo_uid: number; mbo_gid: number
  mbo_nlink: number; mbo_size: bigint; mbo_atime: bigint; mbo_mtime: bigint; mbo_ctime: bigint; mbo_open_handle: { cookie: bigint }
}

function attrOf(fields: Record<string, unknown>): MdAttr {
  const b = fields.RMF_MDT_BODY as Body | undefined
  if (!b) throw new Error('MDS reply without RMF_MDT_BODY')
  return {
    fid: fromWire(b.mbo_fid1), valid: b.mbo_valid, mode: b.mbo_mode, uid: b.mbo_uid, gid: b.mbo_gid, nlink: b.mbo_nlink,
    size: b.mbo_size, atime: b.mbo_atime, mtime: b.mbo_mtime, ctime: b.mbo_ctime, openHandle: b.mbo_open_handle.cookie,
    md: fields.RMF_MDT_MD ?? undefined,
  }
}

const now = (): bigint => BigInt(Math.floor(Date.now() / 1000))

export interface SetattrArgs {
  /** MDS_ATTR_* bits */
  valid: bigint
  mode?: number
  size?: bigint
  atime?: bigint
  mtime?: bigint
  ctime?: bigint
  bias?: number
}

export class Mdc {
  constructor(readonly imp: TargetImport, readonly creds: Creds, readonly eaSize: number) {}

  /** __mdc_pack_body: who asks, and suppgid. */
  private body(members: Record<string, unknown>): Record<string, unknown> {
    const { uid, gid, cap } = this.creds
    return makeStruct('mdt_body', { mbo_suppgid: NO_GROUP, mbo_uid: uid, mbo_gid: gid, mbo_fsuid: uid, mbo_fsgid: gid, mbo_capability: cap, ...members })
  }

  /** The first members of every mdt_rec_* (their prefixes differ): opcode, fsuid, fsgid, cap, suppgids. */
  private rec(prefix: string, opcode: string, suppgids: 1 | 2): Record<string, unknown> {
    const { uid, gid, cap } = this.creds
    const r: Record<string, unknown> = { [`${prefix}_opcode`]: N(opcode), [`${prefix}_fsuid`]: uid, [`${prefix}_fsgid`]: gid, [`${prefix}_cap`]: cap }
    if (suppgids === 1) r[`${prefix}_suppgid`] = NO_GROUP
    else { r[`${prefix}_suppgid1`] = NO_GROUP; r[`${prefix}_suppgid2`] = NO_GROUP }
    return r
  }

  /** MDS_GET_ROOT (mdc_get_root): empty fileset name, valid 0. */
  async getRoot(): Promise<Fid> {
    const r = await this.imp.call({ format: 'RQF_MDS_GET_ROOT', fields: { RMF_MDT_BODY: this.body({}) } })
    return attrOf(r.reply.fields).fid
  }

  /** MDS_GETATTR by FID (mdc_getattr_pack): valid says what to return, eadatasize the room for it. */
  async getattr(fid: Fid, valid = C('OBD_MD_FLGETATTR') | C('OBD_MD_FLEASIZE'), eaSize = this.eaSize): Promise<MdAttr> {
    const r = await this.imp.call({
      format: 'RQF_MDS_GETATTR',
      fields: { RMF_MDT_BODY: this.body({ mbo_fid1: wireFid(fid), mbo_valid: valid | C('OBD_MD_FLID'), mbo_eadatasize: eaSize }) },
    })
    return attrOf(r.reply.fields)
  }

  /** MDS_GETATTR_NAME: look `name` up in directory `parent` (mdc_getattr_name). */
  async getattrName(parent: Fid, name: string, valid = C('OBD_MD_FLGETATTR') | C('OBD_MD_FLEASIZE')): Promise<MdAttr> {
    const r = await this.imp.call({
      format: 'RQF_MDS_GETATTR_NAME',
      fields: { RMF_MDT_BODY: this.body({ mbo_fid1: wireFid(parent), mbo_valid: valid | C('OBD_MD_FLID'), mbo_eadatasize: this.eaSize }), RMF_NAME: name },
    })
    return attrOf(r.reply.fields)
  }

  /** A symlink's target: MDS_GETATTR with OBD_MD_LINKNAME and room for size + NUL (ll_readlink_internal). */
  async readlink(fid: Fid, size: bigint): Promise<string> {
    const a = await this.getattr(fid, C('OBD_MD_LINKNAME'), Number(size) + 1)
    if (!(a.md instanceof Uint8Array)) return ''
    const nul = a.md.indexOf(0)
    return new TextDecoder().decode(nul < 0 ? a.md : a.md.subarray(0, nul))
  }

  /**
   * REINT_CREATE (mdc_create_pack): mkdir, or a symlink when `symlink` is given (mode
   * S_IFLNK; the target rides in the 5th buffer, RMF_SYMTGT of RQF_MDS_REINT_CREATE_SYM).
   */
  async create(parent: Fid, name: string, mode: number, symlink?: string): Promise<MdAttr> {
    const rec = makeStruct('mdt_rec_create', {
      ...this.rec('cr', 'REINT_CREATE', 2),
      cr_fid1: wireFid(parent), cr_fid2: wireFid(ZERO_FID), cr_mode: mode >>> 0, cr_time: now(), cr_umask: UMASK,
      // mdc_create_pack marks every mkdir with MDS_MKDIR_LMV (a u64 split in two u32s).
      ...flagsOf((mode & S_IFMT) === S_IFDIR ? C('MDS_MKDIR_LMV') : 0n),
    })
    const r = symlink !== undefined
      ? await this.imp.call({ format: 'RQF_MDS_REINT_CREATE_SYM', fields: { RMF_REC_REINT: rec, RMF_NAME: name, RMF_SYMTGT: symlink } })
      : await this.imp.call({ format: 'RQF_MDS_REINT_CREATE_ACL', fields: { RMF_REC_REINT: rec, RMF_NAME: name } })
    return attrOf(r.reply.fields)
  }

  /**
   * REINT_OPEN (mdc_open_pack): open, creating with O_CREAT. `lum` (lov_user_md) asks for
   * a layout and adds MDS_OPEN_HAS_EA; mdc_open_pack always adds MDS_OPEN_DEFAULT_LMV.
   */
  async open(parent: Fid, name: string, mode: number, flags: bigint, lum?: Uint8Array): Promise<MdAttr> {
    let cr = flags | C('MDS_OPEN_DEFAULT_LMV')
    if (lum) cr |= C('MDS_OPEN_HAS_EA')
    const rec = makeStruct('mdt_rec_create', {
      ...this.rec('cr', 'REINT_OPEN', 2),
      cr_fid1: wireFid(parent), cr_fid2: wireFid(ZERO_FID), cr_mode: mode >>> 0, cr_time: now(), cr_umask: UMASK, ...flagsOf(cr),
    })
    const r = await this.imp.call({ format: 'RQF_MDS_REINT_OPEN', fields: { RMF_REC_REINT: rec, RMF_NAME: name, ...(lum ? { RMF_EADATA: lum } : {}) } })
    return attrOf(r.reply.fields)
  }

  /**
   * MDS_CLOSE (mdc_close_pack): the open handle in mdt_ioepoch, and the attributes
   * ll_prepare_close sends (mode and the three times, marked _SET; atime dropped when 0).
   */
  async close(a: MdAttr, bias = 0): Promise<void> {
    let valid = C('MDS_ATTR_MODE') | C('MDS_ATTR_ATIME') | C('MDS_ATTR_ATIME_SET') | C('MDS_ATTR_MTIME') | C('MDS_ATTR_MTIME_SET') | C('MDS_ATTR_CTIME') | C('MDS_ATTR_CTIME_SET')
    if (a.atime === 0n) valid &= ~C('MDS_ATTR_ATIME')
    await this.imp.call({
      format: 'RQF_MDS_CLOSE',
      fields: {
        RMF_MDT_EPOCH: makeStruct('mdt_ioepoch', { mio_open_handle: { cookie: a.openHandle } }),
        RMF_REC_REINT: this.setattrRec(a.fid, { valid, mode: a.mode, atime: a.atime, mtime: a.mtime, ctime: a.ctime, bias }),
      },
    })
  }

  private setattrRec(fid: Fid, s: SetattrArgs): Record<string, unknown> {
    return makeStruct('mdt_rec_setattr', {
      ...this.rec('sa', 'REINT_SETATTR', 1),
      sa_fid: wireFid(fid), sa_valid: s.valid, sa_mode: s.mode ?? 0,
      sa_size: s.size ?? 0n, sa_atime: s.atime ?? 0n, sa_mtime: s.mtime ?? 0n, sa_ctime: s.ctime ?? 0n, sa_bias: s.bias ?? 0,
    })
  }

  /**
   * REINT_SETATTR (mdc_setattr_pack): attributes by MDS_ATTR_* bits; `ea` sets a layout
   * (a directory's default: ll_dir_setstripe sends it with sa_valid 0). RMF_MDT_EPOCH and
   * RMF_LOGCOOKIES go empty, as mdc_setattr sends them.
   */
  async setattr(fid: Fid, s: SetattrArgs, ea?: Uint8Array): Promise<MdAttr> {
    const r = await this.imp.call({
      format: 'RQF_MDS_REINT_SETATTR',
      fields: { RMF_REC_REINT: this.setattrRec(fid, s), ...(ea ? { RMF_EADATA: ea } : {}) },
    })
    return attrOf(r.reply.fields)
  }

  /**
   * REINT_UNLINK (mdc_unlink_pack) by parent FID and name: the MDT resolves the name
   * itself, so ul_fid2 may stay zero when the client has not looked the child up (as
   * ll_rmdir_entry sends it, and ll_unlink without an inode). ul_mode tells rmdir
   * (S_IFDIR) from unlink. A kernel ll_unlink sends 0 there because the VFS has already
   * refused a directory; this client has no VFS in front, so unlink sends S_IFREG, as
   * Lustre 1.x's ll_unlink did. An MDT that reads ul_mode (reference/mds; early 2.x
   * mdd_may_delete's is_dir test) then answers -EISDIR for a directory instead of
   * removing an empty one.
   */
  async unlink(parent: Fid, name: string, rmdir: boolean, child: Fid = ZERO_FID): Promise<void> {
    const rec = makeStruct('mdt_rec_unlink', {
      ...this.rec('ul', 'REINT_UNLINK', 2),
      ul_fid1: wireFid(parent), ul_fid2: wireFid(child), ul_mode: rmdir ? S_IFDIR : S_IFREG, ul_time: now(),
    })
    await this.imp.call({ format: 'RQF_MDS_REINT_UNLINK', fields: { RMF_REC_REINT: rec, RMF_NAME: name } })
  }

  /** REINT_RENAME (mdc_rename_pack): source and target directories, old name in RMF_NAME, new in RMF_SYMTGT. */
  async rename(srcDir: Fid, oldName: string, tgtDir: Fid, newName: string, mode: number): Promise<void> {
    const rec = makeStruct('mdt_rec_rename', {
      ...this.rec('rn', 'REINT_RENAME', 2),
      rn_fid1: wireFid(srcDir), rn_fid2: wireFid(tgtDir), rn_mode: mode >>> 0, rn_time: now(),
    })
    await this.imp.call({ format: 'RQF_MDS_REINT_RENAME', fields: { RMF_REC_REINT: rec, RMF_NAME: oldName, RMF_SYMTGT: newName } })
  }

  /** REINT_LINK (mdc_link_pack): lk_fid1 the existing object, lk_fid2 the directory of the new name. */
  async link(obj: Fid, tgtDir: Fid, name: string): Promise<void> {
    const rec = makeStruct('mdt_rec_link', {
      ...this.rec('lk', 'REINT_LINK', 2),
      lk_fid1: wireFid(obj), lk_fid2: wireFid(tgtDir), lk_time: now(),
    })
    await this.imp.call({ format: 'RQF_MDS_REINT_LINK', fields: { RMF_REC_REINT: rec, RMF_NAME: name } })
  }

  /**
   * MDS_READPAGE (mdc_readdir_pack): the hash to start from in mbo_size, the byte count in
   * mbo_nlink, the dirent attributes wanted in mbo_mode; the pages arrive by bulk PUT.
   */
  async readpage(dir: Fid, hash: bigint, bytes: number): Promise<Uint8Array> {
    const r = await this.imp.call({
      format: 'RQF_MDS_READPAGE',
      fields: { RMF_MDT_BODY: this.body({ mbo_fid1: wireFid(dir), mbo_valid: C('OBD_MD_FLID'), mbo_size: hash, mbo_nlink: bytes, mbo_mode: N('LUDA_FID') | N('LUDA_TYPE') }) },
      bulkSinkLength: bytes,
    })
    return r.bulk ?? new Uint8Array(0)
  }

  /** MDS_STATFS of the MDT (the plain format: this client does not ask for the MDT sum). */
  async statfs(): Promise<Record<string, unknown>> {
    const r = await this.imp.call({ format: 'RQF_MDS_STATFS' })
    return (r.reply.fields.RMF_OBD_STATFS ?? {}) as Record<string, unknown>
  }
}

/** set_mrc_cr_flags: the 64-bit open flags as cr_flags_l / cr_flags_h. */
function flagsOf(flags: bigint): { cr_flags_l: number; cr_flags_h: number } {
  return { cr_flags_l: Number(flags & 0xffffffffn), cr_flags_h: Number((flags >> 32n) & 0xffffffffn) }
}
