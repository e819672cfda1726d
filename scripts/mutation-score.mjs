#!/usr/bin/env node
// Prints the certifier's mutation score: for each deliberately wrong reference MDS
// (conformance/mutants.ts), whether certifying it fails the tests that must catch it.
// Needs the build (npm run build).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { allTests, requirements, requirementVerdicts, runTests, select } from '../dist/conformance/index.js'
import { MUTANTS } from '../dist/conformance/mutants.js'
import { startCluster } from '../dist/reference/cluster/index.js'

let caught = 0
for (const m of MUTANTS) {
  const dir = mkdtempSync(join(tmpdir(), 'lc-mut-'))
  const c = await startCluster({ dir, osts: 2, mdsPort: 0, ossPort: 0, mdsFaults: m.faults })
  try {
    const results = await runTests(select(allTests, m.suites), { mds: c.mdsAddress, oss: c.ossAddresses, fsname: 'lustre' }, { seed: 9, timeoutMs: 15_000 })
    const failed = new Set(results.filter(r => r.verdict.kind === 'fail').map(r => r.id))
    const reqs = requirementVerdicts(requirements().map(q => q.id), allTests, results)
    const ok = m.caughtBy.every(id => failed.has(id)) && m.breaks.every(id => reqs.get(id) === 'fail')
    if (ok) caught++
    console.log(`${ok ? 'caught' : 'MISSED'}  ${m.name}: ${failed.size} of ${results.length} tests failed${ok ? '' : ` (expected tests ${m.caughtBy.join(', ')} to fail, and requirements ${m.breaks.join(', ')})`}`)
  } finally {
    await c.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
console.log(`mutation score: ${caught}/${MUTANTS.length}`)
process.exitCode = caught === MUTANTS.length ? 0 : 1
