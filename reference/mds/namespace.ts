// Namespace operations on the store, each meant to run inside one transaction
// (MdtStore.update): every check is made there, against the state the change
// applies to, and a failed check throws an MdsError that rolls the transaction back.
// Sanity checks follow mdd_dir.c (mdd_create_sanity_check, mdd_may_delete,
// mdd_link_sanity_check, mdd_rename_sanity_check); link counts follow ldiskfs: a
// directory has 2 + its subdirectories, a file one per name.
import { E } from '../common/index.js'
import {
  C, CB, FID_SEQ_NORMAL, S_IFDIR, S_IFLNK, S_IFMT, S_ISGID, PERM_BITS, ROOT_FID,
  fail, fidIsZero, isDir, isDot, isReg, nowSec, type Fid,
} from './common.js'
import type { Inode, MdtStore } from './store.js'
import { freeHash } from './readdir.js'
import {
  encodeLovMdsMd, encodeLovUserMd, isDefaultsOnly, layoutObjects, parseLovUserMd, readLovUserMd, type Striping,
} from './layout.js'
import type { OstSet } from './osts.js'

const LUSTRE_PROJINHERIT_FL = C('LUSTRE_PROJINHERIT_FL')
const A = {
  MODE: CB('MDS_ATTR_MODE'), UID: CB('MDS_ATTR_UID'), GID: CB('MDS_ATTR_GID'), SIZE: CB('MDS_ATTR_SIZE'),
  ATIME: CB('MDS_ATTR_ATIME'), MTIME: CB('MDS_ATTR_MTIME'), CTIME: CB('MDS_ATTR_CTIME'), FLAGS: CB('MDS_ATTR_ATTR_FLAG'),
  KILL_SUID: CB('MDS_ATTR_KILL_SUID'), KILL_SGID: CB('MDS_ATTR_KILL_SGID'), BLOCKS: CB('MDS_ATTR_BLOCKS'), PROJID: CB('MDS_ATTR_PROJID'),
}
const S_ISUID = 0o4000

/** The members of mdt_rec_setattr a setattr uses. */
export interface SetattrRec {
  valid: bigint
  mode: number
  uid: number
  gid: number
  size: bigint
  blocks: bigint
  atime: bigint
  mtime: bigint
  ctime: bigint
  flags: number
  projid: number
}

/** Stripes chosen before the transaction: the objects are taken from the pools inside it. */
export interface LayoutPlan {
  size: number
  osts: number[]
}

export interface CreateArgs {
  parent: Fid
  name: string
  /** the client's FID for the new object (cr_fid2), or undefined to allocate one */
  fid?: Fid
  mode: number
  umask: number
  uid: number
  gid: number
  rdev: number
  /** seconds; 0 = now */
  time: bigint
  symlink?: string
  plan?: LayoutPlan
  /** a new directory's default layout (lov_user_md sent with mkdir) */
  dirDefault?: Uint8Array
}

export class Namespace {
  constructor(
    readonly store: MdtStore,
    private readonly osts: OstSet,
    /** open handles on an inode: an open file outlives its last name until closed */
    private readonly openCount: (inodeId: number) => number,
  ) {}

  /** An existing object by FID; a zero FID is a malformed request. */
  get(fid: Fid): Inode {
    if (fidIsZero(fid)) fail(E.EPROTO, 'zero FID')
    const ino = this.store.byFid(fid)
    if (!ino || ino.nlink === 0 && !this.openCount(ino.id)) fail(E.ENOENT, 'no such object')
    return ino!
  }

  dir(fid: Fid): Inode {
    const d = this.get(fid)
    if (!isDir(d.mode)) fail(E.ENOTDIR, 'not a directory')
    if (d.nlink === 0) fail(E.ENOENT, 'directory removed')
    return d
  }

  /** The directory holding `dir` (".."); the root is its own parent. */
  parentOf(dir: Inode): Inode {
    const p = this.store.parentOf(dir.id)
    return (p !== undefined && this.store.byId(p)) || dir
  }

  /** A name in a directory, "." and ".." included (mdt_raw_lookup / mdo_lookup). */
  lookup(dir: Inode, name: string): Inode | undefined {
    if (name === '.') return dir
    if (name === '..') return this.parentOf(dir)
    const e = this.store.lookup(dir.id, name)
    return e ? this.store.byId(e.child) : undefined
  }

  /** A fileset path under the root (MDS_GET_ROOT with RMF_NAME). */
  resolve(path: string): Inode {
    let cur = this.get(ROOT_FID)
    for (const part of path.split('/').filter(p => p && p !== '.')) {
      if (!isDir(cur.mode)) fail(E.ENOTDIR, 'fileset component is not a directory')
      cur = this.lookup(cur, part) ?? fail(E.ENOENT, 'no such fileset')
    }
    if (!isDir(cur.mode)) fail(E.ENOTDIR, 'fileset is not a directory')
    return cur
  }

  /** The default layout a new file in `dir` inherits: the directory's own, else the root's (lod_ah_init). */
  defaultStriping(dir: Inode): Striping | undefined {
    const d = dir.dirDefault ?? this.store.byFid(ROOT_FID)?.dirDefault
    return d ? readLovUserMd(d) : undefined
  }

  private newFid(asked?: Fid): Fid {
    if (!asked || fidIsZero(asked)) return this.store.allocFid()
    if (asked.f_seq < FID_SEQ_NORMAL || asked.f_oid === 0) fail(E.EINVAL, 'client FID outside the normal sequences')
    if (this.store.byFid(asked)) fail(E.EEXIST, 'FID in use')
    return asked
  }

  private checkNewName(dir: Inode, name: string): void {
    if (isDot(name) || this.store.lookup(dir.id, name)) fail(E.EEXIST, 'name exists')
  }

  /** mkdir, mknod, symlink and file creation (mdd_create). */
  create(a: CreateArgs): Inode {
    const parent = this.dir(a.parent)
    this.checkNewName(parent, a.name)
    const fid = this.newFid(a.fid)
    const t = a.time || nowSec()
    const type = a.mode & S_IFMT
    // The umask applies as mdd_acl_init() applies it without a default ACL; symlinks keep their bits.
    let mode = type | (a.mode & PERM_BITS & (type === S_IFLNK ? PERM_BITS : ~a.umask))
    let gid = a.gid
    // A set-group-ID directory gives its group to new objects and its S_ISGID to new directories.
    if (parent.mode & S_ISGID) {
      gid = parent.gid
      if (type === S_IFDIR) mode |= S_ISGID
    }
    const inherit = parent.flags & LUSTRE_PROJINHERIT_FL
    const layout = a.plan && isReg(mode) && a.plan.osts.length
      ? encodeLovMdsMd(fid, a.plan.size, a.plan.osts.map(ost => ({ ost, oid: this.osts.take(ost) })))
      : null
    const id = this.store.insertInode({
      fid, mode, uid: a.uid, gid, nlink: type === S_IFDIR ? 2 : 1,
      size: type === S_IFDIR ? 4096n : a.symlink !== undefined ? BigInt(Buffer.byteLength(a.symlink)) : 0n,
      blocks: type === S_IFDIR ? 8n : 0n, atime: t, mtime: t, ctime: t, btime: t,
      flags: type === S_IFDIR ? inherit : 0, rdev: a.rdev, projid: inherit ? parent.projid : 0,
      symlink: a.symlink ?? null, layout, dirDefault: type === S_IFDIR ? a.dirDefault ?? null : null,
    })
    this.store.addEntry(parent.id, a.name, freeHash(this.store, parent.id, a.name), id)
    this.store.updateInode(parent.id, { mtime: t, ctime: t, nlink: type === S_IFDIR ? parent.nlink + 1 : undefined })
    return this.store.byId(id)!
  }

  /**
   * Takes one name off an object: a directory goes at once (it has one name), a file
   * when its last name goes and no one holds it open (then at last close, as an
   * orphan). Its OST objects are queued for OST_DESTROY. Returns the object as left.
   */
  private dropName(ino: Inode, t: bigint): Inode {
    if (isDir(ino.mode)) {
      this.store.deleteInode(ino.id)
      return { ...ino, nlink: 0, ctime: t }
    }
    const nlink = ino.nlink - 1
    this.store.updateInode(ino.id, { nlink, ctime: t })
    if (nlink === 0 && !this.openCount(ino.id)) this.destroy(ino)
    return { ...ino, nlink, ctime: t }
  }

  /** Deletes an inode and queues its OST objects for destruction. */
  destroy(ino: Inode): void {
    for (const o of layoutObjects(ino.layout)) this.store.queueDestroy(o.ost, o.oid)
    this.store.deleteInode(ino.id)
  }

  /**
   * unlink and rmdir (mdd_unlink). `mode` is ul_mode: when it names a type, a
   * directory must be removed as one (-EISDIR / -ENOTDIR otherwise).
   */
  unlink(parentFid: Fid, name: string, mode: number, time: bigint): Inode {
    const parent = this.dir(parentFid)
    if (name === '.') fail(E.EINVAL, 'cannot remove "."')
    if (name === '..') fail(E.ENOTEMPTY, 'cannot remove ".."')
    const e = this.store.lookup(parent.id, name) ?? fail(E.ENOENT, 'no such name')
    const child = this.store.byId(e.child)!
    if (mode & S_IFMT) {
      if (isDir(mode) && !isDir(child.mode)) fail(E.ENOTDIR, 'rmdir of a non-directory')
      if (!isDir(mode) && isDir(child.mode)) fail(E.EISDIR, 'unlink of a directory')
    }
    if (isDir(child.mode) && this.store.hasEntries(child.id)) fail(E.ENOTEMPTY, 'directory not empty')
    const t = time || nowSec()
    this.store.removeEntry(parent.id, name)
    this.store.updateInode(parent.id, { mtime: t, ctime: t, nlink: isDir(child.mode) ? parent.nlink - 1 : undefined })
    return this.dropName(child, t)
  }

  /** Hard link (mdd_link): never to a directory (-EPERM). */
  link(objFid: Fid, dirFid: Fid, name: string, time: bigint): Inode {
    const obj = this.get(objFid)
    if (isDir(obj.mode)) fail(E.EPERM, 'hard link to a directory')
    if (obj.nlink === 0) fail(E.ENOENT, 'object has no name left')
    const dir = this.dir(dirFid)
    this.checkNewName(dir, name)
    // Project inheritance: links into the tree only for the same project (else quotas leak).
    if ((dir.flags & LUSTRE_PROJINHERIT_FL) && dir.projid !== obj.projid) fail(E.EXDEV, 'other project')
    const t = time || nowSec()
    this.store.addEntry(dir.id, name, freeHash(this.store, dir.id, name), obj.id)
    this.store.updateInode(obj.id, { nlink: obj.nlink + 1, ctime: t })
    this.store.updateInode(dir.id, { mtime: t, ctime: t })
    return this.store.byId(obj.id)!
  }

  /** Whether directory `d` is `anc` or lies under it (mdd_is_subdir). */
  private within(d: Inode, anc: Inode): boolean {
    let cur: number | undefined = d.id
    const root = this.store.byFid(ROOT_FID)!.id
    for (let guard = 0; cur !== undefined && guard < 1_000_000; guard++) {
      if (cur === anc.id) return true
      if (cur === root) return false
      cur = this.store.parentOf(cur)
    }
    return false
  }

  /**
   * rename (mdd_rename): the old name moves, a target of the same kind is replaced
   * (a directory only when empty). Returns the replaced target as left, if any.
   */
  rename(sdirFid: Fid, sname: string, tdirFid: Fid, tname: string, time: bigint): Inode | undefined {
    const sdir = this.dir(sdirFid)
    const tdir = this.dir(tdirFid)
    if (isDot(sname) || isDot(tname)) fail(E.EINVAL, 'rename of "." or ".."')
    const se = this.store.lookup(sdir.id, sname) ?? fail(E.ENOENT, 'no such name')
    const src = this.store.byId(se.child)!
    const srcDir = isDir(src.mode)
    if (srcDir && (tdir.flags & LUSTRE_PROJINHERIT_FL) && tdir.projid !== src.projid) fail(E.EXDEV, 'other project')
    if (srcDir && this.within(tdir, src)) fail(E.EINVAL, 'directory moved into its own subtree')
    const te = this.store.lookup(tdir.id, tname)
    if (te?.child === src.id) return undefined // the same object under both names: nothing to do (POSIX)
    const t = time || nowSec()
    let replaced: Inode | undefined
    if (te) {
      const tgt = this.store.byId(te.child)!
      if (srcDir && !isDir(tgt.mode)) fail(E.ENOTDIR, 'directory over a non-directory')
      if (!srcDir && isDir(tgt.mode)) fail(E.EISDIR, 'non-directory over a directory')
      if (isDir(tgt.mode) && this.store.hasEntries(tgt.id)) fail(E.ENOTEMPTY, 'target directory not empty')
      this.store.removeEntry(tdir.id, tname)
      if (isDir(tgt.mode)) this.store.updateInode(tdir.id, { nlink: this.store.byId(tdir.id)!.nlink - 1 })
      replaced = this.dropName(tgt, t)
    }
    this.store.removeEntry(sdir.id, sname)
    this.store.addEntry(tdir.id, tname, freeHash(this.store, tdir.id, tname), src.id)
    // A directory that changes parent takes its ".." link along.
    if (srcDir && sdir.id !== tdir.id) {
      this.store.updateInode(sdir.id, { nlink: this.store.byId(sdir.id)!.nlink - 1 })
      this.store.updateInode(tdir.id, { nlink: this.store.byId(tdir.id)!.nlink + 1 })
    }
    this.store.updateInode(sdir.id, { mtime: t, ctime: t })
    this.store.updateInode(tdir.id, { mtime: t, ctime: t })
    this.store.updateInode(src.id, { ctime: t })
    return replaced
  }

  /**
   * setattr (mdt_attr_set / mdd_attr_set): the attributes sa_valid names, and with
   * RMF_EADATA on a directory its default layout (size 0, count 0, offset -1 removes
   * it, as mdc_setattr_pack() sends for "no EA"). A regular file's layout is fixed once
   * it has objects (-EEXIST).
   */
  setattr(fid: Fid, r: SetattrRec, ea: Uint8Array | null): Inode {
    const ino = this.get(fid)
    const ch: Partial<Inode> = {}
    const has = (bit: bigint): boolean => (r.valid & bit) !== 0n
    let mode = ino.mode
    if (has(A.MODE)) mode = (ino.mode & S_IFMT) | (r.mode & PERM_BITS)
    if (has(A.KILL_SUID)) mode &= ~S_ISUID
    if (has(A.KILL_SGID)) mode &= ~S_ISGID
    if (mode !== ino.mode) ch.mode = mode
    if (has(A.UID)) ch.uid = r.uid
    if (has(A.GID)) ch.gid = r.gid
    if (has(A.SIZE)) {
      if (isDir(ino.mode)) fail(E.EISDIR, 'truncate of a directory')
      ch.size = r.size
    }
    if (has(A.BLOCKS)) ch.blocks = r.blocks
    if (has(A.ATIME)) ch.atime = r.atime
    if (has(A.MTIME)) ch.mtime = r.mtime
    if (has(A.CTIME)) ch.ctime = r.ctime
    if (has(A.FLAGS)) ch.flags = r.flags
    if (has(A.PROJID)) ch.projid = r.projid
    if (ea && ea.length) {
      if (isDir(ino.mode)) {
        const s = parseLovUserMd(ea, this.osts.indexes)
        ch.dirDefault = isDefaultsOnly(s) ? null : encodeLovUserMd(s)
      } else if (isReg(ino.mode)) {
        fail(ino.layout ? E.EEXIST : E.ENOSPC, 'layout of an existing file')
      } else {
        fail(E.EINVAL, 'layout for a special file')
      }
    }
    this.store.updateInode(ino.id, ch) // a null dirDefault is written: the default is gone
    return this.store.byId(ino.id)!
  }
}
