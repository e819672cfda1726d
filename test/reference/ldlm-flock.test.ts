// POSIX record locks (LDLM_FLOCK) on the reference MDS, on the wire: a conflicting lock
// waits, a cycle of waits is refused -EDEADLK, F_SETLK's LDLM_FL_BLOCK_NOWAIT gets -EAGAIN,
// and an unlock (an enqueue in LCK_NL) hands the range to the waiter by a CP AST.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { MDS_FLAGS, TargetSession } from '../../conformance/index.js'
import { startCluster } from '../../reference/cluster/index.js'
import { E } from '../../reference/common/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
let pid = 0x464c0000

t.test('flock over the wire: wait, deadlock, nowait, unlock', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lc-flock-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startCluster({ dir, osts: 1, mdsPort: 0, ossPort: 0 })
  t.teardown(() => c.stop())
  const open = () => TargetSession.open({
    service: 'mds', address: c.mdsAddress, targetUuid: 'lustre-MDT0000_UUID', pid: pid++,
    flags: MDS_FLAGS, ocd: { ocd_ibits_known: C('MDS_INODELOCK_FULL') },
  })
  const a = await open()
  const b = await open()
  t.teardown(async () => { await a.close(); await b.close() })
  let cookie = 0x1000n
  const flock = async (s: TargetSession, owner: bigint, mode: string, start: bigint, end: bigint, flags = 0n) => {
    const r = await s.call('RQF_LDLM_ENQUEUE', {
      RMF_DLM_REQ: makeStruct('ldlm_request', {
        lock_flags: Number(flags), lock_count: 1, lock_handle: [{ cookie: cookie++ }, { cookie: 0n }],
        lock_desc: {
          l_resource: { lr_type: Number(C('LDLM_FLOCK')), lr_pad: 0, lr_name: { name: [0x200000401n, 0x42n, 0n, 0n] } }, l_req_mode: Number(C(mode)), l_granted_mode: 0,
          l_policy_data: { l_flock: { lfw_start: start, lfw_end: end, lfw_owner: owner, lfw_padding: 0, lfw_pid: Number(owner) } },
        },
      }),
    })
    return { status: r.reply.body.pb_status as number, rep: r.reply.fields.RMF_DLM_REP as Obj }
  }
  t.equal((await flock(a, 1n, 'LCK_PW', 0n, 9n)).rep.lock_desc.l_granted_mode, Number(C('LCK_PW')))
  t.equal((await flock(b, 2n, 'LCK_PW', 10n, 19n)).rep.lock_desc.l_granted_mode, Number(C('LCK_PW')))
  const waits = await flock(a, 1n, 'LCK_PW', 10n, 19n)
  t.equal(waits.rep.lock_desc.l_granted_mode, 0, 'a waits for b')
  t.equal(BigInt(waits.rep.lock_flags) & C('LDLM_FL_BLOCK_GRANTED'), C('LDLM_FL_BLOCK_GRANTED'))
  t.equal((await flock(b, 2n, 'LCK_PW', 0n, 9n)).status, E.EDEADLK, 'b waiting for a would close the cycle')
  t.equal((await flock(b, 2n, 'LCK_PR', 5n, 5n, C('LDLM_FL_BLOCK_NOWAIT'))).status, E.EAGAIN, 'F_SETLK does not wait')
  const unlock = await flock(b, 2n, 'LCK_NL', 10n, 19n)
  t.equal(unlock.status, 0, 'the unlock is granted')
  for (let i = 0; i < 200 && !a.asts.length; i++) await new Promise(r => setTimeout(r, 10))
  t.same(a.asts.map(x => x.opcode), ['LDLM_CP_CALLBACK'], 'a gets the range: a CP AST, and no BL AST ever')
  t.same(b.asts, [], 'b was never asked to give a flock back')
})
