// MDS_REINT: the modifying operations, told apart by the record's opcode (the codec
// has already picked the RQF_MDS_REINT_* format from it, as mdt_reint_opcode does).
// Each runs as one transaction with its transno; creates of regular files first pick
// their OSTs and make sure the pools hold objects, then take them inside it.
import type { ReplySpec } from '../../src/transport/index.js'
import { E, type TargetRequest } from '../common/index.js'
import {
  C, CB, S_IFMT, S_IFREG, S_IFLNK, S_IFDIR, MdsError, checkName, fail, fidFrom, fidIsZero, isDir, isReg, knownType, type Fid,
} from './common.js'
import { attrBody, emptyBody, ok, withEa, type Obj } from './body.js'
import { LOV_OFFSET_DEFAULT, encodeLovUserMd, inherit, isDefaultsOnly, isLmv, parseLovUserMd } from './layout.js'
import { PoolEmpty } from './osts.js'
import type { CreateArgs, LayoutPlan } from './namespace.js'
import type { Inode } from './store.js'
import type { MdtContext } from './handlers.js'

const REINT = { CREATE: C('REINT_CREATE'), OPEN: C('REINT_OPEN') }
const O = {
  CREAT: CB('MDS_OPEN_CREAT'), EXCL: CB('MDS_OPEN_EXCL'), WRITE: CB('MDS_FMODE_WRITE'),
  DIRECTORY: CB('MDS_OPEN_DIRECTORY'), BY_FID: CB('MDS_OPEN_BY_FID'),
}
const FLEASIZE = CB('OBD_MD_FLEASIZE')
/** PATH_MAX: the longest symlink target */
const PATH_MAX = 4096

const rec = (r: TargetRequest): Obj => (r.msg.fields.RMF_REC_REINT as Obj | null | undefined) ?? fail(E.EPROTO, 'no reint record')
const num = (v: unknown): number => Number(v ?? 0)
const big = (v: unknown): bigint => BigInt((v as bigint | number | undefined) ?? 0)
const ea = (r: TargetRequest): Uint8Array | null => (r.msg.fields.RMF_EADATA as Uint8Array | null | undefined) ?? null

/** A FID the operation cannot do without: zero is a malformed request. */
function needFid(v: unknown): Fid {
  const f = fidFrom(v)
  if (fidIsZero(f)) fail(E.EPROTO, 'zero FID')
  return f
}

/** Picks a new regular file's stripes (lod_qos_prep_create): request, then defaults. */
async function planLayout(ctx: MdtContext, parent: Inode, lum: Uint8Array | null): Promise<LayoutPlan | undefined> {
  if (!ctx.osts.indexes.length) return undefined // a metadata-only MDS: files without objects
  const asked = lum && lum.length && !isLmv(lum) ? parseLovUserMd(lum, ctx.osts.indexes) : undefined
  const s = inherit(asked, ctx.ns.defaultStriping(parent), ctx.fsDefault, ctx.osts.indexes.length)
  // The fault switch: round robin whatever stripe_offset the create asked for.
  const offset = ctx.faults?.ignoreStripeOffset ? LOV_OFFSET_DEFAULT : s.offset
  return { size: s.size, osts: await ctx.osts.pick(s.count, offset) }
}

/** Runs an update that may take precreated objects; a pool that ran dry is refilled and the update tried again. */
async function commit<T>(ctx: MdtContext, fn: () => T): Promise<{ result: T; transno: bigint }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return ctx.store.update(fn)
    } catch (e) {
      if (!(e instanceof PoolEmpty)) throw e
      if (attempt >= 5 || !(await ctx.osts.ensure(e.ost))) throw new MdsError(E.ENOSPC, e.message)
    }
  }
}

function createArgs(x: Obj, parent: Fid, name: string, mode: number): CreateArgs {
  const fid2 = fidFrom(x.cr_fid2)
  return {
    parent, name, mode, fid: fidIsZero(fid2) ? undefined : fid2, umask: num(x.cr_umask) & 0o777,
    uid: num(x.cr_fsuid), gid: num(x.cr_fsgid), rdev: Number(big(x.cr_rdev) & 0xffffffffn), time: big(x.cr_time) > 0n ? big(x.cr_time) : 0n,
  }
}

/**
 * REINT_CREATE (mdt_reint_create): mkdir, mknod, symlink by the type in cr_mode.
 * A symlink's target is RMF_SYMTGT; RMF_EADATA may carry a lov_user_md (a regular
 * file's layout, or a new directory's default layout); an LMV there is ignored.
 */
async function create(ctx: MdtContext, r: TargetRequest): Promise<ReplySpec> {
  const x = rec(r)
  if (num(x.cr_opcode) !== REINT.CREATE) fail(E.EOPNOTSUPP, 'not a create')
  const parent = needFid(x.cr_fid1)
  const name = checkName(r.msg.fields.RMF_NAME)
  const mode = num(x.cr_mode)
  if (!knownType(mode)) fail(E.EINVAL, 'no file type in cr_mode')
  const a = createArgs(x, parent, name, mode)
  const type = mode & S_IFMT
  const lum = ea(r)
  if (type === S_IFLNK) {
    const tgt = r.msg.fields.RMF_SYMTGT
    if (typeof tgt !== 'string' || !tgt.length) fail(E.EINVAL, 'symlink without a target')
    if (Buffer.byteLength(tgt as string) >= PATH_MAX) fail(E.ENAMETOOLONG, 'symlink target too long')
    a.symlink = tgt as string
  }
  if (type === S_IFDIR && lum && lum.length && !isLmv(lum)) {
    const s = parseLovUserMd(lum, ctx.osts.indexes)
    if (!isDefaultsOnly(s)) a.dirDefault = encodeLovUserMd(s)
  }
  // Checked before objects are taken from the pools; checked again inside the transaction.
  const pdir = ctx.ns.dir(parent)
  if (ctx.ns.lookup(pdir, name)) fail(E.EEXIST, 'name exists')
  if (type === S_IFREG) a.plan = await planLayout(ctx, pdir, lum)
  const { result: ino, transno } = await commit(ctx, () => ctx.ns.create(a))
  const body = attrBody(ino)
  const fields: Obj = { RMF_MDT_BODY: body }
  if (ino.layout && r.msg.format !== 'RQF_MDS_REINT_CREATE_SYM') withEa(body, fields, ino.layout, FLEASIZE)
  return ok(fields, ctx.store.lastTransno, transno)
}

/**
 * REINT_OPEN (mdt_reint_open): opens RMF_NAME in cr_fid1, creating a regular file with
 * MDS_OPEN_CREAT (-EEXIST with MDS_OPEN_EXCL when it exists), or the object cr_fid2
 * names with MDS_OPEN_BY_FID (or no name). The reply has the attributes, the open
 * handle in mbo_open_handle and the layout in RMF_MDT_MD; pb_transno is non-zero
 * only when a file was created. A symlink is not opened (no handle), as in mdt_finish_open.
 */
export async function reintOpen(ctx: MdtContext, r: TargetRequest): Promise<ReplySpec> {
  const x = rec(r)
  const flags = big(x.cr_flags_l) | (big(x.cr_flags_h) << 32n)
  const has = (f: bigint): boolean => (flags & f) !== 0n
  const rawName = r.msg.fields.RMF_NAME as string | null | undefined
  let ino: Inode
  let created = false
  let transno = 0n
  if (has(O.BY_FID) || !rawName) {
    ino = ctx.ns.get(needFid(x.cr_fid2))
  } else {
    const parent = needFid(x.cr_fid1)
    const name = checkName(rawName)
    const pdir = ctx.ns.dir(parent)
    const found = ctx.ns.lookup(pdir, name)
    if (found && has(O.CREAT) && has(O.EXCL)) fail(E.EEXIST, 'exists')
    if (found) ino = found
    else {
      if (!has(O.CREAT)) fail(E.ENOENT, 'no such name')
      const a = createArgs(x, parent, name, S_IFREG | (num(x.cr_mode) & 0o7777))
      a.plan = await planLayout(ctx, pdir, ea(r))
      const c = await commit(ctx, () => {
        // Someone may have made the name meanwhile: then this is an open of theirs.
        const now = ctx.ns.lookup(ctx.ns.dir(parent), name)
        if (now && has(O.EXCL)) fail(E.EEXIST, 'exists')
        return now ? { ino: now, made: false } : { ino: ctx.ns.create(a), made: true }
      })
      ino = c.result.ino
      created = c.result.made
      transno = c.transno
    }
  }
  if (isDir(ino.mode) && !created && (has(O.CREAT) || has(O.WRITE))) fail(E.EISDIR, 'open of a directory for writing')
  if (!isDir(ino.mode) && has(O.DIRECTORY)) fail(E.ENOTDIR, 'not a directory')
  const extra: Obj = {}
  if ((ino.mode & S_IFMT) !== S_IFLNK) extra.mbo_open_handle = { cookie: ctx.opens.open(ino.id, r.exp.handle, flags) }
  const body = attrBody(ino, extra)
  const fields: Obj = { RMF_MDT_BODY: body }
  if (isReg(ino.mode) && ino.layout) withEa(body, fields, ino.layout, FLEASIZE)
  return ok(fields, ctx.store.lastTransno, transno)
}

/** REINT_SETATTR (mdt_reint_setattr): sa_fid's attributes by sa_valid, a directory's default layout by RMF_EADATA. */
function setattr(ctx: MdtContext, r: TargetRequest): ReplySpec {
  const x = rec(r)
  const fid = needFid(x.sa_fid)
  const lum = ea(r)
  const { result, transno } = ctx.store.update(() => ctx.ns.setattr(fid, {
    valid: big(x.sa_valid), mode: num(x.sa_mode), uid: num(x.sa_uid), gid: num(x.sa_gid), size: big(x.sa_size),
    blocks: big(x.sa_blocks), atime: big(x.sa_atime), mtime: big(x.sa_mtime), ctime: big(x.sa_ctime),
    flags: num(x.sa_attr_flags), projid: num(x.sa_projid),
  }, lum))
  return ok({ RMF_MDT_BODY: attrBody(result) }, ctx.store.lastTransno, transno)
}

/**
 * REINT_UNLINK (mdt_reint_unlink): RMF_NAME from ul_fid1; ul_mode S_IFDIR for rmdir.
 * The reply body is the removed object as left (mbo_nlink 0 when it is gone), as
 * mdt_handle_last_unlink() packs it. REINT_RMENTRY is not served.
 */
function unlink(ctx: MdtContext, r: TargetRequest): ReplySpec {
  const x = rec(r)
  if (num(x.ul_opcode) !== C('REINT_UNLINK')) fail(E.EOPNOTSUPP, 'REINT_RMENTRY')
  const parent = needFid(x.ul_fid1)
  const name = checkName(r.msg.fields.RMF_NAME)
  const { result, transno } = ctx.store.update(() => ctx.ns.unlink(parent, name, num(x.ul_mode), big(x.ul_time)))
  ctx.osts.kickDestroys()
  return ok({ RMF_MDT_BODY: attrBody(result) }, ctx.store.lastTransno, transno)
}

/**
 * REINT_RENAME (mdt_reint_rename): RMF_NAME in rn_fid1 becomes RMF_SYMTGT in rn_fid2.
 * The reply body is the overwritten target as left, when there was one (else empty).
 */
function rename(ctx: MdtContext, r: TargetRequest): ReplySpec {
  const x = rec(r)
  const sdir = needFid(x.rn_fid1)
  const tdir = needFid(x.rn_fid2)
  const sname = checkName(r.msg.fields.RMF_NAME)
  const tname = checkName(r.msg.fields.RMF_SYMTGT)
  const { result, transno } = ctx.store.update(() => ctx.ns.rename(sdir, sname, tdir, tname, big(x.rn_time)))
  ctx.osts.kickDestroys()
  return ok({ RMF_MDT_BODY: result ? attrBody(result) : emptyBody() }, ctx.store.lastTransno, transno)
}

/** REINT_LINK (mdt_reint_link): a new name RMF_NAME in lk_fid2 for the object lk_fid1; the reply has its attributes. */
function link(ctx: MdtContext, r: TargetRequest): ReplySpec {
  const x = rec(r)
  const obj = needFid(x.lk_fid1)
  const dir = needFid(x.lk_fid2)
  const name = checkName(r.msg.fields.RMF_NAME)
  const { result, transno } = ctx.store.update(() => ctx.ns.link(obj, dir, name, big(x.lk_time)))
  return ok({ RMF_MDT_BODY: attrBody(result) }, ctx.store.lastTransno, transno)
}

/** MDS_REINT: the operation by the format its record's opcode selected. */
export async function reint(ctx: MdtContext, r: TargetRequest): Promise<ReplySpec> {
  switch (r.msg.format) {
    case 'RQF_MDS_REINT_CREATE_ACL':
    case 'RQF_MDS_REINT_CREATE_SYM':
      return create(ctx, r)
    case 'RQF_MDS_REINT_OPEN':
      if (num(rec(r).cr_opcode) !== REINT.OPEN) fail(E.EOPNOTSUPP, 'not an open')
      return reintOpen(ctx, r)
    case 'RQF_MDS_REINT_SETATTR': return setattr(ctx, r)
    case 'RQF_MDS_REINT_UNLINK': return unlink(ctx, r)
    case 'RQF_MDS_REINT_RENAME': return rename(ctx, r)
    case 'RQF_MDS_REINT_LINK': return link(ctx, r)
    default:
      // REINT_SETXATTR, REINT_MIGRATE, REINT_RESYNC: not served here.
      return fail(E.EOPNOTSUPP, `reint format ${r.msg.format}`)
  }
}
