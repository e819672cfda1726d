// The reference cluster as a whole: it survives a clean restart with everything in
// place, runs as separate processes that stop on SIGTERM, is driven by the client CLI
// as a newcomer would drive it, and what it puts on the wire dissects cleanly in tshark
// with field values equal to our decoder's.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { packageRoot } from '../../src/wire/index.js'
import { pcapRecorderFactory } from '../../src/tour/index.js'
import type { RecorderFactory } from '../../src/transport/index.js'
import { startCluster, startClusterProcesses } from '../../reference/cluster/index.js'
import { LustreClient } from '../../reference/client/index.js'
import { compareWithTshark, haveTshark } from '../helpers/tshark-compare.js'

const run = promisify(execFile)
const cli = join(packageRoot(), 'bin', 'lustre-conformance.js')
const MiB = 1 << 20
const inCi = process.env.CI === 'true'

function tmp(t: { teardown(fn: () => unknown): void }, name: string): string {
  const d = mkdtempSync(join(tmpdir(), `lc-${name}-`))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

const bytes = (n: number, seed: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * seed + (i >>> 10)) & 0xff)

t.test('a cleanly stopped cluster restarts with every file, directory and layout in place', async t => {
  const dir = tmp(t, 'persist')
  const data = bytes(3 * MiB + 77, 13)
  let c = await startCluster({ dir, osts: 4, mdsPort: 0, ossPort: 0 })
  let client = await LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses })
  await client.mkdir('/keep')
  await client.mkdir('/keep/sub')
  await client.create('/keep/striped', { stripeCount: 3, stripeSize: 256 * 1024 })
  await client.write('/keep/striped', 0, data)
  await client.setstripe('/keep/sub', { stripeCount: 2, stripeSize: 128 * 1024 })
  await client.symlink('striped', '/keep/link')
  const before = await client.getstripe('/keep/striped')
  await client.close()
  await c.stop()

  c = await startCluster({ dir, osts: 4, mdsPort: 0, ossPort: 0 })
  t.teardown(() => c.stop())
  client = await LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses })
  t.teardown(() => client.close())
  t.same((await client.readdir('/keep')).map(e => e.name).sort(), ['link', 'striped', 'sub'], 'directory entries')
  t.ok(Buffer.compare(await client.readFile('/keep/striped'), data) === 0, 'file contents')
  t.same(await client.getstripe('/keep/striped'), before, 'layout and objects')
  t.equal((await client.stat('/keep/link')).target, 'striped', 'symlink target')
  // A file created after the restart under the directory default gets that layout and new objects.
  await client.writeFile('/keep/sub/new', bytes(1000, 3))
  const l = await client.getstripe('/keep/sub/new')
  t.equal(l?.objects.length, 2, 'directory default stripe count')
  t.equal(l?.stripeSize, 128 * 1024, 'directory default stripe size')
  const used = new Set(before!.objects.map(o => `${o.ostIndex}:${o.objectId}`))
  t.ok(l!.objects.every(o => !used.has(`${o.ostIndex}:${o.objectId}`)), 'objects are not handed out twice after a restart')
})

t.test('cluster start runs the servers as processes; the client CLI puts and gets a striped file', async t => {
  const dir = tmp(t, 'procs')
  const c = await startClusterProcesses({ dir: join(dir, 'data'), osts: 4, ossCount: 2, mdsPort: 0, ossPort: 0 })
  t.teardown(() => c.stop())
  t.equal(c.oss.length, 2, 'two OSS processes')
  t.same(c.oss.flatMap(s => s.osts), [0, 1, 2, 3], 'sharing OSTs 0-3')
  const local = join(dir, 'in.bin')
  const data = bytes(2 * MiB + 4321, 7)
  writeFileSync(local, data)
  const base = [cli, 'client', '--mds', c.mdsAddress, ...c.ossAddresses.flatMap(a => ['--oss', a])]
  await run(process.execPath, [...base, 'mkdir', '/d'])
  await run(process.execPath, [...base, 'setstripe', '-c', '4', '-S', '1M', '/d/f'])
  await run(process.execPath, [...base, 'put', local, '/d/f'])
  const gs = await run(process.execPath, [...base, 'getstripe', '/d/f'])
  t.match(gs.stdout, /lmm_stripe_count:\s+4/, 'getstripe shows 4 stripes')
  t.match(gs.stdout, /lmm_stripe_size:\s+1048576/, 'of 1 MiB')
  await run(process.execPath, [...base, 'get', '/d/f', join(dir, 'out.bin')])
  t.ok(Buffer.compare(readFileSync(join(dir, 'out.bin')), data) === 0, 'got back byte-identical')
  const e = await run(process.execPath, [...base, 'stat', '/d/missing']).catch(x => x as { code: number; stderr: string })
  t.equal((e as { code: number }).code, 1, 'a missing file: exit status 1')
  t.match((e as { stderr: string }).stderr, /ENOENT/, 'and the errno said')
  await c.stop()
  for (const pid of [c.pids!.mds, ...c.pids!.oss]) {
    let alive = true
    try { process.kill(pid, 0) } catch { alive = false }
    t.notOk(alive, `server process ${pid} ended on SIGTERM`)
  }
})

t.test('the cluster\'s traffic dissects cleanly in tshark and agrees with our decoder', {
  skip: haveTshark ? false : inCi ? false : 'tshark is not installed; outside CI this test is skipped',
}, async t => {
  if (!haveTshark) return void t.fail('CI=true but tshark is missing: .ci/run must install it')
  const dir = tmp(t, 'wire')
  const pcap = join(dir, 'cluster.pcap')
  const rec = pcapRecorderFactory(pcap, { keepUnits: false })
  // Each connection recorded once, by its active side: the client, and the MDS towards the OSTs.
  const activeOnly: RecorderFactory = conn => (conn.role === 'active' ? rec.factory(conn) : undefined)
  const c = await startCluster({ dir: join(dir, 'data'), osts: 4, mdsPort: 0, ossPort: 0, recorder: activeOnly })
  const client = await LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses, recorder: activeOnly })
  try {
    await client.mkdir('/w')
    await client.setstripe('/w', { stripeCount: 2, stripeSize: 64 * 1024 })
    await client.writeFile('/w/a', bytes(300 * 1024, 5))
    await client.fsync('/w/a')
    await client.ping()
    await client.readFile('/w/a')
    await client.stat('/w/a')
    await client.getstripe('/w')
    await client.symlink('a', '/w/s')
    await client.link('/w/a', '/w/b')
    await client.rename('/w/b', '/w/c')
    await client.truncate('/w/a', 1000)
    await client.readdir('/w')
    await client.statfs()
    await client.stat('/w/nothing').catch(() => undefined)
    await client.unlink('/w/c')
    await client.unlink('/w/a')
    await client.unlink('/w/s')
    await client.rmdir('/w')
  } finally {
    await client.close()
    await c.stop()
    await rec.close()
  }
  const r = compareWithTshark(t, pcap)
  const want = ['MDS_CONNECT', 'MDS_GET_ROOT', 'MDS_GETATTR', 'MDS_GETATTR_NAME', 'MDS_REINT', 'MDS_CLOSE', 'MDS_READPAGE', 'MDS_STATFS',
    'MDS_DISCONNECT', 'OBD_PING', 'OST_CONNECT', 'OST_CREATE', 'OST_DESTROY', 'OST_WRITE', 'OST_READ', 'OST_GETATTR', 'OST_PUNCH',
    'OST_SYNC', 'OST_STATFS', 'OST_DISCONNECT']
  for (const op of want) t.ok(r.opcodes.has(op), `${op} was recorded and compared`)
  t.ok(r.compared > 200, `${r.compared} field comparisons made over ${r.messages} messages`)
})
