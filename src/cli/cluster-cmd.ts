// `lustre-conformance cluster start ...`: the MDS and the OSSes as processes of their
// own, and `lustre-conformance serve mds|oss ...`: one server in this process (what
// `cluster start` spawns, and what a user runs to put servers on several machines).
import { parseArgs } from 'node:util'
import { parseAddress } from '../wire/index.js'
import { startClusterProcesses } from '../../reference/cluster/index.js'
import { OssServer } from '../../reference/oss/index.js'
import { MdsServer, type OstAddress } from '../../reference/mds/index.js'

/** Lustre's acceptor port. The MDS takes it; the OSSes, separate processes here, take the next ones. */
const DEFAULT_MDS_PORT = 988
const DEFAULT_OSS_PORT = 989

function int(name: string, v: string | undefined, dflt: number, min = 0, max = 65535): number {
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} ${v}: need an integer in ${min}..${max}`)
  return n
}

/** Resolves once SIGINT or SIGTERM arrives. */
function untilSignal(): Promise<string> {
  return new Promise(resolve => {
    const on = (sig: string) => () => resolve(sig)
    process.once('SIGINT', on('SIGINT'))
    process.once('SIGTERM', on('SIGTERM'))
  })
}

export async function clusterCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub !== 'start') {
    console.error('usage: lustre-conformance cluster start --dir DIR [--osts 4] [--oss 1] [--host H] [--mds-port P] [--oss-port P] [--fsname F] [--lock-timeout MS]')
    return 2
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      dir: { type: 'string' }, osts: { type: 'string' }, oss: { type: 'string' }, host: { type: 'string' },
      'mds-port': { type: 'string' }, 'oss-port': { type: 'string' }, fsname: { type: 'string' }, 'lock-timeout': { type: 'string' },
    },
  })
  const osts = int('osts', values.osts, 4, 1, 0xffff)
  const c = await startClusterProcesses({
    dir: values.dir ?? './lustre-data', osts, ossCount: int('oss', values.oss, 1, 1, osts), host: values.host ?? '127.0.0.1',
    mdsPort: int('mds-port', values['mds-port'], DEFAULT_MDS_PORT), ossPort: int('oss-port', values['oss-port'], DEFAULT_OSS_PORT),
    fsname: values.fsname, log: line => console.error(line), lockTimeoutMs: lockTimeout(values['lock-timeout']),
  })
  console.log(`MDS  ${c.mds.nid}  ${c.mdsAddress}`)
  for (const s of c.oss) console.log(`OSS  ${s.nid}  ${s.host}:${s.port}  OSTs ${(s.osts ?? []).join(',')}`)
  console.log(`client: lustre-conformance client --mds ${c.mdsAddress} ${c.ossAddresses.map(a => `--oss ${a}`).join(' ')} COMMAND ...`)
  console.log('stop with Ctrl-C (SIGINT) or SIGTERM')
  const sig = await untilSignal()
  console.error(`${sig}: stopping`)
  await c.stop()
  return 0
}

export async function serveCommand(args: string[]): Promise<number> {
  const [role, ...rest] = args
  const { values } = parseArgs({
    args: rest,
    options: {
      dir: { type: 'string' }, osts: { type: 'string' }, 'first-index': { type: 'string' }, host: { type: 'string' },
      port: { type: 'string' }, fsname: { type: 'string' }, ost: { type: 'string', multiple: true }, quiet: { type: 'boolean' },
      'lock-timeout': { type: 'string' },
    },
  })
  const host = values.host ?? '127.0.0.1'
  const dir = values.dir ?? './lustre-data'
  const log = values.quiet ? undefined : (line: string) => console.error(`${role}: ${line}`)
  let server: OssServer | MdsServer
  let osts: number[] | undefined
  if (role === 'oss') {
    const n = int('osts', values.osts, 1, 1, 0xffff)
    const first = int('first-index', values['first-index'], 0, 0, 0xffff - n)
    osts = Array.from({ length: n }, (_, i) => first + i)
    server = new OssServer({ dir, osts: n, firstIndex: first, host, port: int('port', values.port, DEFAULT_OSS_PORT), fsname: values.fsname, log, lockTimeoutMs: lockTimeout(values['lock-timeout']) })
  } else if (role === 'mds') {
    // --ost I=ADDR, ADDR a NID (port 988) or host:port: where OST index I is served.
    const addrs: OstAddress[] = (values.ost ?? []).map(spec => {
      const m = /^(\d+)=(.+)$/.exec(spec)
      if (!m) throw new Error(`--ost ${spec}: want INDEX=NID or INDEX=host:port`)
      const a = parseAddress(m[2])
      return { index: Number(m[1]), host: a.host, port: a.port, nid: a.nid ?? `${a.host}@tcp` }
    })
    if (!addrs.length) throw new Error('serve mds needs at least one --ost INDEX=ADDRESS')
    server = new MdsServer({ dir, osts: addrs, host, port: int('port', values.port, DEFAULT_MDS_PORT), fsname: values.fsname, log, lockTimeoutMs: lockTimeout(values['lock-timeout']) })
  } else {
    console.error('usage: lustre-conformance serve oss --dir DIR [--osts N] [--first-index I] [--host H] [--port P]\n' +
      '       lustre-conformance serve mds --dir DIR --ost I=ADDR... [--host H] [--port P]')
    return 2
  }
  await server.start()
  // One JSON line on stdout says where the server listens (cluster start reads it); logs go to stderr.
  console.log(JSON.stringify({ role, host, port: server.port, nid: server.nid, osts }))
  await untilSignal()
  // A server that cannot finish closing in time is ended anyway: its storage is consistent at
  // every commit, and a supervisor's SIGTERM must end it.
  const late = setTimeout(() => { console.error(`${role}: close took over ${CLOSE_GRACE_MS} ms; exiting`); process.exit(1) }, CLOSE_GRACE_MS)
  await server.close()
  clearTimeout(late)
  process.exit(0)
}

const CLOSE_GRACE_MS = 5000

/** --lock-timeout MS: undefined (the servers' 30 s) when not given. */
function lockTimeout(v: string | undefined): number | undefined {
  return v === undefined ? undefined : int('lock-timeout', v, 30_000, 1, 3_600_000)
}
