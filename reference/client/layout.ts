// RAID0 file layouts as the client sees them: the mapping of file offsets to OST
// objects (lov_offset.c: lov_stripe_offset, lov_size_to_stripe, lov_stripe_size), the
// lov_user_md_v1 a client sends to ask for a layout, the lov_mds_md_v1 it gets back,
// and `lfs getstripe` text (liblustreapi.c: lov_dump_user_lmm_header, lov_dump_user_lmm_v1v3).
import { constantOf, encodeStruct, loadSpec } from '../../src/wire/index.js'
import { ClientError } from './errors.js'

const spec = loadSpec()
const C = (n: string): number => Number(constantOf(spec, n))

export const LOV_MIN_STRIPE_SIZE = C('LOV_MIN_STRIPE_SIZE')
export const LOV_MAX_STRIPE_COUNT = C('LOV_MAX_STRIPE_COUNT')
const LOV_USER_MAGIC_V1 = C('LOV_USER_MAGIC_V1')
const LOV_PATTERN_RAID0 = C('LOV_PATTERN_RAID0')
/** lmm_stripe_offset / lmm_stripe_count 0xffff: "the MDS picks" / "every OST" */
const U16_MINUS_ONE = 0xffff
const FID_SEQ_RSVD = constantOf(spec, 'FID_SEQ_RSVD')

export interface LayoutObject {
  ostIndex: number
  objectId: bigint
  seq: bigint
}

export interface Layout {
  stripeSize: number
  /** objects of a file; for a directory's default layout 0 = filesystem default, -1 = all OSTs */
  stripeCount: number
  /** OST index of the first object; -1 in a default layout where the MDS picks */
  stripeOffset: number
  pattern: number
  objects: LayoutObject[]
  /** lmm_layout_gen of a file layout */
  layoutGen?: number
  /** a directory's default layout (lov_user_md: no objects, offset instead of generation) */
  isDefault?: boolean
}

export interface StripeOptions {
  /** bytes, a multiple of 64 KiB; 0 or absent = default */
  stripeSize?: number
  /** 1..2000, -1 = every OST, 0 or absent = default */
  stripeCount?: number
  /** first OST index, -1 or absent = the MDS picks */
  stripeOffset?: number
}

/** One contiguous run of a file range that lies in one object. */
export interface StripePiece {
  /** index of the object in the layout (not the OST index) */
  objIndex: number
  objOffset: number
  fileOffset: number
  length: number
}

type Geometry = Pick<Layout, 'stripeSize' | 'stripeCount'>

function checkGeometry(l: Geometry): void {
  if (!Number.isSafeInteger(l.stripeSize) || l.stripeSize <= 0) throw new ClientError('LC_CLIENT_LAYOUT', `stripe size ${l.stripeSize} is not a positive integer`)
  if (!Number.isSafeInteger(l.stripeCount) || l.stripeCount <= 0) throw new ClientError('LC_CLIENT_LAYOUT', `stripe count ${l.stripeCount} is not a positive integer`)
}

/**
 * Splits [offset, offset + length) of a file into per-object pieces, in file order.
 * Stripe s = floor(off / size) lives in object s % count at object offset
 * floor(s / count) * size + off % size (lov_stripe_offset).
 */
export function stripeMap(offset: number, length: number, layout: Geometry): StripePiece[] {
  checkGeometry(layout)
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new ClientError('LC_CLIENT_ARG', `range ${offset}+${length} is not a non-negative integer range`)
  }
  const { stripeSize: ss, stripeCount: n } = layout
  const out: StripePiece[] = []
  for (let off = offset, end = offset + length; off < end;) {
    const s = Math.floor(off / ss)
    const within = off - s * ss
    const len = Math.min(ss - within, end - off)
    out.push({ objIndex: s % n, objOffset: Math.floor(s / n) * ss + within, fileOffset: off, length: len })
    off += len
  }
  return out
}

/** Size object `objIndex` has when the file is `fileSize` bytes long (lov_size_to_stripe). */
export function objectSizeFor(fileSize: number, objIndex: number, layout: Geometry): number {
  checkGeometry(layout)
  if (fileSize <= 0) return 0
  const { stripeSize: ss, stripeCount: n } = layout
  const s = Math.floor(fileSize / ss)
  const full = Math.floor(s / n)
  const last = s % n
  if (objIndex < last) return (full + 1) * ss
  if (objIndex === last) return full * ss + (fileSize - s * ss)
  return full * ss
}

/** File size implied by one object's size: the file offset just past its last byte (lov_stripe_size). */
export function fileSizeFromObject(objSize: number, objIndex: number, layout: Geometry): number {
  checkGeometry(layout)
  if (objSize <= 0) return 0
  const { stripeSize: ss, stripeCount: n } = layout
  const k = Math.floor(objSize / ss)
  const rem = objSize - k * ss
  return rem ? k * ss * n + objIndex * ss + rem : (k - 1) * ss * n + (objIndex + 1) * ss
}

/** Checks stripe options as lfs setstripe does, before they reach the MDS. */
export function checkStripeOptions(o: StripeOptions): void {
  const { stripeSize = 0, stripeCount = 0, stripeOffset = -1 } = o
  if (!Number.isSafeInteger(stripeSize) || stripeSize < 0 || stripeSize % LOV_MIN_STRIPE_SIZE !== 0 || stripeSize >= 2 ** 32) {
    throw new ClientError('LC_CLIENT_ARG', `stripe size ${stripeSize} is not a multiple of ${LOV_MIN_STRIPE_SIZE} below 4 GiB`)
  }
  if (!Number.isInteger(stripeCount) || stripeCount < -1 || stripeCount > LOV_MAX_STRIPE_COUNT) {
    throw new ClientError('LC_CLIENT_ARG', `stripe count ${stripeCount} is not in -1..${LOV_MAX_STRIPE_COUNT}`)
  }
  if (!Number.isInteger(stripeOffset) || stripeOffset < -1 || stripeOffset >= U16_MINUS_ONE) {
    throw new ClientError('LC_CLIENT_ARG', `stripe offset ${stripeOffset} is not an OST index or -1`)
  }
}

/**
 * lov_user_md_v1 (32 bytes, no objects) asking for a layout. It has the bytes of
 * lov_mds_md_v1 except that offset 30 holds lmm_stripe_offset, so it is encoded as that
 * struct with the offset in lmm_layout_gen. Unset values travel as Lustre's defaults:
 * size 0, count 0, offset 0xffff (LOV_OFFSET_DEFAULT).
 */
export function packLovUserMd(o: StripeOptions): Uint8Array {
  checkStripeOptions(o)
  const count = o.stripeCount ?? 0
  const offset = o.stripeOffset ?? -1
  return encodeStruct('lov_mds_md_v1', {
    lmm_magic: LOV_USER_MAGIC_V1,
    lmm_pattern: LOV_PATTERN_RAID0,
    lmm_oi: { oi: { oi_id: 0n, oi_seq: 0n } },
    lmm_stripe_size: o.stripeSize ?? 0,
    lmm_stripe_count: count < 0 ? U16_MINUS_ONE : count,
    lmm_layout_gen: offset < 0 ? U16_MINUS_ONE : offset,
    lmm_objects: [],
  })
}

interface LmmV1 {
  lmm_magic: number
  lmm_pattern: number
  lmm_stripe_size: number
  lmm_stripe_count: number
  lmm_layout_gen: number
  lmm_objects: Array<{ l_ost_oi: { oi?: { oi_id: bigint; oi_seq: bigint } }; l_ost_idx: number }>
}

/**
 * Reads RMF_MDT_MD as the codec decoded it (a lov_mds_md_v1 object when the magic says
 * so). A file's layout has objects; a directory's default layout has none and carries the
 * stripe offset where a file layout has its generation. Other layouts (V3, composite,
 * LMV) give undefined: this client only does I/O on plain RAID0 V1.
 */
export function layoutFromMd(md: unknown, isDir: boolean): Layout | undefined {
  if (!md || md instanceof Uint8Array || typeof md !== 'object') return undefined
  const m = md as LmmV1
  if (m.lmm_magic !== LOV_USER_MAGIC_V1 || !Array.isArray(m.lmm_objects)) return undefined
  const signed16 = (v: number): number => (v === U16_MINUS_ONE ? -1 : v)
  const objects = m.lmm_objects.slice(0, isDir ? 0 : m.lmm_stripe_count).map(o => ({
    ostIndex: o.l_ost_idx, objectId: o.l_ost_oi.oi?.oi_id ?? 0n, seq: o.l_ost_oi.oi?.oi_seq ?? 0n,
  }))
  if (isDir) {
    return { stripeSize: m.lmm_stripe_size, stripeCount: signed16(m.lmm_stripe_count), stripeOffset: signed16(m.lmm_layout_gen), pattern: m.lmm_pattern, objects: [], isDefault: true }
  }
  return {
    stripeSize: m.lmm_stripe_size, stripeCount: m.lmm_stripe_count, stripeOffset: objects[0]?.ostIndex ?? -1,
    pattern: m.lmm_pattern, objects, layoutGen: m.lmm_layout_gen,
  }
}

// Pattern names in the order llapi_lov_pattern_string tries them (liblustreapi_layout.c).
const PATTERN_NAMES: Array<[string, string]> = [
  ['LOV_PATTERN_BAD', 'bad'], ['LOV_PATTERN_RAID0', 'raid0'], ['LOV_PATTERN_RAID1', 'raid1'],
  ['LOV_PATTERN_PARITY', 'parity'], ['LOV_PATTERN_MDT', 'mdt'], ['LOV_PATTERN_OVERSTRIPING', 'overstriped'],
  ['LOV_PATTERN_FOREIGN', 'foreign'], ['LOV_PATTERN_COMPRESS', 'compress'], ['LOV_PATTERN_F_HOLE', 'hole'],
  ['LOV_PATTERN_F_RELEASED', 'released'],
]

export function patternString(pattern: number): string {
  const names: string[] = []
  let rest = pattern >>> 0
  for (const [c, name] of PATTERN_NAMES) {
    const bit = C(c) >>> 0
    if (rest && (bit & rest) >>> 0 === bit) { names.push(name); rest = (rest & ~bit) >>> 0 }
  }
  if (rest) names.push(`unknown_${rest.toString(16)}`)
  return names.join(',')
}

/** C's "%#x": 0 prints as "0", anything else with 0x. */
const hashX = (v: bigint): string => (v === 0n ? '0' : `0x${v.toString(16)}`)

/**
 * `lfs getstripe PATH` text. A file: the lmm_* header and the obdidx/objid table (group in
 * decimal, as for FID_SEQ_OST_MDT0 objects). A directory default: one line without the lmm_
 * prefix, as lfs prints it for directories.
 */
export function formatGetstripe(path: string, layout: Layout): string {
  if (layout.isDefault) {
    return `${path}\nstripe_count:  ${layout.stripeCount} stripe_size:   ${layout.stripeSize} pattern:       ${patternString(layout.pattern)} stripe_offset: ${layout.stripeOffset}\n\n`
  }
  const lines = [
    path,
    `lmm_stripe_count:  ${layout.stripeCount}`,
    `lmm_stripe_size:   ${layout.stripeSize}`,
    `lmm_pattern:       ${patternString(layout.pattern)}`,
    `lmm_layout_gen:    ${layout.layoutGen ?? 0}`,
    `lmm_stripe_offset: ${layout.objects[0]?.ostIndex ?? layout.stripeOffset}`,
    '\tobdidx\t\t objid\t\t objid\t\t group',
  ]
  for (const o of layout.objects) {
    // Decimal for reserved and MDT0 sequences (fid_seq_is_rsvd, fid_seq_is_mdt0), hex otherwise.
    const group = o.seq <= FID_SEQ_RSVD ? o.seq.toString().padStart(14) : hashX(o.seq).padStart(14)
    lines.push(`\t${String(o.ostIndex).padStart(6)}\t${o.objectId.toString().padStart(14)}\t${hashX(o.objectId).padStart(13)}\t${group}`)
  }
  return lines.join('\n') + '\n\n'
}
