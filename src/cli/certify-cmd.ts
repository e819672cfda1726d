// `certify`: runs the conformance suites against a target reached by address only, and
// prints TAP 14. Exit status 0 only when no test failed or erred; unsupported is not a failure.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { pcapRecorderFactory, type TourRecording } from '../tour/index.js'
import { parseArgs } from 'node:util'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { packageRoot } from '../wire/index.js'
import {
  allTests, requirements, select, runTests, requirementVerdicts, tapHeader, tapLine, tapSummary, jsonReport, junitReport, type TargetAddress,
} from '../../conformance/index.js'

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
    },
  })
  const tests = select(allTests, values.only, values.except)
  if (values.list) {
    for (const t of tests) console.log(`${t.id}\t${t.tags.join(',')}\t${t.requirements.join(',')}\t${t.title}`)
    return 0
  }
  const file = values.target ? loadTarget(values.target) : undefined
  const mds = values.mds ?? file?.mds
  const oss = values.oss ?? file?.oss ?? []
  if (!mds) {
    console.error('usage: lustre-conformance certify (--target target.json | --mds ADDR --oss ADDR...) [--only GLOB]... [--except GLOB]... [--seed N] [--timeout MS] [--list] [--json FILE] [--junit FILE] [--pcap-dir DIR]')
    return 2
  }
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 0x7fffffff)
  const timeoutMs = Number(values.timeout)
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new Error('--seed and --timeout take integers')
  const target: TargetAddress = { mds, oss, fsname: values.fsname ?? file?.fsname ?? 'lustre', lockTimeoutMs: values['lock-timeout'] !== undefined ? Number(values['lock-timeout']) : file?.lockTimeoutMs }
  // One pcap per test, each connection recorded by the harness (the side that opens it).
  const pcapDir = values['pcap-dir'] ? resolve(values['pcap-dir']) : undefined
  const recordings = new Map<string, TourRecording>()
  if (pcapDir) mkdirSync(pcapDir, { recursive: true })
  const recorderFor = pcapDir ? (id: string) => {
    const rec = pcapRecorderFactory(join(pcapDir, `${id}.pcap`), { keepUnits: false })
    recordings.set(id, rec)
    return rec.factory
  } : undefined
  const startedAt = new Date()
  process.stdout.write(tapHeader(tests.length, seed))
  const results = await runTests(tests, target, {
    seed, timeoutMs, recorderFor,
    onResult: async (r, i) => { process.stdout.write(tapLine(r, i + 1)) },
  })
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
  if (values.json) write(values.json, `${JSON.stringify(jsonReport({ ...record, pcaps: pcapDir ? record.pcaps(resolve(values.json)) : undefined }), null, 2)}
`)
  if (values.junit) write(values.junit, junitReport({ ...record, pcaps: undefined }))
  const uncovered = [...reqs].filter(([, v]) => v === 'uncovered').map(([id]) => id)
  process.stdout.write(`# requirements: ${[...reqs.values()].filter(v => v === 'pass').length} pass, ${[...reqs.values()].filter(v => v === 'fail').length} fail, ${uncovered.length} covered by no test${uncovered.length ? ` (${uncovered.join(', ')})` : ''}\n`)
  process.stdout.write(`# seed ${seed}: --seed ${seed} reproduces this run\n`)
  return results.some(r => r.verdict.kind === 'fail' || r.verdict.kind === 'error') ? 1 : 0
}
