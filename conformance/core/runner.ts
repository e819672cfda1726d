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

/** An exchange a failure can be about: a session's latest, with the service it went to. */
interface Exchanged { service: 'mds' | 'ost'; seq: number; format: string; xid: bigint }

function context(target: TargetAddress, test: ConformanceTest, o: RunOptions, sessions: TargetSession[], notes: string[], pin: { about?: Exchanged }): TestContext {
  const recorder = o.recorderFor?.(test.id)
  const open = async (service: 'mds' | 'ost', address: string, targetUuid: string, flags: bigint): Promise<TargetSession> => {
    // An OST connect with OBD_CONNECT_INDEX names the index it means (lov_connect_osc); the OFD checks it.
    const index = /-OST([0-9a-f]{4})_UUID$/.exec(targetUuid)
    const s = await TargetSession.open({ service, address, targetUuid, flags, pid: nextPid++, recorder, ocd: service === 'mds' ? { ocd_ibits_known: C('MDS_INODELOCK_FULL') } : { ocd_brw_size: 1 << 20, ocd_index: index ? parseInt(index[1], 16) : 0 } })
    sessions.push(s)
    return s
  }
  return {
    target, recorder,
    random: seededRandom(o.seed, test.id),
    note: line => notes.push(line),
    about: s => { if (s.last) pin.about = { service: s.service, ...s.last } },
    mds: opts => open('mds', target.mds, `${target.fsname}-MDT0000_UUID`, opts?.flags ?? MDS_FLAGS),
    async ost(index, opts) {
      const uuid = `${target.fsname}-OST${index.toString(16).padStart(4, '0')}_UUID`
      // Whichever OSS serves the OST answers its connect; the others say -ENODEV (or cannot be reached).
      // A connect reply that breaks the protocol is the target's failure, not a reason to try the next OSS.
      const tried: string[] = []
      for (const a of target.oss) {
        try {
          return await open('ost', a, uuid, opts?.flags ?? OST_FLAGS)
        } catch (e) {
          if (e instanceof Failure || (e instanceof TransportError && e.code === 'LC_RPC_BAD_REPLY')) throw e
          tried.push(`${a}: ${(e as Error).message}`)
        }
      }
      throw new Error(`no OSS serves ${uuid} (${tried.join('; ') || 'no OSS address given'})`)
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
    const pin: { about?: Exchanged } = {}
    const t0 = Date.now()
    let timer: NodeJS.Timeout | undefined
    let verdict: Verdict
    try {
      await Promise.race([
        t.run(context(target, t, o, sessions, notes, pin)),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no verdict within ${o.timeoutMs} ms`)), o.timeoutMs) }),
      ])
      verdict = { kind: 'pass' }
    } catch (e) {
      verdict = e instanceof Failure ? { kind: 'fail', message: e.message, expected: e.expected, observed: e.observed, ...(e.requirement ? { requirement: e.requirement } : {}) }
        // A reply that does not decode is the target's doing, not the harness's.
        : e instanceof TransportError && e.code === 'LC_RPC_BAD_REPLY' ? { kind: 'fail', message: 'a reply does not decode as its format lays it out', expected: 'a lustre_msg_v2 reply as spec/rpc lays it out', observed: e.message, requirement: 'WIRE-REPLY-DECODES' }
        : e instanceof Unsupported ? { kind: 'unsupported', reason: e.reason }
          : { kind: 'error', message: (e as Error).message ?? String(e) }
    } finally {
      clearTimeout(timer)
      await Promise.all(sessions.map(s => s.close().catch(() => {})))
    }
    // A failure points at the exchange the test named (ctx.about), else at its last one: tests check right after a call.
    const last = pin.about ?? sessions.filter(s => s.last).map(s => ({ service: s.service, ...s.last! })).sort((a, b) => b.seq - a.seq)[0]
    if (verdict.kind === 'fail' && last) verdict.exchange = { service: last.service, format: last.format, xid: String(last.xid) }
    const r: TestResult = { id: t.id, title: t.title, tags: t.tags, requirements: t.requirements, verdict, ms: Date.now() - t0, notes }
    await o.afterTest?.(r)
    out.push(r)
    o.onResult?.(r, i, tests.length)
  }
  return out
}

export type RequirementVerdict = 'pass' | 'fail' | 'unsupported' | 'error' | 'blocked' | 'not run' | 'uncovered'

const ORDER: RequirementVerdict[] = ['fail', 'error', 'blocked', 'pass', 'unsupported']

/**
 * A verdict per requirement, from its tests' verdicts: fail if one failed, else error, else
 * blocked, else pass if one passed, else unsupported; 'not run' when its tests were not
 * selected, 'uncovered' when no test cites it. A failure that names another requirement (a
 * reply that broke a wire rule on the way) fails that one and blocks the test's own.
 */
export function requirementVerdicts(catalogue: string[], all: ConformanceTest[], results: TestResult[]): Map<string, RequirementVerdict> {
  const out = new Map<string, RequirementVerdict>()
  for (const id of catalogue) {
    const kinds: RequirementVerdict[] = []
    for (const r of results) {
      const v = r.verdict
      if (v.kind === 'fail' && v.requirement) {
        if (v.requirement === id) kinds.push('fail')
        else if (r.requirements.includes(id)) kinds.push('blocked')
      } else if (r.requirements.includes(id)) kinds.push(v.kind)
    }
    if (!all.some(t => t.requirements.includes(id))) out.set(id, 'uncovered')
    else if (!kinds.length) out.set(id, 'not run')
    else out.set(id, ORDER.find(k => kinds.includes(k))!)
  }
  return out
}
