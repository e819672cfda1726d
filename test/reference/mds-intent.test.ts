// LDLM_ENQUEUE with IT_GETATTR / IT_LOOKUP on the reference MDS (mdt_intent_getattr): the
// child's attributes in the enqueue's reply, a lock on the child's FID with the bits the
// intent implies, and the disposition in lock_policy_res1; a missing name is answered
// ELDLM_LOCK_ABORTED with DISP_LOOKUP_NEG; a child locked EX by another client is
// answered with its attributes but no lock.
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { constantOf, decodeStruct, encodeStruct, loadSpec, makeStruct } from '../../src/wire/index.js'
import { MDS_FLAGS, TargetSession } from '../../conformance/index.js'
import { startCluster } from '../../reference/cluster/index.js'
import { LustreClient } from '../../reference/client/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
let pid = 0x494e0000
type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

async function cluster(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'lc-intent-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startCluster({ dir, osts: 1, mdsPort: 0, ossPort: 0 })
  t.teardown(() => c.stop())
  return c
}

const mdsSession = (address: string) => TargetSession.open({
  service: 'mds', address, targetUuid: 'lustre-MDT0000_UUID', pid: pid++,
  flags: MDS_FLAGS, ocd: { ocd_ibits_known: C('MDS_INODELOCK_FULL') },
})

const ibitsDesc = (name: bigint[], mode: string, bits: bigint): Obj => ({
  l_resource: { lr_type: Number(C('LDLM_IBITS')), lr_pad: 0, lr_name: { name } }, l_req_mode: Number(C(mode)), l_granted_mode: 0,
  l_policy_data: { l_inodebits: makeStruct('ldlm_inodebits', { bits }) },
})

t.test('intent open creates and opens in the enqueue; intent layout returns the layout as the LVB', async t => {
  const c = await cluster(t)
  const cl = await LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses })
  await cl.mkdir('/o')
  const parent = (await cl.stat('/o')).fid
  await cl.close()
  const s = await mdsSession(c.mdsAddress)
  t.teardown(() => s.close())
  const openIntent = async (name: string, creat: boolean) => {
    const flags = C('MDS_FMODE_READ') | C('MDS_FMODE_WRITE') | (creat ? C('MDS_OPEN_CREAT') : 0n)
    const r = await s.call('RQF_LDLM_INTENT_OPEN', {
      RMF_DLM_REQ: makeStruct('ldlm_request', { lock_flags: Number(C('LDLM_FL_HAS_INTENT')), lock_count: 1, lock_handle: [{ cookie: 0x0be7n }, { cookie: 0n }], lock_desc: ibitsDesc([parent.seq, BigInt(parent.oid), 0n, 0n], 'LCK_CR', C('MDS_INODELOCK_LOOKUP')) }),
      RMF_LDLM_INTENT: { opc: C('IT_OPEN') | (creat ? C('IT_CREAT') : 0n) },
      RMF_REC_REINT: makeStruct('mdt_rec_create', {
        cr_opcode: Number(C('REINT_OPEN')), cr_fid1: { f_seq: parent.seq, f_oid: parent.oid, f_ver: 0 }, cr_mode: 0o100644,
        cr_flags_l: Number(flags & 0xffffffffn), cr_flags_h: Number(flags >> 32n), cr_time: 1_800_000_000n,
      }),
      RMF_NAME: name,
    })
    return { status: r.reply.body.pb_status as number, transno: r.reply.body.pb_transno as bigint, rep: r.reply.fields.RMF_DLM_REP as Obj, body: r.reply.fields.RMF_MDT_BODY as Obj | undefined }
  }
  const disp = (...names: string[]) => names.reduce((m, n) => m | C(n), 0n)
  const made = await openIntent('new', true)
  t.equal(made.status, 0, 'granted')
  t.ok(made.transno > 0n, 'the create has a transno')
  t.equal(made.rep.lock_policy_res1, disp('DISP_IT_EXECD', 'DISP_LOOKUP_EXECD', 'DISP_LOOKUP_NEG', 'DISP_OPEN_CREATE', 'DISP_OPEN_OPEN'))
  t.not(made.body?.mbo_open_handle.cookie, 0n, 'an open handle')
  t.equal(made.rep.lock_desc.l_policy_data.l_inodebits.bits, C('MDS_INODELOCK_LOOKUP'), 'a LOOKUP lock on the new file')
  const again = await openIntent('new', false)
  t.equal(again.transno, 0n, 'opening an existing file changes nothing')
  t.equal(again.rep.lock_policy_res1, disp('DISP_IT_EXECD', 'DISP_LOOKUP_EXECD', 'DISP_LOOKUP_POS', 'DISP_OPEN_OPEN'))
  const missing = await openIntent('nothing', false)
  t.equal(missing.status, Number(C('ELDLM_LOCK_ABORTED')))
  t.equal(missing.rep.lock_policy_res2, BigInt.asUintN(64, -BigInt(C('LUSTRE_ENOENT'))), 'the errno in lock_policy_res2')
  t.equal(missing.rep.lock_policy_res1, disp('DISP_IT_EXECD', 'DISP_LOOKUP_EXECD', 'DISP_LOOKUP_NEG'))

  const file = made.body!.mbo_fid1 as { f_seq: bigint; f_oid: number; f_ver: number }
  const lay = await s.call('RQF_LDLM_INTENT_LAYOUT', {
    RMF_DLM_REQ: makeStruct('ldlm_request', { lock_flags: Number(C('LDLM_FL_HAS_INTENT')), lock_count: 1, lock_handle: [{ cookie: 0x1a7n }, { cookie: 0n }], lock_desc: ibitsDesc([file.f_seq, BigInt(file.f_oid), 0n, 0n], 'LCK_CR', C('MDS_INODELOCK_LAYOUT')) }),
    RMF_LDLM_INTENT: { opc: C('IT_LAYOUT') },
    RMF_LAYOUT_INTENT: makeStruct('layout_intent', { lai_opc: Number(C('LAYOUT_INTENT_ACCESS')) }),
  })
  t.equal(lay.reply.body.pb_status, 0)
  const rep = lay.reply.fields.RMF_DLM_REP as Obj
  t.equal(rep.lock_desc.l_policy_data.l_inodebits.bits, C('MDS_INODELOCK_LAYOUT'))
  t.equal(rep.lock_desc.l_granted_mode, Number(C('LCK_CR')))
  // The codec picks an LVB's struct by size, and a one-stripe lov_mds_md_v1 is 56 bytes like an
  // ost_lvb: read the bytes back as what IT_LAYOUT puts there.
  const raw = lay.reply.fields.RMF_DLM_LVB as Obj | Uint8Array
  const bytes = raw instanceof Uint8Array ? raw : encodeStruct('ost_lvb', raw)
  const lmm = decodeStruct<Obj>('lov_mds_md_v1', bytes)
  t.equal(lmm.lmm_magic, Number(C('LOV_MAGIC_V1')), 'the layout (lov_mds_md_v1) as the LVB')
  t.equal(lmm.lmm_stripe_count, 1)
})

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
  const session = () => mdsSession(c.mdsAddress)
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
