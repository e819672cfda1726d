// The client side of LDLM (ldlm_cli_enqueue, ldlm_cli_cancel, the client's callback
// service): enqueue a lock and wait for it to be granted (at once, or by a CP AST after
// a blocked reply), cancel it, and answer the ASTs a server sends on the client's LDLM
// callback portal. A lock's owner decides what a BL AST does (flush, drop cached pages,
// cancel) through its onBlocking hook; by default the lock is cancelled at once.
import { constantOf, encodeStruct, loadSpec, makeStruct } from '../../src/wire/index.js'
import type { PtlrpcEndpoint } from '../../src/transport/index.js'
import { E, type TargetImport } from '../common/index.js'
import { ClientError } from './errors.js'
import { requestHandles } from '../ldlm/wire.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const CB_PORTAL = Number(C('LDLM_CB_REQUEST_PORTAL'))
const CB_REPLY_PORTAL = Number(C('LDLM_CB_REPLY_PORTAL'))
const PR = Number(C('LCK_PR'))
const EOF = 0xffffffffffffffffn
const LR: Record<LockKind, number> = { plain: Number(C('LDLM_PLAIN')), extent: Number(C('LDLM_EXTENT')), flock: Number(C('LDLM_FLOCK')), ibits: Number(C('LDLM_IBITS')) }

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
export type LockKind = 'plain' | 'extent' | 'flock' | 'ibits'

export interface LockAsk {
  kind: LockKind
  /** the four ldlm_res_id words */
  name: readonly bigint[]
  mode: number
  /** extent: byte range asked, inclusive */
  start?: bigint
  end?: bigint
  /** ibits: MDS_INODELOCK_* bits */
  bits?: bigint
  /** locks of this import to cancel in the same request (early lock cancel) */
  cancel?: HeldLock[]
}

export interface HeldLock {
  /** the client's cookie for the lock (what ASTs name) */
  readonly local: bigint
  /** the server's handle (what LDLM_CANCEL names) */
  server: bigint
  readonly imp: TargetImport
  readonly ask: LockAsk
  /** granted mode and extent (the server may have grown it) */
  mode: number
  start: bigint
  end: bigint
  state: 'waiting' | 'granted' | 'cancelling' | 'cancelled'
  /** a BL AST came for this lock */
  blocked: boolean
  /** what to do on a BL AST; the default cancels at once */
  onBlocking?: (l: HeldLock) => Promise<void> | void
  /** the ost_lvb to answer a GL AST with (this client's view of the object); default: the LVB of the grant */
  onGlimpse?: (l: HeldLock) => Obj | undefined
  /** the LVB (ost_lvb) of the latest grant, when the server sent one */
  lvb?: Obj
}

export class ClientLocks {
  private next = (BigInt(Date.now()) << 20n) | 1n
  private readonly byLocal = new Map<bigint, HeldLock>()
  private readonly grants = new Map<bigint, () => void>()
  /** ASTs received, for tests: kind and the client cookie */
  readonly received: Array<{ ast: 'BL' | 'CP' | 'GL'; local: bigint }> = []

  constructor(rpc: PtlrpcEndpoint, private readonly log: (line: string) => void = () => {}) {
    rpc.serve(CB_PORTAL, CB_REPLY_PORTAL, req => {
      const dlm = req.msg.fields.RMF_DLM_REQ as Obj | undefined
      const local = (dlm?.lock_handle?.[0]?.cookie as bigint | undefined) ?? 0n
      const lock = this.byLocal.get(local)
      // An AST for a lock this client does not know: -EINVAL, as ldlm_callback_handler answers.
      if (!dlm || !lock) return { status: E.EINVAL, error: true }
      switch (req.msg.opcode) {
        case 'LDLM_BL_CALLBACK':
          this.received.push({ ast: 'BL', local })
          lock.blocked = true
          // The reply goes first; the flush and cancel follow (ldlm_bl_to_thread).
          setImmediate(() => { void this.blocking(lock) })
          return { status: 0 }
        case 'LDLM_GL_CALLBACK': {
          // osc_ldlm_glimpse_ast: the holder's view of the object, as an ost_lvb.
          this.received.push({ ast: 'GL', local })
          const lvb = lock.onGlimpse?.(lock) ?? lock.lvb ?? makeStruct('ost_lvb')
          return { status: 0, fields: { RMF_DLM_LVB: encodeStruct('ost_lvb', makeStruct('ost_lvb', lvb)) } }
        }
        case 'LDLM_CP_CALLBACK':
          this.received.push({ ast: 'CP', local })
          this.granted(lock, dlm.lock_desc, req.msg.fields.RMF_DLM_LVB as Obj | undefined)
          return { status: 0 }
        default:
          return { status: E.EOPNOTSUPP, error: true }
      }
    })
  }

  /** Enqueues and resolves once the lock is granted (at once, or by its CP AST). */
  async enqueue(imp: TargetImport, ask: LockAsk): Promise<HeldLock> {
    const local = this.next++
    const lock: HeldLock = {
      local, server: 0n, imp, ask, mode: 0, start: ask.start ?? 0n, end: ask.end ?? 0n, state: 'waiting', blocked: false,
    }
    this.byLocal.set(local, lock)
    const cancels = ask.cancel ?? []
    const grantedNow = new Promise<void>(r => this.grants.set(local, r))
    const desc = {
      l_resource: { lr_type: LR[ask.kind], lr_pad: 0, lr_name: { name: [...ask.name] } },
      l_req_mode: ask.mode, l_granted_mode: 0,
      l_policy_data: ask.kind === 'extent' ? { l_extent: { start: ask.start ?? 0n, end: ask.end ?? 0xffffffffffffffffn, gid: 0n } }
        : ask.kind === 'ibits' ? { l_inodebits: { bits: ask.bits ?? 0n, try_bits: 0n, cancel_bits: 0n, li_gid: 0n, li_padding: 0, li_initiator_id: 0 } } : {},
    }
    for (const c of cancels) { c.state = 'cancelled'; this.byLocal.delete(c.local) }
    let r
    try {
      r = await imp.call({
        format: 'RQF_LDLM_ENQUEUE',
        fields: { RMF_DLM_REQ: makeStruct('ldlm_request', { lock_count: 1 + cancels.length, lock_desc: desc, lock_handle: requestHandles([local, ...cancels.map(c => c.server)]) }) },
      })
    } catch (e) {
      this.byLocal.delete(local)
      this.grants.delete(local)
      throw e
    }
    const rep = r.reply.fields.RMF_DLM_REP as Obj
    lock.server = rep.lock_handle.cookie as bigint
    if (Number(rep.lock_desc.l_granted_mode) !== 0) this.granted(lock, rep.lock_desc, r.reply.fields.RMF_DLM_LVB as Obj | undefined)
    await grantedNow
    if (lock.state === 'cancelled') throw new ClientError('LC_CLIENT_LOCK', `lock ${local} was dropped before it was granted`)
    return lock
  }

  /**
   * A glimpse: a PR [0, EOF] extent enqueue with LDLM_FL_HAS_INTENT. Granted at once, it is
   * an ordinary lock with the object's LVB; otherwise the server gives no lock
   * (ELDLM_LOCK_ABORTED) and the LVB it put together from the holders' GL AST answers.
   */
  async glimpse(imp: TargetImport, name: readonly bigint[]): Promise<{ lvb: Obj; lock?: HeldLock }> {
    const local = this.next++
    const lock: HeldLock = { local, server: 0n, imp, ask: { kind: 'extent', name, mode: PR }, mode: 0, start: 0n, end: EOF, state: 'waiting', blocked: false }
    this.byLocal.set(local, lock)
    try {
      const r = await imp.call({
        format: 'RQF_LDLM_ENQUEUE',
        fields: {
          RMF_DLM_REQ: makeStruct('ldlm_request', {
            lock_flags: Number(C('LDLM_FL_HAS_INTENT')), lock_count: 1, lock_handle: requestHandles([local]),
            lock_desc: {
              l_resource: { lr_type: LR.extent, lr_pad: 0, lr_name: { name: [...name] } }, l_req_mode: PR, l_granted_mode: 0,
              l_policy_data: { l_extent: { start: 0n, end: EOF, gid: 0n } },
            },
          }),
        },
      })
      const rep = r.reply.fields.RMF_DLM_REP as Obj
      const lvb = r.reply.fields.RMF_DLM_LVB as Obj | undefined
      if (!lvb || lvb instanceof Uint8Array) throw new ClientError('LC_CLIENT_LOCK', 'glimpse reply without an ost_lvb')
      if (r.reply.body.pb_status === Number(C('ELDLM_LOCK_ABORTED')) || Number(rep.lock_desc.l_granted_mode) === 0) {
        this.byLocal.delete(local)
        return { lvb }
      }
      lock.server = rep.lock_handle.cookie as bigint
      this.granted(lock, rep.lock_desc, lvb)
      return { lvb, lock }
    } catch (e) {
      this.byLocal.delete(local)
      throw e
    }
  }

  /** LDLM_CANCEL of a lock this client holds (or waits for). */
  async cancel(lock: HeldLock): Promise<void> {
    if (lock.state === 'cancelled' || lock.state === 'cancelling') return
    lock.state = 'cancelling'
    this.byLocal.delete(lock.local)
    try {
      await lock.imp.call({
        format: 'RQF_LDLM_CANCEL', allowError: true,
        fields: { RMF_DLM_REQ: makeStruct('ldlm_request', { lock_count: 1, lock_desc: makeStruct('ldlm_lock_desc'), lock_handle: requestHandles([lock.server]) }) },
      })
    } finally {
      lock.state = 'cancelled'
      this.grants.get(lock.local)?.()
      this.grants.delete(lock.local)
    }
  }

  /** Every lock of `imp` is gone on the server (eviction): forget them without cancelling. */
  forgetImport(imp: TargetImport): HeldLock[] {
    const gone = [...this.byLocal.values()].filter(l => l.imp === imp)
    for (const l of gone) {
      l.state = 'cancelled'
      this.byLocal.delete(l.local)
      this.grants.get(l.local)?.()
      this.grants.delete(l.local)
    }
    return gone
  }

  get held(): HeldLock[] {
    return [...this.byLocal.values()]
  }

  private granted(lock: HeldLock, desc: Obj, lvb: Obj | undefined): void {
    if (lock.state !== 'waiting') return
    lock.mode = Number(desc.l_granted_mode)
    const ext = desc.l_policy_data?.l_extent
    if (ext) { lock.start = ext.start; lock.end = ext.end }
    if (lvb && typeof lvb === 'object' && !(lvb instanceof Uint8Array)) lock.lvb = lvb
    lock.state = 'granted'
    this.grants.get(lock.local)?.()
    this.grants.delete(lock.local)
    // A BL AST that came while waiting (the server sends it with the grant when contended) acts now.
    if (lock.blocked) setImmediate(() => { void this.blocking(lock) })
  }

  private async blocking(lock: HeldLock): Promise<void> {
    if (lock.state !== 'granted') return
    try {
      if (lock.onBlocking) await lock.onBlocking(lock)
      else await this.cancel(lock)
    } catch (e) {
      this.log(`ldlm: blocking AST of lock ${lock.local}: ${(e as Error).message}`)
    }
  }
}
