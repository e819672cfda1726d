// LustreClient: the namespace and data operations of a Lustre client, done over the wire
// with no kernel mount. Paths are walked from the root FID one MDS_GETATTR_NAME per
// component, skipping the directories already in the client's directory cache
// (dcache.ts, which also says how a stale entry is caught); data goes to the OSTs (file.ts).
import { constantOf, loadSpec } from '../../src/wire/index.js'
import { E } from '../common/index.js'
import { openConnections, type ClientOptions, type Connections } from './connect.js'
import { parseDirPages, MDS_DIR_END_OFF } from './dirpage.js'
import { PathWalker } from './dcache.js'
import { ClientError, fsError, statusOf } from './errors.js'
import { LustreFile } from './file.js'
import { DataCache } from './cache.js'
import { checkStripeOptions, layoutFromMd, packLovUserMd, type Layout, type StripeOptions } from './layout.js'
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type Fid, type MdAttr } from './mdc.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

export interface StatResult {
  fid: Fid
  type: 'file' | 'dir' | 'symlink' | 'other'
  /** st_mode, type bits included */
  mode: number
  uid: number
  gid: number
  nlink: number
  size: bigint
  atime: bigint
  mtime: bigint
  ctime: bigint
  /** a symlink's target */
  target?: string
}

export interface StatfsResult {
  mdt: Record<string, unknown>
  osts: Array<{ index: number; statfs: Record<string, unknown> }>
  /** bytes over all OSTs, and inodes of the MDT, as `lfs df` sums them */
  total: { bytes: bigint; free: bigint; avail: bigint; files: bigint; ffree: bigint }
}

export interface CreateOptions extends StripeOptions { mode?: number }

/** bytes of directory pages asked per MDS_READPAGE (16 pages) */
const READDIR_BYTES = 16 * 4096

const isDir = (a: { mode: number }): boolean => (a.mode & S_IFMT) === S_IFDIR
const isLink = (a: { mode: number }): boolean => (a.mode & S_IFMT) === S_IFLNK
const isReg = (a: { mode: number }): boolean => (a.mode & S_IFMT) === S_IFREG

const ignoreEnoent = (e: unknown): undefined => { if (statusOf(e) === E.ENOENT) return undefined; throw e }
const stripesAsked = (o?: StripeOptions): boolean => !!o && (o.stripeSize !== undefined || o.stripeCount !== undefined || o.stripeOffset !== undefined)

export class LustreClient {
  private closed = false
  private readonly paths: PathWalker

  private constructor(private readonly c: Connections, private readonly inflight: number, private readonly cache: DataCache | undefined) {
    this.paths = new PathWalker(() => this.mdc, c.root)
  }

  static async connect(o: ClientOptions): Promise<LustreClient> {
    const cache = o.cache === false ? undefined : new DataCache({ maxLocks: o.maxLocks, log: o.log })
    return new LustreClient(await openConnections(o), o.maxInflight ?? 8, cache)
  }

  /** OST index -> target UUID of every OST this client reached. */
  get osts(): Map<number, string> {
    return new Map([...this.c.osts].map(([i, o]) => [i, o.imp.opts.targetUuid]))
  }

  get brwSize(): number {
    return this.c.brwSize
  }

  private get mdc() {
    if (this.closed) throw new ClientError('LC_CLIENT_CLOSED', 'the client is closed')
    return this.c.mdc
  }

  /** The layout in an MDS reply, asked again by FID when the reply carried none. */
  private async layoutOf(a: MdAttr): Promise<Layout | undefined> {
    return layoutFromMd(a.md, isDir(a)) ?? layoutFromMd((await this.mdc.getattr(a.fid, C('OBD_MD_FLEASIZE') | (isDir(a) ? C('OBD_MD_FLDIREA') : 0n) | C('OBD_MD_FLGETATTR'))).md, isDir(a))
  }

  private async fileOf(a: MdAttr): Promise<LustreFile> {
    if (isDir(a)) throw fsError('OST_READ', 'EISDIR')
    if (!isReg(a)) throw fsError('OST_READ', 'EINVAL')
    const layout = await this.layoutOf(a)
    if (!layout) throw new ClientError('LC_CLIENT_LAYOUT', `file ${a.fid.seq.toString(16)}:${a.fid.oid} has no RAID0 V1 layout`)
    return new LustreFile(a.fid, layout, this.c.osts, this.c.brwSize, this.inflight, this.cache)
  }

  /** REINT_OPEN with O_CREAT|O_EXCL and the asked layout: a new empty file, left open (the caller closes it). */
  private async openNew(dir: { fid: Fid }, name: string, o: CreateOptions): Promise<MdAttr> {
    const asked = stripesAsked(o)
    if (asked) checkStripeOptions(o)
    const flags = C('MDS_FMODE_READ') | C('MDS_FMODE_WRITE') | C('MDS_OPEN_CREAT') | C('MDS_OPEN_EXCL')
    return this.mdc.open(dir.fid, name, S_IFREG | ((o.mode ?? 0o644) & 0o7777), flags, asked ? packLovUserMd(o) : undefined)
  }

  /**
   * The attributes of the object at `path`; with `create`, a missing one is made as a
   * regular file with that layout (`existing` may refuse a found one). A file made here is
   * closed (MDS_CLOSE) after the revalidated part: REINT_OPEN is that part's last request,
   * so a retry never repeats a create that succeeded.
   */
  private async resolveFile(path: string, create?: CreateOptions, existing?: () => void): Promise<{ a: MdAttr; created: boolean }> {
    const res = await this.paths.revalidating(async r => {
      const found = await this.paths.lookup(r, path, true).catch(e => { if (!create) throw e; return ignoreEnoent(e) })
      if (found) { existing?.(); return { a: found, created: false } }
      const { dir, name } = await this.paths.parentOf(r, path)
      return { a: await this.openNew(dir, name, create!), created: true }
    })
    if (res.created) await this.mdc.close(res.a)
    return res
  }

  /** Opens a file for data access; with `create`, creates it first when missing (then `layout` applies). */
  async open(path: string, o: { create?: boolean; layout?: CreateOptions } = {}): Promise<LustreFile> {
    return this.fileOf((await this.resolveFile(path, o.create ? o.layout ?? {} : undefined)).a)
  }

  async mkdir(path: string, mode = 0o755): Promise<void> {
    await this.paths.revalidating(async r => {
      const { dir, name, key } = await this.paths.parentOf(r, path)
      // The reply describes the new directory: cache it, as ll_new_node instantiates the dentry from it.
      this.paths.cache.put(key, await this.mdc.create(dir.fid, name, S_IFDIR | (mode & 0o7777)))
    })
  }

  /** Names in a directory ('.' and '..' left out), read page by page from hash 0. */
  async readdir(path: string): Promise<Array<{ name: string; type?: string }>> {
    return this.paths.revalidating(async r => {
      // Only the FID is needed: a cached directory (or the root) costs no request.
      const d = await this.paths.node(r, path, true)
      if (!isDir(d)) throw fsError('MDS_READPAGE', 'ENOTDIR')
      return this.readdirOf(d.fid)
    })
  }

  private async readdirOf(fid: Fid): Promise<Array<{ name: string; type?: string }>> {
    const out: Array<{ name: string; type?: string }> = []
    const seen = new Set<string>()
    for (let hash = 0n; ;) {
      const pages = parseDirPages(await this.mdc.readpage(fid, hash, READDIR_BYTES))
      let fresh = 0
      for (const p of pages) {
        for (const e of p.entries) {
          // A page that ends on a hash collision (LDF_COLLIDE) starts the next read at that
          // hash, so its last names come again: keep each name once.
          if (e.name === '.' || e.name === '..' || seen.has(e.name)) continue
          seen.add(e.name)
          fresh++
          out.push(e.type ? { name: e.name, type: e.type } : { name: e.name })
        }
      }
      const last = pages[pages.length - 1]
      if (!last || last.hashEnd === MDS_DIR_END_OFF) break
      // The cookie to resume from is the last page's end hash; a read that brought nothing new would repeat forever.
      if (last.hashEnd === hash && fresh === 0) break
      hash = last.hashEnd
    }
    return out
  }

  /** Attributes of `path` (a symlink itself, not its target); a file's size comes from its objects. */
  async stat(path: string): Promise<StatResult> {
    const { st, layout } = await this.paths.revalidating(async r => {
      const a = await this.paths.lookup(r, path, false)
      const type = isDir(a) ? 'dir' : isLink(a) ? 'symlink' : isReg(a) ? 'file' : 'other'
      const st: StatResult = { fid: a.fid, type, mode: a.mode, uid: a.uid, gid: a.gid, nlink: a.nlink, size: a.size, atime: a.atime, mtime: a.mtime, ctime: a.ctime }
      if (type === 'symlink') st.target = await this.mdc.readlink(a.fid, a.size)
      return { st, layout: type === 'file' ? await this.layoutOf(a) : undefined }
    })
    if (layout && layout.objects.length) {
      // ll_merge_attr: size from the objects, each time the later of the MDS's and the OSTs'.
      const o = await new LustreFile(st.fid, layout, this.c.osts, this.c.brwSize, this.inflight, this.cache).attrs()
      st.size = BigInt(o.size)
      for (const k of ['atime', 'mtime', 'ctime'] as const) if (o[k] > st[k]) st[k] = o[k]
    }
    return st
  }

  /** A new empty regular file, with the layout asked (defaults where not). -EEXIST if the name is taken. */
  async create(path: string, o: CreateOptions = {}): Promise<void> {
    const a = await this.paths.revalidating(async r => {
      const { dir, name } = await this.paths.parentOf(r, path)
      return this.openNew(dir, name, o)
    })
    await this.mdc.close(a)
  }

  /** Writes `data` at `offset`, creating the file (default layout) if it is missing. */
  async write(path: string, offset: number, data: Uint8Array): Promise<void> {
    await (await this.open(path, { create: true })).write(offset, data)
  }

  /** Up to `length` bytes at `offset`: short at end of file, zeros in holes. */
  async read(path: string, offset: number, length: number): Promise<Uint8Array> {
    return (await this.open(path)).read(offset, length)
  }

  /**
   * Replaces a file's content. A missing file is created with `layout`; an existing one is
   * truncated first, and asking it for a layout is -EEXIST (a layout is set once, at create).
   */
  async writeFile(path: string, data: Uint8Array, layout?: CreateOptions): Promise<void> {
    const { a, created } = await this.resolveFile(path, layout ?? {}, () => { if (stripesAsked(layout)) throw fsError('MDS_REINT', 'EEXIST') })
    const f = await this.fileOf(a)
    if (!created) {
      await this.setSize(a.fid, 0)
      await f.truncate(0)
    }
    await f.write(0, data)
  }

  async readFile(path: string): Promise<Uint8Array> {
    const f = await this.open(path)
    const size = await f.size()
    return f.read(0, size, size)
  }

  /**
   * Removes a name that is not a directory (-EISDIR for one): one REINT_UNLINK by parent
   * FID and name, without looking the child up first (see Mdc.unlink).
   */
  async unlink(path: string): Promise<void> {
    await this.paths.revalidating(async r => {
      const { dir, name, key } = await this.paths.parentOf(r, path)
      // Not a directory once removed: only a stale entry could sit at that path.
      try { await this.mdc.unlink(dir.fid, name, false) } finally { this.paths.cache.drop(key, false) }
    })
  }

  /** Removes an empty directory; the MDS answers -ENOTEMPTY for one that is not, -ENOTDIR for a non-directory. */
  async rmdir(path: string): Promise<void> {
    await this.paths.revalidating(async r => {
      const { dir, name, key } = await this.paths.parentOf(r, path)
      try { await this.mdc.unlink(dir.fid, name, true) } finally { this.paths.cache.drop(key) }
    })
  }

  /** rn_mode is the target's mode when it exists, else the source's (ll_rename). */
  async rename(from: string, to: string): Promise<void> {
    await this.paths.revalidating(async r => {
      const [src, tgt] = await Promise.all([this.paths.parentOf(r, from), this.paths.parentOf(r, to)])
      const [child, existing] = await Promise.all([
        this.mdc.getattrName(src.dir.fid, src.name),
        this.mdc.getattrName(tgt.dir.fid, tgt.name).catch(ignoreEnoent),
      ])
      try {
        await this.mdc.rename(src.dir.fid, src.name, tgt.dir.fid, tgt.name, (existing ?? child).mode)
      } finally {
        // Both names, and what was cached under them, now mean something else.
        this.paths.cache.drop(src.key)
        this.paths.cache.drop(tgt.key)
      }
      this.paths.cache.put(tgt.key, child)
    })
  }

  /** A hard link `newPath` to `existing` (not following a symlink at `existing`, as link(2)). */
  async link(existing: string, newPath: string): Promise<void> {
    await this.paths.revalidating(async r => {
      const obj = await this.paths.node(r, existing, false)
      if (isDir(obj)) throw fsError('MDS_REINT', 'EPERM')
      const { dir, name } = await this.paths.parentOf(r, newPath)
      await this.mdc.link(obj.fid, dir.fid, name)
    })
  }

  async symlink(target: string, path: string): Promise<void> {
    if (!target || target.includes('\0')) throw new ClientError('LC_CLIENT_ARG', 'a symlink target is a non-empty string without NUL')
    await this.paths.revalidating(async r => {
      const { dir, name, key } = await this.paths.parentOf(r, path)
      try { await this.mdc.create(dir.fid, name, S_IFLNK | 0o777, target) } finally { this.paths.cache.drop(key, false) }
    })
  }

  /** REINT_SETATTR with a new size (the MDS decides whether it may), as ll_setattr_raw sends it. */
  private async setSize(fid: Fid, size: number): Promise<void> {
    const t = BigInt(Math.floor(Date.now() / 1000))
    await this.mdc.setattr(fid, {
      valid: C('MDS_ATTR_SIZE') | C('MDS_ATTR_MTIME') | C('MDS_ATTR_CTIME') | C('MDS_ATTR_MTIME_SET') | C('MDS_ATTR_CTIME_SET') | C('MDS_ATTR_OVERRIDE'),
      size: BigInt(size), mtime: t, ctime: t, bias: Number(C('MDS_DATA_MODIFIED')),
    })
  }

  /**
   * truncate(2) as llite does it: REINT_SETATTR with the size, then OST_PUNCH of every
   * object to its share of the new size.
   */
  async truncate(path: string, size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw new ClientError('LC_CLIENT_ARG', `size ${size} is not a non-negative integer`)
    const f = await this.paths.revalidating(async r => {
      const a = await this.paths.lookup(r, path, true)
      const f = await this.fileOf(a)
      await this.setSize(a.fid, size)
      return f
    })
    await f.truncate(size)
  }

  /**
   * On a directory: its default layout (REINT_SETATTR carrying lov_user_md_v1, sa_valid 0,
   * as ll_dir_setstripe). On a missing path: a new file with that layout. An existing
   * file keeps its layout: -EEXIST.
   */
  async setstripe(path: string, o: StripeOptions): Promise<void> {
    checkStripeOptions(o)
    const missing = await this.paths.revalidating(async r => {
      const a = await this.paths.node(r, path, true).catch(ignoreEnoent)
      if (!a) return true
      if (!isDir(a)) throw fsError('MDS_REINT', 'EEXIST')
      await this.mdc.setattr(a.fid, { valid: 0n }, packLovUserMd(o))
      return false
    })
    if (missing) await this.create(path, o)
  }

  /** A file's layout, or a directory's default layout; undefined when there is none. */
  async getstripe(path: string): Promise<Layout | undefined> {
    return this.paths.revalidating(async r => {
      const a = await this.paths.node(r, path, true)
      if (isDir(a)) return layoutFromMd((await this.mdc.getattr(a.fid, C('OBD_MD_FLEASIZE') | C('OBD_MD_FLDIREA'))).md, true)
      return this.layoutOf(a.attr ?? await this.mdc.getattr(a.fid))
    })
  }

  async statfs(): Promise<StatfsResult> {
    const mdt = await this.mdc.statfs()
    const osts = await Promise.all([...this.c.osts].map(async ([index, o]) => ({ index, statfs: await o.statfs() })))
    const total = { bytes: 0n, free: 0n, avail: 0n, files: BigInt((mdt.os_files as bigint | undefined) ?? 0n), ffree: BigInt((mdt.os_ffree as bigint | undefined) ?? 0n) }
    for (const { statfs: s } of osts) {
      const bsize = BigInt((s.os_bsize as number | undefined) ?? 0)
      total.bytes += ((s.os_blocks as bigint | undefined) ?? 0n) * bsize
      total.free += ((s.os_bfree as bigint | undefined) ?? 0n) * bsize
      total.avail += ((s.os_bavail as bigint | undefined) ?? 0n) * bsize
    }
    return { mdt, osts, total }
  }

  /** Makes a file's written data durable: OST_SYNC of each of its objects, in parallel (as fsync(2) does). */
  async fsync(path: string): Promise<void> {
    const layout = await this.paths.revalidating(async r => this.layoutOf(await this.paths.lookup(r, path, true)))
    await Promise.all((layout?.objects ?? []).map(o => {
      const ost = this.c.osts.get(o.ostIndex)
      if (!ost) throw new ClientError('LC_CLIENT_NO_OST', `no connection to OST ${o.ostIndex}`)
      return ost.sync({ objectId: o.objectId, seq: o.seq })
    }))
  }

  /** OBD_PING to the MDS: its status (0 while the export lives). */
  async ping(): Promise<number> {
    return this.mdc.imp.ping()
  }

  /** Disconnects from every target and closes the LNet endpoint. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    // Locks are given back first, so that no other client waits for this one's callback timeout.
    await this.cache?.close()
    const imps = [this.c.mdc.imp, ...[...this.c.osts.values()].map(o => o.imp)]
    await Promise.all(imps.map(i => i.disconnect().catch(() => {})))
    await Promise.all(this.c.endpoints.map(l => l.close()))
  }
}

