// What a conformance test is and what it can end as. A test has a stable ID, tags, and
// the requirement IDs (spec/requirements) it checks; it runs against a target it reaches
// only by address, and ends as one of:
//  - pass;
//  - fail: the target did something the requirement forbids (expected vs observed);
//  - unsupported: the target did not advertise what the test needs (obd_connect_data),
//    which is not a failure;
//  - error: the harness or the environment broke (a refused connection, a timeout).
import type { RecorderFactory } from '../../src/transport/index.js'
import type { TargetSession } from '../wire/session.js'

export interface TargetAddress {
  /** the MDS: a NID (port 988) or host:port */
  mds: string
  /** OSS addresses; which OSTs each serves is learnt by connecting */
  oss: string[]
  fsname: string
  /** the target's lock callback timeout, when its operator says it (eviction tests need it) */
  lockTimeoutMs?: number
}

export interface TestContext {
  target: TargetAddress
  /** every random choice of the test derives from this (the run's seed and the test ID) */
  random(): number
  /** a new client session to the MDT, or to OST `index` (connected, recorded) */
  mds(opts?: { flags?: bigint }): Promise<TargetSession>
  ost(index: number, opts?: { flags?: bigint }): Promise<TargetSession>
  /** a line for the report, beside the verdict */
  note(line: string): void
  /** later failures are about this session's latest exchange (by default: the test's latest of all) */
  about(s: TargetSession): void
  recorder?: RecorderFactory
}

export interface ConformanceTest {
  /** stable, dotted: suite.topic.case (ldlm.compat.pw-pr) */
  id: string
  tags: string[]
  requirements: string[]
  title: string
  run(ctx: TestContext): Promise<void>
}

/** The request and reply a failure is about: the test's last exchange before it failed. */
export interface Exchange {
  service: 'mds' | 'ost'
  format: string
  /** decimal, as the reports carry u64 values */
  xid: string
}

export type Verdict =
  | { kind: 'pass' }
  | {
    kind: 'fail'; message: string; expected: string; observed: string
    /** the requirement the target broke, when it is not one the test checks (those are then blocked, not failed) */
    requirement?: string
    exchange?: Exchange
    frames?: number[]
  }
  | { kind: 'unsupported'; reason: string }
  | { kind: 'error'; message: string }

/** Thrown by a test when the target got it wrong. */
export class Failure extends Error {
  /**
   * `requirement`: what the target broke when it is not what the test checks (a reply that
   * does not decode, one short of its buffers), met on the way to the test's own check.
   */
  constructor(message: string, readonly expected: string, readonly observed: string, readonly requirement?: string) {
    super(message)
    this.name = 'Failure'
  }
}

/** Thrown by a test when the target does not offer what the test needs. */
export class Unsupported extends Error {
  constructor(readonly reason: string) {
    super(reason)
    this.name = 'Unsupported'
  }
}

const show = (v: unknown): string => (typeof v === 'bigint' ? `${v}` : typeof v === 'string' ? v : JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}` : x)))

/** Fails the test unless `observed` equals `expected`. */
export function expectEqual(what: string, observed: unknown, expected: unknown): void {
  if (show(observed) !== show(expected)) throw new Failure(what, show(expected), show(observed))
}

/** Fails the test unless `ok`. */
export function expectThat(what: string, ok: boolean, expected: string, observed: string): void {
  if (!ok) throw new Failure(what, expected, observed)
}
