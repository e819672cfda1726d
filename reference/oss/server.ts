// The OSS process: one LNet endpoint and one PtlRPC endpoint, one TargetHost serving
// the OST portals of spec/rpc, and one Ost per index in [firstIndex, firstIndex + osts),
// each keeping its objects in <dir>/ost<index>/. Several OSS processes serve disjoint
// index ranges of one file system (as several OSS nodes do).
import { join } from 'node:path'
import { LnetEndpoint, PtlrpcEndpoint, type RecorderFactory } from '../../src/transport/index.js'
import { TargetHost } from '../common/index.js'
import { Ost } from './ost.js'
import { LdlmService } from '../ldlm/index.js'

export interface OssOptions {
  /** data directory; OST i lives in <dir>/ost<i>/ */
  dir: string
  /** how many OSTs this process serves */
  osts: number
  /** index of the first OST (default 0): several OSS processes serve disjoint ranges */
  firstIndex?: number
  /** default 'lustre' */
  fsname?: string
  /** bind address, default '127.0.0.1' */
  host?: string
  /** default 988; 0 = a free port */
  port?: number
  /** default `${host}@tcp` */
  nid?: string
  log?: (line: string) => void
  /** pcap recording of every connection, passed to the LnetEndpoint */
  recorder?: RecorderFactory
  maxConnections?: number
  /** ms a lock holder has to cancel after a blocking AST before it is evicted (default 30 s) */
  lockTimeoutMs?: number
}

/** The acceptor port of LNet's socklnd (LNET_ACCEPTOR_PORT in Lustre's lnet configuration). */
const DEFAULT_PORT = 988

export class OssServer {
  private readonly opts: Required<Pick<OssOptions, 'dir' | 'osts' | 'firstIndex' | 'fsname' | 'host'>> & OssOptions
  private readonly log: (line: string) => void
  private lnet: LnetEndpoint | undefined
  private ostList: Ost[] = []
  private boundPort = 0
  private state: 'new' | 'starting' | 'running' | 'closed' = 'new'

  constructor(opts: OssOptions) {
    const firstIndex = opts.firstIndex ?? 0
    if (!opts.dir) throw new Error('OssServer: dir is required')
    if (!Number.isInteger(opts.osts) || opts.osts < 1) throw new Error(`OssServer: osts must be a positive integer, not ${opts.osts}`)
    // OST indexes are written as four hex digits in target names (lustre-OSTffff_UUID at most).
    if (!Number.isInteger(firstIndex) || firstIndex < 0 || firstIndex + opts.osts > 0x10000) {
      throw new Error(`OssServer: OST indexes ${firstIndex}..${firstIndex + opts.osts - 1} do not fit in 0..0xffff`)
    }
    const fsname = opts.fsname ?? 'lustre'
    if (!/^[A-Za-z0-9_-]{1,8}$/.test(fsname)) throw new Error(`OssServer: bad fsname ${JSON.stringify(fsname)} (1 to 8 letters, digits, - or _)`)
    this.opts = { ...opts, firstIndex, fsname, host: opts.host ?? '127.0.0.1' }
    this.log = opts.log ?? (() => {})
  }

  /** The TCP port the acceptor listens on (after start()). */
  get port(): number {
    return this.boundPort
  }

  /** This server's LNet NID. */
  get nid(): string {
    return this.opts.nid ?? `${this.opts.host}@tcp`
  }

  /** Opens every OST's object store, then listens; on failure nothing is left open. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`OssServer: start() when ${this.state}`)
    this.state = 'starting'
    const { dir, osts, firstIndex, fsname, host } = this.opts
    try {
      for (let i = firstIndex; i < firstIndex + osts; i++) {
        const ost = new Ost(i, fsname, join(dir, `ost${i}`), this.log)
        await ost.store.open()
        this.ostList.push(ost)
        this.log(`${ost.uuid}: ${join(dir, `ost${i}`)}, last object id ${ost.store.lastId}`)
      }
      this.lnet = new LnetEndpoint({ nid: this.nid, maxConnections: this.opts.maxConnections, recorder: this.opts.recorder, log: this.log })
      const targets = new TargetHost(new PtlrpcEndpoint(this.lnet), { log: this.log })
      for (const ost of this.ostList) {
        // One lock namespace per OST, as each OST's obd device has its own.
        ost.attachLdlm(new LdlmService({
          rpc: targets.rpc, kind: 'ost', lvb: name => ost.lvb(name), callbackTimeoutMs: this.opts.lockTimeoutMs,
          evictExport: e => targets.evict(e), log: this.log,
        }))
        targets.add(ost)
      }
      targets.serve('ost')
      this.boundPort = await this.lnet.listen(this.opts.port ?? DEFAULT_PORT, host)
    } catch (e) {
      await this.lnet?.close().catch(() => {})
      this.lnet = undefined
      this.ostList = []
      this.state = 'closed'
      throw e
    }
    this.state = 'running'
    this.log(`OSS ${this.nid} listening on ${host}:${this.boundPort}: ${this.ostList.map(o => o.uuid).join(', ')}`)
  }

  /** Stops serving: connections close, bulk transfers in progress fail, running handlers finish. */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'new') { this.state = 'closed'; return }
    this.state = 'closed'
    await this.lnet?.close()
    this.lnet = undefined
    for (const ost of this.ostList) {
      ost.closeLdlm()
      await ost.idle()
      await ost.store.close()
    }
    this.ostList = []
  }
}
