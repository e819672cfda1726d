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
      ...who('cr', 'REINT_CREATE'), cr_fid1: dir, cr_fid2: zeroFid, cr_mode: S_IFDIR | 0o755, cr_time: now(), cr_umask: 0o022,
      cr_flags_l: Number(flags & 0xffffffffn), cr_flags_h: Number(flags >> 32n),
    }),
    RMF_NAME: name,
  }))
}

/**
 * REINT_OPEN with O_CREAT|O_EXCL: a new regular file (left open; the export's end closes
 * it), with the layout `lum` asks for (a lov_user_md_v1, MDS_OPEN_HAS_EA) when given.
 * The reply's layout, a lov_mds_md_v1, is in `md`.
 */
export async function createFile(s: TargetSession, dir: WireFid, name: string, lum?: Uint8Array, perm = 0o644): Promise<MdtReply & { md?: Obj }> {
  const flags = C('MDS_FMODE_READ') | C('MDS_FMODE_WRITE') | C('MDS_OPEN_CREAT') | C('MDS_OPEN_EXCL') | (lum ? C('MDS_OPEN_HAS_EA') : 0n)
  const r = await s.call('RQF_MDS_REINT_OPEN', {
    RMF_REC_REINT: makeStruct('mdt_rec_create', {
      ...who('cr', 'REINT_OPEN'), cr_fid1: dir, cr_fid2: zeroFid, cr_mode: S_IFREG | perm, cr_time: now(), cr_umask: 0o022,
      cr_flags_l: Number(flags & 0xffffffffn), cr_flags_h: Number(flags >> 32n),
    }),
    RMF_NAME: name,
    ...(lum ? { RMF_EADATA: lum } : {}),
  })
  const md = r.reply.fields.RMF_MDT_MD
  return { ...reply(r), md: md && !(md instanceof Uint8Array) ? md as Obj : undefined }
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
