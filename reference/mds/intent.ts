// LDLM_ENQUEUE with an intent on the MDS (mdt_intent_policy): the intent is executed and
// its result goes back in the enqueue's reply, with the lock that protects it.
//
// IT_OPEN (mdt_intent_open): the open (or create) of REINT_OPEN, executed from the
// intent's RMF_REC_REINT; the disposition says what happened (DISP_LOOKUP_POS or _NEG,
// DISP_OPEN_CREATE, DISP_OPEN_OPEN), pb_transno is the create's, and the lock granted is a
// LOOKUP lock on the file.
//
// IT_LAYOUT (mdt_intent_layout), for LAYOUT_INTENT_ACCESS: a LAYOUT bits lock on the
// file the resource names, its layout (lov_mds_md_v1) as the reply's LVB.
//
// IT_GETATTR and IT_LOOKUP (mdt_intent_getattr): RMF_NAME looked up in the directory of
// mbo_fid1 (or mbo_fid1 itself without a name), the child's attributes in RMF_MDT_BODY
// and RMF_MDT_MD, and an inode bits lock on the child's FID in the mode asked: LOOKUP and
// PERM for IT_LOOKUP, UPDATE too for IT_GETATTR. lock_policy_res1 carries the disposition
// (DISP_IT_EXECD, DISP_LOOKUP_EXECD, and DISP_LOOKUP_POS or _NEG), lock_policy_res2 the
// intent's errno. A found child whose lock is granted: pb_status 0, LDLM_FL_LOCK_CHANGED
// (the lock replaced the one asked for). A missing name, an error, or a lock that would
// have to wait: ELDLM_LOCK_ABORTED and no lock; the attributes still go back when found.
import type { ReplySpec } from '../../src/transport/index.js'
import { E, shiftStripes, type TargetRequest } from '../common/index.js'
import type { LdlmService } from '../ldlm/index.js'
import { toWireDesc } from '../ldlm/index.js'
import { C, CB, MdsError, checkName, fidFrom, type Fid } from './common.js'
import { attrReply, reqBody, type MdtContext } from './handlers.js'
import { reintOpen } from './reint.js'
import type { Obj } from './body.js'
import type { Inode } from './store.js'

const IT = { GETATTR: CB('IT_GETATTR'), LOOKUP: CB('IT_LOOKUP'), OPEN: CB('IT_OPEN'), CREAT: CB('IT_CREAT'), LAYOUT: CB('IT_LAYOUT') }
const DISP = {
  IT_EXECD: CB('DISP_IT_EXECD'), LOOKUP_EXECD: CB('DISP_LOOKUP_EXECD'), NEG: CB('DISP_LOOKUP_NEG'), POS: CB('DISP_LOOKUP_POS'),
  OPEN_CREATE: CB('DISP_OPEN_CREATE'), OPEN_OPEN: CB('DISP_OPEN_OPEN'),
}
const BITS = { LOOKUP: CB('MDS_INODELOCK_LOOKUP'), UPDATE: CB('MDS_INODELOCK_UPDATE'), PERM: CB('MDS_INODELOCK_PERM'), LAYOUT: CB('MDS_INODELOCK_LAYOUT') }
const LOCK_ABORTED = C('ELDLM_LOCK_ABORTED')
const LOCK_CHANGED = C('LDLM_FL_LOCK_CHANGED')

const resName = (f: Fid): bigint[] => [f.f_seq, BigInt(f.f_oid), BigInt(f.f_ver), 0n]

/** The enqueue's reply: granted (pb_status 0, the lock replaced the one asked) or aborted without a lock. */
function intentReply(desc: Obj, lock: ReturnType<LdlmService['grantNow']>, disp: bigint, status: number, fields: Obj, body?: Obj): ReplySpec {
  const rep: Obj = {
    lock_flags: lock ? Number(LOCK_CHANGED) : 0, lock_padding: 0,
    lock_desc: lock ? toWireDesc(lock) : { ...desc, l_granted_mode: 0 },
    lock_handle: { cookie: lock?.handle ?? 0n }, lock_policy_res1: disp, lock_policy_res2: BigInt.asUintN(64, BigInt(status)),
  }
  return { status: lock ? 0 : Number(LOCK_ABORTED), fields: { ...fields, RMF_DLM_REP: rep }, body }
}

/** Handles the RQF_LDLM_INTENT_* enqueues: getattr, lookup, open and layout access; other intents -EOPNOTSUPP. */
export async function intentEnqueue(ctx: MdtContext, ldlm: LdlmService, r: TargetRequest): Promise<ReplySpec> {
  const opc = BigInt((r.msg.fields.RMF_LDLM_INTENT as Obj | undefined)?.opc as bigint | number | undefined ?? 0)
  const dlm = r.msg.fields.RMF_DLM_REQ as Obj | undefined
  if (!dlm) return { status: E.EPROTO, error: true }
  const desc = dlm.lock_desc as Obj
  const remote = ((dlm.lock_handle as Array<{ cookie: bigint }> | undefined) ?? [])[0]?.cookie ?? 0n
  const grant = (f: Fid, bits: bigint) => ldlm.grantNow(r.exp, { owner: r.exp.handle, type: 'ibits', name: resName(f), mode: Number(desc.l_req_mode), policy: { bits } }, remote)
  if (opc & (IT.OPEN | IT.CREAT)) return open(ctx, r, desc, grant)
  if (opc === IT.LAYOUT) return layout(ctx, r, desc, grant)
  if (opc !== IT.GETATTR && opc !== IT.LOOKUP) return { status: E.EOPNOTSUPP, error: true }
  let disp = DISP.IT_EXECD
  let status = 0
  let child: Inode | undefined
  let fields: Obj = {}
  try {
    const b = reqBody(r)
    const name = r.msg.fields.RMF_NAME as string | null | undefined
    if (name) {
      disp |= DISP.LOOKUP_EXECD
      child = ctx.ns.lookup(ctx.ns.dir(fidFrom(b.mbo_fid1)), checkName(name))
      disp |= child ? DISP.POS : DISP.NEG
    } else {
      child = ctx.ns.get(fidFrom(b.mbo_fid1))
      disp |= DISP.POS
    }
    if (child) fields = attrReply(ctx, child, BigInt((b.mbo_valid as bigint | undefined) ?? 0n))
  } catch (e) {
    if (!(e instanceof MdsError)) throw e
    status = e.status
  }
  const bits = BITS.LOOKUP | BITS.PERM | (opc === IT.GETATTR ? BITS.UPDATE : 0n)
  const lock = child && status === 0 ? grant(child.fid, bits) : undefined
  return intentReply(desc, lock, disp, status, fields)
}

type Grant = (f: Fid, bits: bigint) => ReturnType<LdlmService['grantNow']>

/** IT_OPEN: REINT_OPEN run from the intent; its errno goes in lock_policy_res2, its transno in pb_transno. */
async function open(ctx: MdtContext, r: TargetRequest, desc: Obj, grant: Grant): Promise<ReplySpec> {
  let disp = DISP.IT_EXECD | DISP.LOOKUP_EXECD
  let out: ReplySpec
  try {
    out = await reintOpen(ctx, r)
  } catch (e) {
    if (!(e instanceof MdsError)) throw e
    if (e.status === E.ENOENT) disp |= DISP.NEG
    return intentReply(desc, undefined, disp, e.status, {}, { pb_last_committed: ctx.store.lastTransno })
  }
  const created = BigInt((out.body?.pb_transno as bigint | undefined) ?? 0n) !== 0n
  disp |= (created ? DISP.NEG | DISP.OPEN_CREATE : DISP.POS) | DISP.OPEN_OPEN
  const body = (out.fields?.RMF_MDT_BODY ?? {}) as Obj
  const lock = grant(fidFrom(body.mbo_fid1), BITS.LOOKUP)
  return intentReply(desc, lock, disp, 0, out.fields ?? {}, out.body)
}

/** IT_LAYOUT for access: a LAYOUT lock on the file the resource names, the layout as the LVB. */
async function layout(ctx: MdtContext, r: TargetRequest, desc: Obj, grant: Grant): Promise<ReplySpec> {
  const lai = r.msg.fields.RMF_LAYOUT_INTENT as Obj | undefined
  // Writes that instantiate composite layout components (PFL) are not served: RAID0 layouts only.
  if (lai && Number(lai.lai_opc) !== C('LAYOUT_INTENT_ACCESS')) return { status: E.EOPNOTSUPP, error: true }
  const name = ((desc.l_resource as Obj).lr_name as Obj).name as bigint[]
  let ino: Inode
  try {
    ino = ctx.ns.get({ f_seq: name[0], f_oid: Number(name[1]), f_ver: Number(name[2]) })
  } catch (e) {
    if (e instanceof MdsError) return { status: e.status, error: true }
    throw e
  }
  return intentReply(desc, grant(ino.fid, BITS.LAYOUT), 0n, 0, { RMF_DLM_LVB: ino.layout && ctx.faults?.shiftStripes ? shiftStripes(ino.layout) : ino.layout ?? null })
}
