// Path resolution with a directory cache. llite keeps looked-up dentries in the kernel
// dcache while it holds an LDLM lock with the LOOKUP bit on their inode; when that lock is
// cancelled the dentries are marked invalid (ll_md_blocking_ast -> ll_invalidate_aliases)
// and the next walk asks the MDS again. Until then ll_revalidate_dentry takes an
// intermediate path component as valid without a request, and asks again for the last
// one when the operation needs it. This client takes no locks (yet), so nothing tells it
// that an entry went stale. It keeps the cache anyway and makes it safe the other way
// round: an operation that resolved a component from the cache and then failed with
// -ENOENT, -ESTALE or -ENOTDIR (what the MDS answers for a FID that is gone or a name
// that is no longer a directory) drops what it used and runs once more with fresh lookups.
//
// Only directories are cached, by their resolved path (symlinks already followed), and
// only their FID and type: a regular file's or symlink's attributes change under other
// clients, and a directory's own attributes (nlink, times) are asked again whenever an
// operation returns them. Symlinks are never cached, so a symlink in the middle of a path
// is read each time, as before. What revalidation on failure cannot catch: a cached
// directory that another client renamed is still alive under its FID, so operations
// through its old path go on succeeding in its new place until this client drops the
// entry (its own rmdir/rename, a failure, or age) -- the window a LOOKUP lock closes.
import { E, LustreRpcError } from '../common/index.js'
import { constantOf, loadSpec } from '../../src/wire/index.js'
import { ClientError, fsError } from './errors.js'
import { S_IFDIR, S_IFLNK, S_IFMT, type Fid, type MdAttr, type Mdc } from './mdc.js'

const NAME_MAX = 255
const SYMLOOP_MAX = 40
/** -ELOOP, read from spec/constants: reference/common's table (E) has no entry for it */
const ELOOP = -Number(constantOf(loadSpec(), 'LUSTRE_ELOOP'))
/** entries kept before the least recently used is dropped (a bound, as the kernel's dcache shrinker gives one) */
export const DCACHE_MAX = 4096
/** What the MDS answers when a FID it was given is gone (-ENOENT, -ESTALE) or a name is no longer a directory. */
const STALE = new Set<number>([E.ENOENT, E.ESTALE, E.ENOTDIR])

const isDir = (a: { mode: number }): boolean => (a.mode & S_IFMT) === S_IFDIR
const isLink = (a: { mode: number }): boolean => (a.mode & S_IFMT) === S_IFLNK
const splitPath = (p: string): string[] => p.split('/').filter(c => c !== '' && c !== '.')

/** Path components, lexically normalised ('.' dropped); the path must be absolute. */
export function components(path: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new ClientError('LC_CLIENT_PATH', `path ${JSON.stringify(path)} is not absolute`)
  if (path.includes('\0')) throw new ClientError('LC_CLIENT_PATH', 'path holds a NUL byte')
  return splitPath(path)
}

/** What the cache keeps of a directory. */
export interface DirEntry { fid: Fid; mode: number }

/** Resolved directory path ('/a/b', root not included) -> FID and type, least recently used dropped first. */
export class DirCache {
  // A Map iterates in insertion order: re-inserting on use keeps the oldest first.
  private readonly map = new Map<string, DirEntry>()

  constructor(readonly max = DCACHE_MAX) {}

  get size(): number {
    return this.map.size
  }

  get(path: string): DirEntry | undefined {
    const e = this.map.get(path)
    if (e) { this.map.delete(path); this.map.set(path, e) }
    return e
  }

  /** Keeps a directory's FID and type; anything that is not a directory is not kept. */
  put(path: string, a: { fid: Fid; mode: number }): void {
    if (!isDir(a)) return
    this.map.delete(path)
    this.map.set(path, { fid: a.fid, mode: a.mode })
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string)
  }

  /** Forgets `path`, and with `subtree` every path under it (a directory removed or renamed takes its subtree along). */
  drop(path: string, subtree = true): void {
    this.map.delete(path)
    if (!subtree) return
    const under = `${path}/`
    for (const k of this.map.keys()) if (k.startsWith(under)) this.map.delete(k)
  }

  clear(): void {
    this.map.clear()
  }
}

/** One object a walk reached: FID, type, resolved path, and attributes when this walk asked the MDS for them. */
export interface Step { fid: Fid; mode: number; path: string; attr?: MdAttr }

/** One run of an operation: whether it may read the cache, and the cached paths it used. */
export interface Resolve { fresh: boolean; used: string[] }

export class PathWalker {
  constructor(private readonly mdc: () => Mdc, private readonly root: Fid, readonly cache = new DirCache()) {}

  /**
   * Runs `op`, and when it used cached directories and failed as a stale FID makes an
   * operation fail, drops them and runs it once more with fresh lookups. `op` must be
   * one that may be run again after such a failure: resolution, then the MDS requests
   * that name the resolved FIDs.
   */
  async revalidating<T>(op: (r: Resolve) => Promise<T>): Promise<T> {
    const r: Resolve = { fresh: false, used: [] }
    try {
      return await op(r)
    } catch (e) {
      if (!r.used.length || !(e instanceof LustreRpcError) || !STALE.has(e.status)) throw e
      for (const p of r.used) this.cache.drop(p)
      return op({ fresh: true, used: [] })
    }
  }

  /**
   * Walks `parts` from the root. Symlinks in the middle are followed (and the last
   * component too with `follow`), '..' pops a component. Cached directories are taken
   * without asking, except the last component when `exact` (its attributes are wanted).
   * Returns the chain, root first (the root's step has only its FID and type).
   */
  async walk(r: Resolve, parts: string[], follow: boolean, exact: boolean): Promise<Step[]> {
    const rootStep: Step = { fid: this.root, mode: S_IFDIR, path: '' }
    let stack: Step[] = [rootStep]
    let queue = [...parts]
    let hops = 0
    while (queue.length) {
      const name = queue.shift()!
      if (name === '..') { if (stack.length > 1) stack.pop(); continue }
      if (Buffer.byteLength(name) > NAME_MAX) throw fsError('MDS_GETATTR_NAME', 'ENAMETOOLONG')
      const dir = stack[stack.length - 1]
      if (!isDir(dir)) throw fsError('MDS_GETATTR_NAME', 'ENOTDIR')
      const path = `${dir.path}/${name}`
      const hit = r.fresh || (exact && !queue.length) ? undefined : this.cache.get(path)
      if (hit) {
        r.used.push(path)
        stack.push({ ...hit, path })
        continue
      }
      const a = await this.mdc().getattrName(dir.fid, name)
      if (isLink(a) && (queue.length > 0 || follow)) {
        if (++hops > SYMLOOP_MAX) throw new LustreRpcError('MDS_GETATTR_NAME', ELOOP, 'client')
        const target = await this.mdc().readlink(a.fid, a.size)
        if (target.startsWith('/')) stack = [rootStep]
        queue = [...splitPath(target), ...queue]
        continue
      }
      this.cache.put(path, a)
      stack.push({ fid: a.fid, mode: a.mode, path, attr: a })
    }
    return stack
  }

  /** The object `path` names with its attributes, asked of the MDS (never from the cache). */
  async lookup(r: Resolve, path: string, follow: boolean): Promise<MdAttr> {
    const chain = await this.walk(r, components(path), follow, true)
    const last = chain[chain.length - 1]
    // The root (or a directory reached by '..') has no attributes in the chain: ask by FID.
    return last.attr ?? this.mdc().getattr(last.fid)
  }

  /** The object `path` names when only its FID and type are needed (a directory may come from the cache). */
  async node(r: Resolve, path: string, follow: boolean): Promise<Step> {
    const chain = await this.walk(r, components(path), follow, false)
    return chain[chain.length - 1]
  }

  /** The directory that holds the last component of `path`, that component's name, and its resolved path. */
  async parentOf(r: Resolve, path: string): Promise<{ dir: Step; name: string; key: string }> {
    const parts = components(path)
    const name = parts.pop()
    if (name === undefined || name === '..') throw fsError('MDS_REINT', name === undefined ? 'EEXIST' : 'EINVAL')
    if (Buffer.byteLength(name) > NAME_MAX) throw fsError('MDS_REINT', 'ENAMETOOLONG')
    const chain = await this.walk(r, parts, true, false)
    const dir = chain[chain.length - 1]
    if (!isDir(dir)) throw fsError('MDS_REINT', 'ENOTDIR')
    return { dir, name, key: `${dir.path}/${name}` }
  }
}
