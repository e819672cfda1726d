// A live progress line for a terminal (stderr), beside the TAP on stdout: the suite, how
// many tests are done of how many, the counts so far and the test running now.
import type { TestResult } from './runner.js'

export interface ProgressState { done: number; total: number; counts: Record<string, number>; current?: string }

export function progressLine(s: ProgressState, width = 100): string {
  const suite = s.current?.split('.')[0] ?? '-'
  const c = (k: string): number => s.counts[k] ?? 0
  const line = `[${suite}] ${s.done}/${s.total}  pass ${c('pass')}  fail ${c('fail')}  unsupported ${c('unsupported')}  error ${c('error')}${s.current ? `  running ${s.current}` : ''}`
  return line.length > width ? `${line.slice(0, width - 1)}…` : line
}

/** Hooks for runTests that keep one line up to date on a terminal; nothing when `out` is not one. */
export function terminalProgress(out: NodeJS.WriteStream, total: number): { onStart(id: string): void; onResult(r: TestResult): void; end(): void } {
  const s: ProgressState = { done: 0, total, counts: {} }
  const draw = (): void => { if (out.isTTY) out.write(`\r\x1b[2K${progressLine(s, out.columns ?? 100)}`) }
  return {
    onStart(id) { s.current = id; draw() },
    onResult(r) { s.done++; s.counts[r.verdict.kind] = (s.counts[r.verdict.kind] ?? 0) + 1; s.current = undefined; draw() },
    end() { if (out.isTTY) out.write('\r\x1b[2K') },
  }
}
