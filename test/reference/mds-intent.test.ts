// LDLM_ENQUEUE with IT_GETATTR / IT_LOOKUP on the reference MDS (mdt_intent_getattr): the
// child's attributes in the enqueue's reply, a lock on the child's FID with the bits the
// intent implies, and the disposition in lock_policy_res1; a missing name is answered
// ELDLM_LOCK_ABORTED with DISP_LOOKUP_NEG; a child locked EX by another client is
// answered with its attributes but no lock.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { TargetSession } from '../../conformance/index.js'
import { startCluster } from '../../reference/cluster/index.js'
import { LustreClient } from '../../reference/client/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
let pid = 0x494e0000
type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

t.test('intent getattr and lookup: attributes, a child lock, the disposition', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lc-intent-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startCluster({ dir, osts: 1, mdsPort: 0, ossPort: 0 })
  t.teardown(() => c.stop())
  const cl = await LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses })
  await cl.mkdir('/d')
  await cl.create('/d/f', { stripeCount: 1 })
  const dirFid = (await cl.stat('/d')).fid
  const fileFid = (await cl.stat('/d/f')).fid
  await cl.close()
  const session = () => TargetSession.open({
    service: 'mds', address: c.mdsAddress, targetUuid: 'lustre-MDT0000_UUID', pid: pid++,
    flags: C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_IBITS') | C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20'), ocd: { ocd_ibits_known: C('MDS_INODELOCK_FULL') },
  })
  const a = await session()
  const b = await session()
  t.teardown(async () => { await a.close(); await b.close() })
  const fid = (f: { seq: bigint; oid: number; ver: number }) => ({ f_seq: f.seq, f_oid: f.oid, f_ver: f.ver })
  const intent = async (s: TargetSession, it: string, name: string | null, mode = 'LCK_PR') => {
    const r = await s.call('RQF_LDLM_INTENT_GETATTR', {
      RMF_DLM_REQ: makeStruct('ldlm_request', {
        lock_flags: Number(C('LDLM_FL_HAS_INTENT')), lock_count: 1, lock_handle: [{ cookie: 0x1234n + BigInt(pid) }, { cookie: 0n }],
        lock_desc: { l_resource: { lr_type: Number(C('LDLM_IBITS')), lr_pad: 0, lr_name: { name: [dirFid.seq, BigInt(dirFid.oid), 0n, 0n] } }, l_req_mode: Number(C(mode)), l_granted_mode: 0, l_policy_data: { l_inodebits: makeStruct('ldlm_inodebits', { bits: C('MDS_INODELOCK_LOOKUP') }) } },
      }),
      RMF_LDLM_INTENT: { opc: C(it) },
      RMF_MDT_BODY: makeStruct('mdt_body', { mbo_fid1: fid(dirFid), mbo_valid: C('OBD_MD_FLEASIZE') }),
      RMF_NAME: name,
    })
    return { status: r.reply.body.pb_status as number, rep: r.reply.fields.RMF_DLM_REP as Obj, body: r.reply.fields.RMF_MDT_BODY as Obj | undefined, md: r.reply.fields.RMF_MDT_MD }
  }
  const disp = (...names: string[]) => names.reduce((m, n) => m | C(n), 0n)

  const got = await intent(a, 'IT_GETATTR', 'f')
  t.equal(got.status, 0, 'granted: pb_status 0')
  t.same(got.body?.mbo_fid1, fid(fileFid), 'the child\'s attributes')
  t.ok(got.md, 'and its layout, as mbo_valid asked')
  t.same(got.rep.lock_desc.l_resource.lr_name.name, [fileFid.seq, BigInt(fileFid.oid), 0n, 0n], 'the lock is on the child')
  t.equal(got.rep.lock_desc.l_policy_data.l_inodebits.bits, C('MDS_INODELOCK_LOOKUP') | C('MDS_INODELOCK_UPDATE') | C('MDS_INODELOCK_PERM'))
  t.equal(got.rep.lock_desc.l_granted_mode, Number(C('LCK_PR')))
  t.equal(BigInt(got.rep.lock_flags) & C('LDLM_FL_LOCK_CHANGED'), C('LDLM_FL_LOCK_CHANGED'))
  t.equal(got.rep.lock_policy_res1, disp('DISP_IT_EXECD', 'DISP_LOOKUP_EXECD', 'DISP_LOOKUP_POS'))
  t.equal(got.rep.lock_policy_res2, 0n)

  const look = await intent(a, 'IT_LOOKUP', 'f')
  t.equal(look.rep.lock_desc.l_policy_data.l_inodebits.bits, C('MDS_INODELOCK_LOOKUP') | C('MDS_INODELOCK_PERM'), 'IT_LOOKUP: no UPDATE bit')

  const none = await intent(a, 'IT_GETATTR', 'missing')
  t.equal(none.status, Number(C('ELDLM_LOCK_ABORTED')), 'a missing name: no lock')
  t.equal(none.rep.lock_policy_res1, disp('DISP_IT_EXECD', 'DISP_LOOKUP_EXECD', 'DISP_LOOKUP_NEG'))
  t.equal(none.rep.lock_policy_res2, 0n, 'a negative lookup is not an error')
  t.equal(none.rep.lock_handle.cookie, 0n)

  // b holds the child EX (UPDATE): a's next getattr intent gets the attributes but no lock.
  const ex = await b.call('RQF_LDLM_ENQUEUE', {
    RMF_DLM_REQ: makeStruct('ldlm_request', {
      lock_count: 1, lock_handle: [{ cookie: 0x99n }, { cookie: 0n }],
      lock_desc: { l_resource: { lr_type: Number(C('LDLM_IBITS')), lr_pad: 0, lr_name: { name: [fileFid.seq, BigInt(fileFid.oid), 0n, 0n] } }, l_req_mode: Number(C('LCK_EX')), l_granted_mode: 0, l_policy_data: { l_inodebits: makeStruct('ldlm_inodebits', { bits: C('MDS_INODELOCK_UPDATE') }) } },
    }),
  })
  t.equal((ex.reply.fields.RMF_DLM_REP as Obj).lock_desc.l_granted_mode, 0, 'b waits behind a\'s PR locks')
  const blocked = await intent(b, 'IT_GETATTR', 'f')
  t.equal(blocked.status, Number(C('ELDLM_LOCK_ABORTED')), 'behind a waiting EX: attributes, no lock')
  t.same(blocked.body?.mbo_fid1, fid(fileFid))
  t.equal(blocked.rep.lock_policy_res1, disp('DISP_IT_EXECD', 'DISP_LOOKUP_EXECD', 'DISP_LOOKUP_POS'))
  // The BL ASTs go out after b's reply: give them the moment they take.
  for (let i = 0; i < 200 && a.asts.length < 1; i++) await new Promise(r => setTimeout(r, 10))
  await new Promise(r => setTimeout(r, 50))
  // Only the getattr lock holds UPDATE: the lookup lock (LOOKUP|PERM) does not conflict with an EX on UPDATE.
  t.same(a.asts.map(x => x.opcode), ['LDLM_BL_CALLBACK'], 'one BL AST, for the lock with the UPDATE bit')
  t.same(a.asts[0]?.desc.l_policy_data.l_inodebits.bits, C('MDS_INODELOCK_UPDATE'), 'describing the EX it blocks')
})
