// `npm start` at this stage: two LNet endpoints on loopback exchange connect,
// ping and lock-enqueue RPCs (and the lock callbacks that follow), the client
// records the exchange to a pcap, and the recording is decoded back and printed.
import { mkdirSync, readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { runTour } from '../tour/index.js'
import { decodeTrace, eventToJson } from '../trace/index.js'

const DEMO_OPCODES = new Set(['MDS_CONNECT', 'OST_CONNECT', 'OBD_PING', 'LDLM_ENQUEUE', 'LDLM_BL_CALLBACK', 'LDLM_CP_CALLBACK', 'LDLM_CANCEL', 'MDS_DISCONNECT', 'OST_DISCONNECT'])

export async function demoCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'traces/demo.pcap' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
  })
  const out = resolve(values.out!)
  mkdirSync(dirname(out), { recursive: true })
  const result = await runTour({ pcapPath: out, filter: (_f, op) => DEMO_OPCODES.has(op.opcode) })
  const failed = result.calls.filter(c => c.replyKind !== 'reply' && c.replyKind !== 'error')
  if (!values.quiet) {
    console.log(`recorded ${result.calls.length} RPCs between 127.0.0.2@tcp (client) and 127.0.0.1@tcp (server) to ${out}`)
    console.log('decoded back from the capture:')
    for (const ev of decodeTrace(readFileSync(out))) {
      if (ev.unit !== 'lnet') continue
      if (values.json) { console.log(JSON.stringify(eventToJson(ev))); continue }
      const m = ev.message
      const put = ev.frameUnit?.kind === 'lnet' ? ((ev.frameUnit.hdr.msg as Record<string, Record<string, unknown>>).put) : undefined
      const xid = put ? ` xid ${String(put.match_bits)}` : ''
      const what = m ? `${m.opcode ?? m.opc} ${m.kind}${m.format ? ` (${m.format})` : ''}${xid} status ${String(m.body.pb_status)}` : ev.bulkBytes ? `bulk ${ev.bulkBytes} bytes` : ''
      console.log(`  frame ${String(ev.frame).padStart(4)}  ${ev.srcNid} -> ${ev.dstNid}  LNET_${ev.lnetType}  ${what}`)
    }
    console.log(`\nnext: npx lustre-conformance decode ${values.out} | head   (JSON Lines; tshark -r ${values.out} works too)`)
  }
  return failed.length ? 1 : 0
}
