// The certifier itself: against the reference cluster every test passes; against an MDS
// made to grant conflicting locks, exactly the compatibility tests of incompatible pairs
// fail, under their IDs; selection, seeding, TAP output and the CLI behave as documented.
import t from 'tap'
import type { Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { decodeTrace } from '../../src/trace/index.js'
import { pcapRecorderFactory, type TourRecording } from '../../src/tour/index.js'
import {
  allTests, requirements, requirementVerdicts, runTests, select, seededRandom, tapHeader, tapLine, tapSummary, jsonReport, junitReport, htmlReport,
  checkExpectations, progressLine, exchangeFrames,
} from '../../conformance/index.js'
import { startCluster, type ClusterOptions } from '../../reference/cluster/index.js'

async function cluster(t: Test, extra: Partial<ClusterOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lc-cert-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startCluster({ dir, osts: 2, mdsPort: 0, ossPort: 0, ...extra })
  t.teardown(() => c.stop())
  return c
}

const compatible = JSON.parse(readFileSync('spec/ldlm/compat.json', 'utf8')).compatible as Record<string, string[]>

t.test('against the reference cluster every test passes, and the report says so', async t => {
  // The callback timeout is given, so that the eviction test and the model's eviction steps run too.
  const c = await cluster(t, { lockTimeoutMs: 2000 })
  const results = await runTests(allTests, { mds: c.mdsAddress, oss: c.ossAddresses, fsname: 'lustre', lockTimeoutMs: 2000 }, { seed: 42, timeoutMs: 30_000 })
  const notPass = results.filter(r => r.verdict.kind !== 'pass')
  t.same(notPass.map(r => `${r.id}: ${JSON.stringify(r.verdict)}`), [], `${results.length} tests pass`)
  const tap = tapHeader(results.length, 42) + results.map((r, i) => tapLine(r, i + 1)).join('') + tapSummary(results)
  t.match(tap, /^TAP version 14\n/)
  t.equal(tap.match(/^ok \d+ - /gm)?.length, results.length, 'one ok line per test')
  const reqs = requirementVerdicts(requirements().map(r => r.id), allTests, results)
  t.same([...reqs].filter(([, v]) => v !== 'pass'), [], `all ${reqs.size} requirements are covered and pass`)
})

t.test('a verdict per requirement: fail over error over pass over unsupported; not run; covered by no test', async t => {
  const test = (id: string, requirements: string[]) => ({ id, tags: [], requirements, title: id, run: async () => {} })
  const tests = [test('a', ['R-FAIL', 'R-PASS', 'R-ERR']), test('b', ['R-FAIL']), test('c', ['R-ERR', 'R-UNSUP']), test('d', ['R-UNSUP']), test('e', ['R-SKIPPED'])]
  const result = (id: string, kind: string) => ({ id, title: id, tags: [], requirements: tests.find(x => x.id === id)!.requirements, ms: 0, notes: [], verdict: { kind } as never })
  const reqs = requirementVerdicts(['R-FAIL', 'R-PASS', 'R-ERR', 'R-UNSUP', 'R-SKIPPED', 'R-NONE'], tests,
    [result('a', 'pass'), result('b', 'fail'), result('c', 'error'), result('d', 'unsupported')])
  t.same(Object.fromEntries(reqs), { 'R-FAIL': 'fail', 'R-PASS': 'pass', 'R-ERR': 'error', 'R-UNSUP': 'error', 'R-SKIPPED': 'not run', 'R-NONE': 'uncovered' })
  // A failure met on the way (a reply short of buffers) fails the requirement it names and blocks the test's own.
  const wire = test('w', ['R-WIRE'])
  const onTheWay = { ...result('a', 'fail'), verdict: { kind: 'fail' as const, message: 'm', expected: 'e', observed: 'o', requirement: 'R-WIRE' } }
  const blocked = requirementVerdicts(['R-FAIL', 'R-PASS', 'R-WIRE'], [...tests, wire], [onTheWay, result('b', 'pass')])
  t.same(Object.fromEntries(blocked), { 'R-FAIL': 'blocked', 'R-PASS': 'blocked', 'R-WIRE': 'fail' }, 'blocked outranks pass; the named requirement fails though its own test did not run')
})

t.test('an MDS that grants conflicting locks fails exactly the tests of incompatible pairs', async t => {
  const c = await cluster(t, { mdsFaults: { ldlm: { grantConflicting: true } } })
  const tests = select(allTests, ['ldlm.compat.*'])
  const pcaps = mkdtempSync(join(tmpdir(), 'lc-cert-pcap-'))
  t.teardown(() => rmSync(pcaps, { recursive: true, force: true }))
  const recordings = new Map<string, TourRecording>()
  const recorderFor = (id: string) => {
    const rec = pcapRecorderFactory(join(pcaps, `${id}.pcap`), { keepUnits: false })
    recordings.set(id, rec)
    return rec.factory
  }
  const results = await runTests(tests, { mds: c.mdsAddress, oss: c.ossAddresses, fsname: 'lustre' }, { seed: 1, timeoutMs: 20_000, recorderFor })
  for (const rec of recordings.values()) await rec.close()
  const failed = results.filter(r => r.verdict.kind === 'fail').map(r => r.id).sort()
  const want = tests.filter(x => {
    const [held, asked] = x.id.replace('ldlm.compat.', '').split('-').map(m => `LCK_${m.toUpperCase()}`)
    return !compatible[held].includes(asked)
  }).map(x => x.id).sort()
  t.ok(want.length > 10, `${want.length} incompatible pairs`)
  t.same(failed, want, 'the failing tests are those of the incompatible pairs')
  t.ok(results.filter(r => !want.includes(r.id)).every(r => r.verdict.kind === 'pass'), 'the compatible ones still pass')
  const f = results.find(r => r.id === 'ldlm.compat.pw-pr')!.verdict
  t.match(f, { kind: 'fail', expected: '0' }, 'a failure says what was expected and what was observed')
  // The reports say the same: failures counted, each with its message.
  const run = { target: { mds: c.mdsAddress, oss: c.ossAddresses, fsname: 'lustre' }, seed: 1, startedAt: new Date(), durationMs: 1, results, requirements: [] }
  const junit = new XMLParser({ ignoreAttributes: false }).parse(junitReport(run))
  t.equal(Number(junit.testsuites['@_failures']), want.length, 'JUnit counts the failures')
  // Judged against known failures: exactly these is no change; one more or one fewer is.
  const known = Object.fromEntries(want.map(id => [id, 'grants conflicting locks']))
  const same = checkExpectations(results, { target: 'mutant', failures: known })
  t.same({ ...same, expected: [...same.expected].sort() }, { expected: want, unexpectedFailures: [], unexpectedPasses: [] })
  const fewer = Object.fromEntries(want.slice(1).map(id => [id, 'x']))
  t.same(checkExpectations(results, { target: 'mutant', failures: fewer }).unexpectedFailures, [want[0]], 'a failure not listed is new')
  t.same(checkExpectations(results, { target: 'mutant', failures: { ...known, 'ldlm.compat.nl-nl': 'x' } }).unexpectedPasses, ['ldlm.compat.nl-nl'], 'a listed test that passes is reported')
  // A failure names the exchange its check was about, found again in the test's pcap: the second
  // client's enqueue (granted at once, where a BL AST and a wait were due) and its reply.
  t.match(f, { exchange: { service: 'mds', format: 'RQF_LDLM_ENQUEUE' } }, 'the failure names its exchange')
  const v = f as Extract<typeof f, { kind: 'fail' }>
  v.frames = exchangeFrames(readFileSync(join(pcaps, 'ldlm.compat.pw-pr.pcap')), v.exchange!)
  t.equal(v.frames.length, 2, `request and reply frames: ${v.frames.join(', ')}`)
  const byFrame = new Map([...decodeTrace(readFileSync(join(pcaps, 'ldlm.compat.pw-pr.pcap')))].filter(e => e.message).map(e => [e.endFrame ?? e.frame, e.message!]))
  t.same(v.frames.map(n => [byFrame.get(n)?.opcode, byFrame.get(n)?.kind]), [['LDLM_ENQUEUE', 'request'], ['LDLM_ENQUEUE', 'reply']], 'those frames are the enqueue and its reply')
  t.equal(exchangeFrames(readFileSync(join(pcaps, 'ldlm.compat.pw-pr.pcap')), { ...v.exchange!, xid: '12345' }).length, 0, 'an xid the pcap does not hold: no frames')
  t.match(tapLine(results.find(r => r.id === 'ldlm.compat.pw-pr')!, 1), new RegExp(`  frames: \\[${v.frames.join(', ')}\\]\n`), 'TAP carries the frames')
  const json = jsonReport(run)
  const ajv = new Ajv2020({ strict: false })
  t.ok(ajv.validate(JSON.parse(readFileSync('spec/report.schema.json', 'utf8')), json), ajv.errorsText(ajv.errors))
  // The HTML report shows each failing test with a sequence chart of its traffic.
  const html = htmlReport(run, id => ({ file: join(pcaps, `${id}.pcap`), href: `${id}.pcap` }))
  for (const tag of ['table', 'section', 'article', 'svg', 'figure']) {
    t.equal(html.split(`<${tag}`).length, html.split(`</${tag}>`).length, `<${tag}> elements are closed`)
  }
  const article = html.slice(html.indexOf('id="failure-ldlm.compat.pw-pr"'))
  t.match(article.slice(0, article.indexOf('</article>')), /<svg[\s\S]*LDLM_ENQUEUE request[\s\S]*LDLM_ENQUEUE reply 0[\s\S]*<\/svg>/, 'the failing test\'s chart shows its enqueues and replies')
  t.equal(html.match(/<article class="failure"/g)?.length, want.length, 'one article per failing test')
  t.equal(article.slice(0, article.indexOf('</article>')).match(/class="marked"/g)?.length, 2, 'its exchange\'s two arrows are marked')
})

t.test('an MDS that does not offer inode bits locks: the tests that need them are unsupported, not failed', async t => {
  const c = await cluster(t, { mdsConnectFlagsOff: ['OBD_CONNECT_IBITS'] })
  const tests = select(allTests, ['ldlm.*'], ['ldlm.eviction.*'])
  const results = await runTests(tests, { mds: c.mdsAddress, oss: c.ossAddresses, fsname: 'lustre' }, { seed: 5, timeoutMs: 20_000 })
  const kinds = (k: string) => results.filter(r => r.verdict.kind === k).map(r => r.id)
  t.same(kinds('fail'), [], 'nothing fails')
  t.same(kinds('error'), [], 'nothing errs')
  const unsupported = kinds('unsupported')
  t.same(unsupported.filter(id => !/^ldlm\.(compat|cancel|enqueue|model)\./.test(id)), [], 'only the MDT lock tests are unsupported')
  t.equal(unsupported.length, 36 + 2 + 2, 'all 36 pairs, the cancel and bad-mode tests, the two model seeds')
  t.same(kinds('pass').filter(id => !id.startsWith('ldlm.compat-extent.')).sort(), ['ldlm.elc.enqueue', 'ldlm.extent.grows', 'ldlm.glimpse.writer-size'], 'the OST lock tests still pass')
  t.equal(kinds('pass').filter(id => id.startsWith('ldlm.compat-extent.')).length, 36, 'the 36 extent pairs among them')
  t.match(results.find(r => r.id === 'ldlm.compat.pw-pr')!.verdict, { kind: 'unsupported', reason: /OBD_CONNECT_IBITS/ })
  const reqs = requirementVerdicts(requirements().map(r => r.id), allTests, results)
  t.equal(reqs.get('LDLM-COMPAT-PW-PR'), 'pass', 'a mode pair\'s requirement passes on its extent test, the ibits one being unsupported')
  t.match(tapLine(results.find(r => r.id === 'ldlm.compat.pw-pr')!, 1), /^ok 1 - .* # SKIP unsupported: /, 'a TAP SKIP')
})

t.test('an MDS that ignores stripe_offset fails striping.layout.explicit', async t => {
  const c = await cluster(t, { mdsFaults: { ignoreStripeOffset: true } })
  const [r] = await runTests(select(allTests, ['striping.layout.explicit']), { mds: c.mdsAddress, oss: c.ossAddresses, fsname: 'lustre' }, { seed: 1, timeoutMs: 20_000 })
  t.match(r.verdict, { kind: 'fail', message: 'OST of the first object', expected: '1', observed: '0' })
})

t.test('selection by globs on IDs and tags; a seed makes every random choice again', async t => {
  t.equal(select(allTests, ['ldlm.compat.pw-*']).length, 6)
  t.equal(select(allTests, ['compat']).length, 72, 'by tag: 36 pairs, inode bits and extent')
  t.equal(select(allTests, ['compat'], ['extent']).length, 36, 'a tag excluded')
  t.equal(select(allTests, ['ldlm.*'], ['compat']).length, allTests.filter(x => x.id.startsWith('ldlm.')).length - 72)
  t.equal(select(allTests, ['nothing.*']).length, 0)
  const a = seededRandom(7, 'x'), b = seededRandom(7, 'x'), c = seededRandom(7, 'y')
  const seqA = [a(), a(), a()]
  t.same([b(), b(), b()], seqA, 'same seed and test: same numbers')
  t.not(c(), seqA[0], 'another test: other numbers')
  t.ok(seqA.every(x => x >= 0 && x < 1))
  const ids = allTests.map(x => x.id)
  t.equal(new Set(ids).size, ids.length, 'test IDs are unique')
  const known = new Set(requirements().map(r => r.id))
  t.same(allTests.flatMap(x => x.requirements).filter(r => !known.has(r)), [], 'every requirement a test cites is in spec/requirements')
})

t.test('the progress line: suite, done of total, counts, the running test; cut to the width', async t => {
  const line = progressLine({ done: 3, total: 10, counts: { pass: 2, fail: 1 }, current: 'ldlm.compat.pw-pr' })
  t.equal(line, '[ldlm] 3/10  pass 2  fail 1  unsupported 0  error 0  running ldlm.compat.pw-pr')
  t.equal(progressLine({ done: 3, total: 10, counts: {}, current: 'x'.repeat(200) }, 60).length, 60)
})

t.test('spec/requirements and a target file validate against their schemas', async t => {
  const ajv = new Ajv2020({ strict: false })
  const reqSchema = JSON.parse(readFileSync('spec/requirements/requirements.schema.json', 'utf8'))
  t.ok(ajv.validate(JSON.parse(readFileSync('spec/expectations.schema.json', 'utf8')), JSON.parse(readFileSync('conformance/expectations/reference.json', 'utf8'))), 'the reference\'s expectations file')
  for (const f of ['wire', 'ldlm', 'metadata', 'striping']) t.ok(ajv.validate(reqSchema, JSON.parse(readFileSync(`spec/requirements/${f}.json`, 'utf8'))), `${f}.json: ${ajv.errorsText(ajv.errors)}`)
  const target = JSON.parse(readFileSync('spec/target.schema.json', 'utf8'))
  t.ok(ajv.validate(target, { mds: '192.168.1.5@tcp', oss: ['oss1:988'], fsname: 'lustre' }))
  t.notOk(ajv.validate(target, { mds: 'not an address', oss: [] }), 'a bad target file is refused')
})

const cli = (args: string[]): Promise<{ code: number; out: string }> => new Promise(resolve => {
  execFile(process.execPath, ['bin/lustre-conformance.js', ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
    resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` })
  })
})

t.test('the CLI: --list, a target file, TAP on stdout, exit status', async t => {
  const listed = await cli(['certify', '--list'])
  t.equal(listed.code, 0)
  t.equal(listed.out.trim().split('\n').length, allTests.length, 'one line per test')
  const c = await cluster(t)
  const dir = mkdtempSync(join(tmpdir(), 'lc-target-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'target.json')
  writeFileSync(file, JSON.stringify({ mds: c.mdsAddress, oss: c.ossAddresses }))
  const run = await cli(['certify', '--target', file, '--only', 'wire.*', '--only', 'ldlm.compat.pw-pr', '--seed', '5',
    '--json', join(dir, 'out', 'report.json'), '--junit', join(dir, 'out', 'junit.xml'), '--pcap-dir', join(dir, 'out', 'pcap')])
  t.equal(run.code, 0, run.out)
  const n = select(allTests, ['wire.*', 'ldlm.compat.pw-pr']).length
  t.match(run.out, new RegExp(`^TAP version 14\\n# lustre-conformance certify, seed 5\\n1\\.\\.${n}\\n`))
  t.match(run.out, new RegExp(`# pass ${n}, fail 0, unsupported 0, error 0`))
  // The JSON report follows its versioned schema; the JUnit XML parses and counts the same.
  const report = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8'))
  const ajv = new Ajv2020({ strict: false })
  t.ok(ajv.validate(JSON.parse(readFileSync('spec/report.schema.json', 'utf8')), report), ajv.errorsText(ajv.errors))
  t.equal(report.seed, 5)
  t.same(report.summary, { pass: n, fail: 0, unsupported: 0, error: 0 })
  const xml = readFileSync(join(dir, 'out', 'junit.xml'), 'utf8')
  t.equal(XMLValidator.validate(xml), true, 'JUnit XML is well-formed')
  const junit = new XMLParser({ ignoreAttributes: false }).parse(xml)
  t.equal(junit.testsuites['@_tests'], String(n))
  t.equal(junit.testsuites['@_failures'], '0')
  // Every test's traffic is in its own pcap, linked from the report, and decodes.
  for (const x of report.tests) {
    t.ok(x.pcap, `${x.id} links its pcap`)
    const events = [...decodeTrace(readFileSync(join(dir, 'out', x.pcap)))].filter(e => e.unit === 'lnet')
    // The malformed-request test sends one message our decoder must refuse; every other message decodes.
    const bad = events.filter(e => e.error).length
    t.ok(events.length > 0 && bad === (x.id.startsWith('wire.malformed.') ? 1 : 0), `${x.pcap}: ${events.length} LNet messages, ${bad} in error`)
  }
  // --reference: the reference cluster, started by the command itself, is the target (what npm start runs).
  const ref = await cli(['certify', '--reference', '--only', 'wire.ping.*', '--out', join(dir, 'ref'), '--expect', 'conformance/expectations/reference.json'])
  t.equal(ref.code, 0, ref.out)
  t.match(ref.out, /# expectations \(.*\): 0 known failures, 0 new failures, 0 unexpected passes/)
  t.match(ref.out, /# pass 1, fail 0/)
  t.ok(JSON.parse(readFileSync(join(dir, 'ref', 'report.json'), 'utf8')).tests.length === 1, 'its report is written under --out')
  t.match(readFileSync(join(dir, 'ref', 'report.html'), 'utf8'), /<table id="summary">[\s\S]*<td class="pass" data-kind="pass">1<\/td>/, 'and the HTML report')
  writeFileSync(file, JSON.stringify({ mds: 'nowhere', oss: [] }))
  const bad = await cli(['certify', '--target', file])
  t.not(bad.code, 0, 'a target file that does not validate is refused')
  // A server nobody listens at: one clear message, exit 2, nothing certified (no test point at all).
  const down = await cli(['certify', '--mds', c.mdsAddress, '--oss', '127.0.0.1:1', '--only', 'wire.*'])
  t.equal(down.code, 2, 'an unreachable OSS stops the run before any test')
  t.match(down.out, /cannot reach the OSS at 127\.0\.0\.1:1: connect ECONNREFUSED/)
  t.notMatch(down.out, /^(not )?ok \d/m, 'no test ran')
})

