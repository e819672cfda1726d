// `npm start` at this stage: a reference cluster (MDS + OSS with 4 OSTs) in a
// temporary directory, a demo workload through the client library (mkdir, a file
// striped over every OST, getstripe, read back and compare), the traffic recorded
// to a pcap and decoded back. Later issues grow this into a certification run.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { pcapRecorderFactory } from '../tour/index.js'
import { decodeTrace } from '../trace/index.js'
import { startCluster } from '../../reference/cluster/index.js'
import { LustreClient, formatGetstripe } from '../../reference/client/index.js'
import type { RecorderFactory } from '../transport/index.js'

const MiB = 1 << 20

export async function demoCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'traces/demo.pcap' },
      quiet: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  })
  const say = values.quiet ? () => {} : (line: string) => console.log(line)
  const out = resolve(values.out!)
  mkdirSync(dirname(out), { recursive: true })
  const dir = mkdtempSync(join(tmpdir(), 'lustre-demo-'))
  // Each connection is recorded once, by the side that opened it (the client, and the MDS
  // for its OST connections); the accepting sides record nothing.
  const recording = pcapRecorderFactory(out, { keepUnits: false })
  const activeOnly: RecorderFactory = c => (c.role === 'active' ? recording.factory(c) : undefined)
  const cluster = await startCluster({ dir, osts: 4, mdsPort: 0, ossPort: 0, recorder: activeOnly })
  let ok = false
  try {
    say(`cluster in ${dir}: MDS ${cluster.mdsAddress}, OSS ${cluster.ossAddresses.join(' ')} (OSTs 0-3)`)
    const client = await LustreClient.connect({ mds: cluster.mdsAddress, oss: cluster.ossAddresses, recorder: activeOnly })
    try {
      const data = new Uint8Array(5 * MiB + 12345).map((_, i) => (i * 131 + (i >>> 12)) & 0xff)
      await client.mkdir('/demo')
      say('mkdir /demo')
      await client.setstripe('/demo/striped.bin', { stripeCount: -1, stripeSize: MiB })
      await client.writeFile('/demo/striped.bin', data)
      say(`put ${data.length} bytes to /demo/striped.bin (setstripe -c -1 -S 1M)`)
      const layout = await client.getstripe('/demo/striped.bin')
      say(`getstripe /demo/striped.bin:\n${layout ? formatGetstripe('/demo/striped.bin', layout) : '(no layout)'}`)
      const back = await client.readFile('/demo/striped.bin')
      ok = back.length === data.length && Buffer.compare(back, data) === 0
      say(`get /demo/striped.bin: ${back.length} bytes, ${ok ? 'identical to what was put' : 'DIFFERENT from what was put'}`)
      const st = await client.stat('/demo/striped.bin')
      say(`stat: size ${st.size}, mode ${st.mode.toString(8)}, nlink ${st.nlink}`)
      say(`ls /demo: ${(await client.readdir('/demo')).map(e => e.name).join(' ')}`)
    } finally {
      await client.close()
    }
  } finally {
    await cluster.stop()
    await recording.close()
    if (!values.keep) rmSync(dir, { recursive: true, force: true })
  }
  const counts = new Map<string, number>()
  for (const ev of decodeTrace(readFileSync(out))) {
    const m = ev.message
    if (m?.kind === 'request') counts.set(m.opcode ?? String(m.opc), (counts.get(m.opcode ?? String(m.opc)) ?? 0) + 1)
  }
  say(`\nrecorded to ${values.out}: ${[...counts].map(([k, n]) => `${k} x${n}`).join(', ')}`)
  say(`next: npx lustre-conformance decode ${values.out} | head   (JSON Lines; tshark -r ${values.out} works too)`)
  return ok ? 0 : 1
}
