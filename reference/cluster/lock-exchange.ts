// A recorded lock exchange against the reference cluster, for traces/locks.pcap and the
// tshark cross-check: two clients take inode bits locks on a file's FID from the MDS
// and extent locks on its object from the OST, in modes that conflict, so that every
// step of LDLM shows on the wire: enqueue granted (PR, PW, EX), enqueue blocked, BL AST
// to the holder, its LDLM_CANCEL, CP AST to the waiter (with the object's LVB), and the
// waiter's own cancel.
import { mkdtempSync, rmSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LnetEndpoint, PtlrpcEndpoint, type RecorderFactory } from '../../src/transport/index.js'
import { constantOf, loadSpec, parseAddress } from '../../src/wire/index.js'
import { TargetImport, userLnetPid } from '../common/index.js'
import { ClientLocks, type HeldLock, type LockAsk } from '../client/locks.js'
import { LustreClient } from '../client/index.js'
import { startCluster } from './cluster.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const M = (n: string): number => Number(C(n))
const MDS_FLAGS = C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_IBITS') | C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20')
const OST_FLAGS = C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_INDEX') | C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20')

/** One client: a lock taken from the MDS or the OST goes through that server's endpoint, which hears its ASTs. */
interface Side {
  take(on: 'mds' | 'ost', ask: LockAsk): Promise<HeldLock>
  glimpse(name: readonly bigint[]): ReturnType<ClientLocks['glimpse']>
  cancel(l: HeldLock): Promise<void>
  close(): Promise<void>
}

async function side(mdsAddr: string, ossAddr: string, ostUuid: string, recorder: RecorderFactory | undefined): Promise<Side> {
  const clientUuid = randomUUID()
  const pid = userLnetPid()
  const endpoints: LnetEndpoint[] = []
  // One endpoint per server, as the reference client keeps them; both serve the callback portal.
  const reach = async (address: string, opts: ConstructorParameters<typeof TargetImport>[2]): Promise<{ imp: TargetImport; locks: ClientLocks }> => {
    const a = parseAddress(address)
    const lnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid, recorder })
    endpoints.push(lnet)
    const rpc = new PtlrpcEndpoint(lnet)
    const locks = new ClientLocks(rpc)
    const imp = new TargetImport(rpc, await lnet.connect(a.host, a.port, a.nid), opts)
    await imp.connect()
    return { imp, locks }
  }
  const mds = await reach(mdsAddr, { service: 'mds', targetUuid: 'lustre-MDT0000_UUID', clientUuid, flags: MDS_FLAGS, ocd: { ocd_ibits_known: C('MDS_INODELOCK_FULL') } })
  const ost = await reach(ossAddr, { service: 'ost', targetUuid: ostUuid, clientUuid, flags: OST_FLAGS, ocd: { ocd_brw_size: 1 << 20 } })
  const of = (on: 'mds' | 'ost') => (on === 'mds' ? mds : ost)
  return {
    take: (on, ask) => of(on).locks.enqueue(of(on).imp, ask),
    glimpse: name => ost.locks.glimpse(ost.imp, name),
    cancel: l => (l.imp === mds.imp ? mds : ost).locks.cancel(l),
    close: async () => {
      await Promise.all([mds.imp.disconnect().catch(() => {}), ost.imp.disconnect().catch(() => {})])
      await Promise.all(endpoints.map(l => l.close()))
    },
  }
}

export interface LockExchangeOptions {
  /**
   * Leave out the glimpse: tshark 4.0 reads a GL AST reply's LVB as a 16-byte barrier_lvb
   * and flags the 56-byte ost_lvb an OST lock holder sends (test/oracle/tshark-expected.json).
   */
  skipTsharkLimits?: boolean
  say?: (line: string) => void
}

/** Runs the exchange against a fresh in-process cluster, recording through `recorder`; returns the steps taken. */
export async function runLockExchange(recorder: RecorderFactory | undefined, o: LockExchangeOptions = {}): Promise<string[]> {
  const say = o.say ?? (() => {})
  const dir = mkdtempSync(join(tmpdir(), 'lustre-locks-'))
  const cluster = await startCluster({ dir, osts: 1, mdsPort: 0, ossPort: 0 })
  const steps: string[] = []
  const step = (s: string): void => { steps.push(s); say(s) }
  try {
    // A file to lock: its FID names the MDS resource, its one object the OST resource.
    const setup = await LustreClient.connect({ mds: cluster.mdsAddress, oss: cluster.ossAddresses })
    await setup.create('/locked', { stripeCount: 1 })
    const st = await setup.stat('/locked')
    const layout = await setup.getstripe('/locked')
    await setup.close()
    const fid = [st.fid.seq, BigInt(st.fid.oid), BigInt(st.fid.ver ?? 0), 0n]
    const obj = [layout!.objects[0].objectId, 0n, 0n, 0n]
    const a = await side(cluster.mdsAddress, cluster.ossAddresses[0], 'lustre-OST0000_UUID', recorder)
    const b = await side(cluster.mdsAddress, cluster.ossAddresses[0], 'lustre-OST0000_UUID', recorder)
    try {
      const lookupUpdate = C('MDS_INODELOCK_LOOKUP') | C('MDS_INODELOCK_UPDATE')
      await a.take('mds', { kind: 'ibits', name: fid, mode: M('LCK_PR'), bits: lookupUpdate })
      step('a: MDS inodebits PR (LOOKUP|UPDATE) granted')
      const bEx = await b.take('mds', { kind: 'ibits', name: fid, mode: M('LCK_EX'), bits: C('MDS_INODELOCK_UPDATE') })
      step('b: MDS inodebits EX (UPDATE) blocked, BL AST to a, a cancels, CP AST to b')
      await b.cancel(bEx)
      step('b: cancels its EX')
      await a.take('ost', { kind: 'extent', name: obj, mode: M('LCK_PW'), start: 0n, end: 4095n })
      step('a: OST extent PW [0, 4095] granted, grown to the whole object')
      if (!o.skipTsharkLimits) {
        const g = await b.glimpse(obj)
        step(`b: glimpse of the object: GL AST to a, no lock (ELDLM_LOCK_ABORTED), size ${g.lvb.lvb_size} from the LVB`)
      }
      const bPr = await b.take('ost', { kind: 'extent', name: obj, mode: M('LCK_PR'), start: 0n, end: 4095n })
      step('b: OST extent PR [0, 4095] blocked, BL AST to a, a cancels, CP AST to b with the object\'s LVB')
      const bEx2 = await b.take('ost', { kind: 'extent', name: obj, mode: M('LCK_EX'), start: 8192n, end: 12287n, cancel: [bPr] })
      step('b: OST extent EX [8192, 12287] with its PR cancelled in the same request (early lock cancel)')
      await b.cancel(bEx2)
      step('b: cancels its EX')
    } finally {
      await a.close()
      await b.close()
    }
  } finally {
    await cluster.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  return steps
}
