// The lock server's state, one instance per namespace (an MDT or an OST), shared by the
// MDS and the OSS: resources with a granted list and a FIFO waiting list, as
// ldlm_resource keeps them. It decides and remembers; sending ASTs is the caller's job,
// so each operation returns what must now be sent:
//  - `blocking`: granted locks whose holders must get a BL AST (once per lock);
//  - `granted`: waiting locks granted now, whose holders must get a CP AST.
// A request is granted at once only if it conflicts with no granted lock and with no
// lock waiting before it (ldlm_process_*_lock with the waiting queue checked too), so a
// stream of compatible requests cannot starve a waiting one.
import { conflicts, grownExtent, overlaps, sameFlockOwner, type LockPolicy, type LockShape, type LockType } from './policy.js'
import { ALL_MODES, MODE, modeName } from './modes.js'

const MODE_NL = MODE.NL

export interface Lock extends LockShape {
  handle: bigint
  /** resource key: the type and the four ldlm_res_id words */
  resource: string
  /** the four ldlm_res_id.name words */
  name: readonly bigint[]
  /** what was asked (the extent before growing) */
  requested: LockPolicy
  state: 'granted' | 'waiting' | 'cancelled'
  /** a BL AST went out for this lock (LDLM_FL_AST_SENT) */
  blockingSent: boolean
}

export interface EnqueueRequest {
  owner: bigint
  type: LockType
  name: readonly bigint[]
  mode: number
  policy: LockPolicy
  /** LDLM_FL_BLOCK_NOWAIT: fail with EAGAIN rather than wait */
  noWait?: boolean
}

export interface Outcome {
  /** holders of these granted locks must get a BL AST now */
  blocking: Lock[]
  /** these waiting locks were granted: their holders get a CP AST */
  granted: Lock[]
  /** flocks merged into another or unlocked away: gone without an AST */
  removed?: Lock[]
}

/** Why a request is refused; `errno` names the Lustre errno the wire answer carries. */
export class LdlmError extends Error {
  constructor(readonly errno: 'EFAULT' | 'EINVAL' | 'EPROTO' | 'EDEADLK' | 'EAGAIN' | 'ENOENT', message: string) {
    super(message)
    this.name = 'LdlmError'
  }
}

interface Resource { granted: Lock[]; waiting: Lock[] }

/** Deliberate faults (a certifier's self-test needs servers it must fail). */
export interface LockFaults {
  /** grant every request at once, conflicts or not (and send no BL AST) */
  grantConflicting?: boolean
  /** send no BL AST: conflicting requests wait until a holder cancels of its own accord */
  skipBlockingAst?: boolean
}

export class LockEngine {
  private readonly resources = new Map<string, Resource>()
  private readonly byHandle = new Map<bigint, Lock>()
  /** flocks unlinked by the current operation */
  private removed: Lock[] = []
  private nextHandle: bigint

  /**
   * `firstHandle` lets two engines (or a restarted one) never hand out the same cookie.
   * `faults` make the engine deliberately wrong, for the harness's self-test (never on by default).
   */
  constructor(firstHandle = 0x1000n, private readonly faults: LockFaults = {}) {
    this.nextHandle = firstHandle
  }

  /**
   * Checks a request before anything is created. ldlm_handle_enqueue0 answers -EFAULT for a
   * mode that is not one bit of the known range; the other checks keep the engine's own
   * invariants (a range, bits) and answer as the caller maps them.
   */
  private validate(r: EnqueueRequest): void {
    if (!ALL_MODES.includes(r.mode)) throw new LdlmError('EFAULT', `lock mode ${r.mode} is not a mode`)
    if (r.name.length !== 4) throw new LdlmError('EPROTO', 'a resource name has four words')
    const range = r.policy.range
    if (r.type === 'extent' || r.type === 'flock') {
      if (!range) throw new LdlmError('EPROTO', `${r.type} lock without a range`)
      // Lustre has no explicit check (its interval tree asserts): a malformed request, -EPROTO.
      if (range.start > range.end) throw new LdlmError('EPROTO', `extent start ${range.start} is past its end ${range.end}`)
    }
    if (r.type === 'ibits' && !r.policy.bits) throw new LdlmError('EINVAL', 'inodebits lock with no bits')
    if (r.type === 'flock' && r.mode !== 2 && r.mode !== 4 && r.mode !== 32) throw new LdlmError('EINVAL', `flock mode ${modeName(r.mode)}`)
  }

  enqueue(r: EnqueueRequest): Outcome & { lock: Lock } {
    this.validate(r)
    const key = `${r.type}:${r.name.join(':')}`
    let res = this.resources.get(key)
    if (!res) this.resources.set(key, (res = { granted: [], waiting: [] }))
    const lock: Lock = {
      handle: this.nextHandle++, owner: r.owner, type: r.type, mode: r.mode, resource: key, name: [...r.name],
      policy: { ...r.policy }, requested: { ...r.policy }, state: 'waiting', blockingSent: false,
    }
    const blockers = this.faults.grantConflicting ? [] : res.granted.filter(g => conflicts(g, lock))
    const ahead = this.faults.grantConflicting ? [] : res.waiting.filter(w => conflicts(w, lock))
    if (blockers.length === 0 && ahead.length === 0) {
      this.byHandle.set(lock.handle, lock)
      // A flock may merge with, trim or split the owner's other flocks, or unlock (NL): what waited may go now.
      if (lock.type === 'flock') {
        this.removed = []
        const freed = this.flockApply(res, lock)
        return { lock, blocking: [], granted: freed ? this.reprocess(key) : [], removed: this.removed }
      }
      this.grant(res, lock)
      return { lock, blocking: [], granted: [] }
    }
    // ldlm_extent_compat_queue / ldlm_process_flock_lock answer -EAGAIN (EWOULDBLOCK) to a request that may not wait.
    if (r.noWait) throw new LdlmError('EAGAIN', `${modeName(r.mode)} on ${key} would wait`)
    if (r.type === 'flock') this.checkDeadlock(lock, [...blockers, ...ahead])
    res.waiting.push(lock)
    this.byHandle.set(lock.handle, lock)
    return { lock, blocking: this.toBlock(blockers), granted: [] }
  }

  /**
   * What a request would wait for, without creating a lock: the granted locks it conflicts
   * with and whether a conflicting lock waits ahead of it (a glimpse asks before enqueueing).
   */
  wouldWait(r: EnqueueRequest): { granted: Lock[]; behindWaiting: boolean } {
    this.validate(r)
    const res = this.resources.get(`${r.type}:${r.name.join(':')}`)
    if (!res) return { granted: [], behindWaiting: false }
    const shape = { owner: r.owner, type: r.type, mode: r.mode, policy: r.policy }
    return { granted: res.granted.filter(g => conflicts(g, shape)), behindWaiting: res.waiting.some(w => conflicts(w, shape)) }
  }

  /** LDLM_CANCEL of one lock by its holder; -ENOENT for a handle unknown to that owner. */
  cancel(handle: bigint, owner: bigint): Outcome {
    const lock = this.byHandle.get(handle)
    if (!lock || lock.owner !== owner) throw new LdlmError('ENOENT', `no lock ${handle} held by this export`)
    return this.drop([lock])
  }

  /** Eviction: every lock of `owner` goes, granted or waiting. */
  evict(owner: bigint): Outcome & { dropped: Lock[] } {
    const mine = [...this.byHandle.values()].filter(l => l.owner === owner)
    return { ...this.drop(mine), dropped: mine }
  }

  get(handle: bigint): Lock | undefined {
    return this.byHandle.get(handle)
  }

  /** Locks of a resource, granted first, in queue order (for tests and the model comparison). */
  locksOn(type: LockType, name: readonly bigint[]): { granted: Lock[]; waiting: Lock[] } {
    const res = this.resources.get(`${type}:${name.join(':')}`)
    return { granted: [...(res?.granted ?? [])], waiting: [...(res?.waiting ?? [])] }
  }

  /** How many locks exist (granted and waiting). */
  get size(): number {
    return this.byHandle.size
  }

  /**
   * POSIX semantics of a granted flock against its owner's others (ldlm_process_flock_lock):
   * same mode and overlapping or adjoining, they merge into the new lock; another mode, the
   * old one is trimmed, split in two, or dropped where the new one covers it. An NL request
   * is an unlock: it only trims, and is not kept. True when the owner's locks shrank, so
   * that waiting locks may now be granted.
   */
  private flockApply(res: Resource, lock: Lock): boolean {
    const r = lock.policy.range!
    let freed = lock.mode === MODE_NL
    for (const g of [...res.granted]) {
      if (g.type !== 'flock' || !sameFlockOwner(g, lock)) continue
      const x = g.policy.range!
      const adjoins = x.end + 1n >= r.start && r.end + 1n >= x.start
      if (g.mode === lock.mode && adjoins) {
        if (x.start < r.start) r.start = x.start
        if (x.end > r.end) r.end = x.end
        this.unlink(res, g)
        continue
      }
      if (!overlaps(x, r)) continue
      freed = true
      this.unlink(res, g)
      // What of the old lock lies outside the new range stays, as one or two locks of the old mode.
      if (x.start < r.start) this.addGranted(res, g, { start: x.start, end: r.start - 1n })
      if (x.end > r.end) this.addGranted(res, g, { start: r.end + 1n, end: x.end })
    }
    lock.policy = { ...lock.policy, range: { ...r } }
    if (lock.mode === MODE_NL) {
      lock.state = 'granted'
      this.byHandle.delete(lock.handle)
    } else {
      this.grant(res, lock)
    }
    return freed
  }

  private unlink(res: Resource, l: Lock): void {
    res.granted.splice(res.granted.indexOf(l), 1)
    l.state = 'cancelled'
    this.byHandle.delete(l.handle)
    this.removed.push(l)
  }

  /** A granted piece of a split flock: a lock of its own, the old one's mode and owner. */
  private addGranted(res: Resource, from: Lock, range: { start: bigint; end: bigint }): void {
    const piece: Lock = { ...from, handle: this.nextHandle++, policy: { ...from.policy, range }, requested: { ...from.policy, range }, state: 'granted', blockingSent: false }
    res.granted.push(piece)
    this.byHandle.set(piece.handle, piece)
  }

  /** Grants, in order, the waiting locks of a resource that nothing stops any more. */
  private reprocess(key: string): Lock[] {
    const res = this.resources.get(key)
    if (!res) return []
    const granted: Lock[] = []
    const still: Lock[] = []
    for (const w of res.waiting) {
      if (!res.granted.some(g => conflicts(g, w)) && !still.some(s => conflicts(s, w))) {
        if (w.type === 'flock') this.flockApply(res, w)
        else this.grant(res, w)
        granted.push(w)
      } else {
        still.push(w)
      }
    }
    res.waiting = still
    return granted
  }

  private grant(res: Resource, lock: Lock): void {
    if (lock.type === 'extent') lock.policy = { ...lock.policy, range: grownExtent(lock, res.granted) }
    lock.state = 'granted'
    res.granted.push(lock)
  }

  /** The locks not yet sent a BL AST, now marked as sent. A flock is never asked back: only its owner releases it. */
  private toBlock(locks: Lock[]): Lock[] {
    if (this.faults.skipBlockingAst) return []
    const out = locks.filter(l => !l.blockingSent && l.type !== 'flock')
    for (const l of out) l.blockingSent = true
    return out
  }

  /** Removes locks, then grants what waited behind them, in order (ldlm_reprocess_queue). */
  private drop(locks: Lock[]): Outcome {
    const touched = new Set<string>()
    for (const l of locks) {
      const res = this.resources.get(l.resource)!
      const q = l.state === 'granted' ? res.granted : res.waiting
      q.splice(q.indexOf(l), 1)
      l.state = 'cancelled'
      this.byHandle.delete(l.handle)
      touched.add(l.resource)
    }
    const granted: Lock[] = []
    const blocking: Lock[] = []
    for (const key of touched) {
      granted.push(...this.reprocess(key))
      const res = this.resources.get(key)!
      // Holders of what still waits owe a BL AST (once each).
      for (const w of res.waiting) blocking.push(...this.toBlock(res.granted.filter(g => conflicts(g, w))))
      if (!res.granted.length && !res.waiting.length) this.resources.delete(key)
    }
    return { granted, blocking }
  }

  /**
   * FLOCK deadlock detection (ldlm_flock_deadlock): the new lock's owner would wait for the
   * owners of `blockers`; if one of them already waits, directly or through others, for
   * a lock of the new lock's owner, waiting would never end: -EDEADLK.
   */
  private checkDeadlock(lock: Lock, blockers: Lock[]): void {
    const ownerOf = (l: Lock): string => `${l.owner}:${l.policy.flockOwner ?? 0n}`
    const me = ownerOf(lock)
    const seen = new Set<string>()
    const stack = blockers.map(ownerOf)
    while (stack.length) {
      const o = stack.pop()!
      if (o === me) throw new LdlmError('EDEADLK', `flock of ${me} would wait on a chain that waits for it`)
      if (seen.has(o)) continue
      seen.add(o)
      // What owner `o` waits for: the holders of what its waiting flocks conflict with.
      for (const w of this.byHandle.values()) {
        if (w.state !== 'waiting' || w.type !== 'flock' || ownerOf(w) !== o) continue
        const res = this.resources.get(w.resource)!
        for (const g of res.granted) if (conflicts(g, w)) stack.push(ownerOf(g))
      }
    }
  }
}
