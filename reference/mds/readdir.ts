// Directory hashes and the pages MDS_READPAGE sends.
//
// Every entry has a 63-bit hash, unique in its directory, that orders readdir and
// serves as its cookie (as ldiskfs htree hashes do, but without collisions: a
// colliding name takes the next free value, so LDF_COLLIDE never arises between
// real entries). "." and ".." come first with hash 0, as osd-zfs returns them.
//
// Pages follow mdd_dir_page_build() / dt_index_walk(): 4096-byte lu_pages, each a
// lu_dirpage header and lu_dirents packed back to back (lu_dirent_calc_size: 32 bytes,
// the name, a NUL, an optional 2-byte type, padded to 8), the last entry's lde_reclen 0;
// ldp_hash_start is the first entry's hash (the requested cookie in the first page),
// ldp_hash_end the hash of the entry that did not fit, or MDS_DIR_END_OFF when the
// directory ended in that page.
import { createHash } from 'node:crypto'
import { CB, C, S_IFDIR, S_IFMT, type Fid } from './common.js'
import type { Inode, MdtStore } from './store.js'

export const LU_PAGE_SIZE = C('LU_PAGE_SIZE')
export const MDS_DIR_END_OFF = CB('MDS_DIR_END_OFF')
const LUDA_FID = C('LUDA_FID')
const LUDA_TYPE = C('LUDA_TYPE')
const LUDA_64BITHASH = C('LUDA_64BITHASH')
const LDF_EMPTY = C('LDF_EMPTY')
const LDF_COLLIDE = C('LDF_COLLIDE')
const DIRPAGE_HDR = 24
const DIRENT_HDR = 32
const HASH_MAX = (1n << 63n) - 1n

const utf8 = new TextEncoder()

/** The name's place in hash order before collisions: 64 bits of SHA-256, shifted right by 1. */
export function nameHash(name: string): bigint {
  const d = createHash('sha256').update(name, 'utf8').digest()
  const h = d.readBigUInt64LE(0) >> 1n
  return h === 0n ? 1n : h
}

/** The hash a new entry gets in `parent`: its own, or the next one free (deterministic probing, 0 kept for dots). */
export function freeHash(store: MdtStore, parent: number, name: string): bigint {
  let h = nameHash(name)
  while (store.hashTaken(parent, h)) h = h >= HASH_MAX ? 1n : h + 1n
  return h
}

/** lu_dirent_calc_size(): header, name, NUL, the type aligned to 2 when asked, all padded to 8. */
export function direntSize(namelen: number, attrs: number): number {
  let size = DIRENT_HDR + namelen + 1
  if (attrs & LUDA_TYPE) size = ((size + 1) & ~1) + 2
  return (size + 7) & ~7
}

interface Entry { name: Uint8Array; hash: bigint; fid: Fid; mode: number }

export interface ReadpageArgs {
  dir: Inode
  /** FID for ".." (the root's parent is itself) */
  parentFid: Fid
  /** hash to start from (mbo_size): entries with hash >= cookie */
  cookie: bigint
  /** lu_pages that fit the client's buffer */
  pages: number
  /** LUDA_* the client asked for in mbo_mode */
  asked: number
  hash64: boolean
}

/** Builds the pages; the result is whole pages, as many as were filled (at least one). */
export function buildDirPages(store: MdtStore, a: ReadpageArgs): Uint8Array {
  const attrs = LUDA_FID | (a.asked & LUDA_TYPE) | (a.hash64 ? LUDA_64BITHASH : 0)
  const dots: Entry[] = a.cookie === 0n
    ? [{ name: utf8.encode('.'), hash: 0n, fid: a.dir.fid, mode: S_IFDIR }, { name: utf8.encode('..'), hash: 0n, fid: a.parentFid, mode: S_IFDIR }]
    : []
  // A cookie past every hash (MDS_DIR_END_OFF) finds nothing; SQLite integers stop at 2^63 - 1.
  const rows = a.cookie <= HASH_MAX ? store.entriesFrom(a.dir.id, a.cookie) : [].values()
  const next = (): Entry | undefined => {
    if (dots.length) return dots.shift()
    const r = rows.next()
    return r.done ? undefined : { name: utf8.encode(r.value.name), hash: r.value.hash, fid: r.value.fid, mode: r.value.mode }
  }
  const out = new Uint8Array(a.pages * LU_PAGE_SIZE)
  const dv = new DataView(out.buffer)
  let cur = next()
  let used = 0
  try {
    for (let p = 0; p < a.pages; p++) {
      const base = p * LU_PAGE_SIZE
      const start = p === 0 ? a.cookie : cur!.hash
      let off = base + DIRPAGE_HDR
      let last = -1
      let lastHash = 0n
      while (cur) {
        const rec = direntSize(cur.name.length, attrs)
        if (off + rec > base + LU_PAGE_SIZE) break
        writeDirent(out, dv, off, cur, rec, attrs)
        last = off
        lastHash = cur.hash
        off += rec
        cur = next()
      }
      if (last >= 0) dv.setUint16(last + 24, 0, true) // lde_reclen 0: the page's last entry
      const end = cur ? cur.hash : MDS_DIR_END_OFF
      const flags = last < 0 ? LDF_EMPTY : cur && lastHash === end ? LDF_COLLIDE : 0
      dv.setBigUint64(base, start, true)
      dv.setBigUint64(base + 8, end, true)
      dv.setUint32(base + 16, flags, true)
      used = p + 1
      if (!cur) break
    }
  } finally {
    rows.return?.(undefined)
  }
  return out.subarray(0, used * LU_PAGE_SIZE)
}

function writeDirent(out: Uint8Array, dv: DataView, off: number, e: Entry, rec: number, attrs: number): void {
  dv.setBigUint64(off, e.fid.f_seq, true)
  dv.setUint32(off + 8, e.fid.f_oid, true)
  dv.setUint32(off + 12, e.fid.f_ver, true)
  dv.setBigUint64(off + 16, e.hash, true)
  dv.setUint16(off + 24, rec, true)
  dv.setUint16(off + 26, e.name.length, true)
  dv.setUint32(off + 28, attrs, true)
  out.set(e.name, off + DIRENT_HDR)
  out[off + DIRENT_HDR + e.name.length] = 0
  // osd_it_append_attrs(): the type (DTTOIF, i.e. the S_IFMT bits) at the name length rounded up to 2.
  if (attrs & LUDA_TYPE) dv.setUint16(off + DIRENT_HDR + ((e.name.length + 1) & ~1), e.mode & S_IFMT, true)
}
