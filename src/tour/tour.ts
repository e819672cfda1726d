// A scripted exchange between two real endpoints on loopback that sends every
// request format of spec/rpc once, with replies, error replies, bulk reads and
// writes and server-to-client lock callbacks, and can record it to a pcap.
// The demo prints it; the oracle tests hand the recording to tshark.
import { loadSpec, constantOf, makeStruct, encodeStruct, type RpcFormat, type RpcOpcode } from '../wire/index.js'
import { LnetEndpoint, PtlrpcEndpoint, type Peer, type ReplySpec, type ServerRequest } from '../transport/index.js'
import { sampleFields, type SampleContext } from './samples.js'
import { pcapRecorderFactory, type TourRecording } from './record.js'

const spec = loadSpec()
const P = (n: string): number => Number(constantOf(spec, n))

export interface TourOptions {
  /** write the client's view of the exchange here */
  pcapPath?: string
  serverHost?: string
  clientHost?: string
  /** only formats whose names match */
  filter?: (f: RpcFormat, op: RpcOpcode) => boolean
  /** bytes moved by each bulk RPC */
  bulkSize?: number
  log?: (line: string) => void
}

export interface TourCall {
  opcode: string
  format: string
  xid: bigint
  direction: 'client->server' | 'server->client'
  status: number
  replyKind: string
}

export interface TourResult {
  calls: TourCall[]
  recording?: TourRecording
}

function serviceOf(op: RpcOpcode, f: RpcFormat): string {
  if (op.services.includes('ldlm_cb')) return 'ldlm_cb'
  if (op.opcode === 'LDLM_ENQUEUE' && !f.name.includes('INTENT') && op.services.includes('ost')) return 'ost'
  if (op.opcode.startsWith('OST_') && op.services.includes('ost')) return 'ost'
  if (op.opcode.startsWith('MGS_') && op.services.includes('mgs')) return 'mgs'
  return op.services.includes('mds') ? 'mds' : op.services[0]
}

/** Every (format, opcode) pair of spec/rpc, connects first and disconnects last. */
export function tourPlan(filter?: TourOptions['filter']): Array<{ op: RpcOpcode; fmt: RpcFormat }> {
  const all: Array<{ op: RpcOpcode; fmt: RpcFormat }> = []
  for (const op of spec.opcodes.values()) for (const fmt of op.formats) if (!filter || filter(fmt, op)) all.push({ op, fmt })
  const rank = (x: { op: RpcOpcode }): number => (x.op.opcode.endsWith('_CONNECT') ? 0 : x.op.opcode.endsWith('_DISCONNECT') ? 2 : 1)
  return all.sort((a, b) => rank(a) - rank(b) || a.op.opc - b.op.opc)
}

function tourHandler(bulkSize: number, ctxFor: (op: RpcOpcode, f?: RpcFormat) => SampleContext) {
  return async (req: ServerRequest): Promise<ReplySpec> => {
    const op = spec.opcodes.get(req.msg.opc)
    const fmt = req.format
    if (!op || !fmt) return { status: -95, error: true }
    // The second GETATTR_NAME of a tour is refused as a request the server cannot use (-EPROTO, a
    // serious error): an error reply, PTL_RPC_MSG_ERR. (-ENOENT would be typed REPLY, as Lustre does.)
    if (op.opcode === 'MDS_GETATTR_NAME' && req.msg.fields.RMF_NAME === 'missing') return { status: -71, error: true }
    const bulkPortal = op.bulkPortal ? P(op.bulkPortal) : 0
    if (op.bulk === 'get_source') await req.bulkGet(bulkSize, bulkPortal)
    if (op.bulk === 'put_sink') {
      const data = op.opcode === 'MDS_READPAGE' ? dirPage() : new Uint8Array(bulkSize).map((_, i) => i & 0xff)
      await req.bulkPut(data, bulkPortal)
    }
    return { status: 0, fields: sampleFields(fmt, 'reply', ctxFor(op, fmt)), body: { pb_transno: op.opcode === 'MDS_REINT' ? 42n : 0n, pb_last_committed: 41n } }
  }
}

/** One empty lu_dirpage (LDF_EMPTY), as MDS_READPAGE sends for an empty directory. */
function dirPage(): Uint8Array {
  const page = new Uint8Array(4096)
  page.set(encodeStruct('lu_dirpage', makeStruct('lu_dirpage', { ldp_hash_start: 0n, ldp_hash_end: 0xffffffffffffffffn, ldp_flags: P('LDF_EMPTY'), ldp_entries: new Uint8Array(0) })))
  return page
}

export async function runTour(opts: TourOptions = {}): Promise<TourResult> {
  const log = opts.log ?? (() => {})
  const bulkSize = opts.bulkSize ?? 8192
  const serverHost = opts.serverHost ?? '127.0.0.1'
  const clientHost = opts.clientHost ?? '127.0.0.2'
  const recording = opts.pcapPath ? pcapRecorderFactory(opts.pcapPath) : undefined
  const serverLnet = new LnetEndpoint({ nid: `${serverHost}@tcp`, log })
  const clientLnet = new LnetEndpoint({ nid: `${clientHost}@tcp`, bindAddress: clientHost, recorder: recording?.factory, log })
  const server = new PtlrpcEndpoint(serverLnet)
  const client = new PtlrpcEndpoint(clientLnet)
  const calls: TourCall[] = []
  try {
    const port = await serverLnet.listen(0, serverHost)
    let seq = 0
    // Completion and glimpse ASTs come from an OST here: they carry the extent lock's ost_lvb
    // (ldlm_server_completion_ast sizes RMF_DLM_LVB by ldlm_lvbo_size; osc_ldlm_glimpse_ast replies with one).
    const lvbAst = (op: RpcOpcode): boolean => op.opcode === 'LDLM_CP_CALLBACK' || op.opcode === 'LDLM_GL_CALLBACK'
    const ctxFor = (op: RpcOpcode, f?: RpcFormat): SampleContext => ({
      lockType: f && serviceOf(op, f) === 'ost' || op.opcode.startsWith('OST_') || lvbAst(op) ? 'extent' : 'ibits', handle: 0x5ca1ab1e00000000n + BigInt(seq), seq,
    })
    // Every request portal a format names gets the tour service, replying where Lustre's service does.
    const served = new Set<number>()
    for (const op of spec.opcodes.values()) {
      for (const [svc, portal] of Object.entries(op.requestPortal)) {
        const p = P(portal)
        const rp = op.replyPortal[svc]
        if (served.has(p) || !rp) continue
        served.add(p)
        const target = svc === 'ldlm_cb' ? client : server
        target.serve(p, P(rp), tourHandler(bulkSize, ctxFor))
      }
    }
    const serverPeer = await clientLnet.connect(serverHost, port)
    const clientPeer: Peer = { nid: clientLnet.nid, pid: clientLnet.pid }
    for (const { op, fmt } of tourPlan(opts.filter)) {
      seq++
      const svc = serviceOf(op, fmt)
      const ctx = ctxFor(op, fmt)
      const fromServer = svc === 'ldlm_cb'
      const caller = fromServer ? server : client
      const peer = fromServer ? clientPeer : serverPeer
      const names = op.opcode === 'MDS_GETATTR_NAME' ? ['tour-file', 'missing'] : [undefined]
      for (const name of names) {
        const fields = sampleFields(fmt, 'request', ctx)
        if (name) fields.RMF_NAME = name
        const r = await caller.call(peer, {
          format: fmt, opcode: op.opcode, portal: P(op.requestPortal[svc]), replyPortal: P(op.replyPortal[svc]), fields,
          body: { pb_handle: { cookie: ctx.handle }, pb_conn_cnt: 1, pb_timeout: 100 },
          bulkSource: op.bulk === 'get_source' ? new Uint8Array(bulkSize).fill(0x5a) : undefined,
          bulkSinkLength: op.bulk === 'put_sink' ? (op.opcode === 'MDS_READPAGE' ? 4096 : bulkSize) : undefined,
          timeoutMs: 10_000,
        })
        calls.push({ opcode: op.opcode, format: fmt.name, xid: r.xid, direction: fromServer ? 'server->client' : 'client->server', status: r.reply.body.pb_status as number, replyKind: r.reply.kind })
        log(`${fromServer ? 'S->C' : 'C->S'} ${op.opcode} ${fmt.name} xid ${r.xid}: ${r.reply.kind} status ${String(r.reply.body.pb_status)}`)
      }
    }
    clientLnet.keepalive()
    await new Promise(r => setTimeout(r, 50))
  } finally {
    await clientLnet.close()
    await serverLnet.close()
    await recording?.close()
  }
  return { calls, recording }
}
