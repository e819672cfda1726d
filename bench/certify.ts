// A full certification of the reference, as `npm start` runs it (issue 5: under 60 s), each
// run the real CLI in its own process, timed from spawn to exit:
//  - the baseline: the same command selecting no test (node, the CLI, the cluster started in
//    a temporary directory and stopped), the cost nothing in the suites can remove;
//  - every suite with no report written;
//  - every suite with the reports and one pcap per test (`--out`), what npm start does.
// The JSON report gives the time per suite, and the tests that mostly wait (eviction).
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { nowMs } from './harness.js'

const CLI = join(process.cwd(), 'bin', 'lustre-conformance.js')

export interface CertifyRun {
  seconds: number
  exitCode: number
  /** the TAP summary line (# pass N, fail N, ...) */
  summary: string
}

/** One `certify --reference` in a child process; rejects when it cannot be run at all. */
export async function certifyOnce(extra: string[]): Promise<CertifyRun> {
  const t0 = nowMs()
  const child = spawn(process.execPath, [CLI, 'certify', '--reference', '--seed', '1', ...extra], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', code => resolve(code ?? 1))
  })
  return { seconds: (nowMs() - t0) / 1000, exitCode, summary: /^# pass .*$/m.exec(out)?.[0] ?? '(no summary)' }
}

export interface SuiteTime { suite: string; tests: number; seconds: number }

/** Seconds per suite (the first part of the test IDs), and the slowest tests, from a report.json. */
export function suiteTimes(reportPath: string): { suites: SuiteTime[]; slowest: Array<{ id: string; seconds: number }> } {
  const r = JSON.parse(readFileSync(reportPath, 'utf8')) as { tests: Array<{ id: string; durationMs: number }> }
  const by = new Map<string, SuiteTime>()
  for (const t of r.tests) {
    const s = t.id.split('.')[0]
    const e = by.get(s) ?? { suite: s, tests: 0, seconds: 0 }
    e.tests++
    e.seconds += t.durationMs / 1000
    by.set(s, e)
  }
  const slowest = [...r.tests].sort((a, b) => b.durationMs - a.durationMs).slice(0, 3).map(t => ({ id: t.id, seconds: t.durationMs / 1000 }))
  return { suites: [...by.values()], slowest }
}
