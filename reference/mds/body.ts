// Reply mdt_body packing (mdt_pack_attr2body) and the small reply helpers every
// handler uses: a body of an inode's attributes with mbo_valid saying which members
// hold data, an extended attribute in RMF_MDT_MD with its size, and the
// transno / last_committed pair of ptlrpc_body.
import { makeStruct } from '../../src/wire/index.js'
import type { ReplySpec } from '../../src/transport/index.js'
import { E } from '../common/index.js'
import { CB, isReg, type Fid } from './common.js'
import type { Inode } from './store.js'

export type Obj = Record<string, unknown>

const V = {
  FLID: CB('OBD_MD_FLID'), FLATIME: CB('OBD_MD_FLATIME'), FLMTIME: CB('OBD_MD_FLMTIME'), FLCTIME: CB('OBD_MD_FLCTIME'),
  FLSIZE: CB('OBD_MD_FLSIZE'), FLBLOCKS: CB('OBD_MD_FLBLOCKS'), FLMODE: CB('OBD_MD_FLMODE'), FLTYPE: CB('OBD_MD_FLTYPE'),
  FLUID: CB('OBD_MD_FLUID'), FLGID: CB('OBD_MD_FLGID'), FLFLAGS: CB('OBD_MD_FLFLAGS'), FLNLINK: CB('OBD_MD_FLNLINK'),
  FLRDEV: CB('OBD_MD_FLRDEV'), FLPROJID: CB('OBD_MD_FLPROJID'), FLBTIME: CB('OBD_MD_FLBTIME'),
  FLLAZYSIZE: CB('OBD_MD_FLLAZYSIZE'), FLLAZYBLOCKS: CB('OBD_MD_FLLAZYBLOCKS'),
}

const ALWAYS = V.FLID | V.FLATIME | V.FLMTIME | V.FLCTIME | V.FLBTIME | V.FLFLAGS | V.FLNLINK | V.FLUID | V.FLGID |
  V.FLPROJID | V.FLMODE | V.FLTYPE

/**
 * An inode's attributes as mdt_pack_attr2body() sends them. Size and blocks are
 * authoritative (OBD_MD_FLSIZE) for everything but a regular file with OST objects,
 * whose size lives on the OSTs: for those the MDS's copy (set by setattr) is only a
 * lazy size (OBD_MD_FLLAZYSIZE), as with LSOM.
 */
export function attrBody(ino: Inode, extra: Obj = {}): Obj {
  let valid = ALWAYS
  if (!isReg(ino.mode)) valid |= V.FLSIZE | V.FLBLOCKS | V.FLRDEV
  else if (!ino.layout) valid |= V.FLSIZE | V.FLBLOCKS
  else valid |= V.FLLAZYSIZE | V.FLLAZYBLOCKS
  return makeStruct('mdt_body', {
    mbo_fid1: ino.fid, mbo_valid: valid, mbo_size: ino.size, mbo_blocks: ino.blocks,
    mbo_mtime: ino.mtime, mbo_atime: ino.atime, mbo_ctime: ino.ctime, mbo_btime: ino.btime,
    mbo_mode: ino.mode, mbo_uid: ino.uid, mbo_gid: ino.gid, mbo_flags: ino.flags, mbo_rdev: ino.rdev,
    mbo_nlink: ino.nlink, mbo_projid: ino.projid,
    ...extra,
  })
}

/** Puts an EA in RMF_MDT_MD: its size in mbo_eadatasize and `flag` (FLEASIZE, FLDIREA, LINKNAME) in mbo_valid. */
export function withEa(body: Obj, fields: Obj, ea: Uint8Array, flag: bigint): void {
  body.mbo_valid = (body.mbo_valid as bigint) | flag
  body.mbo_eadatasize = ea.length
  fields.RMF_MDT_MD = ea
}

/** An mdt_body naming only a FID (MDS_GET_ROOT). */
export function fidBody(fid: Fid): Obj {
  return makeStruct('mdt_body', { mbo_fid1: fid, mbo_valid: V.FLID })
}

export const emptyBody = (): Obj => makeStruct('mdt_body', {})

/**
 * A reply. `transno` is the update's transaction number (0 for a request that changed
 * nothing). Replies leave only after their group commit (MdtStore.settled), so
 * last_committed, the latest transno, is committed when the client reads it.
 */
export function ok(fields: Obj, lastCommitted: bigint, transno = 0n): ReplySpec {
  return { status: 0, fields, body: { pb_transno: transno, pb_last_committed: lastCommitted } }
}

/**
 * A handler's failure. A request that cannot be unpacked (-EPROTO) is a serious error, sent
 * by ptlrpc_error() (PTL_RPC_MSG_ERR, the body alone); any other errno is the operation's
 * outcome, in a PTL_RPC_MSG_REPLY with the format's buffers, as tgt_handle_request0() sends it.
 */
export function err(status: number, lastCommitted: bigint): ReplySpec {
  return { status, ...(status === E.EPROTO ? { error: true } : {}), body: { pb_last_committed: lastCommitted } }
}
