// Timing and printing helpers shared by the benchmarks. Every figure the bench
// prints is set beside a baseline measured in the same run, as a ratio, so that
// a busy or slow machine changes the figures but not the conclusions.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Milliseconds from a monotonic clock. */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6

/** Keeps results alive so that the JIT cannot drop the work being timed. */
export let sink = 0
export function consume(x: number): void {
  sink = (sink + x) | 0
}

export interface Rate {
  /** operations timed (after the warm-up) */
  ops: number
  seconds: number
  /** operations per second */
  perSec: number
}

export interface RateOptions {
  /** operations to time (fewer if maxSeconds runs out first) */
  ops: number
  /** untimed operations first, so the JIT has compiled the hot path */
  warmup: number
  /** stop timing after this long even if `ops` is not reached */
  maxSeconds: number
}

/**
 * Times `op(i)` for i = 0, 1, 2 ... after a warm-up. The clock is read every
 * `batch` operations, so its cost is negligible, and the run stops at `ops`
 * operations or `maxSeconds`, whichever comes first.
 */
export function measureRate(op: (i: number) => number, o: RateOptions): Rate {
  let acc = 0
  for (let i = 0; i < o.warmup; i++) acc += op(i)
  const batch = 500
  const t0 = nowMs()
  const limit = t0 + o.maxSeconds * 1000
  let done = 0
  while (done < o.ops) {
    const n = Math.min(batch, o.ops - done)
    for (let i = 0; i < n; i++) acc += op(done + i)
    done += n
    if (nowMs() > limit) break
  }
  const seconds = (nowMs() - t0) / 1000
  consume(acc)
  return { ops: done, seconds, perSec: done / seconds }
}

/** The fastest of several timed runs, with how many there were. */
export function fastest<T extends { seconds: number }>(runs: T[]): T & { runs: number } {
  const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a))
  return { ...best, runs: runs.length }
}

/** CPU seconds (user + system, all threads) this process spent since `from`. */
export function cpuSeconds(from: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(from)
  return (c.user + c.system) / 1e6
}

// ---- formatting -------------------------------------------------------------

export function fmtRate(x: number): string {
  if (!Number.isFinite(x)) return String(x)
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}k`
  if (x >= 100) return x.toFixed(0)
  return x.toFixed(2)
}

export const fmtMB = (bytesPerSec: number): string => (bytesPerSec / 1e6).toFixed(bytesPerSec >= 1e8 ? 0 : 1)
export const fmtRatio = (r: number): string => (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)) + 'x'
export const fmtInt = (n: number): string => n.toLocaleString('en-US')

/** A plain text table, columns left-aligned except those named in `right`. */
export function table(head: string[], rows: string[][], right: number[] = []): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const cell = (s: string, i: number): string => (right.includes(i) ? s.padStart(w[i]) : s.padEnd(w[i]))
  const line = (r: string[]): string => r.map((s, i) => cell(s ?? '', i)).join('  ').trimEnd()
  return [line(head), w.map(n => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n')
}

export function section(title: string): void {
  console.log(`\n== ${title} ${'='.repeat(Math.max(0, 74 - title.length))}`)
}

// ---- temporary files ------------------------------------------------------------

const tempDirs: string[] = []

/** A fresh directory under os.tmpdir(), removed by removeTemp() (also on Ctrl-C). */
export function makeTempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'lustre-bench-'))
  tempDirs.push(d)
  return d
}

export function removeTemp(): void {
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    removeTemp()
    process.exit(130)
  })
}
