// Model-based testing of a lock server: a trace of spec/models/ldlm.qnt (ITF, written by
// `quint run --mbt --out-itf`) is replayed step by step against an MDS reached only by
// address, and after each step the lock state the target shows on the wire is compared
// with the model's: which locks are granted, waiting or gone (enqueue replies, CP ASTs,
// our cancels) and in what mode, which holders were sent a BL AST, and which clients the
// target evicted when the driver waited out its callback timeout.
//
// The model's locks are inode bits locks on one resource: its bytes 0..3 are inode bits
// 0..3, so that model ranges overlap exactly when lock bits intersect (extent locks would
// not do: a server grows them, the model does not).
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { TargetSession, type Obj } from '../wire/session.js'
import { MDS_FLAGS } from '../core/runner.js'
import { Unsupported } from '../core/test.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

export interface ItfTrace { states: Array<Record<string, unknown>> }

interface ModelLock { client: string; state: string; mode: string }
interface ModelState { locks: Map<number, ModelLock>; blSent: Set<number>; evicted: Set<string> }
interface Step { action: string; picks: Record<string, unknown>; after: ModelState }

/** Plain values of ITF's encodings: {"#bigint"}, {"#set"}, {"#map"}, records. */
function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain)
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>
    if ('#bigint' in o) return Number(o['#bigint'])
    if ('#set' in o) return (o['#set'] as unknown[]).map(plain)
    if ('#map' in o) return new Map((o['#map'] as Array<[unknown, unknown]>).map(([k, x]) => [plain(k), plain(x)]))
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, plain(x)]))
  }
  return v
}

/** The steps of a trace: the action taken into each state, its nondet picks, and the state after. */
export function stepsOf(itf: ItfTrace): Step[] {
  return itf.states.slice(1).map(s => {
    const picks: Record<string, unknown> = {}
    for (const [k, p] of Object.entries((s['mbt::nondetPicks'] ?? {}) as Record<string, { tag: string; value: unknown }>)) {
      if (p.tag === 'Some') picks[k] = plain(p.value)
    }
    const locks = plain(s.locks) as Map<number, ModelLock>
    return {
      action: String(s['mbt::actionTaken']), picks,
      after: { locks, blSent: new Set(plain(s.blSent) as number[]), evicted: new Set(plain(s.evicted) as string[]) },
    }
  })
}

export interface MbtTarget {
  /** the MDS, a NID or host:port */
  mds: string
  fsname?: string
  /** the four ldlm_res_id words of the resource the trace locks (a FID) */
  resource?: bigint[]
  /** how long to wait for ASTs to make the target agree with the model after a step */
  settleMs?: number
  /**
   * The target's lock callback timeout: an evictLate step waits it out (plus a margin) after
   * the last BL AST still unanswered. Traces with evictions need a target whose timeout is
   * longer than any stretch of steps between two of them, and this set to it.
   */
  lockTimeoutMs?: number
}

export interface StepResult { index: number; action: string; ok: boolean; expected: string; observed: string }

interface Observed { client: string; cookie: bigint; server: bigint; state: string; bl: boolean; mode: number }

let pidBase = 0x4d42_0000

/** Replays `itf` against the target; one result per step (stops at the first disagreement). */
export async function replayLdlmTrace(itf: ItfTrace, target: MbtTarget): Promise<StepResult[]> {
  const steps = stepsOf(itf)
  const resource = target.resource ?? [0x200000401n, BigInt(Date.now() & 0xffffffff), 0n, 0n]
  const sessions = new Map<string, TargetSession>()
  const session = async (client: string): Promise<TargetSession> => {
    let s = sessions.get(client)
    if (!s) {
      s = await TargetSession.open({
        service: 'mds', address: target.mds, targetUuid: `${target.fsname ?? 'lustre'}-MDT0000_UUID`, pid: pidBase++,
        flags: MDS_FLAGS,
        ocd: { ocd_ibits_known: C('MDS_INODELOCK_FULL') },
      })
      sessions.set(client, s)
      // The model's locks are inode bits locks: a target that does not offer them cannot be judged by it.
      if (!(s.flags & C('OBD_CONNECT_IBITS'))) throw new Unsupported('the MDT did not grant OBD_CONNECT_IBITS')
    }
    return s
  }
  const locks = new Map<number, Observed>()
  const evicted = new Set<string>()
  let nextId = 0
  let cookie = 0x6d62740000000000n
  const results: StepResult[] = []
  try {
    for (const [index, st] of steps.entries()) {
      if (st.action === 'enqueue') {
        const { c, m, lo, hi } = st.picks as { c: string; m: string; lo: number; hi: number }
        const s = await session(c)
        let bits = 0n
        for (let b = lo; b <= hi; b++) bits |= 1n << BigInt(b)
        const mine = cookie++
        const r = await s.call('RQF_LDLM_ENQUEUE', {
          RMF_DLM_REQ: makeStruct('ldlm_request', {
            lock_count: 1,
            lock_desc: {
              l_resource: { lr_type: Number(C('LDLM_IBITS')), lr_pad: 0, lr_name: { name: resource } },
              l_req_mode: Number(C(`LCK_${m}`)), l_granted_mode: 0,
              l_policy_data: { l_inodebits: { bits, try_bits: 0n, cancel_bits: 0n, li_gid: 0n, li_padding: 0, li_initiator_id: 0 } },
            },
            lock_handle: [{ cookie: mine }, { cookie: 0n }],
          }),
        })
        const rep = r.reply.fields.RMF_DLM_REP as Obj
        if (r.reply.body.pb_status !== 0 || !rep) throw new Error(`step ${index}: enqueue answered ${String(r.reply.body.pb_status)}`)
        const granted = Number(rep.lock_desc.l_granted_mode)
        locks.set(nextId++, { client: c, cookie: mine, server: rep.lock_handle.cookie, state: granted ? 'granted' : 'waiting', bl: false, mode: granted })
      } else if (st.action === 'cancel') {
        const l = locks.get(st.picks.i as number)!
        const s = await session(l.client)
        await s.cancelLock(l.server)
        l.state = 'cancelled'
      } else if (st.action === 'evictLate') {
        // Wait out the target's callback timeout after the last unanswered BL AST; then every
        // client still holding such a lock must be gone (its pings answered -ENOTCONN).
        const timeout = target.lockTimeoutMs
        if (timeout === undefined) throw new Error(`step ${index}: an evictLate step needs the target's lockTimeoutMs`)
        const late = [...locks.values()].filter(l => l.state === 'granted' && l.bl && !evicted.has(l.client))
        const lastBl = Math.max(0, ...late.map(l => sessions.get(l.client)!.asts.find(a => a.cookie === l.cookie && a.opcode === 'LDLM_BL_CALLBACK')!.at))
        await new Promise(r => setTimeout(r, Math.max(0, lastBl + timeout + 300 - Date.now())))
        for (const c of new Set(late.map(l => l.client))) {
          if ((await sessions.get(c)!.ping()) !== -Number(C('LUSTRE_ENOTCONN'))) continue
          evicted.add(c)
          for (const l of locks.values()) if (l.client === c) l.state = 'cancelled'
        }
      } else {
        throw new Error(`step ${index}: action ${st.action} cannot be driven through the wire`)
      }
      const res = await settle(st.after, locks, sessions, evicted, target.settleMs ?? 2000)
      results.push({ index, action: `${st.action}(${Object.values(st.picks).join(', ')})`, ...res })
      if (!res.ok) break
    }
  } finally {
    await Promise.all([...sessions.values()].map(s => s.close()))
  }
  return results
}

/** Folds the ASTs received so far into the observed locks, and waits (up to `ms`) until they agree with the model. */
async function settle(model: ModelState, locks: Map<number, Observed>, sessions: Map<string, TargetSession>, evicted: Set<string>, ms: number): Promise<{ ok: boolean; expected: string; observed: string }> {
  const mode = (name: string): number => Number(C(`LCK_${name}`))
  const expected = describe([...model.locks].map(([id, l]) => [id, l.state === 'granted' ? `granted ${mode(l.mode)}` : l.state]), [...model.blSent], [...model.evicted])
  const deadline = Date.now() + ms
  let observed = ''
  for (;;) {
    for (const l of locks.values()) {
      const asts = sessions.get(l.client)?.asts ?? []
      if (asts.some(a => a.cookie === l.cookie && a.opcode === 'LDLM_BL_CALLBACK')) l.bl = true
      const cp = l.state === 'waiting' ? asts.find(a => a.cookie === l.cookie && a.opcode === 'LDLM_CP_CALLBACK') : undefined
      if (cp) { l.state = 'granted'; l.mode = Number(cp.desc.l_granted_mode) }
    }
    observed = describe([...locks].map(([id, l]) => [id, l.state === 'granted' ? `granted ${l.mode}` : l.state]), [...locks].filter(([, l]) => l.bl).map(([id]) => id), [...evicted])
    if (observed === expected) return { ok: true, expected, observed }
    if (Date.now() >= deadline) return { ok: false, expected, observed }
    await new Promise(r => setTimeout(r, 5))
  }
}

function describe(states: Array<[number, string]>, bl: number[], evicted: string[]): string {
  const s = [...states].sort((a, b) => a[0] - b[0]).map(([id, st]) => `${id}:${st}`).join(' ')
  return `locks ${s || '-'}; BL AST to ${[...bl].sort((a, b) => a - b).join(',') || 'none'}; evicted ${[...evicted].sort().join(',') || 'none'}`
}
