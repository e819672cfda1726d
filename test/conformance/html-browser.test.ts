// The HTML report in a real browser: headless Chromium (Debian's, driven by playwright-core;
// .ci/run installs it) opens the report of a run against an MDS that grants conflicting locks,
// with no console error and no page error, and shows the failing test's sequence chart with
// the exchange the failure is about marked.
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium } from 'playwright-core'
import { pcapRecorderFactory, type TourRecording } from '../../src/tour/index.js'
import { allTests, exchangeFrames, htmlReport, requirements, requirementVerdicts, runTests, select } from '../../conformance/index.js'
import { startCluster } from '../../reference/cluster/index.js'

const CHROMIUM = '/usr/bin/chromium'
const inCi = process.env.CI === 'true'
const have = existsSync(CHROMIUM)

t.test('the report opens in headless Chromium without errors and shows the failing test\'s chart', {
  skip: have ? false : inCi ? false : 'chromium is not installed; outside CI this test is skipped',
}, async t => {
  if (!have) return void t.fail('CI=true but /usr/bin/chromium is missing: .ci/run must install it')
  const dir = mkdtempSync(join(tmpdir(), 'lc-html-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startCluster({ dir: join(dir, 'data'), osts: 2, mdsPort: 0, ossPort: 0, mdsFaults: { ldlm: { grantConflicting: true } } })
  t.teardown(() => c.stop())
  const recordings = new Map<string, TourRecording>()
  const results = await runTests(select(allTests, ['ldlm.compat.pw-pr', 'ldlm.compat.pr-pr', 'wire.ping.*']), { mds: c.mdsAddress, oss: c.ossAddresses, fsname: 'lustre' }, {
    seed: 3, timeoutMs: 20_000,
    recorderFor: id => { const r = pcapRecorderFactory(join(dir, `${id}.pcap`), { keepUnits: false }); recordings.set(id, r); return r.factory },
  })
  for (const r of recordings.values()) await r.close()
  // As certify does: the frames of the exchange each failure is about.
  for (const r of results) if (r.verdict.kind === 'fail' && r.verdict.exchange) r.verdict.frames = exchangeFrames(readFileSync(join(dir, `${r.id}.pcap`)), r.verdict.exchange)
  const catalogue = requirements()
  const reqs = requirementVerdicts(catalogue.map(q => q.id), allTests, results)
  const page = join(dir, 'report.html')
  writeFileSync(page, htmlReport({
    target: { mds: c.mdsAddress, oss: c.ossAddresses, fsname: 'lustre' }, seed: 3, startedAt: new Date(), durationMs: 1000, results,
    requirements: catalogue.map(q => ({ id: q.id, text: q.text, source: q.source, verdict: reqs.get(q.id)! })),
  }, id => ({ file: join(dir, `${id}.pcap`), href: `${id}.pcap` })))

  // Root in a container cannot use Chromium's sandbox.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  const tab = await browser.newPage()
  const problems: string[] = []
  tab.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`) })
  tab.on('pageerror', e => problems.push(`page error: ${e.message}`))
  await tab.goto(pathToFileURL(page).href)
  t.same(problems, [], 'no console or page errors')
  t.equal(await tab.locator('#summary td[data-kind=fail]').textContent(), '1', 'the summary counts the one failure')
  const chart = tab.locator('article.failure svg')
  t.equal(await chart.count(), 1, 'one failing test, one chart')
  t.ok(await chart.isVisible(), 'the chart is shown')
  const box = await chart.boundingBox()
  t.ok(box && box.width > 200 && box.height > 60, `the chart has a size (${box?.width}x${box?.height})`)
  t.match(await chart.textContent(), /LDLM_ENQUEUE request/, 'and names the enqueues of the test')
  t.equal(await chart.locator('line.marked').count(), 2, 'the failure\'s request and reply are marked')
  t.match(await tab.locator('article.failure p.exchange').textContent(), /RQF_LDLM_ENQUEUE xid \d+, frames \d+ and \d+ of the pcap/, 'and named in words')
})
