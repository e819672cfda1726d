// Server side of a Lustre target (an MDT or an OST) as the reference servers run it:
// connect, disconnect and ping handled once for every target, exports keyed by the
// handle a client is given at connect, and requests routed to the target whose
// export they carry in pb_handle (target_handle_connect / tgt_request_handle).
//
// One TargetHost serves every target of one process on one PtlRPC endpoint: an OSS
// serves its N OSTs on the same portals and tells them apart by the export.
import { constantOf, loadSpec, type LustreMessage } from '../../src/wire/index.js'
import { versionFor, type PtlrpcEndpoint, type Peer, type ReplySpec, type ServerRequest } from '../../src/transport/index.js'
import { E, errnoName } from './errno.js'
import { dropLastBuffer, unpadBuffers } from './faults.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
/** LUSTRE_VERSION_MASK: the part of pb_version that names the service's protocol. */
const VERSION_MASK = Number(C('LUSTRE_VERSION_MASK'))

export type Obj = Record<string, unknown>

export interface Export {
  /** what the client puts in pb_handle of every later request */
  handle: bigint
  clientUuid: string
  peer: Peer
  /** the client's connection count (pb_conn_cnt of its connect) */
  connCnt: number
  /** negotiated OBD_CONNECT_* flags */
  flags: bigint
  ocd: Obj
  target: Target
}

export interface TargetRequest {
  req: ServerRequest
  msg: LustreMessage
  exp: Export
}

export type TargetHandler = (r: TargetRequest) => Promise<ReplySpec> | ReplySpec

export interface Target {
  /** target UUID as clients name it in RMF_TGTUUID (lustre-OST0001_UUID) */
  readonly uuid: string
  readonly connectOpcode: string
  readonly disconnectOpcode: string
  /** OBD_CONNECT_* this target implements: a connect reply never grants more */
  readonly supportedFlags: bigint
  /**
   * Connect reply members besides the flags (ocd_index, ocd_brw_size, ...), or a negative errno
   * to refuse the connect (ofd_parse_connect_data refuses a wrong index, a zero brw size).
   */
  connectData(clientOcd: Obj, flags: bigint): Obj | number
  /** handlers by opcode name; an opcode without one is answered -EOPNOTSUPP */
  readonly handlers: ReadonlyMap<string, TargetHandler>
  onConnect?(exp: Export): void
  onDisconnect?(exp: Export): void
}

export interface TargetHostOptions {
  log?: (line: string) => void
  /** deliberate faults, for the certifier's self-test */
  faults?: HostFaults
}

/** Faults of the request loop and of reply packing, for the certifier's self-test. */
export interface HostFaults {
  unknownOpcodeSucceeds?: boolean
  /** opcodes (MDS_GET_ROOT, MDS_STATFS, ...) whose successful replies lose their last buffer (a required one, for those) */
  dropLastReplyBuffer?: string[]
  /** every reply is packed with no padding to 8 */
  unpaddedReplies?: boolean
}

export class TargetHost {
  private readonly targets = new Map<string, Target>()
  private readonly exports = new Map<bigint, Export>()
  private nextCookie: bigint
  private readonly log: (line: string) => void
  private readonly faults: NonNullable<TargetHostOptions['faults']>

  constructor(readonly rpc: PtlrpcEndpoint, opts: TargetHostOptions = {}) {
    this.log = opts.log ?? (() => {})
    this.faults = opts.faults ?? {}
    // Export handles are random-based like Lustre's handle cookies, so a restarted
    // server does not honour handles given out by its previous life.
    this.nextCookie = (BigInt(Date.now()) << 20n) ^ BigInt(Math.floor(Math.random() * 0xfffff))
  }

  add(t: Target): void {
    this.targets.set(t.uuid, t)
  }

  /** Serves every request portal spec/rpc names for `service` ('mds' or 'ost'). */
  serve(service: string): void {
    const bound = new Set<number>()
    for (const op of spec.opcodes.values()) {
      const portal = op.requestPortal[service]
      const reply = op.replyPortal[service]
      if (!portal || !reply) continue
      const p = Number(C(portal))
      if (bound.has(p)) continue
      bound.add(p)
      this.rpc.serve(p, Number(C(reply)), req => this.handle(req))
    }
  }

  /**
   * Evicts an export (class_fail_export): it is dropped with everything the target holds
   * for it, and the client's later requests get -ENOTCONN until it connects again.
   */
  evict(exp: Export): void {
    if (this.exports.get(exp.handle) !== exp) return
    this.exports.delete(exp.handle)
    this.log(`${exp.target.uuid}: evicting ${exp.clientUuid}`)
    exp.target.onDisconnect?.(exp)
  }

  /** Exports of a target, for its own bookkeeping (eviction, statistics). */
  exportsOf(t: Target): Export[] {
    return [...this.exports.values()].filter(e => e.target === t)
  }

  private async handle(req: ServerRequest): Promise<ReplySpec> {
    const rep = await this.dispatch(req)
    const f = this.faults
    if (f.dropLastReplyBuffer?.includes(req.msg.opcode ?? '') && !rep.error && !rep.status) return { ...rep, mutate: dropLastBuffer }
    if (f.unpaddedReplies) return { ...rep, mutate: unpadBuffers }
    return rep
  }

  private async dispatch(req: ServerRequest): Promise<ReplySpec> {
    const msg = req.msg
    const opcode = msg.opcode
    if (!opcode || !req.format) return this.faults.unknownOpcodeSucceeds ? { status: 0 } : { status: E.EOPNOTSUPP, error: true }
    // tgt_request_handle: a request whose pb_version names another service's protocol is refused -EINVAL.
    if ((Number(msg.body.pb_version ?? 0) & VERSION_MASK) !== (versionFor(spec, msg.opc) & VERSION_MASK)) return { status: E.EINVAL, error: true }
    for (const t of this.targets.values()) if (opcode === t.connectOpcode) return this.connect(req, msg)
    const handle = (msg.body.pb_handle as { cookie: bigint } | undefined)?.cookie ?? 0n
    const exp = this.exports.get(handle)
    // A request without a live export: the client must connect (again) first.
    if (!exp) return { status: E.ENOTCONN, error: true }
    if (opcode === exp.target.disconnectOpcode) {
      this.exports.delete(handle)
      exp.target.onDisconnect?.(exp)
      return { status: 0 }
    }
    if (opcode === 'OBD_PING') return { status: 0 }
    const h = exp.target.handlers.get(opcode)
    if (!h) return this.faults.unknownOpcodeSucceeds ? { status: 0 } : { status: E.EOPNOTSUPP, error: true }
    const rep = await h({ req, msg, exp })
    if (rep.status && rep.status < 0) this.log(`${exp.target.uuid}: ${opcode} from ${exp.clientUuid}: ${errnoName(rep.status)}`)
    return rep
  }

  private connect(req: ServerRequest, msg: LustreMessage): ReplySpec {
    const f = msg.fields
    const tgt = this.targets.get(String(f.RMF_TGTUUID ?? ''))
    const connectOpcode = msg.opcode
    if (!tgt || tgt.connectOpcode !== connectOpcode) return { status: E.ENODEV, error: true }
    const clientUuid = String(f.RMF_CLUUID ?? '')
    if (!clientUuid) return { status: E.EPROTO, error: true }
    const ocd = (f.RMF_CONNECT_DATA ?? {}) as Obj
    const asked = (ocd.ocd_connect_flags as bigint | undefined) ?? 0n
    const flags = asked & tgt.supportedFlags
    const connCnt = Number(msg.body.pb_conn_cnt ?? 0)
    const data = tgt.connectData(ocd, flags)
    if (typeof data === 'number') return { status: data, error: true }
    // A client that connects again (same UUID to the same target) keeps its export: a reconnect.
    let exp = [...this.exports.values()].find(e => e.target === tgt && e.clientUuid === clientUuid)
    if (exp) {
      exp.peer = req.peer
      exp.connCnt = connCnt
      exp.flags = flags
    } else {
      exp = { handle: this.nextCookie++, clientUuid, peer: req.peer, connCnt, flags, ocd: {}, target: tgt }
      this.exports.set(exp.handle, exp)
    }
    // Lustre answers with the client's obd_connect_data as the target amended it (target_handle_connect).
    exp.ocd = { ...ocd, ...data, ocd_connect_flags: flags }
    tgt.onConnect?.(exp)
    // The export handle goes back in the reply's pb_handle (target_handle_connect).
    return { status: 0, fields: { RMF_CONNECT_DATA: exp.ocd }, body: { pb_handle: { cookie: exp.handle } } }
  }
}
