// Oracle 2: Wireshark's own LNet and Lustre dissectors. A recorded exchange of every
// request format of spec/rpc (replies, error replies, bulk, lock enqueues with extent
// and ibits policies, lock callbacks) must dissect with no malformed frame and no
// expert item at warning or above, and tshark's field values must equal our decoder's,
// frame by frame.
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runTour, tourPlan } from '../../src/tour/index.js'
import { compareWithTshark, haveTshark, type TsharkLimit } from '../helpers/tshark-compare.js'

const EXPECTED = JSON.parse(readFileSync(new URL('./tshark-expected.json', import.meta.url), 'utf8')) as { limits: TsharkLimit[] }
const inCi = process.env.CI === 'true'

t.test('tshark dissects every recorded format cleanly and agrees field by field', {
  skip: haveTshark ? false : inCi ? false : 'tshark is not installed (apt-get install -y tshark); outside CI this test is skipped',
}, async t => {
  if (!haveTshark) {
    t.fail('CI=true but tshark is missing: .ci/run must install it')
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'lc-tshark-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pcap = join(dir, 'tour.pcap')
  const { calls } = await runTour({ pcapPath: pcap })
  const formats = new Set(calls.map(c => `${c.opcode}/${c.format}`))
  for (const { op, fmt } of tourPlan()) t.ok(formats.has(`${op.opcode}/${fmt.name}`), `${op.opcode} ${fmt.name} was exchanged`)
  t.ok(calls.some(c => c.replyKind === 'error'), 'an error reply was recorded')

  const r = compareWithTshark(t, pcap, EXPECTED.limits)
  t.ok(r.lnet >= 2 * calls.length, `${r.lnet} LNet messages decoded`)
  t.ok(r.messages >= 2 * calls.length, `${r.messages} lustre messages compared`)
  t.ok(r.compared > 500, `${r.compared} field comparisons made`)
})
