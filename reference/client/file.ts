// The data of one regular file: its RAID0 layout and the OSTs that hold its objects.
// Size is what the objects say (the MDS's copy of a striped file's size is only a lazy
// one; ll_merge_attr / lov_merge_lvb_kms take the largest file offset any object reaches);
// reads stop at that size and holes read as zeros; writes go out as BRW RPCs to all OSTs
// in parallel.
import { ClientError } from './errors.js'
import { fileSizeFromObject, objectSizeFor, type Layout } from './layout.js'
import { gatherBulk, planBrw, runLimited, scatterBulk } from './lov.js'
import type { Fid } from './mdc.js'
import { constantOf, loadSpec } from '../../src/wire/index.js'
import type { Obdo, Ost } from './osc.js'
import { PAGE, type DataCache } from './cache.js'
import type { BrwPlan } from './lov.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const RAID0 = Number(C('LOV_PATTERN_RAID0'))
const PATTERN_FLAGS = Number(C('LOV_PATTERN_OVERSTRIPING')) | Number(C('LOV_PATTERN_F_MASK'))
/** What an ost_lvb tells: size, blocks and the three times (ost_lvb has no valid mask of its own). */
const LVB_VALID = C('OBD_MD_FLSIZE') | C('OBD_MD_FLBLOCKS') | C('OBD_MD_FLMTIME') | C('OBD_MD_FLATIME') | C('OBD_MD_FLCTIME')

export interface FileTimes { atime: bigint; mtime: bigint; ctime: bigint }

export class LustreFile {
  constructor(
    readonly fid: Fid,
    readonly layout: Layout,
    private readonly osts: ReadonlyMap<number, Ost>,
    private readonly brwSize: number,
    private readonly inflight: number,
    /** extent locks and cached pages (reference/client/cache.ts); without it, I/O takes no locks */
    private readonly cache?: DataCache,
  ) {
    const l = layout
    if ((l.pattern & ~PATTERN_FLAGS) !== RAID0 || l.stripeCount <= 0 || l.stripeSize <= 0 || l.objects.length !== l.stripeCount) {
      throw new ClientError('LC_CLIENT_LAYOUT', `layout (pattern 0x${l.pattern.toString(16)}, ${l.objects.length} objects of ${l.stripeCount}) is not a RAID0 layout with its objects`)
    }
  }

  private ost(objIndex: number): Ost {
    const i = this.layout.objects[objIndex].ostIndex
    const o = this.osts.get(i)
    if (!o) throw new ClientError('LC_CLIENT_NO_OST', `no OSS serves OST index ${i} (object ${objIndex} of the layout)`)
    return o
  }

  private object(objIndex: number) {
    return this.layout.objects[objIndex]
  }

  /**
   * Size and times of every object, in layout order: with a cache, as the locks know them or
   * a glimpse tells (the holder of a write lock is asked); without, by OST_GETATTR.
   */
  async objectAttrs(): Promise<Obdo[]> {
    const out: Obdo[] = new Array(this.layout.objects.length)
    const cache = this.cache
    await runLimited(this.layout.objects.map((_, i) => async () => {
      if (!cache) { out[i] = await this.ost(i).getattr(this.object(i)); return }
      const l = await cache.attrs(this.ost(i), this.object(i))
      out[i] = { o_valid: LVB_VALID, o_size: BigInt(l.lvb_size), o_mtime: BigInt(l.lvb_mtime), o_atime: BigInt(l.lvb_atime), o_ctime: BigInt(l.lvb_ctime), o_blocks: BigInt(l.lvb_blocks) }
    }), this.inflight)
    return out
  }

  /** File size and the latest object times (only those the OST marked valid). */
  async attrs(): Promise<{ size: number } & FileTimes> {
    const attrs = await this.objectAttrs()
    let size = 0
    const t: FileTimes = { atime: 0n, mtime: 0n, ctime: 0n }
    attrs.forEach((a, i) => {
      size = Math.max(size, fileSizeFromObject(Number(a.o_size), i, this.layout))
      if (a.o_valid & C('OBD_MD_FLATIME') && a.o_atime > t.atime) t.atime = a.o_atime
      if (a.o_valid & C('OBD_MD_FLMTIME') && a.o_mtime > t.mtime) t.mtime = a.o_mtime
      if (a.o_valid & C('OBD_MD_FLCTIME') && a.o_ctime > t.ctime) t.ctime = a.o_ctime
    })
    return { size, ...t }
  }

  async size(): Promise<number> {
    return (await this.attrs()).size
  }

  /** Writes `data` at file offset `offset`. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    checkRange(offset, data.length)
    const plans = planBrw(offset, data.length, this.layout, this.brwSize)
    await runLimited(plans.map(p => () => this.locked(p, true, async () => {
      await this.ost(p.objIndex).write(this.object(p.objIndex), p.niobufs, gatherBulk(p, data))
      // Our own pages of the object are older than what the OST now holds.
      this.cache?.drop(this.object(p.objIndex), this.ost(p.objIndex))
    })), this.inflight)
  }

  /**
   * Runs one RPC's I/O under an extent lock on the object bytes its niobufs span (for a
   * read, out to whole pages, which is what gets cached), when the file has a cache.
   */
  private locked<T>(p: BrwPlan, write: boolean, fn: () => Promise<T>): Promise<T> {
    if (!this.cache) return fn()
    const first = p.niobufs[0].offset
    const end = p.niobufs[p.niobufs.length - 1].offset + p.niobufs[p.niobufs.length - 1].length
    const [s, e] = write ? [first, end] : [Math.floor(first / PAGE) * PAGE, Math.ceil(end / PAGE) * PAGE]
    return this.cache.under(this.ost(p.objIndex), this.object(p.objIndex), write, BigInt(s), BigInt(e - 1), fn)
  }

  /**
   * Reads up to `length` bytes at `offset`, short at end of file. `size` is the file size
   * when the caller already knows it (get reads many chunks of one file).
   */
  async read(offset: number, length: number, size?: number): Promise<Uint8Array> {
    checkRange(offset, length)
    const eof = size ?? await this.size()
    const out = new Uint8Array(Math.max(0, Math.min(length, eof - offset)))
    await this.readInto(offset, out, eof)
    return out
  }

  /**
   * Reads into `into` (a buffer a streaming reader reuses) the file bytes at `offset`, up
   * to its length or the end of file; returns how many that is. Every byte of the result
   * is written: holes and bytes an OST did not send read as zeros, whatever `into` held.
   */
  async readInto(offset: number, into: Uint8Array, size?: number): Promise<number> {
    checkRange(offset, into.length)
    const eof = size ?? await this.size()
    const n = Math.max(0, Math.min(into.length, eof - offset))
    if (n === 0) return 0
    const out = into.subarray(0, n)
    const plans = planBrw(offset, n, this.layout, this.brwSize)
    await runLimited(plans.map(p => () => this.locked(p, false, async () => {
      const obj = this.object(p.objIndex)
      const ost = this.ost(p.objIndex)
      const one = p.niobufs.length === 1 ? p.niobufs[0] : undefined
      if (one && this.cache) {
        // Whole pages, from the cache when it has them all (read earlier under the lock held
        // now), else from the OST and kept; plan windows are page aligned, so this stays in one.
        const a0 = Math.floor(one.offset / PAGE) * PAGE
        const a1 = Math.ceil((one.offset + one.length) / PAGE) * PAGE
        let pages = this.cache.read(obj, ost, a0, a1 - a0)
        if (!pages) {
          const bulk = await ost.read(obj, [{ offset: a0, length: a1 - a0 }])
          // Bytes past what the OST sent are zeros (a hole or past the object's end) while the lock is held.
          pages = new Uint8Array(a1 - a0)
          pages.set(bulk.subarray(0, pages.length))
          this.cache.keep(obj, ost, a0, pages)
        }
        return scatterBulk(p, pages.subarray(one.offset - a0, one.offset - a0 + one.length), out)
      }
      if (p.segments.length === 1) {
        // One run of the object is one run of the buffer: the server PUTs it in place,
        // zeroed first so that a reused buffer shows no old bytes where the server PUT none.
        const s = p.segments[0]
        await ost.read(obj, p.niobufs, out.subarray(s.bufOffset, s.bufOffset + s.length).fill(0))
      } else {
        scatterBulk(p, await ost.read(obj, p.niobufs), out)
      }
    })), this.inflight)
    return n
  }

  /**
   * Sets every object to the size it has in a file of `size` bytes (lov_size_to_stripe),
   * punching from there to OBD_OBJECT_EOF: shorter objects grow sparse, longer ones shrink.
   */
  async truncate(size: number): Promise<void> {
    checkRange(size, 0)
    await runLimited(this.layout.objects.map((o, i) => async () => {
      const at = BigInt(objectSizeFor(size, i, this.layout))
      const punch = async (): Promise<void> => {
        await this.ost(i).punch(o, at)
        this.cache?.drop(o, this.ost(i))
      }
      // The punch runs under a PW lock from the new end on, as osc_punch's caller takes one.
      if (this.cache) await this.cache.under(this.ost(i), o, true, at, 0xffffffffffffffffn, punch)
      else await punch()
    }), this.inflight)
  }
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > Number.MAX_SAFE_INTEGER) {
    throw new ClientError('LC_CLIENT_ARG', `range ${offset}+${length} is not a non-negative byte range`)
  }
}
