// `npm run bench`: encode/decode rates of representative Lustre messages and the
// decode throughput of a large generated capture beside tshark's, every figure
// with a baseline measured in the same run and the ratio to it.
//
//   node dist/bench/run.js [--only messages|pcap|cluster|locks|certify] [--pcap-mib 50] [--flows 8]
//                          [--ops 300000] [--max-seconds 6] [--rounds 5] [--budget 75]
//                          [--cluster-mib 1024] [--keep]
// --max-seconds caps each message-rate measure; --budget (seconds) caps the
// interleaved decode/tshark rounds on the large capture.
import { join } from 'node:path'
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { runTour } from '../src/tour/index.js'
import {
  fastest, fmtInt, fmtMB, fmtRate, fmtRatio, makeTempDir, nowMs, removeTemp, section, table,
} from './harness.js'
import { localFile, metadataRates, rawTcp, transfer, withCluster } from './cluster.js'
import { bytesPerLock, lockRates } from './locks.js'
import { certifyOnce, suiteTimes } from './certify.js'
import { benchFraming, benchMessages, buildStream, checkSamples, collectSamples, printRows, type ResultRow } from './messages.js'
import {
  classifyUnits, countTshark, generatePcap, histogramDiff, probeTshark, runOurCli, runOurDecode, runStages, runTshark, TSHARK_FIELD,
  type DecodeRun, type TsharkRun, type UnitInfo,
} from './pcap.js'

const TARGET = 10

interface Options {
  only?: 'messages' | 'pcap' | 'cluster' | 'locks' | 'certify'
  pcapMiB: number
  clusterMiB: number
  flows: number
  ops: number
  maxSeconds: number
  rounds: number
  budget: number
  keep: boolean
}

function options(): Options {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      only: { type: 'string' },
      'pcap-mib': { type: 'string', default: '50' },
      'cluster-mib': { type: 'string', default: '1024' },
      flows: { type: 'string', default: '8' },
      ops: { type: 'string', default: '300000' },
      'max-seconds': { type: 'string', default: '6' },
      rounds: { type: 'string', default: '5' },
      budget: { type: 'string', default: '75' },
      keep: { type: 'boolean', default: false },
    },
  })
  const only = values.only
  if (only !== undefined && !['messages', 'pcap', 'cluster', 'locks', 'certify'].includes(only)) throw new Error('--only takes messages, pcap, cluster, locks or certify')
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} needs a positive number, not ${v}`)
    return n
  }
  return {
    only: only as Options['only'], pcapMiB: num('pcap-mib', values['pcap-mib']), clusterMiB: num('cluster-mib', values['cluster-mib']), flows: Math.round(num('flows', values.flows)),
    ops: Math.round(num('ops', values.ops)), maxSeconds: num('max-seconds', values['max-seconds']),
    rounds: Math.round(num('rounds', values.rounds)), budget: num('budget', values.budget), keep: values.keep ?? false,
  }
}

const summary: ResultRow[] = []
const verdicts: string[] = []

async function recordTour(dir: string): Promise<{ path: string; units: UnitInfo[]; calls: number }> {
  const path = join(dir, 'tour.pcap')
  const r = await runTour({ pcapPath: path })
  const units = classifyUnits(r.recording!.units)
  return { path, units, calls: r.calls.length }
}

function describeTour(t: { units: UnitInfo[]; calls: number }): void {
  const msgs = t.units.reduce((a, u) => a + u.lustreMsgs, 0)
  const msgBytes = t.units.reduce((a, u) => a + u.msgBytes, 0)
  const bulk = t.units.filter(u => u.bulkBytes > 0).map(u => u.bulkBytes)
  const total = t.units.reduce((a, u) => a + u.bytes.length, 0)
  console.log(`tour: ${t.calls} RPCs (every request format of spec/rpc once, lock callbacks server->client, one error reply), ` +
    `${t.units.length} socklnd units, ${fmtInt(total)} bytes`)
  console.log(`      ${msgs} lustre_msg (${fmtInt(msgBytes)} bytes, ${(msgBytes / msgs).toFixed(0)} on average), ` +
    `bulk payloads ${bulk.map(b => `${b / 1024} KiB`).join(' + ')}`)
}

function messageRates(tour: { path: string; units: UnitInfo[] }, o: Options): void {
  section('Message rates (lustre_msg payloads of the tour, round-robin)')
  const samples = collectSamples(tour.path)
  const kinds = new Map<string, number>()
  for (const s of samples) kinds.set(s.msg.kind, (kinds.get(s.msg.kind) ?? 0) + 1)
  console.log(`${samples.length} messages: ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}; ` +
    `sizes ${Math.min(...samples.map(s => s.bytes.length))}-${Math.max(...samples.map(s => s.bytes.length))} bytes`)
  for (const line of checkSamples(samples)) console.log(`check: ${line}`)
  console.log(`timing up to ${fmtInt(o.ops)} ops per measure (stopping at ${o.maxSeconds} s) after ${fmtInt(20_000)} warm-up ops\n`)
  const rows = benchMessages(samples, { ops: o.ops, warmup: 20_000, maxSeconds: o.maxSeconds })
  const stream = buildStream(tour.units, 16 << 20, 64 << 10)
  rows.push(...benchFraming(stream, Math.min(o.maxSeconds, 4)))
  printRows(rows)
  console.log(`(framing stream: the tour's client side, ${(stream.bytes / 1e6).toFixed(1)} MB, ${fmtInt(stream.frames)} frames per pass, bulk included)`)
  summary.push(...rows)
}

interface Timed { seconds: number; cpu?: number; runs: number }

function pcapRow(what: string, run: Timed & { messages?: number }, bytes: number, tshark: Timed | undefined): ResultRow {
  const ours = bytes / run.seconds
  const base = tshark ? bytes / tshark.seconds : undefined
  const cpuRatio = tshark?.cpu && run.cpu ? ` (by CPU time ${fmtRatio(tshark.cpu / run.cpu)})` : ''
  const msgs = run.messages !== undefined ? `, ${fmtRate(run.messages / run.seconds)} msgs/s` : ''
  return {
    what, ours: fmtMB(ours), unit: 'MB/s', baseline: tshark ? `tshark -e ${TSHARK_FIELD}` : 'tshark (skipped)',
    baselineValue: base ? fmtMB(base) : '-', ratio: base ? fmtRatio(ours / base) + cpuRatio : '-',
    note: `${run.seconds.toFixed(2)} s wall (${run.runs > 1 ? `best of ${run.runs}` : 'one run'}), ${run.cpu?.toFixed(2) ?? '?'} s CPU${msgs}`,
  }
}

async function largeCapture(tour: { units: UnitInfo[] }, dir: string, o: Options): Promise<void> {
  section(`Large capture (>= ${o.pcapMiB} MiB)`)
  const path = join(dir, 'large.pcap')
  const g = await generatePcap(path, tour.units, o.flows, o.pcapMiB * 2 ** 20)
  const mixed = g.msgBytes + g.bulkBytes
  console.log(`generated ${path} in ${g.seconds.toFixed(1)} s: ${fmtInt(g.bytes)} bytes (${(g.bytes / 2 ** 20).toFixed(1)} MiB), ${fmtInt(g.packets)} frames`)
  console.log(`mix: ${g.flows} TCP connections to :988, each opened with connreq + hellos, then the tour replayed ${fmtInt(g.replays)} times in all ` +
    `(${g.unitsPerReplay} units and ${g.msgsPerReplay} lustre_msg per replay)`)
  console.log(`     ${fmtInt(g.messages)} lustre_msg = ${(100 * g.msgBytes / mixed).toFixed(0)}% of LNet payload bytes; ` +
    `bulk (8 KiB OST_READ/OST_WRITE, 4 KiB MDS_READPAGE) ${(100 * g.bulkBytes / mixed).toFixed(0)}%; ` +
    `headers (pcap, Ethernet/IP/TCP, socklnd, LNet) ${(100 * (g.bytes - mixed) / g.bytes).toFixed(0)}% of the file`)

  const probe = probeTshark()
  console.log(probe.skip ? `tshark: comparison skipped: ${probe.skip}` : `tshark: ${probe.path} (${probe.version})`)
  let tsharkPath = probe.path
  let counted: ReturnType<typeof countTshark> | undefined
  if (tsharkPath) {
    try {
      counted = countTshark(tsharkPath, path)
    } catch (e) {
      console.log(`tshark failed, comparison skipped: ${(e as Error).message.split('\n')[0]}`)
      tsharkPath = undefined
    }
  }

  // Rounds of (ours as objects, tshark, ours as JSON Lines), interleaved so that a
  // change in machine load hits all three alike; the fastest of each is kept.
  console.log(`timing in rounds (up to ${o.rounds}, stopping once ${o.budget} s are spent): decodeTrace (objects); ` +
    `tshark -r FILE -T fields -e ${TSHARK_FIELD} > /dev/null; decodeTrace + eventToJson + JSON.stringify to /dev/null (JSON Lines, as \`lustre-conformance decode\`); ` +
    `\`lustre-conformance decode FILE --field ptlrpc_body.pb_opc > /dev/null\` as a process`)
  const objectRuns: DecodeRun[] = []
  const jsonRuns: DecodeRun[] = []
  const tsharkRuns: TsharkRun[] = []
  const cliRuns: TsharkRun[] = []
  // One untimed decode first, as the message-rate rows warm up: the JIT compiles the hot path
  // once per process, a cost the CLI row below shows (node start-up and warm-up included).
  runOurDecode(path, false)
  const phase = nowMs()
  for (let round = 1; round <= o.rounds; round++) {
    const t = nowMs()
    objectRuns.push(runOurDecode(path, false))
    if (tsharkPath) tsharkRuns.push(runTshark(tsharkPath, path))
    jsonRuns.push(runOurDecode(path, true))
    cliRuns.push(runOurCli(path))
    const last = (x: { seconds: number }[]): string => x.length ? x[x.length - 1].seconds.toFixed(2) : '-'
    console.log(`  round ${round}: objects ${last(objectRuns)} s, tshark ${last(tsharkRuns)} s, JSON Lines ${last(jsonRuns)} s, CLI --field ${last(cliRuns)} s`)
    const spent = (nowMs() - phase) / 1000
    if (spent + (nowMs() - t) / 1000 > o.budget) break
  }
  const objects = fastest(objectRuns)
  const jsonl = fastest(jsonRuns)
  const tshark = tsharkRuns.length ? fastest(tsharkRuns) : undefined
  const capture = runStages(path, false)
  const framing = runStages(path, true)
  console.log()
  const rows = [
    pcapRow('decode (objects): decodeTrace', objects, g.bytes, tshark),
    pcapRow('decode (JSON Lines): + eventToJson', jsonl, g.bytes, tshark),
    // Process to process, same question, same output size: node start-up and JIT warm-up included.
    pcapRow('CLI process: decode --field pb_opc', { ...fastest(cliRuns), messages: objects.messages }, g.bytes, tshark),
  ]
  printRows([
    ...rows,
    pcapRow('  stage: pcap records + TCP reassembly', { ...capture, runs: 1 }, g.bytes, tshark),
    pcapRow('  stage: + socklnd FrameDecoder', { ...framing, runs: 1 }, g.bytes, tshark),
  ])
  if (tshark) console.log(`tshark: ${tshark.seconds.toFixed(2)} s wall (best of ${tshark.runs}), ${tshark.cpu?.toFixed(2) ?? '?'} s CPU, ${fmtMB(g.bytes / tshark.seconds)} MB/s`)
  console.log(`JSON Lines output: ${(jsonl.jsonBytes / 1e6).toFixed(0)} MB; decode errors: ${objects.errors}; ` +
    `stages are single runs, showing how much of decodeTrace's time is below decodeMessage`)

  // Same messages found?
  console.log(`\nlustre messages: ours ${fmtInt(objects.messages)} (the generator wrote ${fmtInt(g.messages)})` +
    (counted ? `, tshark ${fmtInt(counted.values!)} ${TSHARK_FIELD} values` : ''))
  if (counted) {
    const diff = histogramDiff(objects.opcs, counted.opcs!)
    const same = objects.messages === counted.values && diff.length === 0
    console.log(same ? `counts match, opcode by opcode (${objects.opcs.size} opcodes)` : `MISMATCH: ours vs tshark by opc: ${diff.slice(0, 10).join('; ')}`)
    if (!same) process.exitCode = 1
    verdicts.push(`message count: ours ${fmtInt(objects.messages)}, tshark ${fmtInt(counted.values!)} -> ${same ? 'same (and same per opcode)' : 'MISMATCH'}`)
  }
  if (objects.messages !== g.messages) {
    console.log(`MISMATCH: the generator wrote ${g.messages} lustre_msg`)
    process.exitCode = 1
  }
  if (tshark) {
    const verdict = (name: string, r: DecodeRun & { runs: number }): string => {
      const x = tshark.seconds / r.seconds
      const cpu = tshark.cpu ? `, by CPU time ${fmtRatio(tshark.cpu / r.cpu)}` : ''
      return `${name} ${fmtRatio(x)} -> ${x >= TARGET ? 'MET' : 'NOT MET'}${cpu}`
    }
    // The target compares like with like: our decoder reading the field tshark prints, both from
    // the same file. The other two rows are shown beside it, not held to it: JSON Lines writes
    // every member of every message (tshark writes one number), and a CLI process pays node's
    // start-up and the JIT's warm-up once per file, which weigh less as the file grows.
    verdicts.push(`target: decode >= ${TARGET}x tshark's rate (wall time): ${verdict('decode (objects)', objects)}`)
    const cli = fastest(cliRuns)
    verdicts.push(`  also shown: JSON Lines ${fmtRatio(tshark.seconds / jsonl.seconds)} (every member of every message, tshark prints one field); ` +
      `CLI process ${fmtRatio(tshark.seconds / cli.seconds)} (node start-up and JIT warm-up included; they weigh less on a larger --pcap-mib)`)
  } else {
    verdicts.push(`target: decode >= ${TARGET}x tshark's rate: not checked (tshark skipped)`)
  }
  summary.push(...rows)
}

const CLUSTER_TRANSFER_TARGET = 0.5
const CLUSTER_METADATA_TARGET = 0.3

async function clusterBench(dir: string, o: Options): Promise<void> {
  section(`Reference cluster (MDS + 1 OSS with 4 OSTs, separate processes, loopback)`)
  const bytes = o.clusterMiB * 2 ** 20
  const small = Math.max(2 ** 20, Math.floor(bytes / 4))
  const tcp = await rawTcp(bytes)
  console.log(`raw TCP, node process to node process on loopback, 1 MiB writes: ${fmtMB(tcp * 1e6)} MB/s`)
  // The storage's own ceiling, beside the network's: the OSS writes every byte to a new file there.
  const disk = await localFile(dir, bytes)
  console.log(`local file in the data directory, 1 MiB pwrite / pread, no network: write ${fmtMB(disk.writeMBs * 1e6)} MB/s, read ${fmtMB(disk.readMBs * 1e6)} MB/s`)
  const [x, s, md] = await withCluster(dir, async c => {
    // Metadata first: after a transfer the host is still writing back gigabytes of dirty
    // pages, and every MDS commit's fsync would wait behind them.
    const md = await metadataRates(c, 8, Math.min(o.maxSeconds, 5))
    // The smaller transfer first: peak RSS at two sizes shows whether it grows with the file.
    const s = await transfer(c, small, 'small')
    const x = await transfer(c, bytes, 'large')
    return [x, s, md] as const
  })
  const rows: ResultRow[] = [
    { what: `write ${o.clusterMiB} MiB, -c 4 -S 1M`, ours: fmtMB(x.writeMBs * 1e6), unit: 'MB/s', baseline: 'raw TCP loopback', baselineValue: fmtMB(tcp * 1e6), ratio: fmtRatio(x.writeMBs / tcp), note: `${x.verified ? 'read back byte-identical' : 'READ BACK DIFFERS'}; ${fmtRatio(x.writeMBs / disk.writeMBs)} of a local file write` },
    { what: `read ${o.clusterMiB} MiB, -c 4 -S 1M`, ours: fmtMB(x.readMBs * 1e6), unit: 'MB/s', baseline: 'raw TCP loopback', baselineValue: fmtMB(tcp * 1e6), ratio: fmtRatio(x.readMBs / tcp), note: `${fmtRatio(x.readMBs / disk.readMBs)} of a local file read` },
    { what: 'create+stat+unlink, 8 clients', ours: fmtRate(md.opsPerSec), unit: 'ops/s', baseline: 'OBD_PING, 8 clients', baselineValue: fmtRate(md.pingsPerSec), ratio: fmtRatio(md.opsPerSec / md.pingsPerSec), note: 'each of create, stat, unlink counts as one op' },
  ]
  printRows(rows)
  const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`
  console.log(`peak RSS of the servers (MDS + OSS): ${mib(s.peakRss)} during ${mib(small)}, ${mib(x.peakRss)} during ${mib(bytes)}`)
  if (!x.verified || !s.verified) process.exitCode = 1
  summary.push(...rows)
  const io = Math.min(x.writeMBs, x.readMBs) / tcp
  verdicts.push(`target: cluster transfer >= ${CLUSTER_TRANSFER_TARGET * 100}% of raw TCP: ${(io * 100).toFixed(0)}% (the slower of write and read) -> ${io >= CLUSTER_TRANSFER_TARGET ? 'MET' : 'NOT MET'}`)
  const mdr = md.opsPerSec / md.pingsPerSec
  verdicts.push(`target: metadata ops >= ${CLUSTER_METADATA_TARGET * 100}% of OBD_PING rate: ${(mdr * 100).toFixed(0)}% -> ${mdr >= CLUSTER_METADATA_TARGET ? 'MET' : 'NOT MET'}`)
  verdicts.push(`server peak RSS: ${mib(s.peakRss)} at ${mib(small)}, ${mib(x.peakRss)} at ${mib(bytes)} -> ${x.peakRss <= s.peakRss * 1.25 + 32 * 2 ** 20 ? 'does not grow with file size' : 'GROWS with file size'}`)
}

const LOCK_BYTES_TARGET = 1024

async function lockBench(dir: string, o: Options): Promise<void> {
  section('Lock manager (LDLM on the reference MDS, 8 clients, loopback)')
  const r = await withCluster(dir, c => lockRates(c, 8, Math.min(o.maxSeconds, 3)))
  const perLock = bytesPerLock(1_000_000)
  const rows: ResultRow[] = [
    { what: 'enqueue+cancel, 8 clients, uncontended', ours: fmtRate(r.uncontended), unit: 'cycles/s', baseline: 'OBD_PING, 8 clients', baselineValue: fmtRate(r.pings), ratio: fmtRatio(r.uncontended / r.pings), note: 'EX inode bits lock, one resource per client; a cycle is 2 RPCs' },
    { what: 'enqueue+cancel, 8 clients, one resource', ours: fmtRate(r.contended), unit: 'cycles/s', baseline: 'OBD_PING, 8 clients', baselineValue: fmtRate(r.pings), ratio: fmtRatio(r.contended / r.pings), note: 'each grant after the first: BL AST, cancel, CP AST' },
  ]
  printRows(rows)
  console.log(`lock engine with 1,000,000 granted locks: ${perLock.toFixed(0)} bytes per lock`)
  summary.push(...rows)
  verdicts.push(`target: <= ${LOCK_BYTES_TARGET} bytes per granted lock at 1,000,000 locks: ${perLock.toFixed(0)} -> ${perLock <= LOCK_BYTES_TARGET ? 'MET' : 'NOT MET'}`)
}

const CERTIFY_TARGET_S = 60

async function certifyBench(dir: string): Promise<void> {
  section('Certification of the reference (certify --reference: 4 OSTs, every suite, in a child process)')
  const out = join(dir, 'certify-report')
  const setup = await certifyOnce(['--only', 'no.such.test'])
  const bare = await certifyOnce([])
  const full = await certifyOnce(['--out', out])
  for (const [what, r] of [['no test', setup], ['every suite', bare], ['every suite, --out', full]] as const) {
    if (r.exitCode !== 0) throw new Error(`certify --reference (${what}) exited ${r.exitCode}: ${r.summary}`)
  }
  const rows: ResultRow[] = [
    { what: 'every suite, no reports', ours: bare.seconds.toFixed(1), unit: 's', baseline: 'the same selecting no test', baselineValue: setup.seconds.toFixed(1), ratio: fmtRatio(bare.seconds / setup.seconds), note: bare.summary },
    { what: 'every suite, reports and pcaps (npm start)', ours: full.seconds.toFixed(1), unit: 's', baseline: 'every suite, no reports', baselineValue: bare.seconds.toFixed(1), ratio: fmtRatio(full.seconds / bare.seconds), note: full.summary },
  ]
  printRows(rows)
  const { suites, slowest } = suiteTimes(join(out, 'report.json'))
  console.log(table(['suite', 'tests', 'seconds'], suites.map(x => [x.suite, String(x.tests), x.seconds.toFixed(1)]), [1, 2]))
  console.log(`slowest: ${slowest.map(x => `${x.id} ${x.seconds.toFixed(1)} s`).join(', ')}`)
  summary.push(...rows)
  verdicts.push(`target: a full certification of the reference in < ${CERTIFY_TARGET_S} s: ${full.seconds.toFixed(1)} s -> ${full.seconds < CERTIFY_TARGET_S ? 'MET' : 'NOT MET'}`)
}

async function main(): Promise<void> {
  const o = options()
  const t0 = Date.now()
  console.log(`lustre-conformance bench: node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ` +
    `load average ${loadavg().map(x => x.toFixed(2)).join(' ')}`)
  console.log('rule: every figure is set beside a baseline measured in this run; compare the ratios, not the absolute numbers')
  const dir = makeTempDir()
  try {
    section('Tour')
    const tour = await recordTour(dir)
    describeTour(tour)
    if (o.only === undefined || o.only === 'messages') messageRates(tour, o)
    if (o.only === undefined || o.only === 'pcap') await largeCapture(tour, dir, o)
    if (o.only === undefined || o.only === 'cluster') await clusterBench(dir, o)
    if (o.only === undefined || o.only === 'locks') await lockBench(dir, o)
    if (o.only === undefined || o.only === 'certify') await certifyBench(dir)
    section('Summary')
    console.log(table(
      ['measure', 'ours', 'unit', 'baseline', 'ours/baseline'],
      summary.map(r => [r.what, r.ours, r.unit, `${r.baselineValue} (${r.baseline})`, r.ratio]),
      [1, 4],
    ))
    for (const v of verdicts) console.log(v)
    console.log(`\ntotal ${((Date.now() - t0) / 1000).toFixed(0)} s; load average now ${loadavg().map(x => x.toFixed(2)).join(' ')}`)
  } finally {
    if (o.keep) console.log(`kept ${dir}`)
    else removeTemp()
  }
}

main().catch(e => {
  removeTemp()
  console.error(e)
  process.exitCode = 1
})
