// Model-based tests of the reference MDS's lock server: traces of spec/models/ldlm.qnt
// from fixed seeds (quint run --mbt --out-itf, typescript backend) replayed through the
// harness's wire-only driver; after every step the target's locks and BL ASTs must be
// the model's. A trace whose expectation was altered must be reported at that step.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { replayLdlmTrace, type ItfTrace } from '../../conformance/index.js'
import { startCluster } from '../../reference/cluster/index.js'

const SEEDS = ['0x11', '0x2a', '0xbeef', '0x5eed5']
const LOCK_TIMEOUT_MS = 3000
const STEPS = 16

function trace(dir: string, seed: string): Promise<ItfTrace> {
  const out = join(dir, `ldlm-${seed}.itf.json`)
  return new Promise((resolve, reject) => {
    execFile(join('node_modules', '.bin', 'quint'), [
      'run', join('spec', 'models', 'ldlm.qnt'), '--backend', 'typescript', '--step', 'stepOnTheWire', '--invariant', 'safety',
      '--mbt', '--out-itf', out, '--max-samples', '1', '--max-steps', String(STEPS), '--seed', seed,
    ], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`quint run: ${stdout}${stderr}`))
      resolve(JSON.parse(readFileSync(out, 'utf8')) as ItfTrace)
    })
  })
}

t.test('model traces replayed against the reference MDS agree step by step', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lc-mbt-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // Evictions are driven by waiting out the callback timeout: long enough that no BL AST
  // outlives it between two evictLate steps of a trace, short enough to wait for.
  const c = await startCluster({ dir: join(dir, 'data'), osts: 1, mdsPort: 0, ossPort: 0, lockTimeoutMs: LOCK_TIMEOUT_MS })
  t.teardown(() => c.stop())
  let steps = 0
  let evictions = 0
  let blSteps = 0
  for (const seed of SEEDS) {
    const itf = await trace(dir, seed)
    const results = await replayLdlmTrace(itf, { mds: c.mdsAddress, resource: [0x200000401n, BigInt(Number(seed)), 0n, 0n], lockTimeoutMs: LOCK_TIMEOUT_MS })
    const bad = results.find(r => !r.ok)
    t.notOk(bad, bad ? `seed ${seed}, step ${bad.index} ${bad.action}: model says ${bad.expected}, target shows ${bad.observed}` : `seed ${seed}: ${results.length} steps agree`)
    t.equal(results.length, itf.states.length - 1, `seed ${seed}: every step replayed`)
    steps += results.length
    blSteps += results.filter(r => !r.expected.includes('BL AST to none')).length
    evictions += results.filter(r => r.action.startsWith('evictLate')).length
  }
  t.ok(steps >= SEEDS.length * 8, `${steps} steps in all`)
  t.ok(blSteps > 0, `${blSteps} steps with blocking ASTs outstanding: the traces reach conflicts`)
  t.ok(evictions > 0, `${evictions} eviction steps: the traces reach callback timeouts`)
})

t.test('the comparison can fail: a trace told to expect a grant the server refuses is caught at that step', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lc-mbt-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startCluster({ dir: join(dir, 'data'), osts: 1, mdsPort: 0, ossPort: 0, lockTimeoutMs: LOCK_TIMEOUT_MS })
  t.teardown(() => c.stop())
  const itf = await trace(dir, SEEDS[1])
  // The first state where the model has a waiting lock: say it was granted instead.
  const at = itf.states.findIndex(s => JSON.stringify(s.locks).includes('"waiting"'))
  t.ok(at > 0, `state ${at} has a waiting lock`)
  const altered = JSON.parse(JSON.stringify(itf).replace(/"waiting"/, '"granted"')) as ItfTrace
  const results = await replayLdlmTrace(altered, { mds: c.mdsAddress, resource: [0x200000401n, 0xa17e5n, 0n, 0n], settleMs: 300, lockTimeoutMs: LOCK_TIMEOUT_MS })
  const bad = results.find(r => !r.ok)
  t.ok(bad, 'a step disagrees')
  t.equal(bad?.index, at - 1, 'at the altered step')
})
