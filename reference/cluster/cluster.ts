// A reference cluster: one MDS and OSSes serving N OSTs, started in this process
// (tests, the demo) or as separate processes (the `cluster start` command), under
// one data directory. The OSSes come up first, since the MDS precreates objects on
// them; every address is a host and port, so nothing assumes one machine but the
// loopback defaults.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { RecorderFactory } from '../../src/transport/index.js'
import { packageRoot } from '../../src/wire/index.js'
import { OssServer } from '../oss/index.js'
import { MdsServer, type MdsOptions, type OstAddress } from '../mds/index.js'

export interface ClusterOptions {
  dir: string
  /** OSTs in all (indexes 0..osts-1) */
  osts: number
  /** OSS processes (or in-process servers) sharing the OSTs, default 1 */
  ossCount?: number
  host?: string
  /** 0 = a free port */
  mdsPort?: number
  /** the first OSS's port; OSS k listens on ossPort + k (0 = free ports) */
  ossPort?: number
  fsname?: string
  /** ms a lock holder has to cancel after a blocking AST before it is evicted (servers' default 30 s) */
  lockTimeoutMs?: number
  /** in-process clusters only: deliberate MDS faults, for the certifier's self-test */
  mdsFaults?: MdsOptions['faults']
  /** OBD_CONNECT_* names the MDS does not offer (in-process clusters only) */
  mdsConnectFlagsOff?: string[]
  log?: (line: string) => void
  recorder?: RecorderFactory
}

export interface ServerAddress {
  role: 'mds' | 'oss'
  host: string
  port: number
  nid: string
  /** OST indexes served (OSS only) */
  osts?: number[]
}

export interface RunningCluster {
  mds: ServerAddress
  oss: ServerAddress[]
  /** what a client's --mds and --oss take: host:port */
  mdsAddress: string
  ossAddresses: string[]
  /** process ids of the servers, when they run as processes of their own */
  pids?: { mds: number; oss: number[] }
  stop(): Promise<void>
}

/** Which OST indexes OSS k of `count` serves: contiguous, as even as possible. */
export function ostRanges(osts: number, count: number): Array<{ first: number; n: number }> {
  const out: Array<{ first: number; n: number }> = []
  let first = 0
  for (let k = 0; k < count; k++) {
    const n = Math.floor(osts / count) + (k < osts % count ? 1 : 0)
    out.push({ first, n })
    first += n
  }
  return out.filter(r => r.n > 0)
}

function check(o: ClusterOptions): { host: string; count: number; fsname: string } {
  if (!Number.isInteger(o.osts) || o.osts < 1 || o.osts > 0xffff) throw new Error(`--osts ${o.osts}: need 1..65535`)
  const count = o.ossCount ?? 1
  if (!Number.isInteger(count) || count < 1 || count > o.osts) throw new Error(`${count} OSS for ${o.osts} OSTs: need 1..${o.osts}`)
  return { host: o.host ?? '127.0.0.1', count, fsname: o.fsname ?? 'lustre' }
}

const portFor = (base: number | undefined, k: number): number => (base ? base + k : 0)

/** Starts the cluster inside this process. */
export async function startCluster(o: ClusterOptions): Promise<RunningCluster> {
  const { host, count, fsname } = check(o)
  mkdirSync(o.dir, { recursive: true })
  const osses: OssServer[] = []
  const ranges = ostRanges(o.osts, count)
  let mds: MdsServer | undefined
  try {
    for (const [k, r] of ranges.entries()) {
      const s = new OssServer({ dir: o.dir, osts: r.n, firstIndex: r.first, fsname, host, port: portFor(o.ossPort, k), log: o.log, recorder: o.recorder, lockTimeoutMs: o.lockTimeoutMs })
      await s.start()
      osses.push(s)
    }
    const ostAddrs: OstAddress[] = osses.flatMap((s, k) => Array.from({ length: ranges[k].n }, (_, i) => ({ index: ranges[k].first + i, host, port: s.port, nid: s.nid })))
    mds = new MdsServer({ dir: o.dir, osts: ostAddrs, fsname, host, port: o.mdsPort ?? 0, log: o.log, recorder: o.recorder, lockTimeoutMs: o.lockTimeoutMs, faults: o.mdsFaults, connectFlagsOff: o.mdsConnectFlagsOff })
    await mds.start()
  } catch (e) {
    await mds?.close().catch(() => {})
    for (const s of osses) await s.close().catch(() => {})
    throw e
  }
  const m = mds
  return {
    mds: { role: 'mds', host, port: m.port, nid: m.nid },
    oss: osses.map((s, k) => ({ role: 'oss', host, port: s.port, nid: s.nid, osts: Array.from({ length: ranges[k].n }, (_, i) => ranges[k].first + i) })),
    mdsAddress: `${host}:${m.port}`,
    ossAddresses: osses.map(s => `${host}:${s.port}`),
    async stop() {
      await m.close()
      for (const s of osses) await s.close()
    },
  }
}

const cli = join(packageRoot(), 'bin', 'lustre-conformance.js')

/** Spawns `lustre-conformance serve ...` and waits for the line saying where it listens. */
function spawnServer(args: string[], log: (line: string) => void): Promise<{ child: ChildProcess; addr: ServerAddress }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'serve', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let done = false
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', line => {
      if (!done && line.startsWith('{')) {
        done = true
        resolve({ child, addr: JSON.parse(line) as ServerAddress })
      } else log(line)
    })
    child.on('exit', code => {
      if (!done) { done = true; reject(new Error(`serve ${args[0]} exited with ${code} before it was ready`)) }
    })
    child.on('error', e => { if (!done) { done = true; reject(e) } })
  })
}

/** Starts the MDS and each OSS as a process of its own; stop() ends them with SIGTERM. */
export async function startClusterProcesses(o: ClusterOptions): Promise<RunningCluster> {
  const { host, count, fsname } = check(o)
  const log = o.log ?? (() => {})
  mkdirSync(o.dir, { recursive: true })
  const children: ChildProcess[] = []
  let mdsChild: ChildProcess | undefined
  const end = (c: ChildProcess): Promise<void> => new Promise<void>(r => {
    if (c.exitCode !== null || c.signalCode !== null) return r()
    c.once('exit', () => r())
    c.kill('SIGTERM')
  })
  // The MDS first: it is a client of the OSTs, and would otherwise wait on their going.
  const stop = async (): Promise<void> => {
    if (mdsChild) await end(mdsChild)
    await Promise.all(children.map(end))
  }
  const timeout = o.lockTimeoutMs !== undefined ? ['--lock-timeout', String(o.lockTimeoutMs)] : []
  try {
    const oss: ServerAddress[] = []
    for (const [k, r] of ostRanges(o.osts, count).entries()) {
      const s = await spawnServer(['oss', '--dir', o.dir, '--osts', String(r.n), '--first-index', String(r.first), '--fsname', fsname,
        '--host', host, '--port', String(portFor(o.ossPort, k)), ...timeout], log)
      children.push(s.child)
      oss.push(s.addr)
    }
    const ostArgs = oss.flatMap(s => (s.osts ?? []).flatMap(i => ['--ost', `${i}=${s.host}:${s.port}`]))
    const m = await spawnServer(['mds', '--dir', o.dir, '--fsname', fsname, '--host', host, '--port', String(o.mdsPort ?? 0), ...timeout, ...ostArgs], log)
    children.push(m.child)
    mdsChild = m.child
    return {
      mds: m.addr, oss, mdsAddress: `${m.addr.host}:${m.addr.port}`, ossAddresses: oss.map(s => `${s.host}:${s.port}`),
      pids: { mds: m.child.pid!, oss: children.slice(0, -1).map(c => c.pid!) }, stop,
    }
  } catch (e) {
    await stop()
    throw e
  }
}
