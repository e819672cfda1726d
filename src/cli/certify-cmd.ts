// `certify`: runs the conformance suites against a target reached by address only, and
// prints TAP 14. Exit status 0 only when no test failed or erred; unsupported is not a failure.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { packageRoot } from '../wire/index.js'
import { allTests, requirements, select, runTests, requirementVerdicts, tapHeader, tapLine, tapSummary, type TargetAddress } from '../../conformance/index.js'

interface TargetFile { mds: string; oss: string[]; fsname?: string }

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
    console.error('usage: lustre-conformance certify (--target target.json | --mds ADDR --oss ADDR...) [--only GLOB]... [--except GLOB]... [--seed N] [--timeout MS] [--list]')
    return 2
  }
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 0x7fffffff)
  const timeoutMs = Number(values.timeout)
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new Error('--seed and --timeout take integers')
  const target: TargetAddress = { mds, oss, fsname: values.fsname ?? file?.fsname ?? 'lustre' }
  process.stdout.write(tapHeader(tests.length, seed))
  const results = await runTests(tests, target, { seed, timeoutMs, onResult: (r, i) => process.stdout.write(tapLine(r, i + 1)) })
  process.stdout.write(tapSummary(results))
  const reqs = requirementVerdicts(requirements().map(r => r.id), allTests, results)
  const uncovered = [...reqs].filter(([, v]) => v === 'uncovered').map(([id]) => id)
  process.stdout.write(`# requirements: ${[...reqs.values()].filter(v => v === 'pass').length} pass, ${[...reqs.values()].filter(v => v === 'fail').length} fail, ${uncovered.length} covered by no test${uncovered.length ? ` (${uncovered.join(', ')})` : ''}\n`)
  process.stdout.write(`# seed ${seed}: --seed ${seed} reproduces this run\n`)
  return results.some(r => r.verdict.kind === 'fail' || r.verdict.kind === 'error') ? 1 : 0
}
