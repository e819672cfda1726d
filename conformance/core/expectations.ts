// Known failures of a target, checked in beside it (spec/expectations.schema.json): a run is
// judged against them, so that CI fails only when something changes, a test that starts
// failing or one listed as failing that now passes.
import { readFileSync } from 'node:fs'
import type { TestResult } from './runner.js'

export interface Expectations {
  target: string
  /** test ID -> why it is known to fail */
  failures: Record<string, string>
}

export interface ExpectationCheck {
  /** failed (or erred) as expected */
  expected: string[]
  /** failed or erred but not listed */
  unexpectedFailures: string[]
  /** listed, ran, and passed: the list is out of date */
  unexpectedPasses: string[]
}

export function loadExpectations(path: string): Expectations {
  const d = JSON.parse(readFileSync(path, 'utf8')) as Partial<Expectations>
  if (typeof d.target !== 'string' || !d.failures || typeof d.failures !== 'object') throw new Error(`${path}: an expectations file has "target" and "failures"`)
  return { target: d.target, failures: d.failures }
}

export function checkExpectations(results: TestResult[], e: Expectations): ExpectationCheck {
  const bad = (r: TestResult): boolean => r.verdict.kind === 'fail' || r.verdict.kind === 'error'
  return {
    expected: results.filter(r => bad(r) && r.id in e.failures).map(r => r.id),
    unexpectedFailures: results.filter(r => bad(r) && !(r.id in e.failures)).map(r => r.id),
    unexpectedPasses: results.filter(r => r.verdict.kind === 'pass' && r.id in e.failures).map(r => r.id),
  }
}
