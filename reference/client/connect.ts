// Bringing a client up: its LNet identity, one connection to the MDT and one per OST
// (ll_fill_super / client_connect_import, without the MGS: the servers are named on
// the command line instead of learnt from a configuration log).
import { randomUUID } from 'node:crypto'
import { networkInterfaces } from 'node:os'
import { constantOf, ipv4ToU32, loadSpec, parseAddress, parseNid } from '../../src/wire/index.js'
import { LnetEndpoint, PtlrpcEndpoint, type Peer, type RecorderFactory } from '../../src/transport/index.js'
import { TargetImport, userLnetPid } from '../common/index.js'
import { ClientError } from './errors.js'
import { LOV_MAX_STRIPE_COUNT } from './layout.js'
import { Mdc, processCreds, type Fid } from './mdc.js'
import { discoverOsts, type Ost } from './osc.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

export interface ClientOptions {
  /** MDS NID ('192.168.1.5@tcp', port 988) or 'host:port' */
  mds: string
  /** OSS addresses, same syntax; which OSTs each serves is learnt by connecting */
  oss?: string[]
  /** filesystem name, default 'lustre' */
  fsname?: string
  /** bytes per bulk RPC, default 1 MiB, at most 4 MiB */
  brwSize?: number
  /** the client's own NID; default: the local address on the MDS's network */
  nid?: string
  recorder?: RecorderFactory
  log?: (line: string) => void
  /** BRW RPCs in flight at once, over all OSTs (default 8) */
  maxInflight?: number
  /**
   * Extent locks and a page cache for file data (default true): I/O runs under PR/PW locks the
   * client keeps, and pages read under them are served again until a BL AST takes the lock.
   * False: no locks, every read goes to the OSTs.
   */
  cache?: boolean
  /** most extent locks kept (default 64) */
  maxLocks?: number
  timeoutMs?: number
}

export const DEFAULT_BRW_SIZE = 1 << 20
export const MAX_BRW_SIZE = 4 << 20

/** OBD_CONNECT_* an mdc asks for (the subset this client uses: FIDs, 64-bit dir hashes, bulk match bits). */
const MDS_CONNECT_FLAGS = C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_IBITS') | C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20') |
  C('OBD_CONNECT_ATTRFID') | C('OBD_CONNECT_NODEVOH') | C('OBD_CONNECT_MAX_EASIZE') | C('OBD_CONNECT_64BITHASH') | C('OBD_CONNECT_BULK_MBITS') |
  C('OBD_CONNECT_BRW_SIZE')

export interface Connections {
  /** one LNet endpoint per server (see openConnections), all with the client's NID and pid */
  endpoints: LnetEndpoint[]
  mdc: Mdc
  osts: Map<number, Ost>
  root: Fid
  clientUuid: string
  brwSize: number
}

function localAddresses(): Array<{ address: string; netmask: string }> {
  return Object.values(networkInterfaces()).flat().filter((a): a is NonNullable<typeof a> => !!a && a.family === 'IPv4' && !a.internal)
}

/** The client's NID on the MDS's LNet network: the local address on the MDS's subnet, or loopback for a local MDS. */
export function localNidFor(mdsHost: string, net = 0): string {
  const suffix = `@tcp${net ? net : ''}`
  if (mdsHost === 'localhost' || mdsHost.startsWith('127.')) return `127.0.0.1${suffix}`
  let target: number | undefined
  try { target = ipv4ToU32(mdsHost) } catch { target = undefined }
  const addrs = localAddresses()
  const same = target === undefined ? undefined : addrs.find(a => {
    const mask = ipv4ToU32(a.netmask)
    return ((ipv4ToU32(a.address) & mask) >>> 0) === ((target! & mask) >>> 0)
  })
  return `${(same ?? addrs[0])?.address ?? '127.0.0.1'}${suffix}`
}

function isLocalAddress(addr: string): boolean {
  return addr.startsWith('127.') || localAddresses().some(a => a.address === addr)
}

/**
 * Connects to the MDS and every OSS. Each server gets its own LNet endpoint (same NID,
 * same pid): an endpoint tells its peers apart by NID and pid only, and servers started
 * side by side on one address (an MDS and an OSS on 127.0.0.1, different ports) have the
 * same NID and LNET_PID_LUSTRE; on one endpoint their connections would replace each other.
 */
export async function openConnections(o: ClientOptions): Promise<Connections> {
  const fsname = o.fsname ?? 'lustre'
  const brwAsked = o.brwSize ?? DEFAULT_BRW_SIZE
  if (!Number.isSafeInteger(brwAsked) || brwAsked < 4096 || brwAsked > MAX_BRW_SIZE || brwAsked % 4096 !== 0) {
    throw new ClientError('LC_CLIENT_ARG', `brw size ${brwAsked} is not a multiple of 4096 between 4 KiB and 4 MiB`)
  }
  if (!/^[A-Za-z0-9_.-]{1,8}$/.test(fsname)) throw new ClientError('LC_CLIENT_ARG', `filesystem name ${fsname} is not 1-8 letters, digits, _ . -`)
  const mdsAddr = parseAddress(o.mds)
  const ossAddrs = (o.oss ?? []).map(a => parseAddress(a))
  const nid = o.nid ?? localNidFor(mdsAddr.host, mdsAddr.nid ? parseNid(mdsAddr.nid).net : 0)
  const bindAddress = isLocalAddress(parseNid(nid).addr) ? parseNid(nid).addr : undefined
  const pid = userLnetPid()
  const endpoints: LnetEndpoint[] = []
  const reach = async (a: ReturnType<typeof parseAddress>): Promise<{ rpc: PtlrpcEndpoint; peer: Peer }> => {
    const lnet = new LnetEndpoint({ nid, pid, recorder: o.recorder, log: o.log, bindAddress })
    endpoints.push(lnet)
    return { rpc: new PtlrpcEndpoint(lnet), peer: await lnet.connect(a.host, a.port, a.nid) }
  }
  const clientUuid = randomUUID()
  try {
    const m = await reach(mdsAddr)
    const mdsImp = new TargetImport(m.rpc, m.peer, {
      service: 'mds', targetUuid: `${fsname}-MDT0000_UUID`, clientUuid, flags: MDS_CONNECT_FLAGS, timeoutMs: o.timeoutMs,
      ocd: { ocd_ibits_known: C('MDS_INODELOCK_LOOKUP') | C('MDS_INODELOCK_UPDATE'), ocd_brw_size: brwAsked },
    })
    await mdsImp.connect()
    // Room for a layout in replies: what the MDT says its largest EA is, or a V1 layout of the most stripes.
    const maxEa = (mdsImp.flags & C('OBD_CONNECT_MAX_EASIZE')) !== 0n ? Number(mdsImp.ocd.ocd_max_easize ?? 0) : 0
    const mdc = new Mdc(mdsImp, processCreds(), maxEa > 0 ? maxEa : 32 + 24 * LOV_MAX_STRIPE_COUNT)
    const oss = await Promise.all(ossAddrs.map(reach))
    const osts = await discoverOsts(oss, { fsname, clientUuid, brwSize: brwAsked, timeoutMs: o.timeoutMs, log: o.log })
    // One RPC size for the whole file system: the smallest any OST allows.
    const brwSize = Math.min(brwAsked, ...[...osts.values()].map(t => t.brwSize ?? brwAsked))
    const root = await mdc.getRoot()
    o.log?.(`client ${nid} pid ${pid}: ${fsname}-MDT0000 at ${o.mds}, ${osts.size} OSTs, brw ${brwSize}`)
    return { endpoints, mdc, osts, root, clientUuid, brwSize }
  } catch (e) {
    await Promise.all(endpoints.map(l => l.close()))
    throw e
  }
}
