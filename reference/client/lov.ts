// Striped I/O planning, as lov/osc split a file range: the RAID0 pieces of the range are
// grouped per object, cut at brw_size boundaries of the object (osc builds an RPC from
// pages of one object up to cl_max_pages_per_rpc, aligned to it), and each group becomes
// one BRW RPC whose niobufs are the group's contiguous object runs. RPCs are then run
// across all OSTs at once with a bound on how many are in flight.
import { stripeMap, type Layout } from './layout.js'
import type { Niobuf } from './osc.js'

/** A piece of the caller's buffer: `length` bytes at `bufOffset`, object bytes at `objOffset`. */
export interface Segment { objOffset: number; bufOffset: number; length: number }

export interface BrwPlan {
  /** index of the object in the layout */
  objIndex: number
  /** niobufs at object offsets, ascending, each a contiguous run of segments */
  niobufs: Niobuf[]
  /** segments in object order: the bulk is their bytes, back to back */
  segments: Segment[]
  /** bytes in the bulk */
  length: number
}

/**
 * Plans the BRW RPCs for file range [offset, offset + length) of `layout`, where byte
 * `offset + i` of the file is byte `i` of the caller's buffer. RPCs come out ordered by
 * window then object, so that running them in order keeps every OST busy.
 */
export function planBrw(offset: number, length: number, layout: Pick<Layout, 'stripeSize' | 'stripeCount'>, brwSize: number): BrwPlan[] {
  if (!Number.isSafeInteger(brwSize) || brwSize <= 0) throw new Error(`brw size ${brwSize} is not a positive integer`)
  const byKey = new Map<string, { objIndex: number; window: number; segments: Segment[] }>()
  for (const p of stripeMap(offset, length, layout)) {
    // A piece may cross a brw window of its object: cut it there.
    for (let done = 0; done < p.length;) {
      const objOffset = p.objOffset + done
      const window = Math.floor(objOffset / brwSize)
      const n = Math.min(p.length - done, (window + 1) * brwSize - objOffset)
      const key = `${window}:${p.objIndex}`
      let g = byKey.get(key)
      if (!g) byKey.set(key, g = { objIndex: p.objIndex, window, segments: [] })
      g.segments.push({ objOffset, bufOffset: p.fileOffset + done - offset, length: n })
      done += n
    }
  }
  const groups = [...byKey.values()].sort((a, b) => a.window - b.window || a.objIndex - b.objIndex)
  return groups.map(g => {
    const segments = g.segments.sort((a, b) => a.objOffset - b.objOffset)
    const niobufs: Niobuf[] = []
    for (const s of segments) {
      const last = niobufs[niobufs.length - 1]
      if (last && last.offset + last.length === s.objOffset) last.length += s.length
      else niobufs.push({ offset: s.objOffset, length: s.length })
    }
    return { objIndex: g.objIndex, niobufs, segments, length: segments.reduce((a, s) => a + s.length, 0) }
  })
}

/** The bulk of a write RPC: the plan's segments of `data`, in object order (no copy for one segment). */
export function gatherBulk(plan: BrwPlan, data: Uint8Array): Uint8Array {
  if (plan.segments.length === 1) {
    const s = plan.segments[0]
    return data.subarray(s.bufOffset, s.bufOffset + s.length)
  }
  const out = new Uint8Array(plan.length)
  let at = 0
  for (const s of plan.segments) {
    out.set(data.subarray(s.bufOffset, s.bufOffset + s.length), at)
    at += s.length
  }
  return out
}

/** Puts the bulk of a read RPC back where its segments belong in `out`; bytes the server did not send become zeros. */
export function scatterBulk(plan: BrwPlan, bulk: Uint8Array, out: Uint8Array): void {
  let at = 0
  for (const s of plan.segments) {
    const n = Math.max(0, Math.min(s.length, bulk.length - at))
    if (n > 0) out.set(bulk.subarray(at, at + n), s.bufOffset)
    if (n < s.length) out.fill(0, s.bufOffset + n, s.bufOffset + s.length)
    at += s.length
  }
}

/**
 * Runs the tasks with at most `limit` in flight, in order; the first failure stops
 * new starts and is thrown once the running ones have settled.
 */
export async function runLimited(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0
  let failed: { error: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (!failed && next < tasks.length) {
      const t = tasks[next++]
      try {
        await t()
      } catch (e) {
        failed ??= { error: e }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, tasks.length)) }, worker))
  if (failed) throw failed.error
}
