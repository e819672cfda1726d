// RAID0 file layouts: the lov_user_md a client asks with, the defaults a file
// inherits, and the lov_mds_md_v1 the MDS stores and returns.
//
// lov_user_md_v1 and lov_mds_md_v1 share their first 30 bytes; at offset 30 the user
// form has lmm_stripe_offset where the MDS form has lmm_layout_gen. Checks follow
// lod_verify_v1v3(); inheritance follows lod_ah_init(): a file takes what its request
// gives, then what its parent directory's default gives (the root's default when the
// parent has none), then the filesystem default (lov_desc).
import { encodeStruct, makeStruct } from '../../src/wire/index.js'
import { E } from '../common/index.js'
import { C, fail, type Fid } from './common.js'

const LOV_MAGIC_V1 = C('LOV_MAGIC_V1')
const LOV_USER_MAGIC_V1 = C('LOV_USER_MAGIC_V1')
const LOV_USER_MAGIC_V3 = C('LOV_USER_MAGIC_V3')
const LOV_MAGIC_DEFINED = C('LOV_MAGIC_DEFINED')
const LOV_PATTERN_RAID0 = C('LOV_PATTERN_RAID0')
const LOV_MIN_STRIPE_SIZE = C('LOV_MIN_STRIPE_SIZE')
const LOV_MAX_STRIPE_COUNT = C('LOV_MAX_STRIPE_COUNT')
/** lmm_stripe_count 0xffff: stripe over every OST */
export const LOV_ALL_STRIPES = C('LOV_ALL_STRIPES')
/** lmm_stripe_offset 0xffff: the MDS picks the first OST */
export const LOV_OFFSET_DEFAULT = C('LOV_OFFSET_DEFAULT')
const LMV_MAGICS = new Set([C('LMV_MAGIC_V1'), C('LMV_USER_MAGIC')])

/** sizeof(struct lov_user_md_v1) and sizeof(struct lov_mds_md_v1): both 32 bytes before the objects */
export const LOV_MD_SIZE = 32
/** sizeof(struct lov_ost_data_v1) */
export const LOV_OST_DATA_SIZE = 24

/** Striping parameters as a request or a default gives them: 0 / LOV_* markers mean "not said". */
export interface Striping {
  /** bytes; 0 = default */
  size: number
  /** 0 = default, LOV_ALL_STRIPES = every OST */
  count: number
  /** OST index; LOV_OFFSET_DEFAULT = the MDS picks (round robin) */
  offset: number
}

/** One stripe of a file: the OST object that holds it. */
export interface StripeObject {
  ost: number
  oid: bigint
}

/** Whether EADATA holds a directory layout (LMV) rather than a file layout: mkdir sends those. */
export function isLmv(buf: Uint8Array): boolean {
  return buf.length >= 4 && LMV_MAGICS.has(new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(0, true))
}

/**
 * Reads a lov_user_md_v1 or _v3 (the pool name of v3 is not used: there are no pools
 * here) and checks it as lod_verify_v1v3() does: known magic, RAID0 (0 meaning RAID0),
 * stripe size a multiple of 64 KiB, an offset that names an existing OST.
 */
export function parseLovUserMd(buf: Uint8Array, ostIndexes: readonly number[]): Striping {
  if (buf.length < LOV_MD_SIZE) fail(E.EINVAL, `lov_user_md of ${buf.length} bytes`)
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const magic = (dv.getUint32(0, true) & ~LOV_MAGIC_DEFINED) >>> 0
  if (magic !== LOV_USER_MAGIC_V1 && magic !== LOV_USER_MAGIC_V3) fail(E.EINVAL, `bad lov_user_md magic 0x${magic.toString(16)}`)
  if (magic === LOV_USER_MAGIC_V3 && buf.length < LOV_MD_SIZE + 16) fail(E.EINVAL, 'short lov_user_md_v3')
  const pattern = dv.getUint32(4, true)
  if (pattern !== 0 && pattern !== LOV_PATTERN_RAID0) fail(E.EINVAL, `stripe pattern 0x${pattern.toString(16)}: only RAID0 is served`)
  const size = dv.getUint32(24, true)
  if (size % LOV_MIN_STRIPE_SIZE !== 0) fail(E.EINVAL, `stripe size ${size} is not a multiple of ${LOV_MIN_STRIPE_SIZE}`)
  const count = dv.getUint16(28, true)
  if (count !== LOV_ALL_STRIPES && count > LOV_MAX_STRIPE_COUNT) fail(E.EINVAL, `stripe count ${count}`)
  const offset = dv.getUint16(30, true)
  if (offset !== LOV_OFFSET_DEFAULT && !ostIndexes.includes(offset)) fail(E.EINVAL, `stripe offset ${offset}: no such OST`)
  return { size, count, offset }
}

/** A stored default layout read back without checks (its OSTs may have changed since). */
export function readLovUserMd(buf: Uint8Array): Striping {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  return { size: dv.getUint32(24, true), count: dv.getUint16(28, true), offset: dv.getUint16(30, true) }
}

/** A "delete the default" request (mdc_setattr_pack with no EA): size 0, count 0, offset -1. */
export const isDefaultsOnly = (s: Striping): boolean => s.size === 0 && s.count === 0 && s.offset === LOV_OFFSET_DEFAULT

/** A directory default layout as stored and returned (lov_user_md_v1, 32 bytes). */
export function encodeLovUserMd(s: Striping): Uint8Array {
  const out = new Uint8Array(LOV_MD_SIZE)
  const dv = new DataView(out.buffer)
  dv.setUint32(0, LOV_USER_MAGIC_V1, true)
  dv.setUint32(4, LOV_PATTERN_RAID0, true)
  dv.setUint32(24, s.size, true)
  dv.setUint16(28, s.count, true)
  dv.setUint16(30, s.offset, true)
  return out
}

/**
 * What a new file gets: each parameter from the request, else from the directory
 * default, else from the filesystem default (lod_ah_init, lod_striping_from_default).
 * The count is then capped at the number of OSTs.
 */
export function inherit(asked: Striping | undefined, dirDefault: Striping | undefined, fs: { size: number; count: number }, osts: number): Striping {
  const pick = (k: 'size' | 'count'): number => (asked?.[k] || dirDefault?.[k] || fs[k])
  const offOf = (s?: Striping): number | undefined => (s && s.offset !== LOV_OFFSET_DEFAULT ? s.offset : undefined)
  let count = pick('count')
  if (count === LOV_ALL_STRIPES || count < 0 || count > osts) count = osts
  return { size: pick('size'), count, offset: offOf(asked) ?? offOf(dirDefault) ?? LOV_OFFSET_DEFAULT }
}

/**
 * A file's layout as the MDS stores it (lod_generate_lovea): LOV_MAGIC_V1, RAID0,
 * lmm_oi = the file's FID (fid_to_lmm_oi: oi_id = f_oid, oi_seq = f_seq), and one
 * lov_ost_data_v1 per stripe naming {oi_id = object id, oi_seq = 0} and the OST index.
 */
export function encodeLovMdsMd(fid: Fid, stripeSize: number, objects: StripeObject[], layoutGen = 0): Uint8Array {
  return encodeStruct('lov_mds_md_v1', makeStruct('lov_mds_md_v1', {
    lmm_magic: LOV_MAGIC_V1,
    lmm_pattern: LOV_PATTERN_RAID0,
    lmm_oi: { oi: { oi_id: BigInt(fid.f_oid), oi_seq: fid.f_seq } },
    lmm_stripe_size: stripeSize,
    lmm_stripe_count: objects.length,
    lmm_layout_gen: layoutGen,
    lmm_objects: objects.map(o => ({ l_ost_oi: { oi: { oi_id: o.oid, oi_seq: 0n } }, l_ost_gen: 0, l_ost_idx: o.ost })),
  }))
}

/** The OST objects of a stored layout (to destroy them when the file goes). */
export function layoutObjects(lmm: Uint8Array | null): StripeObject[] {
  if (!lmm || lmm.length < LOV_MD_SIZE) return []
  const dv = new DataView(lmm.buffer, lmm.byteOffset, lmm.byteLength)
  const out: StripeObject[] = []
  for (let off = LOV_MD_SIZE; off + LOV_OST_DATA_SIZE <= lmm.length; off += LOV_OST_DATA_SIZE) {
    out.push({ oid: dv.getBigUint64(off, true), ost: dv.getUint32(off + 20, true) })
  }
  return out
}

/** The largest layout this MDS can return (ocd_max_easize, mbo_max_mdsize): every OST striped. */
export const maxLayoutSize = (osts: number): number => LOV_MD_SIZE + LOV_OST_DATA_SIZE * Math.max(1, osts)
