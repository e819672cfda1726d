// ldlm_lock_desc on the wire <-> the engine's locks: the resource (type and four name
// words), the modes, and the type's policy from the l_policy_data union (l_extent,
// l_inodebits, l_flock), as ldlm_convert_policy_to_local and ldlm_lock2desc convert them.
import { constantOf, loadSpec } from '../../src/wire/index.js'
import { LdlmError, type EnqueueRequest, type Lock } from './engine.js'
import { OBJECT_EOF, type LockType } from './policy.js'

export type Obj = Record<string, unknown>

const spec = loadSpec()
const C = (n: string): number => Number(constantOf(spec, n))

export const LR_TYPE: Record<LockType, number> = {
  plain: C('LDLM_PLAIN'), extent: C('LDLM_EXTENT'), flock: C('LDLM_FLOCK'), ibits: C('LDLM_IBITS'),
}
const TYPE_OF = new Map<number, LockType>(Object.entries(LR_TYPE).map(([k, v]) => [v, k as LockType]))

const big = (v: unknown): bigint => (typeof v === 'bigint' ? v : BigInt(Number(v ?? 0)))

/** The request of an ldlm_lock_desc; -EFAULT for a type outside LDLM_PLAIN..LDLM_IBITS (ldlm_handle_enqueue0). */
export function fromWireDesc(desc: Obj, owner: bigint): EnqueueRequest {
  const res = desc.l_resource as Obj
  const type = TYPE_OF.get(Number(res.lr_type))
  if (!type) throw new LdlmError('EFAULT', `lock type ${String(res.lr_type)}`)
  const name = ((res.lr_name as Obj).name as unknown[]).map(big)
  const pol = (desc.l_policy_data ?? {}) as Obj
  const r: EnqueueRequest = { owner, type, name, mode: Number(desc.l_req_mode), policy: {} }
  if (type === 'extent') {
    const x = (pol.l_extent ?? {}) as Obj
    r.policy = { range: { start: big(x.start), end: big(x.end) }, gid: big(x.gid) }
  } else if (type === 'ibits') {
    r.policy = { bits: big((pol.l_inodebits as Obj | undefined)?.bits) }
  } else if (type === 'flock') {
    const f = (pol.l_flock ?? {}) as Obj
    // The POSIX owner is the client's lock owner and pid; the export tells clients apart.
    r.policy = { range: { start: big(f.lfw_start), end: big(f.lfw_end) }, flockOwner: big(f.lfw_owner), pid: Number(f.lfw_pid ?? 0) }
  }
  return r
}

/** ldlm_lock2desc: what a reply or an AST says of a lock (the granted extent, as grown). */
export function toWireDesc(lock: Lock): Obj {
  const p = lock.policy
  let policy: Obj = {}
  if (lock.type === 'extent') policy = { l_extent: { start: p.range!.start, end: p.range!.end, gid: p.gid ?? 0n } }
  else if (lock.type === 'ibits') policy = { l_inodebits: { bits: p.bits ?? 0n, try_bits: 0n, cancel_bits: 0n, li_gid: 0n, li_padding: 0, li_initiator_id: 0 } }
  else if (lock.type === 'flock') policy = { l_flock: { lfw_start: p.range!.start, lfw_end: p.range!.end, lfw_owner: p.flockOwner ?? 0n, lfw_padding: 0, lfw_pid: p.pid ?? 0 } }
  return {
    l_resource: { lr_type: LR_TYPE[lock.type], lr_pad: 0, lr_name: { name: [...lock.name] } },
    l_req_mode: lock.mode,
    l_granted_mode: lock.state === 'granted' ? lock.mode : 0,
    l_policy_data: policy,
  }
}

/**
 * lock_handle of an ldlm_request: the handles given, then zero handles up to
 * LDLM_LOCKREQ_HANDLES (2), since ldlm_request_bufsize never sends fewer (the struct
 * declares two) and Wireshark dissects the buffer so.
 */
export function requestHandles(cookies: bigint[]): Array<{ cookie: bigint }> {
  const out = cookies.map(cookie => ({ cookie }))
  while (out.length < 2) out.push({ cookie: 0n })
  return out
}

export { OBJECT_EOF }
