// Suite `ldlm`: the lock manager, pairwise over the modes for two lock types: inode bits locks
// on the MDT and extent locks on an OST object (LDLM-* requirements). Each compatibility test
// takes a fresh resource (a FID from the test's random source, or a new file's object):
// client A holds one mode, client B asks another over the same bits or range; B must be granted at
// once exactly when spec/ldlm/compat.json says the modes are compatible, and otherwise
// only after A was sent a BL AST naming A's own handle and cancelled.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { constantOf, loadSpec, makeStruct, packageRoot } from '../../src/wire/index.js'
import { errno, type TargetSession, type Obj } from '../wire/session.js'
import { EOF, extent, object } from './ldlm-more.js'
import { Unsupported, expectEqual, expectThat, type ConformanceTest, type TestContext } from '../core/test.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const compat = (JSON.parse(readFileSync(join(packageRoot(), 'spec', 'ldlm', 'compat.json'), 'utf8')) as { compatible: Record<string, string[]> }).compatible
const MODES = ['EX', 'PW', 'PR', 'CW', 'CR', 'NL']
const UPDATE = C('MDS_INODELOCK_UPDATE')

let cookie = 0x636f6e6600000000n

async function ibitsSessions(ctx: TestContext, n: number): Promise<TargetSession[]> {
  const out: TargetSession[] = []
  for (let i = 0; i < n; i++) {
    const s = await ctx.mds()
    if (!(s.flags & C('OBD_CONNECT_IBITS'))) throw new Unsupported('the MDT did not grant OBD_CONNECT_IBITS')
    out.push(s)
  }
  return out
}


async function enqueue(s: TargetSession, name: bigint[], mode: string, bits = UPDATE, lockMode = Number(C(`LCK_${mode}`))) {
  const mine = cookie++
  const r = await s.call('RQF_LDLM_ENQUEUE', {
    RMF_DLM_REQ: makeStruct('ldlm_request', {
      lock_count: 1, lock_handle: [{ cookie: mine }, { cookie: 0n }],
      lock_desc: {
        l_resource: { lr_type: Number(C('LDLM_IBITS')), lr_pad: 0, lr_name: { name } }, l_req_mode: lockMode, l_granted_mode: 0,
        l_policy_data: { l_inodebits: makeStruct('ldlm_inodebits', { bits }) },
      },
    }),
  })
  const rep = r.reply.fields.RMF_DLM_REP as Obj | undefined
  return { status: r.reply.body.pb_status as number, granted: Number(rep?.lock_desc?.l_granted_mode ?? 0), server: (rep?.lock_handle?.cookie as bigint | undefined) ?? 0n, mine }
}

/** LDLM_CANCEL of one handle: the reply's status and kind (a normal reply, or an error reply). */
async function cancelReply(s: TargetSession, handle: bigint): Promise<{ status: number; kind: string }> {
  const r = await s.cancelLock(handle)
  return { status: r.reply.body.pb_status as number, kind: r.reply.kind }
}

async function cancel(s: TargetSession, handle: bigint): Promise<number> {
  return (await cancelReply(s, handle)).status
}

/** Two clients' locks on one fresh resource: inode bits on the MDT, or a whole-object extent on an OST object. */
interface Pair {
  a: TargetSession
  b: TargetSession
  lock(s: TargetSession, mode: string): Promise<{ granted: number; mine: bigint; server: bigint }>
}

async function ibitsPair(ctx: TestContext): Promise<Pair> {
  const [a, b] = await ibitsSessions(ctx, 2)
  const name = await a.newResource()
  return { a, b, lock: (s, mode) => enqueue(s, name, mode) }
}

async function extentPair(ctx: TestContext): Promise<Pair> {
  const { name, ost } = await object(ctx)
  const [a, b] = [await ctx.ost(ost), await ctx.ost(ost)]
  return {
    a, b,
    async lock(s, mode) {
      const l = await extent(s, name, mode, 0n, EOF)
      return { granted: Number(l.rep?.lock_desc?.l_granted_mode ?? 0), mine: l.mine, server: l.server ?? 0n }
    },
  }
}

function compatTest(held: string, asked: string, type: 'ibits' | 'extent'): ConformanceTest {
  const ok = compat[`LCK_${held}`].includes(`LCK_${asked}`)
  const pair = `${held.toLowerCase()}-${asked.toLowerCase()}`
  return {
    id: type === 'ibits' ? `ldlm.compat.${pair}` : `ldlm.compat-extent.${pair}`, tags: ['ldlm', 'compat', type],
    requirements: [`LDLM-COMPAT-${held}-${asked}`, ...(ok ? [] : ['LDLM-BL-AST', 'LDLM-CP-AST'])],
    title: `${asked} asked while ${held} is held${type === 'extent' ? ' (extent locks on an OST object)' : ''}: ${ok ? 'granted at once' : 'granted after a BL AST and the cancel'}`,
    async run(ctx) {
      const { a, b, lock } = await (type === 'ibits' ? ibitsPair(ctx) : extentPair(ctx))
      const h = await lock(a, held)
      expectEqual(`${held} on a free resource: granted mode`, h.granted, Number(C(`LCK_${held}`)))
      const q = await lock(b, asked)
      expectEqual(`${asked} beside ${held}: granted mode in the reply`, q.granted, ok ? Number(C(`LCK_${asked}`)) : 0)
      if (ok) {
        const bl = await a.waitAst('LDLM_BL_CALLBACK', h.mine, 200)
        expectThat('no BL AST to the holder of a compatible lock', !bl, 'none', 'an LDLM_BL_CALLBACK')
        return
      }
      const bl = await a.waitAst('LDLM_BL_CALLBACK', h.mine, 3000)
      expectThat('BL AST to the holder, naming its handle', !!bl, `LDLM_BL_CALLBACK with lock_handle ${h.mine}`, 'none within 3 s')
      expectEqual('cancel of the held lock', await cancel(a, h.server), 0)
      const cp = await b.waitAst('LDLM_CP_CALLBACK', q.mine, 3000)
      expectThat('CP AST to the waiter, naming its handle', !!cp, `LDLM_CP_CALLBACK with lock_handle ${q.mine}`, 'none within 3 s')
      expectEqual('granted mode in the CP AST', Number(cp!.desc.l_granted_mode), Number(C(`LCK_${asked}`)))
    },
  }
}

export const ldlmTests: ConformanceTest[] = [
  ...MODES.flatMap(h => MODES.map(a => compatTest(h, a, 'ibits'))),
  ...MODES.flatMap(h => MODES.map(a => compatTest(h, a, 'extent'))),
  {
    id: 'ldlm.cancel.unknown-handle', tags: ['ldlm', 'errors'], requirements: ['LDLM-CANCEL-STALE'],
    title: 'a cancel naming no lock of this export is answered LUSTRE_ESTALE (116, positive, in a normal reply), and another client\'s lock survives it',
    async run(ctx) {
      const [a, b] = await ibitsSessions(ctx, 2)
      const name = await a.newResource()
      const h = await enqueue(a, name, 'EX')
      // ldlm_handle_cancel() sets rq_status to LUSTRE_ESTALE itself: positive, as the client's ldlm_cli_cancel_req() expects it.
      const stale = { status: Number(C('LUSTRE_ESTALE')), kind: 'reply' }
      expectEqual('cancel of a made-up handle', await cancelReply(b, 0xdead0000n | BigInt(Math.floor(ctx.random() * 0xffff))), stale)
      expectEqual('cancel of another client\'s lock', await cancelReply(b, h.server), stale)
      const q = await enqueue(b, name, 'EX')
      expectEqual('the lock survived: a conflicting request waits', q.granted, 0)
    },
  },
  {
    id: 'ldlm.enqueue.bad-mode', tags: ['ldlm', 'errors'], requirements: ['LDLM-ENQUEUE-BAD-MODE'],
    title: 'an enqueue whose mode is not one mode bit is answered -EFAULT',
    async run(ctx) {
      const [a] = await ibitsSessions(ctx, 1)
      const r = await enqueue(a, await a.newResource(), 'PW', UPDATE, Number(C('LCK_PW') | C('LCK_PR')))
      expectEqual('enqueue status for mode PW|PR', r.status, errno('EFAULT'))
    },
  },
]
