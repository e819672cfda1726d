// Descriptors of recently used objects, kept open between requests. A 1 MiB OST_WRITE
// that opened, stat'ed and closed its object each time spent more of its life in those
// thread-pool round trips than in the write; ofd keeps its objects' inodes cached the
// same way. A destroy forgets the object at once: later requests reopen by path and get
// -ENOENT, and only requests already running when the destroy came finish on the old
// descriptor (into the unlinked inode), as they would on an OST.
import { promises as fsp, constants as fsc } from 'node:fs'

interface Entry {
  fh: Promise<fsp.FileHandle>
  users: number
  /** forgotten (destroyed or evicted): close once the last user is done */
  closing: boolean
}

/** How many objects stay open when idle; busy ones are never closed under their users. */
export const MAX_OPEN_OBJECTS = 128

export class OpenObjects {
  // Insertion order is recency: a use moves its entry to the end.
  private readonly entries = new Map<bigint, Entry>()

  constructor(private readonly pathOf: (id: bigint) => string, private readonly max = MAX_OPEN_OBJECTS) {}

  /** Runs fn with the object's descriptor (opened read-write, never created); an open error is thrown as is. */
  async use<T>(id: bigint, fn: (fh: fsp.FileHandle) => Promise<T>): Promise<T> {
    let e = this.entries.get(id)
    if (e) {
      this.entries.delete(id)
      this.entries.set(id, e)
    } else {
      const fresh: Entry = { fh: fsp.open(this.pathOf(id), fsc.O_RDWR), users: 0, closing: false }
      // A failed open is not cached: the next request tries again (the object may have been created since).
      fresh.fh.catch(() => { if (this.entries.get(id) === fresh) this.entries.delete(id) })
      this.entries.set(id, (e = fresh))
    }
    e.users++
    try {
      return await fn(await e.fh)
    } finally {
      e.users--
      if (e.closing && e.users === 0) await this.closeEntry(e)
      this.trim()
    }
  }

  /** The object is gone (OST_DESTROY): no later request may reach it through this cache. */
  async forget(id: bigint): Promise<void> {
    const e = this.entries.get(id)
    if (!e) return
    this.entries.delete(id)
    e.closing = true
    if (e.users === 0) await this.closeEntry(e)
  }

  /** Descriptors open now (for tests and the benchmark's notes). */
  get size(): number {
    return this.entries.size
  }

  /** Closes every idle descriptor and marks busy ones to close when done. */
  async closeAll(): Promise<void> {
    const all = [...this.entries.keys()]
    await Promise.all(all.map(id => this.forget(id)))
  }

  /** Closes the least recently used idle descriptors beyond the limit. */
  private trim(): void {
    if (this.entries.size <= this.max) return
    for (const [id, e] of this.entries) {
      if (this.entries.size <= this.max) break
      if (e.users > 0) continue
      this.entries.delete(id)
      e.closing = true
      void this.closeEntry(e)
    }
  }

  private async closeEntry(e: Entry): Promise<void> {
    try {
      await (await e.fh).close()
    } catch {
      // Never opened (the open failed) or already closed: nothing to release.
    }
  }
}
