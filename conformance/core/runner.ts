// Runs conformance tests against a target: selection by globs on IDs and tags, one seed
// for every random choice, a time limit per test, the sessions a test opened closed after
// it whatever happened, and a verdict per test and per requirement.
import { createHash } from 'node:crypto'
import { constantOf, loadSpec } from '../../src/wire/index.js'
import { TransportError, type RecorderFactory } from '../../src/transport/index.js'
import { TargetSession } from '../wire/session.js'
import { Failure, Unsupported, type ConformanceTest, type TargetAddress, type TestContext, type Verdict } from './test.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

/** What the harness asks at connect: FIDs, the 2.0 protocol, inode bits locks. */
export const MDS_FLAGS = C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_IBITS') | C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20')
export const OST_FLAGS = C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_INDEX') | C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20') | C('OBD_CONNECT_BRW_SIZE')

export interface RunOptions {
  /** globs over test IDs and tags: a test runs when one matches (all run when empty) */
  only?: string[]
  /** globs over test IDs and tags: a test that one matches does not run */
  except?: string[]
  seed: number
  timeoutMs: number
  /** a pcap recorder for a test's connections, by test ID */
  recorderFor?: (id: string) => RecorderFactory | undefined
  onStart?: (t: ConformanceTest, index: number, total: number) => void
  onResult?: (r: TestResult, index: number, total: number) => void
  /** after a test's sessions are closed and before onResult (the CLI closes its pcap here, and finds the frames of a failure) */
  afterTest?: (r: TestResult) => Promise<void>
}

export interface TestResult {
  id: string
  title: string
  tags: string[]
  requirements: string[]
  verdict: Verdict
  ms: number
  notes: string[]
}

const globRe = (g: string): RegExp => new RegExp(`^${g.split('*').map(s => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`)

/** The tests `only` and `except` leave, in their order. */
export function select(tests: ConformanceTest[], only: string[] = [], except: string[] = []): ConformanceTest[] {
  const hit = (t: ConformanceTest, globs: string[]): boolean => globs.some(g => [t.id, ...t.tags].some(x => globRe(g).test(x)))
  return tests.filter(t => (!only.length || hit(t, only)) && !hit(t, except))
}

/** A generator of numbers in [0, 1) from the run's seed and a test's ID (sfc32 over a SHA-256 of both). */
export function seededRandom(seed: number, id: string): () => number {
  const h = createHash('sha256').update(`${seed}:${id}`).digest()
  let a = h.readUInt32LE(0), b = h.readUInt32LE(4), c = h.readUInt32LE(8), d = h.readUInt32LE(12)
  return () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0
    const t = (a + b + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = ((c << 21) | (c >>> 11)) + t
    return t / 4294967296
  }
}

let nextPid = 0x43520000 | (process.pid & 0xff) << 8

function context(target: TargetAddress, test: ConformanceTest, o: RunOptions, sessions: TargetSession[], notes: string[]): TestContext {
  const recorder = o.recorderFor?.(test.id)
  const open = async (service: 'mds' | 'ost', address: string, targetUuid: string, flags: bigint): Promise<TargetSession> => {
    const s = await TargetSession.open({ service, address, targetUuid, flags, pid: nextPid++, recorder, ocd: service === 'mds' ? { ocd_ibits_known: C('MDS_INODELOCK_FULL') } : { ocd_brw_size: 1 << 20 } })
    sessions.push(s)
    return s
  }
  return {
    target, recorder,
    random: seededRandom(o.seed, test.id),
    note: line => notes.push(line),
    mds: opts => open('mds', target.mds, `${target.fsname}-MDT0000_UUID`, opts?.flags ?? MDS_FLAGS),
    async ost(index, opts) {
      const uuid = `${target.fsname}-OST${index.toString(16).padStart(4, '0')}_UUID`
      // Whichever OSS serves the OST answers its connect; the others say -ENODEV.
      for (const a of target.oss) {
        try {
          return await open('ost', a, uuid, opts?.flags ?? OST_FLAGS)
        } catch { /* not this OSS */ }
      }
      throw new Error(`no OSS of ${target.oss.join(', ')} serves ${uuid}`)
    },
  }
}

/** Runs the tests in order; a test that does not settle within timeoutMs ends as an error. */
export async function runTests(tests: ConformanceTest[], target: TargetAddress, o: RunOptions): Promise<TestResult[]> {
  const out: TestResult[] = []
  for (const [i, t] of tests.entries()) {
    o.onStart?.(t, i, tests.length)
    const sessions: TargetSession[] = []
    const notes: string[] = []
    const t0 = Date.now()
    let timer: NodeJS.Timeout | undefined
    let verdict: Verdict
    try {
      await Promise.race([
        t.run(context(target, t, o, sessions, notes)),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no verdict within ${o.timeoutMs} ms`)), o.timeoutMs) }),
      ])
      verdict = { kind: 'pass' }
    } catch (e) {
      verdict = e instanceof Failure ? { kind: 'fail', message: e.message, expected: e.expected, observed: e.observed }
        // A reply that does not decode is the target's doing, not the harness's (WIRE-MSG-PAD8 and the formats).
        : e instanceof TransportError && e.code === 'LC_RPC_BAD_REPLY' ? { kind: 'fail', message: 'a reply does not decode as its format lays it out', expected: 'a lustre_msg_v2 reply as spec/rpc lays it out', observed: e.message }
        : e instanceof Unsupported ? { kind: 'unsupported', reason: e.reason }
          : { kind: 'error', message: (e as Error).message ?? String(e) }
    } finally {
      clearTimeout(timer)
      await Promise.all(sessions.map(s => s.close().catch(() => {})))
    }
    // A failure points at the test's last exchange: the one its check was about, as tests check right after a call.
    const last = sessions.filter(s => s.last).sort((a, b) => b.last!.seq - a.last!.seq)[0]
    if (verdict.kind === 'fail' && last?.last) verdict.exchange = { service: last.service, format: last.last.format, xid: String(last.last.xid) }
    const r: TestResult = { id: t.id, title: t.title, tags: t.tags, requirements: t.requirements, verdict, ms: Date.now() - t0, notes }
    await o.afterTest?.(r)
    out.push(r)
    o.onResult?.(r, i, tests.length)
  }
  return out
}

export type RequirementVerdict = 'pass' | 'fail' | 'unsupported' | 'error' | 'not run' | 'uncovered'

/**
 * A verdict per requirement: fail if any of its tests failed, else error, else pass if one
 * passed, else unsupported; 'not run' when its tests were not selected, 'uncovered' when no test cites it.
 */
export function requirementVerdicts(catalogue: string[], all: ConformanceTest[], results: TestResult[]): Map<string, RequirementVerdict> {
  const out = new Map<string, RequirementVerdict>()
  for (const id of catalogue) {
    const rs = results.filter(r => r.requirements.includes(id)).map(r => r.verdict.kind)
    if (!all.some(t => t.requirements.includes(id))) out.set(id, 'uncovered')
    else if (!rs.length) out.set(id, 'not run')
    else out.set(id, rs.includes('fail') ? 'fail' : rs.includes('error') ? 'error' : rs.includes('pass') ? 'pass' : 'unsupported')
  }
  return out
}
