// The client's data cache and the extent locks that make it coherent (osc's lock cache
// and the page cache under it, in short). I/O to an object runs under a lock of that
// object: PR for a read, PW for a write or a punch. A granted lock that covers the range
// in a strong enough mode is reused; the server grows uncontended locks to the whole
// object, so one lock usually serves a file's I/O. Pages read under a lock are kept and
// served again while it is held. When the server sends a BL AST, new I/O stops using the
// lock, running I/O finishes, the lock's pages are dropped, then the lock is cancelled:
// no page outlives the lock it was read under. The cache keeps at most `maxLocks` locks
// (least recently used go first) and `maxPages` pages.
import { constantOf, loadSpec } from '../../src/wire/index.js'
import type { PtlrpcEndpoint } from '../../src/transport/index.js'
import { E, LustreRpcError } from '../common/index.js'
import { ClientLocks, type HeldLock } from './locks.js'
import type { ObjectId, Ost } from './osc.js'

const spec = loadSpec()
const PR = Number(constantOf(spec, 'LCK_PR'))
const PW = Number(constantOf(spec, 'LCK_PW'))
export const PAGE = 4096
const EOF = 0xffffffffffffffffn
type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

interface CachedLock {
  held: HeldLock
  key: string
  users: number
  idle: Array<() => void>
}

export interface CacheOptions {
  maxLocks?: number
  /** pages of 4 KiB kept over all objects */
  maxPages?: number
  log?: (line: string) => void
}

export class DataCache {
  private readonly byEndpoint = new Map<PtlrpcEndpoint, ClientLocks>()
  /** granted locks by object, least recently used first in `lru` */
  private readonly lru = new Map<CachedLock, true>()
  private readonly pending = new Map<string, Promise<CachedLock>>()
  /** cached pages by object key, then page number */
  private readonly pages = new Map<string, Map<number, Uint8Array>>()
  private pageCount = 0
  private readonly maxLocks: number
  private readonly maxPages: number
  private readonly log: (line: string) => void

  constructor(o: CacheOptions = {}) {
    this.maxLocks = o.maxLocks ?? 64
    this.maxPages = o.maxPages ?? 16384
    this.log = o.log ?? (() => {})
  }

  /** Locks held now (granted, in the cache), for tests. */
  get lockCount(): number {
    return this.lru.size
  }

  get cachedPages(): number {
    return this.pageCount
  }

  private locksOf(ost: Ost): ClientLocks {
    let l = this.byEndpoint.get(ost.imp.rpc)
    if (!l) this.byEndpoint.set(ost.imp.rpc, (l = new ClientLocks(ost.imp.rpc, this.log)))
    return l
  }

  /**
   * Runs fn while holding a lock on the object's [start, end] in `write` (PW) or read (PR)
   * mode. An export the OST evicted is reconnected once, its locks and pages forgotten.
   */
  async under<T>(ost: Ost, obj: ObjectId, write: boolean, start: bigint, end: bigint, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const lock = await this.acquire(ost, obj, write, start, end)
        try {
          return await fn()
        } finally {
          this.release(lock)
        }
      } catch (e) {
        if (attempt > 0 || !(e instanceof LustreRpcError) || e.status !== E.ENOTCONN) throw e
        this.log(`cache: ${ost.imp.opts.targetUuid} evicted this client: reconnecting, its locks and pages dropped`)
        this.forgetOst(ost)
        await ost.imp.connect()
      }
    }
  }

  /**
   * The object's size and times (an ost_lvb). Under a PR lock of ours nobody else can have
   * written since it was granted, so its LVB is current; under our own PW lock we are the
   * only writer and the OST has every byte we wrote (OST_GETATTR); otherwise a glimpse,
   * whose lock, if granted, is kept for the reads that usually follow a stat.
   */
  async attrs(ost: Ost, obj: ObjectId): Promise<Obj> {
    const key = objKey(ost, obj)
    const held = [...this.lru.keys()].filter(c => c.key === key && c.held.state === 'granted' && !c.held.blocked)
    const pr = held.find(c => c.held.mode === PR && c.held.start === 0n && c.held.end === EOF && c.held.lvb)
    if (pr) return pr.held.lvb!
    if (held.some(c => c.held.mode === PW)) {
      const a = await ost.getattr(obj)
      return { lvb_size: a.o_size, lvb_mtime: a.o_mtime, lvb_atime: a.o_atime, lvb_ctime: a.o_ctime, lvb_blocks: a.o_blocks }
    }
    const locks = this.locksOf(ost)
    const g = await locks.glimpse(ost.imp, [obj.objectId, obj.seq, 0n, 0n])
    if (g.lock) {
      const c: CachedLock = { held: g.lock, key, users: 0, idle: [] }
      g.lock.onBlocking = () => this.blocked(c, locks)
      this.lru.set(c, true)
      this.trimLocks(locks)
    }
    return g.lvb
  }

  /** The cached bytes of [offset, offset+length) of the object, or undefined unless every page is there. */
  read(obj: ObjectId, ost: Ost, offset: number, length: number): Uint8Array | undefined {
    const pages = this.pages.get(objKey(ost, obj))
    if (!pages || offset % PAGE || length % PAGE) return undefined
    const out = new Uint8Array(length)
    for (let at = 0; at < length; at += PAGE) {
      const p = pages.get((offset + at) / PAGE)
      if (!p) return undefined
      out.set(p, at)
    }
    return out
  }

  /** Keeps the whole pages of `data` (object bytes at `offset`), read under a lock held now. */
  keep(obj: ObjectId, ost: Ost, offset: number, data: Uint8Array): void {
    const key = objKey(ost, obj)
    let pages = this.pages.get(key)
    if (!pages) this.pages.set(key, (pages = new Map()))
    for (let at = (PAGE - (offset % PAGE)) % PAGE; at + PAGE <= data.length; at += PAGE) {
      const n = (offset + at) / PAGE
      if (!pages.has(n)) this.pageCount++
      pages.set(n, data.slice(at, at + PAGE))
    }
    // Over the limit: whole objects go, oldest first (pages are only ever a copy).
    for (const [k, p] of this.pages) {
      if (this.pageCount <= this.maxPages) break
      if (k === key) continue
      this.pageCount -= p.size
      this.pages.delete(k)
    }
  }

  /** Drops the object's cached pages (after a write or punch through this client, or a lost lock). */
  drop(obj: ObjectId, ost: Ost): void {
    this.dropKey(objKey(ost, obj))
  }

  private dropKey(key: string): void {
    const p = this.pages.get(key)
    if (!p) return
    this.pageCount -= p.size
    this.pages.delete(key)
  }

  private async acquire(ost: Ost, obj: ObjectId, write: boolean, start: bigint, end: bigint): Promise<CachedLock> {
    const key = objKey(ost, obj)
    for (;;) {
      const hit = this.match(key, write, start, end)
      if (hit) {
        hit.users++
        this.lru.delete(hit)
        this.lru.set(hit, true)
        return hit
      }
      // One enqueue at a time per object and mode: concurrent I/O waits for it and matches it.
      const slot = `${key}:${write ? 'w' : 'r'}`
      const inFlight = this.pending.get(slot)
      if (inFlight) { await inFlight.catch(() => {}); continue }
      const p = this.enqueue(ost, obj, key, write, start, end)
      this.pending.set(slot, p)
      try {
        await p
      } finally {
        this.pending.delete(slot)
      }
    }
  }

  /** A granted, unblocked lock of the object covering [start, end] in a mode that allows the I/O (PW serves reads too). */
  private match(key: string, write: boolean, start: bigint, end: bigint): CachedLock | undefined {
    for (const c of this.lru.keys()) {
      const h = c.held
      if (c.key !== key || h.state !== 'granted' || h.blocked) continue
      if (write ? h.mode !== PW : h.mode !== PR && h.mode !== PW) continue
      if (h.start <= start && h.end >= end) return c
    }
    return undefined
  }

  private async enqueue(ost: Ost, obj: ObjectId, key: string, write: boolean, start: bigint, end: bigint): Promise<CachedLock> {
    // Idle locks of this object that the new one would conflict with go in the same request
    // (early lock cancel), rather than costing a BL AST to ourselves.
    const mine = [...this.lru.keys()].filter(c => c.key === key && c.users === 0 && (write || c.held.mode === PW))
    for (const c of mine) this.remove(c)
    const locks = this.locksOf(ost)
    const held = await locks.enqueue(ost.imp, {
      // The I/O's own range: the server grows it to the whole object when nobody else holds a lock there.
      kind: 'extent', name: [obj.objectId, obj.seq, 0n, 0n], mode: write ? PW : PR, start, end,
      cancel: mine.map(c => c.held),
    })
    const c: CachedLock = { held, key, users: 0, idle: [] }
    held.onBlocking = () => this.blocked(c, locks)
    this.lru.set(c, true)
    this.trimLocks(locks)
    return c
  }

  private release(c: CachedLock): void {
    c.users--
    if (c.users === 0) for (const w of c.idle.splice(0)) w()
  }

  /** BL AST: no new users; running I/O finishes; the pages go; then the cancel. */
  private async blocked(c: CachedLock, locks: ClientLocks): Promise<void> {
    while (c.users > 0) await new Promise<void>(r => c.idle.push(r))
    this.remove(c)
    await locks.cancel(c.held)
  }

  private remove(c: CachedLock): void {
    this.lru.delete(c)
    // Pages are kept per object, not per lock: whichever lock of the object goes, they all go.
    this.dropKey(c.key)
  }

  /** Beyond maxLocks, idle locks are cancelled, least recently used first. */
  private trimLocks(locks: ClientLocks): void {
    for (const c of this.lru.keys()) {
      if (this.lru.size <= this.maxLocks) break
      if (c.users > 0) continue
      this.remove(c)
      locks.cancel(c.held).catch(e => this.log(`cache: cancel of an LRU lock: ${(e as Error).message}`))
    }
  }

  private forgetOst(ost: Ost): void {
    const gone = new Set(this.locksOf(ost).forgetImport(ost.imp))
    for (const c of [...this.lru.keys()]) if (gone.has(c.held)) this.remove(c)
    const prefix = `${ost.index}:`
    for (const k of [...this.pages.keys()]) if (k.startsWith(prefix)) this.dropKey(k)
  }

  /** Cancels every lock (the client is closing): the server would drop them at disconnect anyway. */
  async close(): Promise<void> {
    const all = [...this.lru.keys()]
    this.lru.clear()
    this.pages.clear()
    this.pageCount = 0
    await Promise.all(all.map(c => this.byEndpoint.get(c.held.imp.rpc)?.cancel(c.held).catch(() => {})))
  }
}

const objKey = (ost: Ost, o: ObjectId): string => `${ost.index}:${o.seq}:${o.objectId}`

export { PR as LOCK_PR, PW as LOCK_PW }
