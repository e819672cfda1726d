// Suite `ldlm`, continued: extent locks on an OST object (growth, glimpse), early lock
// cancel, eviction of a holder that ignores its BL AST, and the Quint model's traces
// replayed against the target (LDLM-* requirements).
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { constantOf, loadSpec, makeStruct, packageRoot } from '../../src/wire/index.js'
import { createFile, getRoot, lovUserMd, mkdir, type WireFid } from '../wire/mdt.js'
import type { Obj, TargetSession } from '../wire/session.js'
import { replayLdlmTrace, type ItfTrace } from '../ldlm/mbt.js'
import { Unsupported, expectEqual, expectThat, type ConformanceTest, type TestContext } from '../core/test.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
export const EOF = 0xffffffffffffffffn
let cookie = 0x6578740000000000n

/** A new one-stripe file's object, and a session to the OST that holds it. */
export async function object(ctx: TestContext): Promise<{ name: bigint[]; ost: number }> {
  const s = await ctx.mds()
  const dir = await mkdir(s, await getRoot(s), `lc-${Math.floor(ctx.random() * 2 ** 48).toString(36)}`)
  const f = await createFile(s, dir.body!.mbo_fid1 as WireFid, 'f', lovUserMd({ size: 1 << 20, count: 1, offset: -1 }))
  const o = (f.md?.lmm_objects as Obj[] | undefined)?.[0]
  if (!o) throw new Error('the create reply names no object')
  return { name: [o.l_ost_oi.oi.oi_id as bigint, o.l_ost_oi.oi.oi_seq as bigint, 0n, 0n], ost: Number(o.l_ost_idx) }
}

export async function extent(s: TargetSession, name: bigint[], mode: string, start: bigint, end: bigint, opts: { flags?: bigint; cancel?: bigint[] } = {}) {
  const mine = cookie++
  const handles = [mine, ...(opts.cancel ?? [])]
  while (handles.length < 2) handles.push(0n)
  const r = await s.call('RQF_LDLM_ENQUEUE', {
    RMF_DLM_REQ: makeStruct('ldlm_request', {
      lock_flags: Number(opts.flags ?? 0n), lock_count: 1 + (opts.cancel?.length ?? 0), lock_handle: handles.map(c => ({ cookie: c })),
      lock_desc: {
        l_resource: { lr_type: Number(C('LDLM_EXTENT')), lr_pad: 0, lr_name: { name } }, l_req_mode: Number(C(`LCK_${mode}`)), l_granted_mode: 0,
        l_policy_data: { l_extent: { start, end, gid: 0n } },
      },
    }),
  })
  const rep = r.reply.fields.RMF_DLM_REP as Obj
  return { status: r.reply.body.pb_status as number, rep, mine, server: rep?.lock_handle?.cookie as bigint, lvb: r.reply.fields.RMF_DLM_LVB as Obj | undefined }
}

export const ldlmMoreTests: ConformanceTest[] = [
  {
    id: 'ldlm.extent.grows', tags: ['ldlm', 'extent'], requirements: ['LDLM-EXTENT-GROW'],
    title: 'an uncontended extent lock is granted over the whole object',
    async run(ctx) {
      const { name, ost } = await object(ctx)
      const s = await ctx.ost(ost)
      const l = await extent(s, name, 'PW', 0n, 4095n)
      expectEqual('granted mode', Number(l.rep.lock_desc.l_granted_mode), Number(C('LCK_PW')))
      expectEqual('granted extent', [l.rep.lock_desc.l_policy_data.l_extent.start, l.rep.lock_desc.l_policy_data.l_extent.end], [0n, EOF])
    },
  },
  {
    id: 'ldlm.glimpse.writer-size', tags: ['ldlm', 'extent', 'glimpse'], requirements: ['LDLM-GLIMPSE'],
    title: 'a glimpse against a PW holder sends it a GL AST and answers with the size the holder gives, granting no lock',
    async run(ctx) {
      const { name, ost } = await object(ctx)
      const a = await ctx.ost(ost)
      const b = await ctx.ost(ost)
      const w = await extent(a, name, 'PW', 0n, EOF)
      a.glimpseLvb = { lvb_size: 777777n, lvb_mtime: 1_900_000_000n }
      const g = await extent(b, name, 'PR', 0n, EOF, { flags: C('LDLM_FL_HAS_INTENT') })
      expectEqual('glimpse status', g.status, Number(C('ELDLM_LOCK_ABORTED')))
      expectThat('a GL AST to the writer', !!(await a.waitAst('LDLM_GL_CALLBACK', w.mine, 1000)), 'LDLM_GL_CALLBACK', 'none')
      expectEqual('size in the glimpse reply\'s LVB', g.lvb?.lvb_size, 777777n)
      expectThat('no BL AST to the writer', !a.asts.some(x => x.opcode === 'LDLM_BL_CALLBACK'), 'none', 'an LDLM_BL_CALLBACK')
    },
  },
  {
    id: 'ldlm.elc.enqueue', tags: ['ldlm', 'elc'], requirements: ['LDLM-ELC'],
    title: 'a lock cancelled early in an enqueue does not block it: no BL AST to its own holder',
    async run(ctx) {
      const { name, ost } = await object(ctx)
      const s = await ctx.ost(ost)
      const pr = await extent(s, name, 'PR', 0n, EOF)
      const pw = await extent(s, name, 'PW', 0n, EOF, { cancel: [pr.server] })
      expectEqual('PW granted in the reply', Number(pw.rep.lock_desc.l_granted_mode), Number(C('LCK_PW')))
      await new Promise(r => setTimeout(r, 100))
      expectThat('no BL AST for the PR cancelled in the request', !s.asts.some(x => x.opcode === 'LDLM_BL_CALLBACK'), 'none', 'an LDLM_BL_CALLBACK')
    },
  },
  {
    id: 'ldlm.eviction.callback-timeout', tags: ['ldlm', 'eviction', 'slow'], requirements: ['LDLM-EVICTION'],
    title: 'a holder that ignores its BL AST is evicted after the callback timeout; the waiter is granted; the holder must reconnect',
    async run(ctx) {
      const timeout = ctx.target.lockTimeoutMs
      if (timeout === undefined) throw new Unsupported('the target\'s lock callback timeout is not given (target.json lockTimeoutMs)')
      const { name, ost } = await object(ctx)
      const a = await ctx.ost(ost)
      const b = await ctx.ost(ost)
      const held = await extent(a, name, 'PW', 0n, EOF)
      const wait = await extent(b, name, 'PW', 0n, EOF)
      expectEqual('the second PW waits', Number(wait.rep.lock_desc.l_granted_mode), 0)
      expectThat('BL AST to the holder', !!(await a.waitAst('LDLM_BL_CALLBACK', held.mine, 3000)), 'LDLM_BL_CALLBACK', 'none')
      const cp = await b.waitAst('LDLM_CP_CALLBACK', wait.mine, timeout * 2 + 5000)
      expectThat('CP AST to the waiter once the holder is evicted', !!cp, 'LDLM_CP_CALLBACK', `none within ${timeout * 2 + 5000} ms`)
      expectEqual('the evicted holder\'s OBD_PING', await a.ping(), -Number(C('LUSTRE_ENOTCONN')))
    },
  },
  ...['0x11', '0x2a'].map((seed): ConformanceTest => ({
    id: `ldlm.model.seed-${seed}`, tags: ['ldlm', 'model'], requirements: ['LDLM-MODEL'],
    title: `the Quint model's trace from seed ${seed}: the target's locks and ASTs agree with the model at every step`,
    async run(ctx) {
      const timeout = ctx.target.lockTimeoutMs
      const dir = mkdtempSync(join(tmpdir(), 'lc-itf-'))
      try {
        const out = join(dir, 'trace.itf.json')
        // Without the target's callback timeout, traces keep to enqueues and cancels.
        await new Promise<void>((resolve, reject) => execFile(join(packageRoot(), 'node_modules', '.bin', 'quint'), [
          'run', join(packageRoot(), 'spec', 'models', 'ldlm.qnt'), '--backend', 'typescript', '--step', timeout === undefined ? 'stepEnqueueCancel' : 'stepOnTheWire',
          '--invariant', 'safety', '--mbt', '--out-itf', out, '--max-samples', '1', '--max-steps', '12', '--seed', seed,
        ], { timeout: 120_000 }, (err, so, se) => (err ? reject(new Error(`quint run: ${so}${se}`)) : resolve())))
        const itf = JSON.parse(readFileSync(out, 'utf8')) as ItfTrace
        const results = await replayLdlmTrace(itf, { mds: ctx.target.mds, fsname: ctx.target.fsname, lockTimeoutMs: timeout, resource: await (await ctx.mds()).newResource() })
        const bad = results.find(r => !r.ok)
        if (bad) expectEqual(`step ${bad.index} ${bad.action}`, bad.observed, bad.expected)
        ctx.note(`${results.length} steps agree with the model`)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  })),
]
