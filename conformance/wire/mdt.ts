// The metadata requests the harness sends, packed as Lustre's mdc packs them (mdc_lib.c),
// over a TargetSession: root, lookup by name, mkdir, create-and-open, unlink and rename.
// Each returns the reply's status and mdt_body, so a test can check an errno as well as a
// success; nothing here retries or interprets.
import { constantOf, encodeStruct, loadSpec, makeStruct } from '../../src/wire/index.js'
import type { Obj, TargetSession } from './session.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const N = (n: string): number => Number(C(n))

export interface WireFid { f_seq: bigint; f_oid: number; f_ver: number }
/** `kind`: 'reply' (PTL_RPC_MSG_REPLY) or 'error' (PTL_RPC_MSG_ERR) */
export interface MdtReply { status: number; kind: string; body?: Obj; transno: bigint }

export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
const NO_GROUP = 0xffffffff

const now = (): bigint => BigInt(Math.floor(Date.now() / 1000))
const zeroFid: WireFid = { f_seq: 0n, f_oid: 0, f_ver: 0 }
/** The caller's identity: root, with every capability, so that no test depends on permissions. */
const who = (p: string, opcode: string): Obj => ({ [`${p}_opcode`]: N(opcode), [`${p}_fsuid`]: 0, [`${p}_fsgid`]: 0, [`${p}_cap`]: 0xffffffff, [`${p}_suppgid1`]: NO_GROUP, [`${p}_suppgid2`]: NO_GROUP })

const reply = (r: { reply: { body: Obj; fields: Obj; kind: string } }): MdtReply => ({ status: r.reply.body.pb_status as number, kind: r.reply.kind, body: r.reply.fields.RMF_MDT_BODY as Obj | undefined, transno: BigInt(r.reply.body.pb_transno ?? 0n) })

export async function getRoot(s: TargetSession): Promise<WireFid> {
  const r = await s.call('RQF_MDS_GET_ROOT', { RMF_MDT_BODY: makeStruct('mdt_body', {}) })
  const b = r.reply.fields.RMF_MDT_BODY as Obj | undefined
  if (r.reply.body.pb_status !== 0 || !b) throw new Error(`MDS_GET_ROOT: status ${String(r.reply.body.pb_status)}`)
  return b.mbo_fid1 as WireFid
}

export async function lookup(s: TargetSession, dir: WireFid, name: string): Promise<MdtReply> {
  return reply(await s.call('RQF_MDS_GETATTR_NAME', {
    RMF_MDT_BODY: makeStruct('mdt_body', { mbo_fid1: dir, mbo_valid: C('OBD_MD_FLGETATTR') | C('OBD_MD_FLID') }), RMF_NAME: name,
  }))
}

/** MDS_GETATTR by FID asking the layout too (OBD_MD_FLEASIZE), as a client opening the file does; the layout is in `md`. */
export async function getattrLayout(s: TargetSession, fid: WireFid): Promise<MdtReply & { md?: Obj }> {
  const r = await s.call('RQF_MDS_GETATTR', {
    RMF_MDT_BODY: makeStruct('mdt_body', { mbo_fid1: fid, mbo_valid: C('OBD_MD_FLGETATTR') | C('OBD_MD_FLEASIZE'), mbo_eadatasize: 4096 }),
  })
  const md = r.reply.fields.RMF_MDT_MD
  return { ...reply(r), md: md && !(md instanceof Uint8Array) ? md as Obj : undefined }
}

export async function mkdir(s: TargetSession, dir: WireFid, name: string): Promise<MdtReply> {
  const flags = C('MDS_MKDIR_LMV')
  return reply(await s.call('RQF_MDS_REINT_CREATE_ACL', {
    RMF_REC_REINT: makeStruct('mdt_rec_create', {
      ...who('cr', 'REINT_CREATE'), cr_fid1: dir, cr_fid2: await s.newFid(), cr_mode: S_IFDIR | 0o755, cr_time: now(), cr_umask: 0o022,
      cr_flags_l: Number(flags & 0xffffffffn), cr_flags_h: Number(flags >> 32n),
    }),
    RMF_NAME: name,
  }))
}

let intentCookie = 0x6f70656e00000000n

/**
 * An exclusive open-create, as Lustre's mdc sends it: LDLM_ENQUEUE with an IT_OPEN|IT_CREAT
 * intent on the parent (a REINT_OPEN record, O_CREAT|O_EXCL, the layout `lum` asks for as a
 * lov_user_md_v1 with MDS_OPEN_HAS_EA). A plain MDS_REINT open is never sent: Lustre's MDT
 * only serves opens from an intent (mdt_reint_open asserts it). The file is left open; the
 * export's end closes it. A lock the MDT grants with the open is cancelled at once, so that
 * the harness holds nothing another test's request could wait for. The intent's errno
 * (ELDLM_LOCK_ABORTED in pb_status, the errno in lock_policy_res2) is `status`; the
 * reply's layout, a lov_mds_md_v1, is in `md`.
 */
export async function createFile(s: TargetSession, dir: WireFid, name: string, lum?: Uint8Array, perm = 0o644): Promise<MdtReply & { md?: Obj }> {
  const flags = C('MDS_FMODE_READ') | C('MDS_FMODE_WRITE') | C('MDS_OPEN_CREAT') | C('MDS_OPEN_EXCL') | (lum ? C('MDS_OPEN_HAS_EA') : 0n)
  const r = await s.call('RQF_LDLM_INTENT_OPEN', {
    RMF_DLM_REQ: makeStruct('ldlm_request', {
      lock_flags: N('LDLM_FL_HAS_INTENT'), lock_count: 1, lock_handle: [{ cookie: intentCookie++ }, { cookie: 0n }],
      lock_desc: {
        // it_to_lock_mode(): CW for a create; the resource is the parent directory.
        l_resource: { lr_type: N('LDLM_IBITS'), lr_pad: 0, lr_name: { name: [dir.f_seq, BigInt(dir.f_oid), BigInt(dir.f_ver), 0n] } },
        l_req_mode: N('LCK_CW'), l_granted_mode: 0, l_policy_data: { l_inodebits: makeStruct('ldlm_inodebits', { bits: C('MDS_INODELOCK_LOOKUP') }) },
      },
    }),
    RMF_LDLM_INTENT: { opc: C('IT_OPEN') | C('IT_CREAT') },
    RMF_REC_REINT: makeStruct('mdt_rec_create', {
      ...who('cr', 'REINT_OPEN'), cr_fid1: dir, cr_fid2: await s.newFid(), cr_mode: S_IFREG | perm, cr_time: now(), cr_umask: 0o022,
      cr_flags_l: Number(flags & 0xffffffffn), cr_flags_h: Number(flags >> 32n),
    }),
    RMF_NAME: name,
    ...(lum ? { RMF_EADATA: lum } : {}),
  })
  const rep = r.reply.fields.RMF_DLM_REP as Obj | undefined
  const pb = r.reply.body.pb_status as number
  // Granted (0) or aborted (ELDLM_LOCK_ABORTED) both carry the intent's own errno in lock_policy_res2
  // (an int, as mdc reads it). mdt_intent_open says 0 there for a name it could not create when
  // it only looked it up (DISP_LOOKUP_NEG without DISP_OPEN_CREATE): that is -ENOENT to a creator.
  let status = rep && (pb === 0 || pb === N('ELDLM_LOCK_ABORTED')) ? Number(BigInt.asIntN(32, BigInt(rep.lock_policy_res2 ?? 0n))) : pb
  const disp = BigInt(rep?.lock_policy_res1 ?? 0n)
  if (status === 0 && rep && !(disp & C('DISP_OPEN_CREATE'))) status = -N('LUSTRE_ENOENT')
  const lock = pb === 0 ? (rep?.lock_handle?.cookie as bigint | undefined) ?? 0n : 0n
  const last = s.last // the cancel is housekeeping: a failure stays about the open
  if (lock) await s.cancelLock(lock)
  s.last = last
  const md = r.reply.fields.RMF_MDT_MD
  return { ...reply(r), status, md: status === 0 && md && !(md instanceof Uint8Array) ? md as Obj : undefined }
}

/**
 * A lov_user_md_v1 (lfs setstripe's request): the same 32 bytes as a lov_mds_md_v1 header,
 * with lmm_stripe_offset where the MDS layout keeps lmm_layout_gen; -1 travels as 0xffff.
 */
export function lovUserMd(o: { size: number; count: number; offset: number }): Uint8Array {
  return encodeStruct('lov_mds_md_v1', {
    lmm_magic: N('LOV_USER_MAGIC_V1'), lmm_pattern: N('LOV_PATTERN_RAID0'), lmm_oi: { oi: { oi_id: 0n, oi_seq: 0n } },
    lmm_stripe_size: o.size, lmm_stripe_count: o.count < 0 ? 0xffff : o.count, lmm_layout_gen: o.offset < 0 ? 0xffff : o.offset, lmm_objects: [],
  })
}

export async function unlink(s: TargetSession, dir: WireFid, name: string, isDir: boolean): Promise<MdtReply> {
  return reply(await s.call('RQF_MDS_REINT_UNLINK', {
    RMF_REC_REINT: makeStruct('mdt_rec_unlink', { ...who('ul', 'REINT_UNLINK'), ul_fid1: dir, ul_fid2: zeroFid, ul_mode: isDir ? S_IFDIR : S_IFREG, ul_time: now() }),
    RMF_NAME: name,
  }))
}

export async function rename(s: TargetSession, from: WireFid, oldName: string, to: WireFid, newName: string, mode: number): Promise<MdtReply> {
  return reply(await s.call('RQF_MDS_REINT_RENAME', {
    RMF_REC_REINT: makeStruct('mdt_rec_rename', { ...who('rn', 'REINT_RENAME'), rn_fid1: from, rn_fid2: to, rn_mode: mode, rn_time: now() }),
    RMF_NAME: oldName, RMF_SYMTGT: newName,
  }))
}
