// MdsServer: one MDT (<fs>-MDT0000_UUID) on its own LNet endpoint, served through a
// TargetHost ('mds' portals), with its namespace in SQLite and its OSTs reached as a
// client (the MDS's OSP side). start() cleans up what a previous life left (orphans,
// queued destroys), connects to the OSTs it can reach, then listens.
import { join } from 'node:path'
import { LnetEndpoint, PtlrpcEndpoint, type RecorderFactory } from '../../src/transport/index.js'
import { makeStruct, nidFromWire } from '../../src/wire/index.js'
import { TargetHost, type Export, type HostFaults, type Target, type TargetHandler } from '../common/index.js'
import { CB } from './common.js'
import { MdtStore } from './store.js'
import { Namespace } from './namespace.js'
import { OstSet, type OstAddress } from './osts.js'
import { maxLayoutSize } from './layout.js'
import { OpenFiles, MAX_READPAGE, guarded, getRoot, getattr, getattrName, close, finishClose, readpage, seqQuery, statfs, sync, type MdtContext } from './handlers.js'
import { reint } from './reint.js'
import { LdlmService } from '../ldlm/service.js'
import type { LockFaults } from '../ldlm/index.js'
import { intentEnqueue } from './intent.js'

export type { OstAddress }

/**
 * Deliberate faults, for the certifier's self-test (conformance/mutants.ts): the request
 * loop's and reply packing's (HostFaults), the lock manager's, and the MDT's own.
 */
export interface MdsFaults extends HostFaults {
  ldlm?: LockFaults
  /** new files start on the next OST, whatever stripe_offset asked */
  ignoreStripeOffset?: boolean
  /** a lookup of a missing name answers -EACCES, not -ENOENT */
  wrongErrno?: boolean
  /** layouts read back after the create (getattr, IT_LAYOUT) name each stripe's object one stripe on */
  shiftStripes?: boolean
}

export interface MdsOptions {
  /** data directory: the database is <dir>/mdt0/mdt.db */
  dir: string
  /** OSTs the MDS allocates objects on */
  osts: OstAddress[]
  fsname?: string
  host?: string
  /** 0 = a free port; default 988 */
  port?: number
  nid?: string
  /** ms a lock holder has to cancel after a blocking AST before it is evicted (default 30 s) */
  lockTimeoutMs?: number
  /** deliberate faults, for the certifier's self-test: never set them on a server you trust */
  faults?: MdsFaults
  /**
   * OBD_CONNECT_* names this MDT does not offer, as an implementation without that capability
   * would not (a certification then finds the tests that need it unsupported, not failed)
   */
  connectFlagsOff?: string[]
  /** the filesystem default layout; count -1 = every OST */
  defaultStripe?: { size: number; count: number }
  /** objects asked per OST_CREATE */
  precreateBatch?: number
  log?: (line: string) => void
  recorder?: RecorderFactory
  maxConnections?: number
}

/**
 * OBD_CONNECT_* this MDT implements: versions, FIDs and FID-based getattr, the 2.0
 * protocol, layout size in the connect reply, bulk match bits from pb_mbits, readdir
 * size by ocd_brw_size, 64-bit directory hashes, open by FID, and inode bits locks
 * (LDLM_ENQUEUE of LDLM_IBITS; PLAIN locks are then refused, as Lustre refuses them).
 */
export const MDT_CONNECT_FLAGS = CB('OBD_CONNECT_VERSION') | CB('OBD_CONNECT_IBITS') | CB('OBD_CONNECT_FID') |
  CB('OBD_CONNECT_FULL20') | CB('OBD_CONNECT_ATTRFID') | CB('OBD_CONNECT_MAX_EASIZE') | CB('OBD_CONNECT_BULK_MBITS') |
  CB('OBD_CONNECT_BRW_SIZE') | CB('OBD_CONNECT_64BITHASH') | CB('OBD_CONNECT_OPEN_BY_FID')

/** The version this MDT reports in ocd_version (2.17.57, the Lustre the spec was read from). */
const OCD_VERSION = 0x02113900

export class MdsServer {
  readonly nid: string
  private boundPort = 0
  private lnet: LnetEndpoint | undefined
  private store: MdtStore | undefined
  private osts: OstSet | undefined
  private ldlm: LdlmService | undefined
  private readonly log: (line: string) => void

  constructor(private readonly o: MdsOptions) {
    const host = o.host ?? '127.0.0.1'
    this.nid = o.nid ?? `${host === 'localhost' ? '127.0.0.1' : host}@tcp`
    this.log = o.log ?? (() => {})
  }

  get port(): number {
    return this.boundPort
  }

  async start(): Promise<void> {
    if (this.store) throw new Error('MdsServer: already started')
    const fsname = this.o.fsname ?? 'lustre'
    const store = (this.store = new MdtStore(this.o.dir))
    const osts = (this.osts = new OstSet({
      osts: this.o.osts, fsname, nid: this.nid, batch: Math.max(1, this.o.precreateBatch ?? 32), store, log: this.log, recorder: this.o.recorder,
    }))
    const opens = new OpenFiles()
    const ns = new Namespace(store, osts, id => opens.count(id))
    const ctx: MdtContext = {
      store, ns, osts, opens, targetUuid: `${fsname}-MDT0000_UUID`, dir: join(this.o.dir, 'mdt0'), log: this.log,
      fsDefault: this.o.defaultStripe ?? { size: 1 << 20, count: 1 }, faults: { ignoreStripeOffset: this.o.faults?.ignoreStripeOffset, wrongErrno: this.o.faults?.wrongErrno, shiftStripes: this.o.faults?.shiftStripes },
    }
    // Files unlinked while open in a previous life have no opener left (mdd_orphan_cleanup).
    const orphans = store.orphans()
    if (orphans.length) store.internal(() => { for (const ino of orphans) ns.destroy(ino) })
    await osts.start()

    const lnet = (this.lnet = new LnetEndpoint({ nid: this.nid, maxConnections: this.o.maxConnections, recorder: this.o.recorder, log: this.log }))
    const host = new TargetHost(new PtlrpcEndpoint(lnet), { log: this.log, faults: this.o.faults })
    const ldlm = (this.ldlm = new LdlmService({
      rpc: host.rpc, kind: 'mds', callbackTimeoutMs: this.o.lockTimeoutMs, evictExport: e => host.evict(e), log: this.log, faults: this.o.faults?.ldlm,
    }))
    host.add(this.target(ctx, ldlm))
    host.serve('mds')
    this.boundPort = await lnet.listen(this.o.port ?? 988, this.o.host ?? '127.0.0.1')
    this.log(`mds: ${ctx.targetUuid} on ${this.nid} port ${this.boundPort}, ${this.o.osts.length} OSTs, transno ${store.lastTransno}`)
  }

  private target(ctx: MdtContext, ldlm: LdlmService): Target {
    const h = (fn: Parameters<typeof guarded>[1]): TargetHandler => guarded(ctx, fn)
    const handlers = new Map<string, TargetHandler>([
      ['MDS_GET_ROOT', h(r => getRoot(ctx, r))],
      ['MDS_GETATTR', h(r => getattr(ctx, r))],
      ['MDS_GETATTR_NAME', h(r => getattrName(ctx, r))],
      ['MDS_REINT', h(r => reint(ctx, r))],
      ['MDS_CLOSE', h(r => close(ctx, r))],
      ['MDS_READPAGE', h(r => readpage(ctx, r))],
      ['MDS_STATFS', h(r => statfs(ctx, r))],
      ['MDS_SYNC', h(r => sync(ctx, r))],
      ['SEQ_QUERY', h(r => seqQuery(ctx, r))],
      // An enqueue carrying an intent is executed by the MDT (mdt_intent_policy); a plain one is a lock request.
      ['LDLM_ENQUEUE', (() => {
        const intent = h(r => intentEnqueue(ctx, ldlm, r))
        return (r: Parameters<TargetHandler>[0]) => (r.msg.format?.startsWith('RQF_LDLM_INTENT') ? intent(r) : ldlm.enqueue(r))
      })()],
      ['LDLM_CANCEL', r => ldlm.cancel(r)],
    ])
    const osts = ctx.osts.indexes.length
    return {
      uuid: ctx.targetUuid, connectOpcode: 'MDS_CONNECT', disconnectOpcode: 'MDS_DISCONNECT',
      supportedFlags: (this.o.connectFlagsOff ?? []).reduce((f, n) => f & ~CB(n), MDT_CONNECT_FLAGS), handlers,
      // Every member is answered (zero when not negotiated) so nothing the client sent is echoed back as granted.
      connectData: (ocd, flags) => {
        const has = (f: string): boolean => (flags & CB(f)) !== 0n
        const brw = Number(ocd.ocd_brw_size ?? 0)
        const data = makeStruct('obd_connect_data', {
          ocd_version: has('OBD_CONNECT_VERSION') ? OCD_VERSION : 0,
          ocd_ibits_known: has('OBD_CONNECT_IBITS') ? BigInt((ocd.ocd_ibits_known as bigint | undefined) ?? 0n) & CB('MDS_INODELOCK_FULL') : 0n,
          ocd_max_easize: has('OBD_CONNECT_MAX_EASIZE') ? maxLayoutSize(osts) : 0,
          ocd_brw_size: has('OBD_CONNECT_BRW_SIZE') ? Math.min(brw > 0 ? brw : MAX_READPAGE, MAX_READPAGE) : 0,
        })
        delete data.ocd_connect_flags
        return data
      },
      onConnect: (e: Export) => ctx.store.saveExport({ clientUuid: e.clientUuid, nid: nidFromWire(e.peer.nid), pid: e.peer.pid, flags: e.flags, connCnt: e.connCnt }),
      onDisconnect: (e: Export) => {
        ldlm.dropExport(e)
        ctx.store.deleteExport(e.clientUuid)
        // The export's opens end with it (mdt_export_cleanup closes its mfds).
        for (const fh of ctx.opens.handlesOf(e.handle)) {
          const o = ctx.opens.close(fh, e.handle)
          if (o) finishClose(ctx, o.inode)
        }
      },
    }
  }

  async close(): Promise<void> {
    this.ldlm?.close()
    await this.lnet?.close()
    await this.osts?.close()
    this.store?.close()
    this.lnet = undefined
    this.osts = undefined
    this.store = undefined
  }
}
