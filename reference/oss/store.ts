// The objects of one OST as files, laid out as Lustre's ldiskfs OSTs lay them out:
// <root>/O/0/d<id % 32>/<id> for object id `id` of sequence 0, and the last created
// id in <root>/O/0/LAST_ID as one little-endian u64 (what ofd_seq_load reads and
// ofd_seq_last_oid_write writes). Descriptors stay open between requests
// (open-objects.ts); a destroy unlinks the file, then drops its descriptor, so no
// later request reaches a destroyed object.
import { promises as fsp, constants as fsc } from 'node:fs'
import { join } from 'node:path'
import { E } from '../common/index.js'
import { OstError, OST_MAX_PRECREATE, errnoOfFs, type ObjectAttr } from './obdo.js'
import { OpenObjects } from './open-objects.js'

/** Objects one OST_CREATE makes at most; below OST_MAX_PRECREATE, which the protocol allows. */
const CREATE_PER_CALL = 2048n

/** Subdirectories objects are spread over (ldiskfs OSTs use 32: d0..d31). */
const SUBDIRS = 32n
/** Files created at once while precreating: enough to overlap I/O, few enough to leave descriptors free. */
const CREATE_PARALLEL = 64
const ZERO_CHUNK = 1 << 20

export interface Extent {
  offset: number
  length: number
}

export interface HostStatfs {
  type: bigint
  bsize: bigint
  blocks: bigint
  bfree: bigint
  bavail: bigint
  files: bigint
  ffree: bigint
}

export class ObjectStore {
  private last = 0n
  private readonly seqDir: string
  /** objects written since their last fsync: what a whole-target OST_SYNC must flush */
  private readonly dirty = new Set<bigint>()
  private readonly locks = new Map<string, Promise<void>>()
  private readonly objects: OpenObjects

  constructor(readonly root: string) {
    this.seqDir = join(root, 'O', '0')
    this.objects = new OpenObjects(id => this.pathOf(id))
  }

  /** Closes the descriptors kept open (after the last request). */
  close(): Promise<void> {
    return this.objects.closeAll()
  }

  /** The last object id created; ids 1..lastId may exist. */
  get lastId(): bigint {
    return this.last
  }

  /** Makes the directories and reads the last id back (or rebuilds it from the objects). */
  async open(): Promise<void> {
    for (let d = 0n; d < SUBDIRS; d++) await fsp.mkdir(join(this.seqDir, `d${d}`), { recursive: true })
    this.last = (await this.readLastId()) ?? (await this.scanLastId())
  }

  /** Only a checked bigint id ever becomes a path: no name from the wire reaches the file system. */
  pathOf(id: bigint): string {
    return join(this.seqDir, `d${id % SUBDIRS}`, id.toString())
  }

  private async readLastId(): Promise<bigint | undefined> {
    try {
      const b = await fsp.readFile(join(this.seqDir, 'LAST_ID'))
      return b.length === 8 ? b.readBigUInt64LE(0) : undefined
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw e
    }
  }

  /** Without a LAST_ID file (a crash before the first one was written), the highest object name is the last id. */
  private async scanLastId(): Promise<bigint> {
    let max = 0n
    for (let d = 0n; d < SUBDIRS; d++) {
      for (const name of await fsp.readdir(join(this.seqDir, `d${d}`))) {
        if (/^[1-9][0-9]{0,19}$/.test(name) && BigInt(name) > max) max = BigInt(name)
      }
    }
    return max
  }

  /** Writes LAST_ID atomically and durably: a temporary file, fsync, rename, fsync of the directory. */
  private async writeLastId(id: bigint): Promise<void> {
    const b = Buffer.alloc(8)
    b.writeBigUInt64LE(id)
    const tmp = join(this.seqDir, 'LAST_ID.tmp')
    const fh = await fsp.open(tmp, 'w')
    try {
      await fh.write(b, 0, 8, 0)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await fsp.rename(tmp, join(this.seqDir, 'LAST_ID'))
    await syncDir(this.seqDir)
  }

  /** Runs fn after every earlier holder of `key` is done (one object's writes, truncates and destroys in turn). */
  async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve()
    const run = prev.then(fn)
    const tail = run.then(() => {}, () => {})
    this.locks.set(key, tail)
    try {
      return await run
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key)
    }
  }

  /**
   * Creates objects after the last one up to `upTo` and returns the new last id, as
   * ofd_create_hdl does: nothing when upTo is not past the last id; at most
   * CREATE_PER_CALL per call (the MDS asks again; one request never holds the OST for
   * seconds, whatever a peer asks for); and when upTo is more than five
   * batches ahead (an OST replaced under a running MDS) only the last batch, moving the
   * last id up. Files first, then LAST_ID: a crash between leaves files past LAST_ID,
   * which the next create recreates empty, never an id at or below LAST_ID without its file.
   */
  create(upTo: bigint): Promise<bigint> {
    return this.locked('create', async () => {
      let base = this.last
      if (upTo <= base) return base
      if (upTo - base > 5n * OST_MAX_PRECREATE) base = upTo - CREATE_PER_CALL
      const target = upTo - base > CREATE_PER_CALL ? base + CREATE_PER_CALL : upTo
      let created = base
      let failure: unknown
      for (let first = base + 1n; first <= target && failure === undefined; first += BigInt(CREATE_PARALLEL)) {
        const ids: bigint[] = []
        for (let id = first; id <= target && id < first + BigInt(CREATE_PARALLEL); id++) ids.push(id)
        const results = await Promise.allSettled(ids.map(id => fsp.writeFile(this.pathOf(id), new Uint8Array(0), { mode: 0o666 })))
        // Keep the run of ids created without a gap; some objects are better than none (ofd_create_hdl).
        for (let i = 0; i < results.length; i++) {
          const r = results[i]
          if (r.status === 'rejected') { failure = r.reason; break }
          created = ids[i]
        }
      }
      if (created === base && failure !== undefined) throw new OstError(errnoOfFs(failure), `precreate after ${base}: ${(failure as Error).message}`)
      const touched = created - base >= SUBDIRS ? [...Array(Number(SUBDIRS)).keys()].map(BigInt) : range(base + 1n, created).map(id => id % SUBDIRS)
      for (const d of new Set(touched)) await syncDir(join(this.seqDir, `d${d}`))
      await this.writeLastId(created)
      this.last = created
      return created
    })
  }

  /** Removes an object; -ENOENT if it is not there. Its id is never reused. */
  destroy(id: bigint): Promise<void> {
    return this.locked(`o${id}`, async () => {
      await fsp.unlink(this.pathOf(id)).catch(e => { throw fsError(e, `destroy ${id}`) })
      // Unlinked first: an open racing with the destroy either fails or lands in the entry dropped here.
      await this.objects.forget(id)
      this.dirty.delete(id)
    })
  }

  async stat(id: bigint): Promise<ObjectAttr> {
    const st = await this.withFile(id, fh => fh.stat({ bigint: true }))
    return {
      size: st.size, blocks: st.blocks, blksize: 4096,
      atime: st.atimeNs / 1_000_000_000n, mtime: st.mtimeNs / 1_000_000_000n, ctime: st.ctimeNs / 1_000_000_000n,
      mode: Number(st.mode),
    }
  }

  /** Writes each extent's bytes (taken in order from `data`) at its offset; holes stay holes. */
  write(id: bigint, extents: Extent[], data: Uint8Array, sync: boolean): Promise<void> {
    return this.withFile(id, async fh => {
      let at = 0
      for (const x of extents) {
        let done = 0
        while (done < x.length) {
          const { bytesWritten } = await fh.write(data, at + done, x.length - done, x.offset + done)
          done += bytesWritten
        }
        at += x.length
      }
      if (sync) await fh.sync()
      else this.dirty.add(id)
    })
  }

  /** Reads the extents into one buffer; bytes past the end of the object (or in holes) are zeros. */
  read(id: bigint, extents: Extent[]): Promise<Uint8Array> {
    const out = new Uint8Array(extents.reduce((n, x) => n + x.length, 0))
    return this.withFile(id, async fh => {
      let at = 0
      for (const x of extents) {
        let done = 0
        while (done < x.length) {
          const { bytesRead } = await fh.read(out, at + done, x.length - done, x.offset + done)
          if (bytesRead === 0) break
          done += bytesRead
        }
        at += x.length
      }
      return out
    })
  }

  /** Sets the object's size (shrinking or growing it sparsely): a punch to OBD_OBJECT_EOF. */
  truncate(id: bigint, size: number): Promise<void> {
    return this.withLockedFile(id, async fh => {
      await fh.truncate(size)
      this.dirty.add(id)
    })
  }

  /** Zeros [start, end) inside the object without changing its size: a punch that ends before EOF. */
  zero(id: bigint, start: number, end: number): Promise<void> {
    return this.withLockedFile(id, async fh => {
      const size = Number((await fh.stat({ bigint: true })).size)
      const stop = Math.min(end, size)
      const zeros = new Uint8Array(Math.min(ZERO_CHUNK, Math.max(0, stop - start)))
      for (let at = start; at < stop;) {
        const { bytesWritten } = await fh.write(zeros, 0, Math.min(zeros.length, stop - at), at)
        at += bytesWritten
      }
      this.dirty.add(id)
    })
  }

  setTimes(id: bigint, atime: number | undefined, mtime: number | undefined): Promise<void> {
    return this.withLockedFile(id, async fh => {
      const st = await fh.stat()
      await fh.utimes(atime ?? st.atime, mtime ?? st.mtime)
    })
  }

  /** fsync of one object, or of every object written since its last fsync (OST_SYNC without an object). */
  async sync(id?: bigint): Promise<void> {
    const ids = id === undefined ? [...this.dirty] : [id]
    for (const i of ids) {
      await this.withFile(i, fh => fh.sync()).catch(e => {
        // An object destroyed since it was written needs no flushing.
        if (!(id === undefined && e instanceof OstError && e.status === E.ENOENT)) throw e
      })
      this.dirty.delete(i)
    }
  }

  async statfs(): Promise<HostStatfs> {
    const s = await fsp.statfs(this.root, { bigint: true }).catch(e => { throw fsError(e, 'statfs') })
    return { type: s.type, bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree }
  }

  /**
   * Runs fn on the object's open descriptor (never creating the file). Reads and writes
   * run side by side, as pread/pwrite do on an OST; what they race with is ordered by locks
   * a client takes (LDLM), not here.
   */
  private withFile<T>(id: bigint, fn: (fh: fsp.FileHandle) => Promise<T>): Promise<T> {
    return this.objects.use(id, fn).catch(e => { throw e instanceof OstError ? e : fsError(e, `object ${id}`) })
  }

  /** withFile under the object's lock: truncates, zeroing punches and time changes run in turn with destroys. */
  private withLockedFile<T>(id: bigint, fn: (fh: fsp.FileHandle) => Promise<T>): Promise<T> {
    return this.locked(`o${id}`, () => this.withFile(id, fn))
  }
}

function fsError(e: unknown, what: string): OstError {
  return new OstError(errnoOfFs(e), `${what}: ${(e as Error).message}`)
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fsc.O_RDONLY)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

function range(from: bigint, to: bigint): bigint[] {
  const out: bigint[] = []
  for (let i = from; i <= to; i++) out.push(i)
  return out
}
