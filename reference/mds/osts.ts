// The MDS as a client of its OSTs (Lustre's OSP devices, one per OST): connections
// made on demand, pools of precreated objects that layouts take from, OST_DESTROY of
// the objects of deleted files, and OST_STATFS for the filesystem's totals.
//
// Precreation works as osp_precreate_thread() does: the MDS asks an OST to create
// every object id up to `last + batch` with one OST_CREATE, and hands the ids out one
// by one from its pool (next_id..last_id, kept in SQLite like lov_objids), so a file
// create never waits for an OST unless a pool has run dry.
import { LnetEndpoint, PtlrpcEndpoint, TransportError, type Peer, type RecorderFactory } from '../../src/transport/index.js'
import { makeStruct } from '../../src/wire/index.js'
import { E, TargetImport, LustreRpcError, userLnetPid, type ImportCall } from '../common/index.js'
import type { CallResult } from '../../src/transport/index.js'
import { CB, fail } from './common.js'
import type { MdtStore } from './store.js'
import { LOV_OFFSET_DEFAULT } from './layout.js'

export interface OstAddress { index: number; host: string; port: number; nid: string }

export interface OstSetOptions {
  osts: OstAddress[]
  fsname: string
  /** the MDS's own NID: its connections to the OSSes come from it */
  nid: string
  batch: number
  store: MdtStore
  log: (line: string) => void
  recorder?: RecorderFactory
}

/** A pool ran dry between the check and the transaction: the caller refills and tries again. */
export class PoolEmpty extends Error {
  constructor(readonly ost: number) {
    super(`OST ${ost}: no precreated object left`)
  }
}

const OST_FLAGS = CB('OBD_CONNECT_VERSION') | CB('OBD_CONNECT_INDEX') | CB('OBD_CONNECT_MDS') | CB('OBD_CONNECT_FID') |
  CB('OBD_CONNECT_FULL20') | CB('OBD_CONNECT_SKIP_ORPHAN') | CB('OBD_CONNECT_BULK_MBITS')
const OA_ID_VALID = CB('OBD_MD_FLID') | CB('OBD_MD_FLGROUP')

/** One LNet connection per OSS address: OSTs of one OSS share it, each with its own import. */
interface Oss {
  lnet: LnetEndpoint
  rpc: PtlrpcEndpoint
  peer?: Peer
  connecting?: Promise<Peer>
}

interface Ost {
  addr: OstAddress
  oss: Oss
  imp?: TargetImport
  connecting?: Promise<TargetImport>
  refilling?: Promise<void>
}

const ostBody = (oi_id: bigint): Record<string, unknown> => ({
  RMF_OST_BODY: makeStruct('ost_body', { oa: { o_valid: OA_ID_VALID, o_oi: { oi: { oi_id, oi_seq: 0n } } } }),
})

export class OstSet {
  /** OST indexes in order: round robin and "start at index i" walk this list */
  readonly indexes: number[]
  private readonly osts = new Map<number, Ost>()
  private readonly osses: Oss[] = []
  private rr = 0
  private destroying = false
  private destroyAgain = false
  private retryTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor(private readonly o: OstSetOptions) {
    const byAddr = new Map<string, Oss>()
    for (const a of [...o.osts].sort((x, y) => x.index - y.index)) {
      if (this.osts.has(a.index)) throw new Error(`OST index ${a.index} given twice`)
      const key = `${a.host}:${a.port}`
      let oss = byAddr.get(key)
      if (!oss) {
        // An endpoint of its own per OSS, so that two OSSes sharing a NID (one host) stay apart,
        // with a pid of its own, so that an OSS on this host does not take the MDS for itself.
        const lnet = new LnetEndpoint({ nid: o.nid, pid: userLnetPid(), log: o.log, recorder: o.recorder })
        oss = { lnet, rpc: new PtlrpcEndpoint(lnet, { defaultTimeoutMs: 10_000 }) }
        byAddr.set(key, oss)
        this.osses.push(oss)
      }
      this.osts.set(a.index, { addr: a, oss })
    }
    this.indexes = [...this.osts.keys()]
  }

  /** Connects to every OST it can; an OST that is not up yet is tried again when needed. */
  async start(): Promise<void> {
    await Promise.all(this.indexes.map(i => this.ensure(i).catch(() => false)))
    this.kickDestroys()
  }

  private targetUuid(i: number): string {
    return `${this.o.fsname}-OST${i.toString(16).padStart(4, '0')}_UUID`
  }

  private async peer(oss: Oss, a: OstAddress): Promise<Peer> {
    if (oss.peer && oss.lnet.isConnected(oss.peer)) return oss.peer
    oss.connecting ??= oss.lnet.connect(a.host, a.port, a.nid).finally(() => { oss.connecting = undefined })
    oss.peer = await oss.connecting
    return oss.peer
  }

  /** The OST's import, connecting (again) when there is none (osp_connect). */
  private async connect(i: number): Promise<TargetImport> {
    const ost = this.osts.get(i)!
    if (ost.imp) return ost.imp
    ost.connecting ??= (async () => {
      const peer = await this.peer(ost.oss, ost.addr)
      const imp = new TargetImport(ost.oss.rpc, peer, {
        service: 'ost', targetUuid: this.targetUuid(i), clientUuid: `${this.o.fsname}-MDT0000-mdtlov_UUID`,
        flags: OST_FLAGS, ocd: { ocd_index: i, ocd_group: 0 }, timeoutMs: 10_000,
      })
      await imp.connect()
      ost.imp = imp
      this.o.log(`mds: connected to ${this.targetUuid(i)} at ${ost.addr.host}:${ost.addr.port}`)
      return imp
    })().finally(() => { ost.connecting = undefined })
    return ost.connecting
  }

  /**
   * A call to an OST; a lost connection or export (-ENOTCONN after an OSS restart)
   * is connected again and the call sent once more. Every call made here is
   * idempotent (create up to an id, destroy, statfs).
   */
  async call(i: number, c: ImportCall): Promise<CallResult> {
    if (this.closed) throw new Error('MDS closing')
    for (let attempt = 0; ; attempt++) {
      const imp = await this.connect(i)
      try {
        const r = await imp.call(c)
        // With allowError the status comes back instead of a throw; a lost export still means reconnect.
        if (r.reply.body.pb_status !== E.ENOTCONN || attempt > 0) return r
        this.osts.get(i)!.imp = undefined
      } catch (e) {
        const lost = e instanceof TransportError || (e instanceof LustreRpcError && e.status === E.ENOTCONN)
        if (!lost || attempt > 0) throw e
        this.osts.get(i)!.imp = undefined
      }
    }
  }

  private available(i: number): bigint {
    const p = this.o.store.pool(i)
    return p ? p.last - p.next + 1n : 0n
  }

  /**
   * Makes sure OST `i` can give an object now: connected, its pool known, not empty.
   * A pool below half a batch is refilled in the background. False when the OST is down.
   */
  async ensure(i: number): Promise<boolean> {
    try {
      if (!this.o.store.pool(i)) {
        // First contact with this OST: learn its last object id (OST_CREATE of id 0) and start after it.
        const r = await this.call(i, { format: 'RQF_OST_CREATE', fields: ostBody(0n) })
        const last = this.lastId(r)
        if (!this.o.store.pool(i)) this.o.store.internal(() => this.o.store.setPool(i, last, last + 1n))
      }
      if (this.available(i) < 1n) await this.refill(i)
      else if (this.available(i) < BigInt(Math.ceil(this.o.batch / 2))) {
        this.refill(i).catch(e => this.o.log(`mds: precreate on OST ${i}: ${(e as Error).message}`))
      }
      return this.available(i) >= 1n
    } catch (e) {
      this.o.log(`mds: OST ${i} unavailable: ${(e as Error).message}`)
      return false
    }
  }

  private lastId(r: CallResult): bigint {
    const body = r.reply.fields.RMF_OST_BODY as { oa?: { o_oi?: { oi?: { oi_id?: bigint } } } } | undefined
    const id = body?.oa?.o_oi?.oi?.oi_id
    if (typeof id !== 'bigint') throw new Error('OST_CREATE reply without an object id')
    return id
  }

  /** One OST_CREATE for `batch` more objects (single flight per OST). */
  private refill(i: number): Promise<void> {
    const ost = this.osts.get(i)!
    ost.refilling ??= (async () => {
      const p = this.o.store.pool(i)!
      const base = p.last > p.next - 1n ? p.last : p.next - 1n
      const r = await this.call(i, { format: 'RQF_OST_CREATE', fields: ostBody(base + BigInt(this.o.batch)) })
      const got = this.lastId(r)
      if (this.closed) return
      this.o.store.internal(() => {
        const cur = this.o.store.pool(i)!
        if (got > cur.last) this.o.store.setPool(i, got, cur.next)
      })
    })().finally(() => { ost.refilling = undefined })
    return ost.refilling
  }

  /**
   * The OSTs of a new file's stripes: from `offset` (or the round-robin cursor when
   * it is LOV_OFFSET_DEFAULT) on, modulo the OST count, skipping OSTs that are down
   * (lod_alloc_rr / lod_alloc_specific). Fewer than `count` when not enough are up;
   * -ENOSPC when none is.
   */
  async pick(count: number, offset: number): Promise<number[]> {
    const n = this.indexes.length
    if (count <= 0 || n === 0) return []
    const start = offset === LOV_OFFSET_DEFAULT ? this.rr % n : Math.max(0, this.indexes.indexOf(offset))
    // The cursor moves before any wait, so that concurrent creates start at different OSTs.
    if (offset === LOV_OFFSET_DEFAULT) this.rr = (start + Math.min(count, n)) % n
    const chosen: number[] = []
    for (let k = 0; k < n && chosen.length < count; k++) {
      const i = this.indexes[(start + k) % n]
      if (await this.ensure(i)) chosen.push(i)
    }
    if (!chosen.length) fail(E.ENOSPC, 'no OST can give an object')
    return chosen
  }

  /** Takes the next precreated object of OST `i`; runs inside the create's transaction. */
  take(i: number): bigint {
    const p = this.o.store.pool(i)
    if (!p || p.next > p.last) throw new PoolEmpty(i)
    this.o.store.setPool(i, p.last, p.next + 1n)
    return p.next
  }

  /** Sends OST_DESTROY for every queued object (the MDS's unlink llog, in short); failures wait and retry. */
  kickDestroys(): void {
    if (this.closed) return
    if (this.destroying) { this.destroyAgain = true; return }
    this.destroying = true
    void (async () => {
      let failed = false
      do {
        this.destroyAgain = false
        // Only unlinks that are committed may lose their objects: a crash must not leave a name without data.
        for (let s = this.o.store.settled(); s; s = this.o.store.settled()) await s.catch(() => {})
        for (const d of this.o.store.pendingDestroys()) {
          if (this.closed) return
          if (!this.osts.has(d.ost)) { this.o.store.internal(() => this.o.store.destroyDone(d.id)); continue }
          try {
            const r = await this.call(d.ost, { format: 'RQF_OST_DESTROY', fields: ostBody(d.oid), allowError: true })
            const st = r.reply.body.pb_status as number
            if (st !== 0 && st !== E.ENOENT) throw new Error(`status ${st}`)
            if (!this.closed) this.o.store.internal(() => this.o.store.destroyDone(d.id))
          } catch (e) {
            failed = true
            this.o.log(`mds: OST_DESTROY of ${d.oid} on OST ${d.ost}: ${(e as Error).message}; will retry`)
          }
        }
      } while (this.destroyAgain && !this.closed)
      this.destroying = false
      if (failed && !this.closed && !this.retryTimer) {
        this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.kickDestroys() }, 5000)
        this.retryTimer.unref()
      }
    })()
  }

  /** OST_STATFS of every OST that answers. */
  async statfs(): Promise<Array<Record<string, unknown>>> {
    const all = await Promise.all(this.indexes.map(async i => {
      try {
        const r = await this.call(i, { format: 'RQF_OST_STATFS' })
        return r.reply.fields.RMF_OBD_STATFS as Record<string, unknown> | undefined
      } catch {
        return undefined
      }
    }))
    return all.filter((x): x is Record<string, unknown> => !!x)
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    // Disconnect politely, but do not let an OSS that stopped answering hold the MDS up.
    const bye = Promise.all([...this.osts.values()].map(o => o.imp?.disconnect().catch(() => {})))
    await Promise.race([bye, new Promise(r => setTimeout(r, 1000).unref())])
    for (const s of this.osses) await s.lnet.close()
  }
}
