// The lock manager under load, beside a baseline from the same run:
//  - enqueue+cancel cycles of inode bits locks on the MDS from 8 clients, each on a
//    resource of its own (uncontended) and all on one resource (contended: every grant
//    after the first goes through a BL AST, the holder's cancel and a CP AST), beside
//    the bare OBD_PING rate of the same 8 clients;
//  - memory per granted lock of the lock engine holding 1,000,000 granted locks.
import { randomUUID } from 'node:crypto'
import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import { LnetEndpoint, PtlrpcEndpoint } from '../src/transport/index.js'
import { constantOf, loadSpec, parseAddress } from '../src/wire/index.js'
import { TargetImport, userLnetPid } from '../reference/common/index.js'
import { ClientLocks } from '../reference/client/locks.js'
import { LockEngine, MODE } from '../reference/ldlm/index.js'
import type { RunningCluster } from '../reference/cluster/index.js'
import { nowMs } from './harness.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const FLAGS = C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_IBITS') | C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20')
const UPDATE = C('MDS_INODELOCK_UPDATE')

interface LockClient { imp: TargetImport; locks: ClientLocks; lnet: LnetEndpoint }

async function lockClient(address: string): Promise<LockClient> {
  const a = parseAddress(address)
  const lnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid: userLnetPid() })
  const rpc = new PtlrpcEndpoint(lnet)
  const peer = await lnet.connect(a.host, a.port, a.nid)
  const imp = new TargetImport(rpc, peer, { service: 'mds', targetUuid: 'lustre-MDT0000_UUID', clientUuid: randomUUID(), flags: FLAGS, ocd: { ocd_ibits_known: UPDATE } })
  await imp.connect()
  return { imp, locks: new ClientLocks(rpc), lnet }
}

/** Operations per second of `op` run in a loop by every client for `seconds`. */
async function rate(clients: LockClient[], seconds: number, op: (c: LockClient, k: number) => Promise<void>): Promise<number> {
  let ops = 0
  const t0 = nowMs()
  const end = t0 + seconds * 1000
  await Promise.all(clients.map(async (c, k) => {
    while (nowMs() < end) {
      await op(c, k)
      ops++
    }
  }))
  return ops / ((nowMs() - t0) / 1000)
}

export interface LockRates { uncontended: number; contended: number; pings: number }

export async function lockRates(c: RunningCluster, clients: number, seconds: number): Promise<LockRates> {
  const cls = await Promise.all(Array.from({ length: clients }, () => lockClient(c.mdsAddress)))
  try {
    const fid = (k: number): bigint[] => [0x200000401n, BigInt(k), 0n, 0n]
    const pings = await rate(cls, seconds, async cl => { await cl.imp.ping() })
    const cycle = (name: bigint[]) => async (cl: LockClient): Promise<void> => {
      const l = await cl.locks.enqueue(cl.imp, { kind: 'ibits', name, mode: MODE.EX, bits: UPDATE })
      await cl.locks.cancel(l)
    }
    const uncontended = await rate(cls, seconds, (cl, k) => cycle(fid(1000 + k))(cl))
    const contended = await rate(cls, seconds, cl => cycle(fid(1))(cl))
    return { uncontended, contended, pings }
  } finally {
    await Promise.all(cls.map(async cl => { await cl.imp.disconnect().catch(() => {}); await cl.lnet.close() }))
  }
}

/** A gc() callable without --expose-gc on the command line. */
function gcFunction(): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

/**
 * Heap bytes per granted lock: the engine holding `count` compatible (PR) extent locks
 * over count/10 resources, measured from the heap after a full collection, before and after.
 */
export function bytesPerLock(count: number): number {
  const gc = gcFunction()
  gc()
  const before = process.memoryUsage().heapUsed
  const e = new LockEngine()
  const perResource = 10
  for (let i = 0; i < count; i++) {
    const r = Math.floor(i / perResource)
    e.enqueue({ owner: BigInt(i % 64), type: 'extent', name: [BigInt(r), 0n, 0n, 0n], mode: MODE.PR, policy: { range: { start: 0n, end: 4095n }, gid: 0n } })
  }
  gc()
  const after = process.memoryUsage().heapUsed
  if (e.size !== count) throw new Error(`engine holds ${e.size} locks, not ${count}`)
  return (after - before) / count
}
