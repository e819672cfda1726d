// Machine-readable reports of a certification run: JSON (versioned; its schema is
// spec/report.schema.json) and JUnit XML for CI systems. Both are built from the same
// run record; neither changes a verdict.
import type { TestResult, RequirementVerdict } from './runner.js'
import type { TargetAddress } from './test.js'

export interface RunRecord {
  target: TargetAddress
  seed: number
  startedAt: Date
  durationMs: number
  results: TestResult[]
  requirements: Array<{ id: string; text: string; source: string; verdict: RequirementVerdict }>
  /** pcap of each test, relative to the report, by test ID */
  pcaps?: Map<string, string>
}

const count = (rs: TestResult[], k: string): number => rs.filter(r => r.verdict.kind === k).length

export function jsonReport(run: RunRecord): object {
  return {
    version: 1,
    tool: 'lustre-conformance',
    target: { mds: run.target.mds, oss: run.target.oss, fsname: run.target.fsname },
    seed: run.seed,
    startedAt: run.startedAt.toISOString(),
    durationMs: Math.round(run.durationMs),
    summary: { pass: count(run.results, 'pass'), fail: count(run.results, 'fail'), unsupported: count(run.results, 'unsupported'), error: count(run.results, 'error') },
    tests: run.results.map(r => ({
      id: r.id, title: r.title, tags: r.tags, requirements: r.requirements, verdict: r.verdict, durationMs: Math.round(r.ms), notes: r.notes,
      ...(run.pcaps?.has(r.id) ? { pcap: run.pcaps.get(r.id) } : {}),
    })),
    requirements: run.requirements,
  }
}

const esc = (s: string): string => s.replace(/[<>&"']/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!)

/** JUnit XML: a testsuite per suite (the first part of the ID), a testcase per test. */
export function junitReport(run: RunRecord): string {
  const suites = new Map<string, TestResult[]>()
  for (const r of run.results) {
    const s = r.id.split('.')[0]
    suites.set(s, [...(suites.get(s) ?? []), r])
  }
  const secs = (ms: number): string => (ms / 1000).toFixed(3)
  const out = ['<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="lustre-conformance" tests="${run.results.length}" failures="${count(run.results, 'fail')}" errors="${count(run.results, 'error')}" skipped="${count(run.results, 'unsupported')}" time="${secs(run.durationMs)}">`]
  for (const [name, rs] of suites) {
    out.push(`  <testsuite name="${esc(name)}" tests="${rs.length}" failures="${count(rs, 'fail')}" errors="${count(rs, 'error')}" skipped="${count(rs, 'unsupported')}" time="${secs(rs.reduce((a, r) => a + r.ms, 0))}">`)
    for (const r of rs) {
      const v = r.verdict
      const open = `    <testcase classname="${esc(name)}" name="${esc(r.id)}" time="${secs(r.ms)}">`
      const props = `      <properties>${r.requirements.map(q => `<property name="requirement" value="${esc(q)}"/>`).join('')}</properties>`
      const body = v.kind === 'fail' ? `      <failure message="${esc(v.message)}" type="fail">expected: ${esc(v.expected)}\nobserved: ${esc(v.observed)}${v.requirement ? `\nbreaks: ${esc(v.requirement)}` : ''}${v.exchange ? `\nexchange: ${esc(`${v.exchange.service} ${v.exchange.format} xid ${v.exchange.xid}`)}` : ''}${v.frames?.length ? `\nframes: ${v.frames.join(', ')}` : ''}</failure>`
        : v.kind === 'error' ? `      <error message="${esc(v.message)}" type="error"/>`
          : v.kind === 'unsupported' ? `      <skipped message="${esc(`unsupported: ${v.reason}`)}"/>` : ''
      out.push(open, props, ...(body ? [body] : []), '    </testcase>')
    }
    out.push('  </testsuite>')
  }
  out.push('</testsuites>')
  return `${out.join('\n')}\n`
}
