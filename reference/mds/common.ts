// What every part of the reference MDS shares: constants read from spec/ under
// Lustre's names, FIDs, file type bits, and the error a namespace operation throws
// to end a request with a negative errno in pb_status.
import { constantOf, loadSpec } from '../../src/wire/index.js'
import { E } from '../common/index.js'

export const spec = loadSpec()
/** A constant of spec/constants as a bigint (64-bit flags stay exact). */
export const CB = (n: string): bigint => constantOf(spec, n)
/** A constant of spec/constants as a number (32-bit values only). */
export const C = (n: string): number => Number(constantOf(spec, n))

export interface Fid {
  f_seq: bigint
  f_oid: number
  f_ver: number
}

/** The root directory: [FID_SEQ_ROOT, FID_OID_ROOT, 0], as lu_root_fid() names it. */
export const ROOT_FID: Fid = { f_seq: CB('FID_SEQ_ROOT'), f_oid: C('FID_OID_ROOT'), f_ver: 0 }
/** First sequence of normal (client-visible) objects; the MDS allocates new FIDs in it. */
export const FID_SEQ_NORMAL = CB('FID_SEQ_NORMAL')

export function fidFrom(v: unknown): Fid {
  const f = (v ?? {}) as Partial<Record<'f_seq' | 'f_oid' | 'f_ver', unknown>>
  return { f_seq: BigInt((f.f_seq as bigint | number | undefined) ?? 0n), f_oid: Number(f.f_oid ?? 0), f_ver: Number(f.f_ver ?? 0) }
}

export const fidIsZero = (f: Fid): boolean => f.f_seq === 0n && f.f_oid === 0 && f.f_ver === 0
export const fidEq = (a: Fid, b: Fid): boolean => a.f_seq === b.f_seq && a.f_oid === b.f_oid && a.f_ver === b.f_ver
export const fidStr = (f: Fid): string => `[0x${f.f_seq.toString(16)}:0x${f.f_oid.toString(16)}:0x${f.f_ver.toString(16)}]`

// File type bits of st_mode (include/uapi/linux/stat.h); Lustre carries them as they are.
export const S_IFMT = 0o170000
export const S_IFSOCK = 0o140000
export const S_IFLNK = 0o120000
export const S_IFREG = 0o100000
export const S_IFBLK = 0o060000
export const S_IFDIR = 0o040000
export const S_IFCHR = 0o020000
export const S_IFIFO = 0o010000
export const S_ISGID = 0o2000
export const PERM_BITS = 0o7777

export const isDir = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR
export const isReg = (mode: number): boolean => (mode & S_IFMT) === S_IFREG
export const isLnk = (mode: number): boolean => (mode & S_IFMT) === S_IFLNK
export const knownType = (mode: number): boolean =>
  [S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO].includes(mode & S_IFMT)

/** Longest name (NAME_MAX), as the ldiskfs backend's ddp_max_name_len. */
export const NAME_MAX = 255

/**
 * A request that fails with a Lustre errno: thrown by namespace operations (inside a
 * SQLite transaction, which it rolls back) and turned into a reply by err() (body.ts): a
 * normal reply with the errno, or an error reply for -EPROTO.
 */
export class MdsError extends Error {
  constructor(readonly status: number, message = '') {
    super(message || `status ${status}`)
    this.name = 'MdsError'
  }
}

export const fail = (status: number, message?: string): never => {
  throw new MdsError(status, message)
}

/**
 * Checks a name as mdt_name_unpack() and mdd_name_check() do: an empty name or one
 * with '/' is a malformed request (-EPROTO); one longer than NAME_MAX bytes is -ENAMETOOLONG.
 */
export function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('/')) fail(E.EPROTO, 'bad name')
  if (Buffer.byteLength(name as string, 'utf8') > NAME_MAX) fail(E.ENAMETOOLONG, 'name too long')
  return name as string
}

export const isDot = (name: string): boolean => name === '.' || name === '..'

/** Seconds since the epoch, as the MDS stamps times a client did not give. */
export const nowSec = (): bigint => BigInt(Math.floor(Date.now() / 1000))
