// The certifier's self-test: the reference MDS with each fault switch on is certified, and
// each must fail, under the test IDs that check what the fault breaks (and nothing passes
// that should not). `node scripts/mutation-score.mjs` prints the same as a score.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { allTests, requirements, requirementVerdicts, runTests, select } from '../../conformance/index.js'
import { startCluster } from '../../reference/cluster/index.js'
import { MUTANTS } from '../../conformance/mutants.js'

for (const m of MUTANTS) {
  t.test(`mutant ${m.name}: caught by ${m.caughtBy.join(', ')}`, async t => {
    const dir = mkdtempSync(join(tmpdir(), 'lc-mut-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const c = await startCluster({ dir, osts: 2, mdsPort: 0, ossPort: 0, mdsFaults: m.faults })
    t.teardown(() => c.stop())
    const results = await runTests(select(allTests, m.suites), { mds: c.mdsAddress, oss: c.ossAddresses, fsname: 'lustre' }, { seed: 9, timeoutMs: 15_000 })
    const failed = results.filter(r => r.verdict.kind === 'fail').map(r => r.id)
    for (const id of m.caughtBy) t.ok(failed.includes(id), `${id} fails`)
    // The requirement matrix blames what the mutant broke, not what its failures were met on the way to.
    const reqs = requirementVerdicts(requirements().map(q => q.id), allTests, results)
    for (const id of m.breaks) t.equal(reqs.get(id), 'fail', `requirement ${id} fails`)
    t.same(results.filter(r => r.verdict.kind === 'error').map(r => r.id), [], 'no harness errors')
  })
}
