// spec/models/ldlm.qnt, the Quint model of the lock server: its own tests (quint test),
// a seeded random simulation checking the safety invariants (quint run, typescript
// backend: nothing is downloaded), proof that the invariants can fail (two mutants of
// the model must be caught), and agreement of its matrix with spec/ldlm/compat.json.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const QUINT = join('node_modules', '.bin', 'quint')
const MODEL = join('spec', 'models', 'ldlm.qnt')
const SEEDS = ['0x1', '0x5eed', '0xc0ffee']

function quint(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise(resolve => {
    execFile(QUINT, args, { timeout: 180_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0
      resolve({ code, out: `${stdout}${stderr}` })
    })
  })
}

const simulate = (file: string, seed: string): Promise<{ code: number; out: string }> =>
  quint(['run', file, '--backend', 'typescript', '--invariant', 'safety', '--max-samples', '200', '--max-steps', '20', '--seed', seed])

t.test('quint test: the model\'s own runs pass', async t => {
  const r = await quint(['test', join('spec', 'models', 'ldlm_test.qnt'), '--main', 'ldlm_test', '--backend', 'typescript'])
  t.equal(r.code, 0, r.out)
  const passed = Number(/(\d+) passing/.exec(r.out)?.[1] ?? 0)
  t.ok(passed >= 8, `${passed} runs passed`)
  t.notMatch(r.out, /failing/)
})

for (const seed of SEEDS) {
  t.test(`quint run, seed ${seed}: no state breaks the safety invariants`, async t => {
    const r = await simulate(MODEL, seed)
    t.equal(r.code, 0, r.out.slice(-2000))
    t.match(r.out, /No violation found/)
  })
}

t.test('the invariants can fail: mutants of the model are caught', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lc-quint-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const text = readFileSync(MODEL, 'utf8')
  const mutants: Array<[string, string, string]> = [
    ['reprocess grants waiting locks whatever they conflict with', 'if (blocked) acc else acc.put', 'if (false) acc else acc.put'],
    ['an evicted client\'s I/O is accepted', '    held.get(c).contains(i),\n    not(evicted.contains(c)),\n', '    held.get(c).contains(i),\n'],
    ['a new lock ignores granted conflicting locks', 'if (blockers.size() == 0 and not(ahead)) "granted"', 'if (not(ahead)) "granted"'],
  ]
  for (const [what, from, to] of mutants) {
    t.ok(text.includes(from), `mutation point present: ${what}`)
    const file = join(dir, 'ldlm.qnt')
    writeFileSync(file, text.replace(from, to))
    const r = await simulate(file, SEEDS[0])
    t.not(r.code, 0, `caught: ${what}`)
    t.match(r.out, /violation/, what)
  }
})

t.test('the model\'s COMPAT is spec/ldlm/compat.json\'s, over the modes it models', async t => {
  const text = readFileSync(MODEL, 'utf8')
  const spec = JSON.parse(readFileSync(join('spec', 'ldlm', 'compat.json'), 'utf8')) as { compatible: Record<string, string[]> }
  const block = /COMPAT: Mode -> Set\[Mode\] = Map\(([\s\S]*?)\n  \)/.exec(text)?.[1] ?? ''
  const rows = [...block.matchAll(/"(\w+)" -> Set\(([^)]*)\)/g)].map(m => [m[1], [...m[2].matchAll(/"(\w+)"/g)].map(x => x[1]).sort()] as const)
  t.equal(rows.length, 6, 'six modes modelled')
  const modelled = new Set(rows.map(r => r[0]))
  for (const [mode, compat] of rows) {
    const want = spec.compatible[`LCK_${mode}`].map(m => m.slice(4)).filter(m => modelled.has(m)).sort()
    t.same(compat, want, mode)
  }
})
