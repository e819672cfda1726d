// Directory pages as MDS_READPAGE PUTs them into the client's bulk buffer: LU_PAGE_SIZE
// pages, each a lu_dirpage header (hash range, flags) followed by lu_dirent records. A
// record's lde_reclen leads to the next one and is 0 on the last record of a page
// (lu_dirent_next; mdd_dir_page_build writes that end mark); a page with LDF_EMPTY has
// none (lu_dirent_start). With LUDA_TYPE a luda_type (the S_IFMT bits as a u16) follows
// the name, 2-byte aligned (lu_dirent_calc_size, lu_dirent_type_get).
import { constantOf, decodeStruct, loadSpec } from '../../src/wire/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

export const LU_PAGE_SIZE = Number(C('LU_PAGE_SIZE'))
export const MDS_DIR_END_OFF = C('MDS_DIR_END_OFF')
const LDF_EMPTY = Number(C('LDF_EMPTY'))
const LUDA_TYPE = Number(C('LUDA_TYPE'))
const DIRPAGE_SIZE = 24
const DIRENT_SIZE = 32

export interface DirEntry {
  name: string
  fid: { seq: bigint; oid: number; ver: number }
  hash: bigint
  type?: 'file' | 'dir' | 'symlink' | 'other'
}

export interface DirPage {
  hashStart: bigint
  hashEnd: bigint
  flags: number
  entries: DirEntry[]
}

/** 'file' | 'dir' | ... from S_IFMT bits (or a DT_* value, which some servers send). */
export function typeOfMode(mode: number): DirEntry['type'] {
  const fmt = mode & 0o170000
  const t = fmt ? fmt >> 12 : mode & 0xf
  return t === 0o10 ? 'file' : t === 0o04 ? 'dir' : t === 0o12 ? 'symlink' : 'other'
}

function parseEntry(page: Uint8Array, off: number, end: number): { entry: DirEntry; reclen: number } {
  if (off + DIRENT_SIZE > end) throw new Error(`lu_dirent at ${off} runs past its page`)
  const dv = new DataView(page.buffer, page.byteOffset, page.byteLength)
  const reclen = dv.getUint16(off + 24, true)
  const namelen = dv.getUint16(off + 26, true)
  const recEnd = reclen ? off + reclen : end
  if (off + DIRENT_SIZE + namelen > recEnd || recEnd > end) throw new Error(`lu_dirent at ${off}: name of ${namelen} bytes does not fit its record`)
  const d = decodeStruct<{ lde_fid: { f_seq: bigint; f_oid: number; f_ver: number }; lde_hash: bigint; lde_attrs: number; lde_name: string }>(
    'lu_dirent', page.subarray(off, off + DIRENT_SIZE + namelen))
  const entry: DirEntry = { name: d.lde_name, fid: { seq: d.lde_fid.f_seq, oid: d.lde_fid.f_oid, ver: d.lde_fid.f_ver }, hash: d.lde_hash }
  if (d.lde_attrs & LUDA_TYPE) {
    // name, its NUL, then padding to the 2-byte alignment of struct luda_type
    const at = (off + DIRENT_SIZE + namelen + 1 + 1) & ~1
    if (at + 2 <= recEnd) entry.type = typeOfMode(dv.getUint16(at, true))
  }
  return { entry, reclen }
}

/** Parses one LU_PAGE_SIZE page (or what the server sent of it). */
export function parseDirPage(page: Uint8Array): DirPage {
  if (page.length < DIRPAGE_SIZE) throw new Error(`lu_dirpage of ${page.length} bytes`)
  const h = decodeStruct<{ ldp_hash_start: bigint; ldp_hash_end: bigint; ldp_flags: number }>('lu_dirpage', page.subarray(0, DIRPAGE_SIZE))
  const out: DirPage = { hashStart: h.ldp_hash_start, hashEnd: h.ldp_hash_end, flags: h.ldp_flags, entries: [] }
  if (h.ldp_flags & LDF_EMPTY) return out
  for (let off = DIRPAGE_SIZE; off + DIRENT_SIZE <= page.length;) {
    const { entry, reclen } = parseEntry(page, off, page.length)
    out.entries.push(entry)
    if (reclen === 0) break
    off += reclen
  }
  return out
}

/**
 * Splits a READPAGE bulk into its pages. The bulk is whole pages; a short last page is
 * parsed as far as it goes. An all-zero page (the server filled fewer pages than asked)
 * ends the list.
 */
export function parseDirPages(bulk: Uint8Array): DirPage[] {
  const pages: DirPage[] = []
  for (let off = 0; off + DIRPAGE_SIZE <= bulk.length; off += LU_PAGE_SIZE) {
    const raw = bulk.subarray(off, Math.min(off + LU_PAGE_SIZE, bulk.length))
    if (raw.subarray(0, DIRPAGE_SIZE + DIRENT_SIZE).every(b => b === 0)) break
    const p = parseDirPage(raw)
    pages.push(p)
    if (p.hashEnd === MDS_DIR_END_OFF) break
  }
  return pages
}
