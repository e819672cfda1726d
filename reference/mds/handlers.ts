// MDS request handlers but MDS_REINT (reint.ts): MDS_GET_ROOT, MDS_GETATTR,
// MDS_GETATTR_NAME, MDS_CLOSE, MDS_READPAGE, MDS_STATFS, MDS_SYNC, and the open
// files that MDS_CLOSE ends (mdt_file_data, one per open, keyed by its handle).
import { randomBytes } from 'node:crypto'
import { statfsSync } from 'node:fs'
import { makeStruct } from '../../src/wire/index.js'
import type { ReplySpec } from '../../src/transport/index.js'
import { E, shiftStripes, type TargetHandler, type TargetRequest } from '../common/index.js'
import { C, CB, MdsError, NAME_MAX, checkName, fail, fidFrom, isDir, isLnk, isReg, ROOT_FID } from './common.js'
import { attrBody, emptyBody, err, fidBody, ok, withEa, type Obj } from './body.js'
import type { Inode, MdtStore } from './store.js'
import type { Namespace } from './namespace.js'
import type { OstSet } from './osts.js'
import { buildDirPages, LU_PAGE_SIZE } from './readdir.js'
import { maxLayoutSize } from './layout.js'

const V = {
  FLEASIZE: CB('OBD_MD_FLEASIZE'), FLDIREA: CB('OBD_MD_FLDIREA'), LINKNAME: CB('OBD_MD_LINKNAME'),
  FLMODEASIZE: CB('OBD_MD_FLMODEASIZE'),
}
const MDS_BULK_PORTAL = C('MDS_BULK_PORTAL')
/** Most readdir bytes one MDS_READPAGE moves (exp_max_brw_size: 1 MiB without OBD_CONNECT_BRW_SIZE). */
export const MAX_READPAGE = 1 << 20

/** Open files by handle, as mdt_file_data on an export's med_open_head. */
export class OpenFiles {
  private readonly byHandle = new Map<bigint, { inode: number; exp: bigint; flags: bigint }>()
  private readonly perInode = new Map<number, number>()

  open(inode: number, exp: bigint, flags: bigint): bigint {
    let h: bigint
    do h = randomBytes(8).readBigUInt64LE(0); while (h === 0n || this.byHandle.has(h))
    this.byHandle.set(h, { inode, exp, flags })
    this.perInode.set(inode, (this.perInode.get(inode) ?? 0) + 1)
    return h
  }

  /** Ends an open made on export `exp`; undefined for a handle unknown to it. */
  close(h: bigint, exp: bigint): { inode: number } | undefined {
    const o = this.byHandle.get(h)
    if (!o || o.exp !== exp) return undefined
    this.byHandle.delete(h)
    const n = (this.perInode.get(o.inode) ?? 1) - 1
    if (n > 0) this.perInode.set(o.inode, n)
    else this.perInode.delete(o.inode)
    return o
  }

  count(inode: number): number {
    return this.perInode.get(inode) ?? 0
  }

  handlesOf(exp: bigint): bigint[] {
    return [...this.byHandle].filter(([, o]) => o.exp === exp).map(([h]) => h)
  }
}

export interface MdtContext {
  store: MdtStore
  ns: Namespace
  osts: OstSet
  opens: OpenFiles
  fsDefault: { size: number; count: number }
  /** deliberate faults, for the certifier's self-test */
  faults?: { ignoreStripeOffset?: boolean; wrongErrno?: boolean; shiftStripes?: boolean }
  targetUuid: string
  /** the MDT's directory, for its own statfs */
  dir: string
  log: (line: string) => void
}

/** A handler whose MdsError ends the request with that errno. */
export function guarded(ctx: MdtContext, fn: (r: TargetRequest) => Promise<ReplySpec> | ReplySpec): TargetHandler {
  return async r => {
    let reply: ReplySpec
    try {
      reply = await fn(r)
    } catch (e) {
      if (!(e instanceof MdsError)) throw e
      reply = err(e.status, ctx.store.lastTransno)
    }
    // Nothing a reply says (its transno, or state another update left) goes out before it is committed.
    try {
      await ctx.store.settled()
    } catch (e) {
      ctx.log(`mds: commit failed: ${(e as Error).message}`)
      return err(E.EIO, ctx.store.lastTransno)
    }
    return reply
  }
}

export function reqBody(r: TargetRequest): Obj {
  const b = r.msg.fields.RMF_MDT_BODY as Obj | null | undefined
  return b ?? fail(E.EPROTO, 'no mdt_body')
}

/**
 * The attributes reply of mdt_getattr_internal(): the layout of a regular file when
 * mbo_valid asks OBD_MD_FLEASIZE, a directory's default layout for OBD_MD_FLDIREA,
 * a symlink's target (with its NUL, as the client expects) for OBD_MD_LINKNAME.
 * The request's mbo_eadatasize is not needed: reply buffers are sized to what they hold.
 */
export function attrReply(ctx: MdtContext, ino: Inode, asked: bigint): Obj {
  const body = attrBody(ino)
  const fields: Obj = { RMF_MDT_BODY: body }
  if (isReg(ino.mode) && (asked & V.FLEASIZE) && ino.layout) withEa(body, fields, ctx.faults?.shiftStripes ? shiftStripes(ino.layout) : ino.layout, V.FLEASIZE)
  if (isDir(ino.mode) && (asked & V.FLDIREA) && ino.dirDefault) withEa(body, fields, ino.dirDefault, V.FLDIREA)
  if (isLnk(ino.mode) && (asked & V.LINKNAME) && ino.symlink !== null) {
    withEa(body, fields, Buffer.concat([Buffer.from(ino.symlink, 'utf8'), Buffer.from([0])]), V.LINKNAME)
  }
  if (asked & V.FLMODEASIZE) {
    body.mbo_max_mdsize = maxLayoutSize(ctx.osts.indexes.length)
    body.mbo_valid = (body.mbo_valid as bigint) | V.FLMODEASIZE
  }
  return fields
}

const asked = (b: Obj): bigint => BigInt((b.mbo_valid as bigint | undefined) ?? 0n)

/** MDS_GET_ROOT (mdt_get_root): the root FID, or that of the fileset directory RMF_NAME names. */
export function getRoot(ctx: MdtContext, r: TargetRequest): ReplySpec {
  const path = r.msg.fields.RMF_NAME as string | null | undefined
  const ino = path ? ctx.ns.resolve(path) : ctx.ns.get(ROOT_FID)
  return ok({ RMF_MDT_BODY: fidBody(ino.fid) }, ctx.store.lastTransno)
}

/** MDS_GETATTR (mdt_getattr): the object mbo_fid1 names. */
export function getattr(ctx: MdtContext, r: TargetRequest): ReplySpec {
  const b = reqBody(r)
  return ok(attrReply(ctx, ctx.ns.get(fidFrom(b.mbo_fid1)), asked(b)), ctx.store.lastTransno)
}

/** MDS_GETATTR_NAME (mdt_getattr_name): RMF_NAME in the directory mbo_fid1 names. */
export function getattrName(ctx: MdtContext, r: TargetRequest): ReplySpec {
  const b = reqBody(r)
  const dir = ctx.ns.dir(fidFrom(b.mbo_fid1))
  // The wrongErrno fault answers a missing name -EACCES instead of -ENOENT.
  const child = ctx.ns.lookup(dir, checkName(r.msg.fields.RMF_NAME)) ?? fail(ctx.faults?.wrongErrno ? E.EACCES : E.ENOENT, 'no such name')
  return ok(attrReply(ctx, child, asked(b)), ctx.store.lastTransno)
}

/**
 * MDS_CLOSE (mdt_close): ends the open whose handle RMF_MDT_EPOCH carries (-ESTALE
 * for one this export does not hold). Closing the last open of a file whose names are
 * all gone destroys it. The reply carries the object's attributes.
 */
export function close(ctx: MdtContext, r: TargetRequest): ReplySpec {
  const ep = r.msg.fields.RMF_MDT_EPOCH as Obj | null | undefined
  const h = ((ep ?? fail(E.EPROTO, 'no mdt_ioepoch'))!.mio_open_handle as { cookie: bigint }).cookie
  const o = ctx.opens.close(h, r.exp.handle) ?? fail(E.ESTALE, 'unknown open handle')
  return finishClose(ctx, o!.inode)
}

export function finishClose(ctx: MdtContext, inode: number): ReplySpec {
  const ino = ctx.store.byId(inode)
  if (!ino) return ok({ RMF_MDT_BODY: emptyBody() }, ctx.store.lastTransno)
  if (ino.nlink === 0 && !ctx.opens.count(inode)) {
    const { transno } = ctx.store.update(() => ctx.ns.destroy(ino))
    ctx.osts.kickDestroys()
    return ok({ RMF_MDT_BODY: attrBody(ino) }, ctx.store.lastTransno, transno)
  }
  return ok({ RMF_MDT_BODY: attrBody(ino) }, ctx.store.lastTransno)
}

/**
 * MDS_READPAGE (mdt_readpage): mbo_fid1 the directory, mbo_size the hash to start
 * from, mbo_nlink the bytes the client's buffer holds (whole 4096-byte pages are
 * filled, at most 1 MiB), mbo_mode the LUDA_* attributes wanted. The pages go by a
 * bulk PUT before the reply (tgt_sendpage).
 */
export async function readpage(ctx: MdtContext, r: TargetRequest): Promise<ReplySpec> {
  const b = reqBody(r)
  const dir = ctx.ns.dir(fidFrom(b.mbo_fid1))
  const bytes = Math.min(Number(b.mbo_nlink ?? 0), MAX_READPAGE, Number(r.exp.ocd.ocd_brw_size || MAX_READPAGE))
  const pages = Math.floor(bytes / LU_PAGE_SIZE)
  if (pages < 1) fail(E.EINVAL, 'readpage of less than a page')
  const data = buildDirPages(ctx.store, {
    dir, parentFid: ctx.ns.parentOf(dir).fid, cookie: BigInt((b.mbo_size as bigint | undefined) ?? 0n), pages,
    asked: Number(b.mbo_mode ?? 0), hash64: (r.exp.flags & CB('OBD_CONNECT_64BITHASH')) !== 0n,
  })
  await r.req.bulkPut(data, MDS_BULK_PORTAL)
  return ok({ RMF_MDT_BODY: emptyBody() }, ctx.store.lastTransno)
}

/** MDS_SYNC: every update is committed before its reply, so there is nothing left to flush. */
export function sync(ctx: MdtContext, r: TargetRequest): ReplySpec {
  const fid = fidFrom(reqBody(r).mbo_fid1)
  const body = fid.f_seq === 0n && fid.f_oid === 0 ? emptyBody() : attrBody(ctx.ns.get(fid))
  return ok({ RMF_MDT_BODY: body }, ctx.store.lastTransno)
}

/**
 * SEQ_QUERY (seq_server_handle) on the metadata sequence portal: SEQ_ALLOC_META gives the
 * asker a sequence of its own, [seq, seq + 1), in which it names the objects it creates
 * (cr_fid2). The allocation commits before the reply leaves, so a restart never gives a
 * sequence twice. Super-sequences are for MDTs asking a controller: -EINVAL here.
 */
export function seqQuery(ctx: MdtContext, r: TargetRequest): ReplySpec {
  const opc = r.msg.fields.RMF_SEQ_OPC
  if (opc !== Number(C('SEQ_ALLOC_META'))) fail(E.EINVAL, `SEQ_QUERY opc ${String(opc)}: only SEQ_ALLOC_META is served`)
  const seq = ctx.store.internal(() => ctx.store.allocSeq())
  const range = makeStruct('lu_seq_range', { lsr_start: seq, lsr_end: seq + 1n, lsr_index: 0, lsr_flags: Number(C('LU_SEQ_RANGE_MDT')) })
  return ok({ RMF_SEQ_RANGE: range }, ctx.store.lastTransno)
}

/** LL_SUPER_MAGIC: what statfs reports as the filesystem type of a Lustre mount. */
const LL_SUPER_MAGIC = 0x0bd00bd0n
const STATFS_BSIZE = 4096n

/** The MDT's own obd_statfs: space of the disk under the database, inodes in use. */
function mdtStatfs(ctx: MdtContext): Obj {
  const s = statfsSync(ctx.dir, { bigint: true })
  const fsid = new Uint8Array(40)
  fsid.set(Buffer.from(ctx.targetUuid, 'utf8').subarray(0, 39))
  const used = BigInt(ctx.store.inodeCount())
  return {
    os_type: LL_SUPER_MAGIC, os_blocks: s.blocks, os_bfree: s.bfree, os_bavail: s.bavail,
    os_files: used + s.ffree, os_ffree: s.ffree, os_fsid: fsid, os_bsize: Number(s.bsize), os_namelen: NAME_MAX,
    os_maxbytes: (1n << 63n) - 1n,
  }
}

/**
 * MDS_STATFS. RQF_MDS_STATFS answers with the MDT's own numbers (mdt_statfs).
 * RQF_MDS_STATFS_NEW (OBD_MD_FLAGSTATFS, "sum") answers with what df shows of the
 * filesystem: the space of every OST that answers OST_STATFS, in 4 KiB blocks, and
 * the MDT's inodes (as ll_statfs_internal() combines them on a client).
 */
export async function statfs(ctx: MdtContext, r: TargetRequest): Promise<ReplySpec> {
  const own = mdtStatfs(ctx)
  if (r.msg.format === 'RQF_MDS_STATFS_NEW') {
    const osts = await ctx.osts.statfs()
    if (osts.length) {
      const sum = (k: string): bigint => osts.reduce((a, o) => a + BigInt(o[k] as bigint) * BigInt(Number(o.os_bsize) || 4096), 0n) / STATFS_BSIZE
      Object.assign(own, { os_blocks: sum('os_blocks'), os_bfree: sum('os_bfree'), os_bavail: sum('os_bavail'), os_bsize: Number(STATFS_BSIZE) })
    }
  }
  return ok({ RMF_OBD_STATFS: makeStruct('obd_statfs', own) }, ctx.store.lastTransno)
}

