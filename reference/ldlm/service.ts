// The lock server on the wire, for one namespace (an MDT or an OST): LDLM_ENQUEUE and
// LDLM_CANCEL from clients, BL and CP ASTs to them on their LDLM callback portal, early
// lock cancels packed in an enqueue, and eviction of a holder that does not cancel
// within the callback timeout (ldlm_handle_enqueue0, ldlm_handle_cancel,
// ldlm_server_blocking_ast, ldlm_server_completion_ast, the waiting-locks timer).
import { constantOf, decodeStruct, encodeStruct, loadSpec } from '../../src/wire/index.js'
import type { PtlrpcEndpoint, ReplySpec } from '../../src/transport/index.js'
import { E, type Export, type TargetRequest } from '../common/index.js'
import { LdlmError, LockEngine, type EnqueueRequest, type Lock, type LockFaults, type Outcome } from './engine.js'
import { conflicts } from './policy.js'
import { toWireDesc, fromWireDesc, requestHandles, type Obj } from './wire.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const FL = {
  LOCK_CHANGED: C('LDLM_FL_LOCK_CHANGED'), BLOCK_GRANTED: C('LDLM_FL_BLOCK_GRANTED'), BLOCK_WAIT: C('LDLM_FL_BLOCK_WAIT'),
  AST_SENT: C('LDLM_FL_AST_SENT'), BLOCK_NOWAIT: C('LDLM_FL_BLOCK_NOWAIT'), HAS_INTENT: C('LDLM_FL_HAS_INTENT'),
  REQ_MASK: C('LDLM_FL_WIRE_REQ_FLAGS_MASK'),
}
const LOCK_ABORTED = Number(C('ELDLM_LOCK_ABORTED'))
const PR = Number(C('LCK_PR'))
const CB_PORTAL = Number(C('LDLM_CB_REQUEST_PORTAL'))
const CB_REPLY_PORTAL = Number(C('LDLM_CB_REPLY_PORTAL'))
const ERRNO: Record<LdlmError['errno'], number> = {
  EFAULT: E.EFAULT, EINVAL: E.EINVAL, EPROTO: E.EPROTO, EDEADLK: E.EDEADLK, EAGAIN: E.EAGAIN, ENOENT: E.ESTALE,
}

export interface LdlmServiceOptions {
  rpc: PtlrpcEndpoint
  /** 'mds' namespaces take PLAIN only from clients without OBD_CONNECT_IBITS (ldlm_handle_enqueue0) */
  kind: 'mds' | 'ost'
  /**
   * RMF_DLM_LVB of a resource: an OST's ost_lvb (size, times, blocks); none on the MDS. It
   * is read before the lock is created (ldlm_lvbo_init): an error with a `status` (a
   * negative errno) is the enqueue's answer.
   */
  lvb?: (name: readonly bigint[]) => Promise<Uint8Array | null> | Uint8Array | null
  /** ms a holder has to cancel after a BL AST before it is evicted (ldlm_bl_timeout); default 30 s */
  callbackTimeoutMs?: number
  /** drops the export (the host refuses its later requests until it reconnects) */
  evictExport: (exp: Export) => void
  log?: (line: string) => void
  engine?: LockEngine
  faults?: LockFaults
}

interface Holder { exp: Export; remote: bigint }

export class LdlmService {
  readonly engine: LockEngine
  private readonly holders = new Map<bigint, Holder>()
  private readonly timers = new Map<bigint, NodeJS.Timeout>()
  private readonly timeoutMs: number
  private readonly log: (line: string) => void
  private closed = false
  /** ASTs sent, for tests and the model comparison: kind, server handle, client */
  readonly sent: Array<{ ast: 'BL' | 'CP' | 'GL'; handle: bigint; client: string }> = []

  constructor(private readonly o: LdlmServiceOptions) {
    this.engine = o.engine ?? new LockEngine((BigInt(Date.now()) << 16n) | 1n, o.faults)
    this.timeoutMs = o.callbackTimeoutMs ?? 30_000
    this.log = o.log ?? (() => {})
  }

  /** LDLM_ENQUEUE: granted at once, or blocked with LDLM_FL_BLOCK_* and granted later by a CP AST. */
  async enqueue(r: TargetRequest): Promise<ReplySpec> {
    const dlm = r.msg.fields.RMF_DLM_REQ as Obj | undefined
    if (!dlm) return { status: E.EPROTO, error: true }
    const flags = BigInt(Number(dlm.lock_flags ?? 0))
    if (flags & ~FL.REQ_MASK) return { status: E.EPROTO, error: true }
    // Early lock cancel: handles 1.. of the request are the sender's locks to drop first.
    this.cancelHandles(r.exp, dlm, 1)
    const desc = dlm.lock_desc as Obj
    let asked: EnqueueRequest & { remote: bigint }
    try {
      asked = { ...fromWireDesc(desc, r.exp.handle), remote: handleAt(dlm, 0), noWait: (flags & FL.BLOCK_NOWAIT) !== 0n }
    } catch (e) {
      // ldlm_handle_enqueue() returns these, and tgt_enqueue() makes them serious: an error reply.
      if (e instanceof LdlmError) return { status: ERRNO[e.errno], error: true }
      throw e
    }
    if (this.o.kind === 'mds' && asked.type === 'plain' && (r.exp.flags & C('OBD_CONNECT_IBITS'))) return { status: E.EPROTO, error: true }
    let lvb: Uint8Array | null = null
    try {
      lvb = (await this.o.lvb?.(asked.name)) ?? null
    } catch (e) {
      const status = (e as { status?: unknown }).status
      if (typeof status === 'number' && status < 0) return { status, error: true }
      throw e
    }
    // A glimpse (an OST enqueue with an intent) that would have to wait gets no lock: the
    // holders of conflicting write locks are asked for their view of the object instead.
    if ((flags & FL.HAS_INTENT) && this.o.kind === 'ost' && asked.type === 'extent' && lvb) {
      let wait: ReturnType<LockEngine['wouldWait']>
      try {
        wait = this.engine.wouldWait(asked)
      } catch (e) {
        if (e instanceof LdlmError) return { status: ERRNO[e.errno], error: true }
        throw e
      }
      if (wait.granted.length || wait.behindWaiting) return this.glimpse(desc, lvb, wait.granted)
    }
    let out: Outcome & { lock: Lock }
    try {
      out = this.engine.enqueue(asked)
    } catch (e) {
      // ldlm_handle_enqueue() returns ldlm_lock_enqueue()'s refusal (-EDEADLK, -EAGAIN), and
      // tgt_enqueue() makes it serious: an error reply (Lustre's also carries what it had packed).
      if (e instanceof LdlmError) return { status: ERRNO[e.errno], error: true }
      throw e
    }
    const lock = out.lock
    for (const gone of out.removed ?? []) this.forget(gone.handle)
    // An unlock (a flock in NL) leaves no lock behind to hold.
    if (this.engine.get(lock.handle)) this.holders.set(lock.handle, { exp: r.exp, remote: asked.remote })
    let rflags = 0n
    if (lock.state === 'waiting') {
      const res = this.engine.locksOn(lock.type, lock.name)
      rflags |= res.granted.some(g => conflicts(g, lock)) ? FL.BLOCK_GRANTED : FL.BLOCK_WAIT
    } else if (lock.type === 'extent' && (lock.policy.range!.start !== lock.requested.range!.start || lock.policy.range!.end !== lock.requested.range!.end)) {
      rflags |= FL.LOCK_CHANGED
    }
    this.afterChange(out, lock)
    const fields: Obj = {
      RMF_DLM_REP: {
        lock_flags: Number(rflags), lock_padding: 0, lock_desc: toWireDesc(lock), lock_handle: { cookie: lock.handle },
        lock_policy_res1: 0n, lock_policy_res2: 0n,
      },
    }
    if (r.msg.format === 'RQF_LDLM_ENQUEUE' || r.msg.format === 'RQF_LDLM_ENQUEUE_LVB') fields.RMF_DLM_LVB = lvb
    return { status: 0, fields }
  }

  /**
   * ofd_intent_policy for a glimpse that cannot be granted: a GL AST to each export holding a
   * conflicting lock other than PR, the largest size and latest times of their answers and of
   * the object go back in the reply's LVB, and pb_status is ELDLM_LOCK_ABORTED: no lock.
   */
  private async glimpse(desc: Obj, objectLvb: Uint8Array, blockers: Lock[]): Promise<ReplySpec> {
    const lvb = decodeStruct<Obj>('ost_lvb', objectLvb)
    const perExport = new Map<bigint, Lock>()
    for (const l of blockers) if (l.mode !== PR && !perExport.has(l.owner)) perExport.set(l.owner, l)
    await Promise.all([...perExport.values()].map(async l => {
      const h = this.holders.get(l.handle)
      if (!h) return
      this.sent.push({ ast: 'GL', handle: l.handle, client: h.exp.clientUuid })
      try {
        const r = await this.o.rpc.call(h.exp.peer, {
          format: 'RQF_LDLM_GL_CALLBACK', portal: CB_PORTAL, replyPortal: CB_REPLY_PORTAL, timeoutMs: this.timeoutMs,
          fields: { RMF_DLM_REQ: { lock_flags: 0, lock_count: 1, lock_desc: toWireDesc(l), lock_handle: requestHandles([h.remote]) } },
        })
        const got = r.reply.fields.RMF_DLM_LVB as Obj | null | undefined
        if (r.reply.body.pb_status !== 0 || !got || got instanceof Uint8Array) return
        for (const k of ['lvb_size', 'lvb_mtime', 'lvb_atime', 'lvb_ctime', 'lvb_blocks']) if (BigInt(got[k] as bigint) > BigInt(lvb[k] as bigint)) lvb[k] = got[k]
      } catch (e) {
        // A holder that does not answer keeps its lock; the object's own attributes stand.
        this.log(`ldlm: GL AST for ${l.handle} to ${h.exp.clientUuid}: ${(e as Error).message}`)
      }
    }))
    return {
      status: LOCK_ABORTED,
      fields: {
        RMF_DLM_REP: { lock_flags: 0, lock_padding: 0, lock_desc: { ...desc, l_granted_mode: 0 }, lock_handle: { cookie: 0n }, lock_policy_res1: 0n, lock_policy_res2: 0n },
        RMF_DLM_LVB: encodeStruct('ost_lvb', lvb),
      },
    }
  }

  /**
   * A lock an intent policy grants on a resource of its choosing (mdt_intent_lock_replace: a
   * getattr intent comes back with a lock on the child): granted now, or undefined when it
   * would have to wait, in which case the intent's reply goes without a lock.
   */
  grantNow(exp: Export, req: EnqueueRequest, remote: bigint): Lock | undefined {
    try {
      const out = this.engine.enqueue({ ...req, owner: exp.handle, noWait: true })
      this.holders.set(out.lock.handle, { exp, remote })
      return out.lock
    } catch (e) {
      if (e instanceof LdlmError && e.errno === 'EAGAIN') return undefined
      throw e
    }
  }

  /** LDLM_CANCEL: every handle named; LUSTRE_ESTALE (+116) when none was a lock of this export (ldlm_handle_cancel). */
  cancel(r: TargetRequest): ReplySpec {
    const dlm = r.msg.fields.RMF_DLM_REQ as Obj | undefined
    if (!dlm) return { status: E.EPROTO, error: true }
    // ldlm_handle_cancel() packs its reply, then puts LUSTRE_ESTALE in rq_status: a positive
    // network errno in a normal reply, which the client's ldlm_cli_cancel_req() takes as "out of sync".
    return this.cancelHandles(r.exp, dlm, 0) ? { status: 0 } : { status: -E.ESTALE }
  }

  /** The export is gone (disconnect or eviction): its locks go, and what waited for them is granted. */
  dropExport(exp: Export): void {
    const out = this.engine.evict(exp.handle)
    for (const l of out.dropped) this.forget(l.handle)
    this.afterChange(out)
  }

  close(): void {
    this.closed = true
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
  }

  /** Cancels lock_handle[first .. lock_count-1] held by `exp`; how many went (ldlm_request_cancel). */
  private cancelHandles(exp: Export, dlm: Obj, first: number): number {
    const handles = (dlm.lock_handle as Array<{ cookie: bigint }> | undefined) ?? []
    const count = Number(dlm.lock_count ?? 0) || 1
    // A count the buffer cannot hold cancels nothing.
    if (count > handles.length) return 0
    let done = 0
    for (let i = first; i < count; i++) {
      const h = handles[i].cookie
      try {
        const out = this.engine.cancel(h, exp.handle)
        this.forget(h)
        this.afterChange(out)
        done++
      } catch (e) {
        if (!(e instanceof LdlmError)) throw e
      }
    }
    return done
  }

  private forget(handle: bigint): void {
    this.holders.delete(handle)
    const t = this.timers.get(handle)
    if (t) clearTimeout(t)
    this.timers.delete(handle)
  }

  /** Sends what an engine change owes: BL ASTs (with their eviction timers) and CP ASTs. */
  private afterChange(out: Outcome, blockingLock?: Lock): void {
    for (const held of out.blocking) {
      // The BL AST describes the lock that is blocked; after a reprocess, the first waiter it blocks.
      const by = blockingLock ?? this.firstBlockedBy(held)
      if (by) this.blockingAst(held, by)
    }
    for (const g of out.granted) this.completionAst(g)
  }

  private firstBlockedBy(held: Lock): Lock | undefined {
    return this.engine.locksOn(held.type, held.name).waiting.find(w => conflicts(held, w))
  }

  private blockingAst(held: Lock, by: Lock): void {
    const h = this.holders.get(held.handle)
    if (!h || this.closed) return
    this.sent.push({ ast: 'BL', handle: held.handle, client: h.exp.clientUuid })
    const fields = { RMF_DLM_REQ: { lock_flags: 0, lock_count: 1, lock_desc: toWireDesc(by), lock_handle: requestHandles([h.remote]) } }
    this.o.rpc.call(h.exp.peer, { format: 'RQF_LDLM_BL_CALLBACK', portal: CB_PORTAL, replyPortal: CB_REPLY_PORTAL, fields, timeoutMs: this.timeoutMs })
      .catch(e => this.log(`ldlm: BL AST for ${held.handle} to ${h.exp.clientUuid}: ${(e as Error).message}`))
    // The holder must cancel within the callback timeout, or it is evicted (ldlm_add_waiting_lock).
    const t = setTimeout(() => this.timedOut(held.handle), this.timeoutMs)
    t.unref()
    this.timers.set(held.handle, t)
  }

  private completionAst(lock: Lock): void {
    const h = this.holders.get(lock.handle)
    if (!h || this.closed) return
    this.sent.push({ ast: 'CP', handle: lock.handle, client: h.exp.clientUuid })
    void (async () => {
      const lvb = lock.type === 'extent' ? ((await this.o.lvb?.(lock.name)) ?? null) : null
      const fields = {
        RMF_DLM_REQ: { lock_flags: lock.blockingSent ? Number(FL.AST_SENT) : 0, lock_count: 1, lock_desc: toWireDesc(lock), lock_handle: requestHandles([h.remote]) },
        RMF_DLM_LVB: lvb,
      }
      await this.o.rpc.call(h.exp.peer, { format: 'RQF_LDLM_CP_CALLBACK', portal: CB_PORTAL, replyPortal: CB_REPLY_PORTAL, fields, timeoutMs: this.timeoutMs })
    })().catch(e => this.log(`ldlm: CP AST for ${lock.handle} to ${h.exp.clientUuid}: ${(e as Error).message}`))
  }

  /** A holder kept a lock past its BL AST's timeout: its export is evicted and its locks dropped. */
  private timedOut(handle: bigint): void {
    this.timers.delete(handle)
    const h = this.holders.get(handle)
    if (!h || this.closed) return
    this.log(`ldlm: lock ${handle} of ${h.exp.clientUuid} not cancelled in ${this.timeoutMs} ms: evicting it`)
    this.o.evictExport(h.exp)
    this.dropExport(h.exp)
  }
}

function handleAt(dlm: Obj, i: number): bigint {
  return ((dlm.lock_handle as Array<{ cookie: bigint }> | undefined) ?? [])[i]?.cookie ?? 0n
}

