// What the certifier puts on the wire, under Wireshark: every suite run against the
// reference, its traffic recorded in a pcap per test (the harness's requests, the target's
// replies and ASTs), then tshark finds no malformed frame or expert warning but the known
// limits, and its field values equal our decoder's. The wire.malformed tests are left out of
// the recording: their requests are broken on purpose (our decoder refuses them; tshark 4.0
// dissects what it can of them without a flag).
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pcapRecorderFactory } from '../../src/tour/index.js'
import { allTests, runTests } from '../../conformance/index.js'
import { startCluster } from '../../reference/cluster/index.js'
import { compareWithTshark, haveTshark, type TsharkLimit } from '../helpers/tshark-compare.js'

const inCi = process.env.CI === 'true'

t.test('a full certification\'s traffic dissects cleanly and agrees with our decoder', {
  skip: haveTshark ? false : inCi ? false : 'tshark is not installed; outside CI this test is skipped',
}, async t => {
  if (!haveTshark) return void t.fail('CI=true but tshark is missing: .ci/run must install it')
  const dir = mkdtempSync(join(tmpdir(), 'lc-cert-tshark-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startCluster({ dir: join(dir, 'data'), osts: 2, mdsPort: 0, ossPort: 0, lockTimeoutMs: 1000 })
  t.teardown(() => c.stop())
  // One pcap per test, as certify writes them: a capture of many connections, some reusing the
  // ports of closed ones, confuses tshark's TCP analysis (retransmissions that are not).
  const recordings = new Map<string, ReturnType<typeof pcapRecorderFactory>>()
  const results = await runTests(allTests, { mds: c.mdsAddress, oss: c.ossAddresses, fsname: 'lustre', lockTimeoutMs: 1000 }, {
    seed: 11, timeoutMs: 30_000,
    recorderFor: id => {
      if (id.startsWith('wire.malformed.')) return undefined
      const rec = pcapRecorderFactory(join(dir, `${id}.pcap`), { keepUnits: false })
      recordings.set(id, rec)
      return rec.factory
    },
  })
  for (const rec of recordings.values()) await rec.close()
  t.same(results.filter(r => r.verdict.kind !== 'pass').map(r => r.id), [], `all ${results.length} tests pass`)
  // The glimpse test's GL AST reply trips the known tshark 4.0 limit the oracle lists.
  const limits = (JSON.parse(readFileSync('test/oracle/tshark-expected.json', 'utf8')) as { limits: TsharkLimit[] }).limits.filter(l => l.opcode === 'LDLM_GL_CALLBACK')
  // Every test's pcap but the compatibility pairs', whose traffic repeats: of those, one compatible
  // and one conflicting pair of each lock type.
  const sample = ['ldlm.compat.pw-pr', 'ldlm.compat.pr-pr', 'ldlm.compat-extent.pw-pr', 'ldlm.compat-extent.pr-pr']
  const checked = [...recordings.keys()].filter(id => !/^ldlm\.compat(-extent)?\./.test(id) || sample.includes(id))
  const r = { compared: 0, messages: 0, opcodes: new Set<string>() }
  for (const id of checked) {
    const one = compareWithTshark(t, join(dir, `${id}.pcap`), id === 'ldlm.glimpse.writer-size' ? limits : [])
    r.compared += one.compared
    r.messages += one.messages
    for (const op of one.opcodes) r.opcodes.add(op)
  }
  for (const op of ['MDS_CONNECT', 'OST_CONNECT', 'OBD_PING', 'MDS_REINT', 'SEQ_QUERY', 'OST_WRITE', 'OST_READ', 'LDLM_ENQUEUE', 'LDLM_BL_CALLBACK', 'LDLM_CP_CALLBACK', 'LDLM_GL_CALLBACK', 'LDLM_CANCEL']) {
    t.ok(r.opcodes.has(op), `${op} recorded and compared`)
  }
  t.ok(r.compared > 1000, `${r.compared} field comparisons over ${r.messages} messages in ${checked.length} pcaps`)
})
