// `lustre-conformance tour --out FILE`: record an exchange of every request format
// of spec/rpc between two loopback endpoints (the recording traces/tour.pcap holds).
import { mkdirSync, readFileSync } from 'node:fs'
import { dirname, resolve, join } from 'node:path'
import { parseArgs } from 'node:util'
import { runTour } from '../tour/index.js'
import { packageRoot } from '../wire/index.js'

interface Limit { opcode: string; format: string }

export async function tourCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'traces/tour.pcap' },
      'skip-tshark-limits': { type: 'boolean', default: false },
    },
  })
  // Formats that trip tshark 4.0 dissector limits (test/oracle/tshark-expected.json) can be left
  // out, so that the recording scans clean with ../shared/tools/tshark-scan.sh.
  const limits: Limit[] = values['skip-tshark-limits']
    ? (JSON.parse(readFileSync(join(packageRoot(), 'test', 'oracle', 'tshark-expected.json'), 'utf8')) as { limits: Limit[] }).limits
    : []
  const out = resolve(values.out!)
  mkdirSync(dirname(out), { recursive: true })
  const r = await runTour({ pcapPath: out, filter: (f, op) => !limits.some(l => l.opcode === op.opcode && l.format === f.name) })
  console.log(`recorded ${r.calls.length} RPCs of ${new Set(r.calls.map(c => c.format)).size} formats to ${out}${limits.length ? ` (left out: ${limits.map(l => l.format).join(', ')})` : ''}`)
  return 0
}
