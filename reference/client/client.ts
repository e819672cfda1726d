// LustreClient: the namespace and data operations of a Lustre client, done over the wire
// with no kernel mount. Paths are walked from the root FID one MDS_GETATTR_NAME per
// component, as llite's lookups do without a dcache; data goes to the OSTs (file.ts).
import { constantOf, loadSpec } from '../../src/wire/index.js'
import { E, LustreRpcError } from '../common/index.js'
import { openConnections, type ClientOptions, type Connections } from './connect.js'
import { parseDirPages, MDS_DIR_END_OFF } from './dirpage.js'
import { ClientError, fsError, statusOf } from './errors.js'
import { LustreFile } from './file.js'
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

const NAME_MAX = 255
const SYMLOOP_MAX = 40
/** -ELOOP, read from spec/constants: reference/common's table (E) has no entry for it */
const ELOOP = -Number(C('LUSTRE_ELOOP'))
/** bytes of directory pages asked per MDS_READPAGE (16 pages) */
const READDIR_BYTES = 16 * 4096

const isDir = (a: { mode: number }): boolean => (a.mode & S_IFMT) === S_IFDIR
const isLink = (a: { mode: number }): boolean => (a.mode & S_IFMT) === S_IFLNK
const isReg = (a: { mode: number }): boolean => (a.mode & S_IFMT) === S_IFREG

/** Path components, lexically normalised ('.' dropped); the path must be absolute. */
function components(path: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new ClientError('LC_CLIENT_PATH', `path ${JSON.stringify(path)} is not absolute`)
  if (path.includes('\0')) throw new ClientError('LC_CLIENT_PATH', 'path holds a NUL byte')
  return path.split('/').filter(c => c !== '' && c !== '.')
}

export class LustreClient {
  private closed = false

  private constructor(private readonly c: Connections, private readonly inflight: number) {}

  static async connect(o: ClientOptions): Promise<LustreClient> {
    return new LustreClient(await openConnections(o), o.maxInflight ?? 8)
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

  /**
   * Walks `path` from the root. Symlinks in the middle are followed (and the last
   * component too with `follow`), '..' pops a component. Returns the chain of attributes,
   * root first (the root's entry has only its FID and type).
   */
  private async walk(path: string, follow: boolean, parts = components(path)): Promise<MdAttr[]> {
    const rootEntry = { fid: this.c.root, mode: S_IFDIR } as MdAttr
    let stack: MdAttr[] = [rootEntry]
    let queue = [...parts]
    let hops = 0
    while (queue.length) {
      const name = queue.shift()!
      if (name === '..') { if (stack.length > 1) stack.pop(); continue }
      if (Buffer.byteLength(name) > NAME_MAX) throw fsError('MDS_GETATTR_NAME', 'ENAMETOOLONG')
      const dir = stack[stack.length - 1]
      if (!isDir(dir)) throw fsError('MDS_GETATTR_NAME', 'ENOTDIR')
      const a = await this.mdc.getattrName(dir.fid, name)
      if (isLink(a) && (queue.length > 0 || follow)) {
        if (++hops > SYMLOOP_MAX) throw new LustreRpcError('MDS_GETATTR_NAME', ELOOP, 'client')
        const target = await this.mdc.readlink(a.fid, a.size)
        if (target.startsWith('/')) stack = [rootEntry]
        queue = [...target.split('/').filter(c => c !== '' && c !== '.'), ...queue]
        continue
      }
      stack.push(a)
    }
    return stack
  }

  private async lookup(path: string, follow: boolean): Promise<MdAttr> {
    const chain = await this.walk(path, follow)
    const last = chain[chain.length - 1]
    // The root's entry in the chain is a stub: fetch its attributes.
    return chain.length === 1 ? this.mdc.getattr(last.fid) : last
  }

  /** The directory that holds the last component of `path`, and that component's name. */
  private async parentOf(path: string): Promise<{ dir: MdAttr; name: string }> {
    const parts = components(path)
    const name = parts.pop()
    if (name === undefined || name === '..') throw fsError('MDS_REINT', name === undefined ? 'EEXIST' : 'EINVAL')
    if (Buffer.byteLength(name) > NAME_MAX) throw fsError('MDS_REINT', 'ENAMETOOLONG')
    const chain = await this.walk(path, true, parts)
    const dir = chain[chain.length - 1]
    if (!isDir(dir)) throw fsError('MDS_REINT', 'ENOTDIR')
    return { dir, name }
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
    return new LustreFile(a.fid, layout, this.c.osts, this.c.brwSize, this.inflight)
  }

  /** REINT_OPEN with O_CREAT|O_EXCL and the asked layout, then MDS_CLOSE: a new empty file. */
  private async createIn(dir: MdAttr, name: string, o: CreateOptions): Promise<MdAttr> {
    const asked = o.stripeSize !== undefined || o.stripeCount !== undefined || o.stripeOffset !== undefined
    if (asked) checkStripeOptions(o)
    const flags = C('MDS_FMODE_READ') | C('MDS_FMODE_WRITE') | C('MDS_OPEN_CREAT') | C('MDS_OPEN_EXCL')
    const a = await this.mdc.open(dir.fid, name, S_IFREG | ((o.mode ?? 0o644) & 0o7777), flags, asked ? packLovUserMd(o) : undefined)
    await this.mdc.close(a)
    return a
  }

  /** Opens a file for data access; with `create`, creates it first when missing (then `layout` applies). */
  async open(path: string, o: { create?: boolean; layout?: CreateOptions } = {}): Promise<LustreFile> {
    try {
      return await this.fileOf(await this.lookup(path, true))
    } catch (e) {
      if (!o.create || statusOf(e) !== E.ENOENT) throw e
    }
    const { dir, name } = await this.parentOf(path)
    return this.fileOf(await this.createIn(dir, name, o.layout ?? {}))
  }

  async mkdir(path: string, mode = 0o755): Promise<void> {
    const { dir, name } = await this.parentOf(path)
    await this.mdc.create(dir.fid, name, S_IFDIR | (mode & 0o7777))
  }

  /** Names in a directory ('.' and '..' left out), read page by page from hash 0. */
  async readdir(path: string): Promise<Array<{ name: string; type?: string }>> {
    const d = await this.lookup(path, true)
    if (!isDir(d)) throw fsError('MDS_READPAGE', 'ENOTDIR')
    const out: Array<{ name: string; type?: string }> = []
    const seen = new Set<string>()
    for (let hash = 0n; ;) {
      const pages = parseDirPages(await this.mdc.readpage(d.fid, hash, READDIR_BYTES))
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
    const a = await this.lookup(path, false)
    const type = isDir(a) ? 'dir' : isLink(a) ? 'symlink' : isReg(a) ? 'file' : 'other'
    const st: StatResult = { fid: a.fid, type, mode: a.mode, uid: a.uid, gid: a.gid, nlink: a.nlink, size: a.size, atime: a.atime, mtime: a.mtime, ctime: a.ctime }
    if (type === 'symlink') st.target = await this.mdc.readlink(a.fid, a.size)
    if (type === 'file') {
      const layout = await this.layoutOf(a)
      if (layout && layout.objects.length) {
        // ll_merge_attr: size from the objects, each time the later of the MDS's and the OSTs'.
        const o = await new LustreFile(a.fid, layout, this.c.osts, this.c.brwSize, this.inflight).attrs()
        st.size = BigInt(o.size)
        for (const k of ['atime', 'mtime', 'ctime'] as const) if (o[k] > st[k]) st[k] = o[k]
      }
    }
    return st
  }

  /** A new empty regular file, with the layout asked (defaults where not). -EEXIST if the name is taken. */
  async create(path: string, o: CreateOptions = {}): Promise<void> {
    const { dir, name } = await this.parentOf(path)
    await this.createIn(dir, name, o)
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
    const exists = await this.lookup(path, true).then(() => true, e => { if (statusOf(e) === E.ENOENT) return false; throw e })
    if (exists) {
      if (layout && (layout.stripeCount !== undefined || layout.stripeSize !== undefined || layout.stripeOffset !== undefined)) throw fsError('MDS_REINT', 'EEXIST')
      await this.truncate(path, 0)
    }
    await (await this.open(path, { create: true, layout })).write(0, data)
  }

  async readFile(path: string): Promise<Uint8Array> {
    const f = await this.open(path)
    const size = await f.size()
    return f.read(0, size, size)
  }

  /** Removes a name that is not a directory (-EISDIR for one). */
  async unlink(path: string): Promise<void> {
    const { dir, name } = await this.parentOf(path)
    const child = await this.mdc.getattrName(dir.fid, name)
    if (isDir(child)) throw fsError('MDS_REINT', 'EISDIR')
    await this.mdc.unlink(dir.fid, name, child.fid, false)
  }

  /** Removes an empty directory; the MDS answers -ENOTEMPTY for one that is not. */
  async rmdir(path: string): Promise<void> {
    const { dir, name } = await this.parentOf(path)
    const child = await this.mdc.getattrName(dir.fid, name)
    if (!isDir(child)) throw fsError('MDS_REINT', 'ENOTDIR')
    await this.mdc.unlink(dir.fid, name, child.fid, true)
  }

  /** rn_mode is the target's mode when it exists, else the source's (ll_rename). */
  async rename(from: string, to: string): Promise<void> {
    const src = await this.parentOf(from)
    const tgt = await this.parentOf(to)
    const child = await this.mdc.getattrName(src.dir.fid, src.name)
    const existing = await this.mdc.getattrName(tgt.dir.fid, tgt.name).catch(e => { if (statusOf(e) === E.ENOENT) return undefined; throw e })
    await this.mdc.rename(src.dir.fid, src.name, tgt.dir.fid, tgt.name, (existing ?? child).mode)
  }

  /** A hard link `newPath` to `existing` (not following a symlink at `existing`, as link(2)). */
  async link(existing: string, newPath: string): Promise<void> {
    const obj = await this.lookup(existing, false)
    if (isDir(obj)) throw fsError('MDS_REINT', 'EPERM')
    const { dir, name } = await this.parentOf(newPath)
    await this.mdc.link(obj.fid, dir.fid, name)
  }

  async symlink(target: string, path: string): Promise<void> {
    if (!target || target.includes('\0')) throw new ClientError('LC_CLIENT_ARG', 'a symlink target is a non-empty string without NUL')
    const { dir, name } = await this.parentOf(path)
    await this.mdc.create(dir.fid, name, S_IFLNK | 0o777, target)
  }

  /**
   * truncate(2) as llite does it: REINT_SETATTR with the size (the MDS decides whether it
   * may), then OST_PUNCH of every object to its share of the new size.
   */
  async truncate(path: string, size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw new ClientError('LC_CLIENT_ARG', `size ${size} is not a non-negative integer`)
    const a = await this.lookup(path, true)
    const f = await this.fileOf(a)
    const t = BigInt(Math.floor(Date.now() / 1000))
    await this.mdc.setattr(a.fid, {
      valid: C('MDS_ATTR_SIZE') | C('MDS_ATTR_MTIME') | C('MDS_ATTR_CTIME') | C('MDS_ATTR_MTIME_SET') | C('MDS_ATTR_CTIME_SET') | C('MDS_ATTR_OVERRIDE'),
      size: BigInt(size), mtime: t, ctime: t, bias: Number(C('MDS_DATA_MODIFIED')),
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
    const a = await this.lookup(path, true).catch(e => { if (statusOf(e) === E.ENOENT) return undefined; throw e })
    if (!a) return this.create(path, o)
    if (!isDir(a)) throw fsError('MDS_REINT', 'EEXIST')
    await this.mdc.setattr(a.fid, { valid: 0n }, packLovUserMd(o))
  }

  /** A file's layout, or a directory's default layout; undefined when there is none. */
  async getstripe(path: string): Promise<Layout | undefined> {
    const a = await this.lookup(path, true)
    if (isDir(a)) return layoutFromMd((await this.mdc.getattr(a.fid, C('OBD_MD_FLEASIZE') | C('OBD_MD_FLDIREA'))).md, true)
    return this.layoutOf(a)
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
    const layout = await this.layoutOf(await this.lookup(path, true))
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
    const imps = [this.c.mdc.imp, ...[...this.c.osts.values()].map(o => o.imp)]
    await Promise.all(imps.map(i => i.disconnect().catch(() => {})))
    await Promise.all(this.c.endpoints.map(l => l.close()))
  }
}

