// `locks`: records the reference cluster's lock exchange (reference/cluster/lock-exchange.ts)
// to a pcap: what traces/locks.pcap is made with.
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { pcapRecorderFactory } from '../tour/index.js'
import type { RecorderFactory } from '../transport/index.js'
import { runLockExchange } from '../../reference/cluster/lock-exchange.js'

export async function locksCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { out: { type: 'string', default: 'traces/locks.pcap' }, quiet: { type: 'boolean', default: false }, 'skip-tshark-limits': { type: 'boolean', default: false } },
  })
  const out = resolve(values.out!)
  mkdirSync(dirname(out), { recursive: true })
  const recording = pcapRecorderFactory(out, { keepUnits: false })
  // The clients' connections, recorded by the clients (the side that opened them).
  const activeOnly: RecorderFactory = c => (c.role === 'active' ? recording.factory(c) : undefined)
  try {
    await runLockExchange(activeOnly, { say: values.quiet ? undefined : line => console.log(line), skipTsharkLimits: values['skip-tshark-limits'] })
  } finally {
    await recording.close()
  }
  if (!values.quiet) console.log(`recorded to ${values.out}`)
  return 0
}
