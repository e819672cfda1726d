// Client side of one connection to a target (an "import", in Lustre's words): the
// connect that gets an export handle, then every request carrying that handle and
// the connection count, sent to the portal spec/rpc names for the service.
// Used by the reference client and by the MDS for its OST connections.
import { constantOf, loadSpec, makeStruct, type LustreMessage } from '../../src/wire/index.js'
import type { PtlrpcEndpoint, Peer, CallResult } from '../../src/transport/index.js'
import { errnoName } from './errno.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

export type Obj = Record<string, unknown>

/** A request the target answered with a negative pb_status. */
export class LustreRpcError extends Error {
  readonly code = 'LC_RPC_STATUS'
  constructor(readonly opcode: string, readonly status: number, readonly target: string) {
    super(`${opcode} to ${target}: ${errnoName(status)}`)
    this.name = 'LustreRpcError'
  }
}

export interface ImportOptions {
  /** 'mds' or 'ost': which portals of spec/rpc to use */
  service: 'mds' | 'ost'
  targetUuid: string
  clientUuid: string
  /** OBD_CONNECT_* asked for */
  flags: bigint
  /** other obd_connect_data members asked for (ocd_brw_size, ...) */
  ocd?: Obj
  timeoutMs?: number
}

export interface ImportCall {
  /** format name (RQF_*) */
  format: string
  opcode?: string
  fields?: Obj
  body?: Obj
  bulkSource?: Uint8Array
  bulkSinkLength?: number
  bulkSink?: Uint8Array
  /** a non-zero status is returned, not thrown */
  allowError?: boolean
}

export class TargetImport {
  handle = 0n
  connCnt = 0
  /** obd_connect_data the target answered */
  ocd: Obj = {}

  constructor(readonly rpc: PtlrpcEndpoint, readonly peer: Peer, readonly opts: ImportOptions) {}

  get flags(): bigint {
    return (this.ocd.ocd_connect_flags as bigint | undefined) ?? 0n
  }

  private portals(opcode: string): { portal: number; replyPortal: number } {
    const op = spec.opcodesByName.get(opcode)
    const svc = this.opts.service
    const p = op?.requestPortal[svc] ?? op?.requestPortal[Object.keys(op.requestPortal)[0]]
    const r = op?.replyPortal[svc] ?? op?.replyPortal[Object.keys(op.replyPortal)[0]]
    if (!p || !r) throw new Error(`spec/rpc gives ${opcode} no portal for ${svc}`)
    return { portal: Number(C(p)), replyPortal: Number(C(r)) }
  }

  async connect(): Promise<void> {
    const opcode = this.opts.service === 'mds' ? 'MDS_CONNECT' : 'OST_CONNECT'
    this.connCnt++
    const r = await this.send({
      format: this.opts.service === 'mds' ? 'RQF_MDS_CONNECT' : 'RQF_OST_CONNECT', opcode,
      fields: {
        RMF_TGTUUID: this.opts.targetUuid,
        RMF_CLUUID: this.opts.clientUuid,
        RMF_CONN: { cookie: 0n },
        RMF_CONNECT_DATA: makeStruct('obd_connect_data', {
          ...this.opts.ocd,
          ocd_connect_flags: this.opts.flags,
          ocd_version: 0x02113900,
        }),
      },
    }, 0n)
    this.handle = (r.reply.body.pb_handle as { cookie: bigint }).cookie
    this.ocd = (r.reply.fields.RMF_CONNECT_DATA ?? {}) as Obj
  }

  async disconnect(): Promise<void> {
    const opcode = this.opts.service === 'mds' ? 'MDS_DISCONNECT' : 'OST_DISCONNECT'
    await this.call({ format: this.opts.service === 'mds' ? 'RQF_MDS_DISCONNECT' : 'RQF_OST_DISCONNECT', opcode, allowError: true })
    this.handle = 0n
  }

  async ping(): Promise<number> {
    const r = await this.call({ format: 'RQF_OBD_PING', allowError: true })
    return r.reply.body.pb_status as number
  }

  /** Sends a request on this connection; throws LustreRpcError on a negative status unless allowError. */
  call(c: ImportCall): Promise<CallResult> {
    return this.send(c, this.handle)
  }

  private async send(c: ImportCall, handle: bigint): Promise<CallResult> {
    const fmt = spec.formats.get(c.format)
    if (!fmt) throw new Error(`no request format ${c.format} in spec/rpc`)
    const opcode = c.opcode ?? fmt.opcode
    const r = await this.rpc.call(this.peer, {
      format: c.format, opcode, ...this.portals(opcode), fields: c.fields ?? {},
      body: { pb_handle: { cookie: handle }, pb_conn_cnt: this.connCnt, pb_timeout: 100, ...c.body },
      bulkSource: c.bulkSource, bulkSinkLength: c.bulkSinkLength, bulkSink: c.bulkSink, timeoutMs: this.opts.timeoutMs,
    })
    const status = r.reply.body.pb_status as number
    if (status < 0 && !c.allowError) throw new LustreRpcError(opcode, status, this.opts.targetUuid)
    return r
  }
}

export type { LustreMessage }
