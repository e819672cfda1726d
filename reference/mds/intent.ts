// LDLM_ENQUEUE with an intent on the MDS (mdt_intent_policy): the intent is executed and
// its result goes back in the enqueue's reply, with the lock that protects it.
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
import { E, type TargetRequest } from '../common/index.js'
import type { LdlmService } from '../ldlm/index.js'
import { toWireDesc } from '../ldlm/index.js'
import { C, CB, MdsError, checkName, fidFrom, type Fid } from './common.js'
import { attrReply, reqBody, type MdtContext } from './handlers.js'
import type { Obj } from './body.js'
import type { Inode } from './store.js'

const IT = { GETATTR: CB('IT_GETATTR'), LOOKUP: CB('IT_LOOKUP') }
const DISP = { IT_EXECD: CB('DISP_IT_EXECD'), LOOKUP_EXECD: CB('DISP_LOOKUP_EXECD'), NEG: CB('DISP_LOOKUP_NEG'), POS: CB('DISP_LOOKUP_POS') }
const BITS = { LOOKUP: CB('MDS_INODELOCK_LOOKUP'), UPDATE: CB('MDS_INODELOCK_UPDATE'), PERM: CB('MDS_INODELOCK_PERM') }
const LOCK_ABORTED = C('ELDLM_LOCK_ABORTED')
const LOCK_CHANGED = C('LDLM_FL_LOCK_CHANGED')

const resName = (f: Fid): bigint[] => [f.f_seq, BigInt(f.f_oid), BigInt(f.f_ver), 0n]

/** Handles RQF_LDLM_INTENT_GETATTR enqueues; other intents are not executed here (-EOPNOTSUPP). */
export async function intentEnqueue(ctx: MdtContext, ldlm: LdlmService, r: TargetRequest): Promise<ReplySpec> {
  const opc = BigInt((r.msg.fields.RMF_LDLM_INTENT as Obj | undefined)?.opc as bigint | number | undefined ?? 0)
  if (opc !== IT.GETATTR && opc !== IT.LOOKUP) return { status: E.EOPNOTSUPP, error: true }
  const dlm = r.msg.fields.RMF_DLM_REQ as Obj | undefined
  if (!dlm) return { status: E.EPROTO, error: true }
  const desc = dlm.lock_desc as Obj
  const remote = ((dlm.lock_handle as Array<{ cookie: bigint }> | undefined) ?? [])[0]?.cookie ?? 0n
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
  const lock = child && status === 0
    ? ldlm.grantNow(r.exp, { owner: r.exp.handle, type: 'ibits', name: resName(child.fid), mode: Number(desc.l_req_mode), policy: { bits } }, remote)
    : undefined
  const rep: Obj = {
    lock_flags: lock ? Number(LOCK_CHANGED) : 0, lock_padding: 0,
    lock_desc: lock ? toWireDesc(lock) : { ...desc, l_granted_mode: 0 },
    lock_handle: { cookie: lock?.handle ?? 0n }, lock_policy_res1: disp, lock_policy_res2: BigInt.asUintN(64, BigInt(status)),
  }
  return { status: lock ? 0 : Number(LOCK_ABORTED), fields: { ...fields, RMF_DLM_REP: rep } }
}
