// `certify`: runs the conformance suites against a target reached by address only, and
// prints TAP 14. Exit status 0 only when no test failed or erred; unsupported is not a failure.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { pcapRecorderFactory, type TourRecording } from '../tour/index.js'
import { parseArgs } from 'node:util'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { packageRoot } from '../wire/index.js'
import {
  exchangeFrames, unreachable, allTests, requirements, select, runTests, requirementVerdicts, tapHeader, tapLine, tapSummary, jsonReport, junitReport, htmlReport,
  loadExpectations, checkExpectations, terminalProgress, type TargetAddress,
} from '../../conformance/index.js'
import { startCluster, type RunningCluster } from '../../reference/cluster/index.js'

interface TargetFile { mds: string; oss: string[]; fsname?: string; lockTimeoutMs?: number }

function loadTarget(path: string): TargetFile {
  const schema = JSON.parse(readFileSync(join(packageRoot(), 'spec', 'target.schema.json'), 'utf8'))
  const data = JSON.parse(readFileSync(path, 'utf8')) as TargetFile
  const ajv = new Ajv2020({ allErrors: true, strict: false })
  if (!ajv.validate(schema, data)) throw new Error(`${path}: ${ajv.errorsText(ajv.errors)}`)
  return data
}

export async function certifyCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      target: { type: 'string' }, mds: { type: 'string' }, oss: { type: 'string', multiple: true }, fsname: { type: 'string' },
      only: { type: 'string', multiple: true }, except: { type: 'string', multiple: true },
      seed: { type: 'string' }, timeout: { type: 'string', default: '30000' }, list: { type: 'boolean', default: false },
      json: { type: 'string' }, junit: { type: 'string' }, 'pcap-dir': { type: 'string' }, 'lock-timeout': { type: 'string' },
      reference: { type: 'boolean', default: false }, out: { type: 'string' }, html: { type: 'string' }, expect: { type: 'string' },
    },
  })
  if (values.list) {
    for (const t of select(allTests, values.only, values.except)) console.log(`${t.id}\t${t.tags.join(',')}\t${t.requirements.join(',')}\t${t.title}`)
    return 0
  }
  // --reference: the reference cluster, started here in a temporary directory, is the target.
  let reference: RunningCluster | undefined
  let referenceDir: string | undefined
  if (values.reference) {
    referenceDir = mkdtempSync(join(tmpdir(), 'lustre-certify-'))
    reference = await startCluster({ dir: referenceDir, osts: 4, mdsPort: 0, ossPort: 0, lockTimeoutMs: REFERENCE_LOCK_TIMEOUT_MS })
    values['lock-timeout'] ??= String(REFERENCE_LOCK_TIMEOUT_MS)
  }
  // --out DIR: every report in one folder (TAP still goes to stdout).
  if (values.out) {
    values.json ??= join(values.out, 'report.json')
    values.junit ??= join(values.out, 'junit.xml')
    values['pcap-dir'] ??= join(values.out, 'pcap')
    values.html ??= join(values.out, 'report.html')
  }
  try {
    return await certify(values, reference)
  } finally {
    await reference?.stop()
    if (referenceDir) rmSync(referenceDir, { recursive: true, force: true })
  }
}

/** The reference's callback timeout in a certification of it: short, so that the eviction tests run quickly. */
const REFERENCE_LOCK_TIMEOUT_MS = 2000

type Values = Record<string, string | string[] | boolean | undefined>

async function certify(values: Values & { only?: string[]; except?: string[] }, reference: RunningCluster | undefined): Promise<number> {
  const tests = select(allTests, values.only, values.except)
  const file = typeof values.target === 'string' ? loadTarget(values.target) : undefined
  const mds = reference?.mdsAddress ?? (values.mds as string | undefined) ?? file?.mds
  const oss = reference?.ossAddresses ?? (values.oss as string[] | undefined) ?? file?.oss ?? []
  if (!mds) {
    console.error('usage: lustre-conformance certify (--target target.json | --mds ADDR --oss ADDR... | --reference) [--only GLOB]... [--except GLOB]... [--seed N] [--timeout MS] [--lock-timeout MS] [--list] [--out DIR] [--json FILE] [--junit FILE] [--html FILE] [--pcap-dir DIR] [--expect FILE]')
    return 2
  }
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 0x7fffffff)
  const timeoutMs = Number(values.timeout)
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new Error('--seed and --timeout take integers')
  const target: TargetAddress = { mds, oss, fsname: (values.fsname as string | undefined) ?? file?.fsname ?? 'lustre', lockTimeoutMs: values['lock-timeout'] !== undefined ? Number(values['lock-timeout']) : file?.lockTimeoutMs }
  const away = await unreachable(target)
  if (away.length) {
    for (const u of away) console.error(`lustre-conformance certify: cannot reach the ${u.role} at ${u.address}: ${u.reason}`)
    console.error('lustre-conformance certify: nothing was certified')
    return 2
  }
  // One pcap per test, each connection recorded by the harness (the side that opens it).
  const pcapDir = typeof values['pcap-dir'] === 'string' ? resolve(values['pcap-dir']) : undefined
  const recordings = new Map<string, TourRecording>()
  if (pcapDir) mkdirSync(pcapDir, { recursive: true })
  const recorderFor = pcapDir ? (id: string) => {
    const rec = pcapRecorderFactory(join(pcapDir, `${id}.pcap`), { keepUnits: false })
    recordings.set(id, rec)
    return rec.factory
  } : undefined
  const expectations = typeof values.expect === 'string' ? loadExpectations(values.expect) : undefined
  const startedAt = new Date()
  process.stdout.write(tapHeader(tests.length, seed))
  // On a terminal, a live line on stderr says where the run is (TAP on stdout stays clean).
  const progress = terminalProgress(process.stderr, tests.length)
  const results = await runTests(tests, target, {
    seed, timeoutMs, recorderFor,
    // The test's pcap is complete once its sessions are closed: close it, and find the frames a failure is about.
    afterTest: async r => {
      const rec = recordings.get(r.id)
      if (!rec) return
      try {
        await rec.close()
        if (r.verdict.kind === 'fail' && r.verdict.exchange) r.verdict.frames = exchangeFrames(readFileSync(join(pcapDir!, `${r.id}.pcap`)), r.verdict.exchange)
      } catch (e) {
        // The verdict stands without its frames; the run goes on.
        r.notes.push(`the pcap could not be written or read back: ${(e as Error).message}`)
      }
    },
    onStart: t => progress.onStart(t.id),
    onResult: (r, i) => {
      progress.onResult(r)
      // A known failure is a TAP TODO: it shows, and does not count as a new failure.
      const why = expectations?.failures[r.id]
      const line = tapLine(r, i + 1)
      process.stdout.write(why && r.verdict.kind !== 'pass' ? line.replace(/\n/, ` # TODO known failure: ${why}\n`) : line)
    },
  })
  progress.end()
  for (const rec of recordings.values()) await rec.close()
  process.stdout.write(tapSummary(results))
  const catalogue = requirements()
  const reqs = requirementVerdicts(catalogue.map(r => r.id), allTests, results)
  const record = {
    target, seed, startedAt, durationMs: Date.now() - startedAt.getTime(), results,
    requirements: catalogue.map(q => ({ id: q.id, text: q.text, source: q.source, verdict: reqs.get(q.id)! })),
    pcaps: (base: string) => new Map([...recordings.keys()].map(id => [id, relative(dirname(base), join(pcapDir!, `${id}.pcap`))])),
  }
  const write = (path: string, text: string): void => { mkdirSync(dirname(resolve(path)), { recursive: true }); writeFileSync(path, text) }
  const json = typeof values.json === 'string' ? values.json : undefined
  const junit = typeof values.junit === 'string' ? values.junit : undefined
  if (json) write(json, `${JSON.stringify(jsonReport({ ...record, pcaps: pcapDir ? record.pcaps(resolve(json)) : undefined }), null, 2)}\n`)
  if (junit) write(junit, junitReport({ ...record, pcaps: undefined }))
  const html = typeof values.html === 'string' ? values.html : undefined
  if (html) {
    write(html, htmlReport({ ...record, pcaps: undefined }, id => (pcapDir && recordings.has(id)
      ? { file: join(pcapDir, `${id}.pcap`), href: relative(dirname(resolve(html)), join(pcapDir, `${id}.pcap`)) }
      : undefined)))
  }
  const uncovered = [...reqs].filter(([, v]) => v === 'uncovered').map(([id]) => id)
  const nReq = (k: string): number => [...reqs.values()].filter(v => v === k).length
  process.stdout.write(`# requirements: ${nReq('pass')} pass, ${nReq('fail')} fail${nReq('blocked') ? `, ${nReq('blocked')} blocked by other failures` : ''}, ${uncovered.length} covered by no test${uncovered.length ? ` (${uncovered.join(', ')})` : ''}\n`)
  process.stdout.write(`# seed ${seed}: --seed ${seed} reproduces this run\n`)
  if (html) process.stdout.write(`# HTML report: ${html}\n`)
  if (json) process.stdout.write(`# report: ${json}${junit ? `, JUnit: ${junit}` : ''}${pcapDir ? `, a pcap per test in ${pcapDir}` : ''}\n`)
  if (expectations) {
    const c = checkExpectations(results, expectations)
    process.stdout.write(`# expectations (${expectations.target}): ${c.expected.length} known failures, ${c.unexpectedFailures.length} new failures${c.unexpectedFailures.length ? ` (${c.unexpectedFailures.join(', ')})` : ''}, ${c.unexpectedPasses.length} unexpected passes${c.unexpectedPasses.length ? ` (${c.unexpectedPasses.join(', ')})` : ''}\n`)
    return c.unexpectedFailures.length || c.unexpectedPasses.length ? 1 : 0
  }
  return results.some(r => r.verdict.kind === 'fail' || r.verdict.kind === 'error') ? 1 : 0
}
