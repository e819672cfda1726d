// What the OSS reads from and writes into ost_body/obdo, and the errors its
// handlers answer with. Names and values come from spec/ (constantOf), so that a
// change of the spec shows up here rather than as a silent wire difference.
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { E } from '../common/index.js'

const spec = loadSpec()
export const C = (n: string): bigint => constantOf(spec, n)
export const N = (n: string): number => Number(constantOf(spec, n))

export type Obj = Record<string, unknown>

/** Lustre's on-wire -ETIMEDOUT, which reference/common's table leaves out. */
export const ETIMEDOUT = -N('LUSTRE_ETIMEDOUT')

export const MD = {
  FLID: C('OBD_MD_FLID'), FLGROUP: C('OBD_MD_FLGROUP'), FLSIZE: C('OBD_MD_FLSIZE'),
  FLBLOCKS: C('OBD_MD_FLBLOCKS'), FLBLKSZ: C('OBD_MD_FLBLKSZ'), FLATIME: C('OBD_MD_FLATIME'),
  FLMTIME: C('OBD_MD_FLMTIME'), FLCTIME: C('OBD_MD_FLCTIME'), FLTYPE: C('OBD_MD_FLTYPE'),
  FLMODE: C('OBD_MD_FLMODE'), FLGRANT: C('OBD_MD_FLGRANT'), FLFLAGS: C('OBD_MD_FLFLAGS'),
  FLOBJCOUNT: C('OBD_MD_FLOBJCOUNT'),
} as const

export const OBD_OBJECT_EOF = C('OBD_OBJECT_EOF')
export const OST_MAX_PRECREATE = C('OST_MAX_PRECREATE')
/** The only object sequence this OSS serves (ost_id {oi_id, oi_seq = 0}, reference/README.md). */
export const FID_SEQ_OST_MDT0 = C('FID_SEQ_OST_MDT0')
/** Largest object id of sequence 0: its ids map to IDIF FIDs, 48 bits wide (ostid_to_fid). */
export const IDIF_MAX_OID = C('IDIF_MAX_OID')

/**
 * Largest object size: 16 TiB, what ldiskfs allows with 4 KiB blocks (the ddp_maxbytes
 * ofd_parse_connect_data answers in ocd_maxbytes and ofd_statfs in os_maxbytes). It also
 * keeps every offset below 2^53, so object offsets are exact JavaScript numbers.
 */
export const MAX_OBJECT_BYTES = 2 ** 44
/** Bulk bytes one BRW RPC may move: 4 MiB, ofd's default brw size (DT_DEF_BRW_SIZE). */
export const MAX_BRW_BYTES = 4 << 20

/** A handler's refusal: a negative Lustre errno for pb_status and a line for the log. */
export class OstError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
    this.name = 'OstError'
  }
}

/** The members of obdo the OSS reads; every one may be absent in a short or odd request. */
export interface Obdo {
  o_valid?: bigint
  o_oi?: { oi?: { oi_id?: bigint; oi_seq?: bigint } }
  o_size?: bigint
  o_blocks?: bigint
  o_atime?: bigint
  o_mtime?: bigint
  o_grant?: bigint
  o_flags?: number
  o_misc?: number
}

/** RMF_OST_BODY's obdo, or -EPROTO when the buffer is missing (tgt_ost_body_unpack). */
export function obdoOf(fields: Obj): Obdo {
  const body = fields.RMF_OST_BODY as { oa?: Obdo } | null | undefined
  if (!body || typeof body !== 'object' || !body.oa) throw new OstError(E.EPROTO, 'request has no RMF_OST_BODY')
  return body.oa
}

export function has(oa: Obdo, bit: bigint): boolean {
  return ((oa.o_valid ?? 0n) & bit) === bit
}

/** o_flags bits, counted only when OBD_MD_FLFLAGS says o_flags is meaningful. */
export function hasFlag(oa: Obdo, name: string): boolean {
  return has(oa, MD.FLFLAGS) && ((oa.o_flags ?? 0) & N(name)) !== 0
}

/** {oi_id, oi_seq} of an obdo's o_oi; absent members read as 0. */
export function ostIdOf(oa: Obdo): { id: bigint; seq: bigint } {
  const oi = oa.o_oi?.oi
  return { id: oi?.oi_id ?? 0n, seq: oi?.oi_seq ?? 0n }
}

/**
 * The object a request names. Only sequence 0 (FID_SEQ_OST_MDT0) exists here: another
 * sequence is -EINVAL, as ofd_create_hdl answers for a sequence it cannot load; an id
 * wider than 48 bits is -EBADF, as ostid_to_fid answers. Id 0 is no object (Lustre keeps
 * LAST_ID there, tgt_validate_obdo); ids past the last created one do not exist yet:
 * both -ENOENT. Only such checked numbers ever become paths.
 */
export function objectId(oa: Obdo, lastId: bigint): bigint {
  const { id, seq } = ostIdOf(oa)
  if (seq !== FID_SEQ_OST_MDT0) throw new OstError(E.EINVAL, `object sequence ${seq} is not served (only ${FID_SEQ_OST_MDT0})`)
  if (id > IDIF_MAX_OID) throw new OstError(E.EBADF, `object id ${id} is wider than 48 bits`)
  if (id < 1n || id > lastId) throw new OstError(E.ENOENT, `object ${id} does not exist (last id ${lastId})`)
  return id
}

/** Attributes of one object as the store reads them (stat of its file). */
export interface ObjectAttr {
  size: bigint
  /** 512-byte units, as la_blocks and o_blocks count */
  blocks: bigint
  blksize: number
  atime: bigint
  mtime: bigint
  ctime: bigint
  mode: number
}

/**
 * The reply obdo of an object: the id with OBD_MD_FLID|FLGROUP, then what
 * obdo_from_la fills from the attributes under OFD_VALID_FLAGS (type, mode, size,
 * blocks, block size, a/m/ctime). Owners are not kept by this OSS, so no FLUID/FLGID.
 */
export function attrObdo(id: bigint, a: ObjectAttr, extra: Obj = {}): Obj {
  return {
    o_valid: MD.FLID | MD.FLGROUP | MD.FLSIZE | MD.FLBLOCKS | MD.FLBLKSZ | MD.FLATIME | MD.FLMTIME | MD.FLCTIME | MD.FLTYPE | MD.FLMODE,
    o_oi: { oi: { oi_id: id, oi_seq: FID_SEQ_OST_MDT0 } },
    o_size: a.size, o_blocks: a.blocks, o_blksize: a.blksize,
    o_atime: a.atime, o_mtime: a.mtime, o_ctime: a.ctime, o_mode: a.mode,
    ...extra,
  }
}

/** RMF_OST_BODY of a reply from obdo members (the rest zero). */
export function ostBody(oa: Obj): Obj {
  return makeStruct('ost_body', { oa })
}

/** A Node.js I/O error as the Lustre errno a client should see. */
export function errnoOfFs(e: unknown): number {
  switch ((e as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENOENT': return E.ENOENT
    case 'ENOSPC': case 'EDQUOT': return E.ENOSPC
    case 'EFBIG': return E.EFBIG
    case 'EINVAL': return E.EINVAL
    case 'EACCES': case 'EPERM': return E.EACCES
    case 'EROFS': return -N('LUSTRE_EROFS')
    case 'ENOMEM': return E.ENOMEM
    default: return E.EIO
  }
}
