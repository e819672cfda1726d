// The harness's own client of a target, written against the wire layers only (src/wire,
// src/transport) so that it can face any implementation: connect for an export handle,
// requests carrying it on the portals spec/rpc names, and a record of the ASTs the
// target sends to this client's LDLM callback portal. Unlike a file system client it
// never acts on an AST by itself: a test decides what happens next.
import { randomUUID } from 'node:crypto'
import { LnetEndpoint, PtlrpcEndpoint, TransportError, type CallResult, type Peer, type RecorderFactory } from '../../src/transport/index.js'
import { constantOf, encodeStruct, loadSpec, makeStruct, parseAddress, type LustreMessage, type RpcFormat } from '../../src/wire/index.js'
import { Failure } from '../core/test.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

export type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** An errno as it travels in pb_status: negative, Lustre's on-wire numbering (`errno('ENOENT')` = -2). */
export const errno = (name: string): number => -Number(C(`LUSTRE_${name}`))

export interface ReceivedAst {
  opcode: 'LDLM_BL_CALLBACK' | 'LDLM_CP_CALLBACK' | 'LDLM_GL_CALLBACK'
  /** lock_handle[0]: the client's own cookie for the lock */
  cookie: bigint
  desc: Obj
  flags: number
  /** when it arrived (Date.now()) */
  at: number
}

export interface SessionOptions {
  service: 'mds' | 'ost'
  address: string
  targetUuid: string
  flags: bigint
  ocd?: Obj
  /** LNet pid of this client's endpoint (clients sharing a NID need different ones) */
  pid: number
  nid?: string
  timeoutMs?: number
  recorder?: RecorderFactory
}

/** How many reply buffers a format requires: up to its last field not marked optional. */
export function requiredReplyBuffers(fmt: RpcFormat): number {
  let n = 0
  for (const [i, slot] of fmt.reply.entries()) if (!slot.optional) n = i + 1
  return n
}

/**
 * Required reply fields a successful reply (pb_status 0) does not carry: Lustre's server
 * packs every field of the format's reply side (req_capsule_server_pack), empty or not.
 */
export function missingReplyBuffers(fmt: RpcFormat, reply: LustreMessage): string[] {
  if (reply.kind !== 'reply' || reply.body.pb_status !== 0) return []
  const have = reply.buffers.length + 1
  return fmt.reply.slice(have, requiredReplyBuffers(fmt)).map(x => x.field)
}

/** Oids per meta-sequence (LUSTRE_METADATA_SEQ_MAX_WIDTH, lustre_fid.h): a client starts a new sequence past it. */
const META_SEQ_WIDTH = 0x20000

/** Orders exchanges across the sessions of a run (which came last). */
let exchangeSeq = 0

export class TargetSession {
  handle = 0n
  /** the latest request and reply of this session: its format, xid, and when (across sessions) */
  last?: { seq: number; format: string; xid: bigint }
  /** what this client answers a GL AST with (an ost_lvb value); none: an empty reply */
  glimpseLvb?: Obj
  /** obd_connect_data the target answered at connect */
  ocd: Obj = {}
  readonly asts: ReceivedAst[] = []
  private readonly clientUuid = randomUUID()

  private constructor(private readonly o: SessionOptions, private readonly lnet: LnetEndpoint, private readonly rpc: PtlrpcEndpoint, private readonly peer: Peer) {
    rpc.serve(Number(C('LDLM_CB_REQUEST_PORTAL')), Number(C('LDLM_CB_REPLY_PORTAL')), req => {
      const dlm = req.msg.fields.RMF_DLM_REQ as Obj | undefined
      const opcode = req.msg.opcode as ReceivedAst['opcode']
      if (!dlm || !opcode?.startsWith('LDLM_')) return { status: -Number(C('LUSTRE_EPROTO')), error: true }
      this.asts.push({ opcode, cookie: dlm.lock_handle?.[0]?.cookie ?? 0n, desc: dlm.lock_desc, flags: Number(dlm.lock_flags ?? 0), at: Date.now() })
      if (opcode === 'LDLM_GL_CALLBACK' && this.glimpseLvb) return { status: 0, fields: { RMF_DLM_LVB: encodeStruct('ost_lvb', makeStruct('ost_lvb', this.glimpseLvb)) } }
      return { status: 0 }
    })
  }

  static async open(o: SessionOptions): Promise<TargetSession> {
    const a = parseAddress(o.address)
    const lnet = new LnetEndpoint({ nid: o.nid ?? '127.0.0.1@tcp', pid: o.pid, recorder: o.recorder })
    try {
      const rpc = new PtlrpcEndpoint(lnet)
      const s = new TargetSession(o, lnet, rpc, await lnet.connect(a.host, a.port, a.nid))
      await s.connect()
      return s
    } catch (e) {
      await lnet.close()
      throw e
    }
  }

  private portals(opcode: string): { portal: number; replyPortal: number } {
    const op = spec.opcodesByName.get(opcode)
    const p = op?.requestPortal[this.o.service]
    const r = op?.replyPortal[this.o.service]
    if (!p || !r) throw new Error(`spec/rpc gives ${opcode} no portal for ${this.o.service}`)
    return { portal: Number(C(p)), replyPortal: Number(C(r)) }
  }

  private async connect(): Promise<void> {
    const mds = this.o.service === 'mds'
    const r = await this.call(mds ? 'RQF_MDS_CONNECT' : 'RQF_OST_CONNECT', {
      RMF_TGTUUID: this.o.targetUuid, RMF_CLUUID: this.clientUuid, RMF_CONN: { cookie: 0n },
      RMF_CONNECT_DATA: makeStruct('obd_connect_data', { ...this.o.ocd, ocd_connect_flags: this.o.flags, ocd_version: 0x02113900 }),
    })
    const status = r.reply.body.pb_status as number
    if (status !== 0) throw new Error(`connect to ${this.o.targetUuid}: status ${status}`)
    this.handle = (r.reply.body.pb_handle as { cookie: bigint }).cookie
    this.ocd = (r.reply.fields.RMF_CONNECT_DATA ?? {}) as Obj
  }

  get service(): 'mds' | 'ost' {
    return this.o.service
  }

  /** OBD_CONNECT_* the target granted */
  get flags(): bigint {
    return BigInt(this.ocd.ocd_connect_flags ?? 0n)
  }

  /** One request of format `format`, with this session's export handle (or `handle`); the reply, whatever its status. */
  call(format: string, fields: Obj = {}, handle = this.handle, mutate?: (bytes: Uint8Array) => Uint8Array): Promise<CallResult> {
    return this.callBulk(format, fields, {}, handle, mutate)
  }

  /**
   * A request with a bulk: `source` bytes the target GETs (a write), or up to `sinkLength`
   * bytes it PUTs (a read). A successful reply that lacks a buffer its format requires
   * fails the test there (WIRE-REPLY-BUFFERS), whatever the test was checking.
   */
  async callBulk(format: string, fields: Obj, bulk: { source?: Uint8Array; sinkLength?: number }, handle = this.handle, mutate?: (bytes: Uint8Array) => Uint8Array): Promise<CallResult> {
    const fmt = spec.formats.get(format)
    if (!fmt) throw new Error(`no request format ${format} in spec/rpc`)
    let r: CallResult
    try {
      r = await this.rpc.call(this.peer, {
        format, opcode: fmt.opcode, ...this.portals(fmt.opcode), fields,
        body: { pb_handle: { cookie: handle } }, timeoutMs: this.o.timeoutMs ?? 10_000, mutate,
        bulkSource: bulk.source, bulkSinkLength: bulk.sinkLength,
      })
    } catch (e) {
      // A reply that came but did not decode is still this exchange: a failure will be about it.
      if (e instanceof TransportError && e.xid !== undefined) this.last = { seq: ++exchangeSeq, format, xid: e.xid }
      throw e
    }
    this.last = { seq: ++exchangeSeq, format, xid: r.xid }
    const missing = missingReplyBuffers(fmt, r.reply)
    if (missing.length) {
      // The test's own requirements could not be judged past this: the failure is WIRE-REPLY-BUFFERS'.
      throw new Failure(`${format} reply (xid ${r.xid}): a successful reply lacks buffers its format requires`,
        `${requiredReplyBuffers(fmt)} buffers (${fmt.reply.map(x => x.field).join(', ')})`, `${r.reply.buffers.length + 1} buffers; missing ${missing.join(', ')}`,
        'WIRE-REPLY-BUFFERS')
    }
    return r
  }

  /** The first AST of `opcode` naming this client's lock `cookie`, waiting up to `ms` for it; undefined if none came. */
  async waitAst(opcode: ReceivedAst['opcode'], cookie: bigint, ms: number): Promise<ReceivedAst | undefined> {
    const end = Date.now() + ms
    for (;;) {
      const a = this.asts.find(x => x.opcode === opcode && x.cookie === cookie)
      if (a || Date.now() > end) return a
      await new Promise(r => setTimeout(r, 5))
    }
  }

  private fids?: { seq: bigint; next: number; end: number }
  /** the FID newFid() gave last (what a create was asked to name its object) */
  lastFid?: { f_seq: bigint; f_oid: number; f_ver: number }

  /**
   * A FID for a new object, as a client's FID client names one (seq_client_alloc_fid): from a
   * meta-sequence the MDT gives with SEQ_QUERY SEQ_ALLOC_META, oids counting from 1 up to
   * LUSTRE_METADATA_SEQ_MAX_WIDTH, then a new sequence. Lustre's MDT creates nothing without one.
   */
  async newFid(): Promise<{ f_seq: bigint; f_oid: number; f_ver: number }> {
    if (!this.fids || this.fids.next >= this.fids.end) {
      const r = await this.call('RQF_SEQ_QUERY', { RMF_SEQ_OPC: Number(C('SEQ_ALLOC_META')), RMF_SEQ_RANGE: makeStruct('lu_seq_range', {}) })
      const range = r.reply.fields.RMF_SEQ_RANGE as Obj | undefined
      const status = r.reply.body.pb_status as number
      if (status !== 0 || !range || BigInt(range.lsr_end) <= BigInt(range.lsr_start)) {
        throw new Failure('SEQ_QUERY SEQ_ALLOC_META: a sequence for new FIDs', 'status 0 and a non-empty lu_seq_range', `status ${status}, range ${range ? `[${range.lsr_start}, ${range.lsr_end})` : 'none'}`)
      }
      this.fids = { seq: BigInt(range.lsr_start), next: 1, end: META_SEQ_WIDTH }
    }
    this.lastFid = { f_seq: this.fids.seq, f_oid: this.fids.next++, f_ver: 0 }
    return this.lastFid
  }

  /** LDLM_CANCEL of one lock, by the handle the target gave it; the reply, whatever its status. */
  cancelLock(handle: bigint): Promise<CallResult> {
    return this.call('RQF_LDLM_CANCEL', { RMF_DLM_REQ: makeStruct('ldlm_request', { lock_count: 1, lock_desc: makeStruct('ldlm_lock_desc'), lock_handle: [{ cookie: handle }, { cookie: 0n }] }) })
  }

  /** A lock resource no object and no other client has: the name of a FID from this session's own sequence. */
  async newResource(): Promise<bigint[]> {
    const f = await this.newFid()
    return [f.f_seq, BigInt(f.f_oid), BigInt(f.f_ver), 0n]
  }

  /** OBD_PING on this export: 0 while it lives, -ENOTCONN once the target dropped it (eviction). */
  async ping(): Promise<number> {
    return (await this.call('RQF_OBD_PING')).reply.body.pb_status as number
  }

  async close(): Promise<void> {
    // The disconnect is the harness's housekeeping, not part of what a test checked: `last` stays.
    const last = this.last
    await this.call(this.o.service === 'mds' ? 'RQF_MDS_DISCONNECT' : 'RQF_OST_DISCONNECT').catch(() => {})
    this.last = last
    await this.lnet.close()
  }
}
