// The MDT's persistent state in one SQLite database (<dir>/mdt0/mdt.db): inodes named
// by FID, directory entries with their readdir hash, client exports, the OST object
// pools, OST objects waiting for OST_DESTROY, and the last transaction number.
//
// Lustre keeps the same things in the OSD (ldiskfs inodes and htree directories, the
// last_rcvd file for exports and transnos, lov_objids for precreation). Every client
// update runs in its own SQLite savepoint that also bumps last_transno, with WAL and
// synchronous=FULL. Updates group-commit: the first one opens a transaction, the ones
// that arrive in the same event-loop turn join it, and one COMMIT (one fsync) ends it
// at setImmediate. Replies wait for settled(), so a reply's transno, and any state a
// reply shows, is committed when it is sent (what Lustre's commit callbacks give a
// client as pb_last_committed, without the replay window).
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT_FID, FID_SEQ_NORMAL, S_IFDIR, nowSec, type Fid } from './common.js'

export interface Inode {
  /** SQLite rowid, never reused (AUTOINCREMENT): what directory entries and open handles point at */
  id: number
  fid: Fid
  mode: number
  uid: number
  gid: number
  nlink: number
  size: bigint
  blocks: bigint
  atime: bigint
  mtime: bigint
  ctime: bigint
  btime: bigint
  /** LUSTRE_*_FL inode flags */
  flags: number
  rdev: number
  projid: number
  /** symlink target */
  symlink: string | null
  /** regular files: the lov_mds_md_v1 layout */
  layout: Uint8Array | null
  /** directories: the default layout (lov_user_md_v1) new files inherit */
  dirDefault: Uint8Array | null
}

export type NewInode = Omit<Inode, 'id'>
export type InodeChange = Partial<Omit<Inode, 'id' | 'fid'>>

export interface Dirent {
  name: string
  hash: bigint
  child: number
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS inodes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  seq INTEGER NOT NULL, oid INTEGER NOT NULL, ver INTEGER NOT NULL,
  mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, nlink INTEGER NOT NULL,
  size INTEGER NOT NULL, blocks INTEGER NOT NULL,
  atime INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL, btime INTEGER NOT NULL,
  flags INTEGER NOT NULL, rdev INTEGER NOT NULL, projid INTEGER NOT NULL,
  symlink TEXT, layout BLOB, dir_default BLOB,
  UNIQUE (seq, oid, ver));
CREATE TABLE IF NOT EXISTS dirents (
  parent INTEGER NOT NULL, name TEXT NOT NULL, hash INTEGER NOT NULL, child INTEGER NOT NULL,
  PRIMARY KEY (parent, name), UNIQUE (parent, hash));
CREATE INDEX IF NOT EXISTS dirents_child ON dirents (child);
CREATE TABLE IF NOT EXISTS exports (
  client_uuid TEXT PRIMARY KEY, nid TEXT NOT NULL, pid INTEGER NOT NULL, flags INTEGER NOT NULL,
  conn_cnt INTEGER NOT NULL, connected_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ost_pools (ost INTEGER PRIMARY KEY, last_id INTEGER NOT NULL, next_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending_destroy (id INTEGER PRIMARY KEY, ost INTEGER NOT NULL, oid INTEGER NOT NULL);
`

type Row = Record<string, unknown>
const n = (v: unknown): number => Number(v as bigint)
const b = (v: unknown): bigint => BigInt(v as bigint)
const bytes = (v: unknown): Uint8Array | null => (v == null ? null : new Uint8Array(v as Buffer))

function inodeOf(r: Row): Inode {
  return {
    id: n(r.id), fid: { f_seq: b(r.seq), f_oid: n(r.oid), f_ver: n(r.ver) },
    mode: n(r.mode), uid: n(r.uid), gid: n(r.gid), nlink: n(r.nlink), size: b(r.size), blocks: b(r.blocks),
    atime: b(r.atime), mtime: b(r.mtime), ctime: b(r.ctime), btime: b(r.btime),
    flags: n(r.flags), rdev: n(r.rdev), projid: n(r.projid),
    symlink: (r.symlink as string | null) ?? null, layout: bytes(r.layout), dirDefault: bytes(r.dir_default),
  }
}

/** Inode members and their columns, for inserts and updates. */
const COLUMNS: Array<[keyof InodeChange, string]> = [
  ['mode', 'mode'], ['uid', 'uid'], ['gid', 'gid'], ['nlink', 'nlink'], ['size', 'size'], ['blocks', 'blocks'],
  ['atime', 'atime'], ['mtime', 'mtime'], ['ctime', 'ctime'], ['btime', 'btime'], ['flags', 'flags'], ['rdev', 'rdev'],
  ['projid', 'projid'], ['symlink', 'symlink'], ['layout', 'layout'], ['dirDefault', 'dir_default'],
]

const sqlValue = (v: unknown): unknown => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v)

export class MdtStore {
  private readonly db: Database.Database
  private readonly stmts = new Map<string, Database.Statement>()
  private transno: bigint
  /** the open group commit: its COMMIT runs at setImmediate, then `done` settles */
  private batch: { done: Promise<void>; resolve: () => void; reject: (e: Error) => void } | undefined

  constructor(dir: string) {
    const d = join(dir, 'mdt0')
    mkdirSync(d, { recursive: true })
    this.db = new Database(join(d, 'mdt.db'))
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
    // FIDs' sequences and readdir hashes need all 64 bits: read every integer as a bigint.
    this.db.defaultSafeIntegers(true)
    this.db.exec(SCHEMA)
    this.db.transaction(() => this.format())()
    this.transno = this.meta('last_transno')
  }

  /** A new MDT: transno 0, FIDs from FID_SEQ_NORMAL:1, and the root directory (mdd_prepare). */
  private format(): void {
    if (this.q('SELECT 1 FROM meta WHERE key = ?').get('last_transno')) return
    this.setMeta('last_transno', 0n)
    this.setMeta('fid_seq', FID_SEQ_NORMAL)
    this.setMeta('fid_next_oid', 1n)
    const t = nowSec()
    this.insertInode({
      fid: ROOT_FID, mode: S_IFDIR | 0o755, uid: 0, gid: 0, nlink: 2, size: 4096n, blocks: 8n,
      atime: t, mtime: t, ctime: t, btime: t, flags: 0, rdev: 0, projid: 0, symlink: null, layout: null, dirDefault: null,
    })
  }

  private q(sql: string): Database.Statement {
    let s = this.stmts.get(sql)
    if (!s) {
      s = this.db.prepare(sql)
      this.stmts.set(sql, s)
    }
    return s
  }

  private meta(key: string): bigint {
    const r = this.q('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined
    return r ? b(r.value) : 0n
  }

  private setMeta(key: string, value: bigint): void {
    this.q('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value)
  }

  get lastTransno(): bigint {
    return this.transno
  }

  /**
   * Runs `fn` as one transaction that also takes the next transno; an exception
   * (an MdsError) rolls everything back and no transno is used.
   */
  update<T>(fn: () => T): { result: T; transno: bigint } {
    this.begin()
    // Inside the open transaction better-sqlite3 runs this as a savepoint: a throw undoes only this update.
    const run = this.db.transaction(() => {
      const result = fn()
      const transno = this.meta('last_transno') + 1n
      this.setMeta('last_transno', transno)
      return { result, transno }
    })
    const r = run()
    this.transno = r.transno
    return r
  }

  /** A transaction without a transno (internal state: OST pools, destroys, orphan cleanup). */
  internal<T>(fn: () => T): T {
    this.begin()
    return this.db.transaction(fn)()
  }

  /**
   * Undefined when everything done so far is committed; otherwise a promise that settles
   * when it is (rejecting if the COMMIT failed, when the group's updates are gone).
   */
  settled(): Promise<void> | undefined {
    return this.batch?.done
  }

  private begin(): void {
    if (this.batch) return
    this.db.exec('BEGIN IMMEDIATE')
    let resolve!: () => void
    let reject!: (e: Error) => void
    const done = new Promise<void>((res, rej) => { resolve = res; reject = rej })
    // A failed group is reported to each waiter; nobody may be left with an unhandled rejection.
    done.catch(() => {})
    this.batch = { done, resolve, reject }
    setImmediate(() => this.commit())
  }

  /** COMMIT of the open group: one fsync for every update of this event-loop turn. */
  private commit(): void {
    const b = this.batch
    if (!b) return
    this.batch = undefined
    try {
      this.db.exec('COMMIT')
      b.resolve()
    } catch (e) {
      try { if (this.db.inTransaction) this.db.exec('ROLLBACK') } catch { /* the connection reports it on next use */ }
      this.transno = this.meta('last_transno')
      b.reject(e as Error)
    }
  }

  // --- inodes -------------------------------------------------------------

  byFid(f: Fid): Inode | undefined {
    const r = this.q('SELECT * FROM inodes WHERE seq = ? AND oid = ? AND ver = ?').get(f.f_seq, f.f_oid, f.f_ver) as Row | undefined
    return r && inodeOf(r)
  }

  byId(id: number): Inode | undefined {
    const r = this.q('SELECT * FROM inodes WHERE id = ?').get(id) as Row | undefined
    return r && inodeOf(r)
  }

  insertInode(i: NewInode): number {
    const cols = COLUMNS.map(c => c[1]).join(', ')
    const marks = COLUMNS.map(() => '?').join(', ')
    const r = this.q(`INSERT INTO inodes (seq, oid, ver, ${cols}) VALUES (?, ?, ?, ${marks})`)
      .run(i.fid.f_seq, i.fid.f_oid, i.fid.f_ver, ...COLUMNS.map(c => sqlValue(i[c[0]])))
    return Number(r.lastInsertRowid)
  }

  updateInode(id: number, ch: InodeChange): void {
    const set = COLUMNS.filter(c => ch[c[0]] !== undefined)
    if (!set.length) return
    this.q(`UPDATE inodes SET ${set.map(c => `${c[1]} = ?`).join(', ')} WHERE id = ?`).run(...set.map(c => sqlValue(ch[c[0]])), id)
  }

  deleteInode(id: number): void {
    this.q('DELETE FROM inodes WHERE id = ?').run(id)
  }

  inodeCount(): number {
    return n((this.q('SELECT count(*) AS c FROM inodes').get() as Row).c)
  }

  /** Inodes whose last name went while they were open: the orphans a restart cleans up. */
  orphans(): Inode[] {
    return (this.q('SELECT * FROM inodes WHERE nlink = 0').all() as Row[]).map(inodeOf)
  }

  /**
   * The next free FID of FID_SEQ_NORMAL: oids count from 1 and a sequence holds
   * 2^32 - 1 of them (LUSTRE_SEQ_MAX_WIDTH is smaller in Lustre; one MDT here owns the
   * whole range). FIDs a client chose are skipped.
   */
  allocFid(): Fid {
    let seq = this.meta('fid_seq')
    let oid = this.meta('fid_next_oid')
    for (;;) {
      if (oid > 0xffffffffn) { seq = this.allocSeq(); oid = 1n }
      const fid = { f_seq: seq, f_oid: Number(oid), f_ver: 0 }
      oid++
      if (!this.byFid(fid)) {
        this.setMeta('fid_seq', seq)
        this.setMeta('fid_next_oid', oid)
        return fid
      }
    }
  }

  /**
   * A FID sequence nobody has: the MDT's own FIDs start in FID_SEQ_NORMAL, and every sequence
   * after it is handed out once, to a client's SEQ_QUERY or to the MDT itself, and never again
   * (call inside a transaction: the counter is part of what commits).
   */
  allocSeq(): bigint {
    const seq = [this.meta('next_seq'), this.meta('fid_seq') + 1n, FID_SEQ_NORMAL + 1n].reduce((a, x) => (x > a ? x : a))
    this.setMeta('next_seq', seq + 1n)
    return seq
  }

  // --- directory entries --------------------------------------------------

  lookup(parent: number, name: string): Dirent | undefined {
    const r = this.q('SELECT name, hash, child FROM dirents WHERE parent = ? AND name = ?').get(parent, name) as Row | undefined
    return r && { name: r.name as string, hash: b(r.hash), child: n(r.child) }
  }

  hashTaken(parent: number, hash: bigint): boolean {
    return !!this.q('SELECT 1 FROM dirents WHERE parent = ? AND hash = ?').get(parent, hash)
  }

  addEntry(parent: number, name: string, hash: bigint, child: number): void {
    this.q('INSERT INTO dirents (parent, name, hash, child) VALUES (?, ?, ?, ?)').run(parent, name, hash, child)
  }

  removeEntry(parent: number, name: string): void {
    this.q('DELETE FROM dirents WHERE parent = ? AND name = ?').run(parent, name)
  }

  hasEntries(parent: number): boolean {
    return !!this.q('SELECT 1 FROM dirents WHERE parent = ? LIMIT 1').get(parent)
  }

  /** The directory holding a directory (directories have one name); the root is its own parent. */
  parentOf(dir: number): number | undefined {
    const r = this.q('SELECT parent FROM dirents WHERE child = ? LIMIT 1').get(dir) as Row | undefined
    return r ? n(r.parent) : undefined
  }

  /** Entries of a directory from hash `from` on, in hash order, with the child's FID and mode. */
  *entriesFrom(parent: number, from: bigint): Generator<{ name: string; hash: bigint; fid: Fid; mode: number }> {
    const it = this.q(`SELECT d.name, d.hash, i.seq, i.oid, i.ver, i.mode FROM dirents d JOIN inodes i ON i.id = d.child
      WHERE d.parent = ? AND d.hash >= ? ORDER BY d.hash`).iterate(parent, from) as IterableIterator<Row>
    for (const r of it) yield { name: r.name as string, hash: b(r.hash), fid: { f_seq: b(r.seq), f_oid: n(r.oid), f_ver: n(r.ver) }, mode: n(r.mode) }
  }

  // --- exports (last_rcvd's client records) -------------------------------

  saveExport(e: { clientUuid: string; nid: string; pid: number; flags: bigint; connCnt: number }): void {
    this.q(`INSERT INTO exports (client_uuid, nid, pid, flags, conn_cnt, connected_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (client_uuid) DO UPDATE SET nid = excluded.nid, pid = excluded.pid, flags = excluded.flags,
      conn_cnt = excluded.conn_cnt, connected_at = excluded.connected_at`)
      .run(e.clientUuid, e.nid, e.pid, BigInt.asIntN(64, e.flags), e.connCnt, nowSec())
  }

  deleteExport(clientUuid: string): void {
    this.q('DELETE FROM exports WHERE client_uuid = ?').run(clientUuid)
  }

  exportUuids(): string[] {
    return (this.q('SELECT client_uuid FROM exports ORDER BY client_uuid').all() as Row[]).map(r => r.client_uuid as string)
  }

  // --- OST object pools (lov_objids) and destroys --------------------------

  pool(ost: number): { last: bigint; next: bigint } | undefined {
    const r = this.q('SELECT last_id, next_id FROM ost_pools WHERE ost = ?').get(ost) as Row | undefined
    return r && { last: b(r.last_id), next: b(r.next_id) }
  }

  setPool(ost: number, last: bigint, next: bigint): void {
    this.q('INSERT INTO ost_pools (ost, last_id, next_id) VALUES (?, ?, ?) ON CONFLICT (ost) DO UPDATE SET last_id = excluded.last_id, next_id = excluded.next_id')
      .run(ost, last, next)
  }

  queueDestroy(ost: number, oid: bigint): void {
    this.q('INSERT INTO pending_destroy (ost, oid) VALUES (?, ?)').run(ost, oid)
  }

  pendingDestroys(): Array<{ id: number; ost: number; oid: bigint }> {
    return (this.q('SELECT id, ost, oid FROM pending_destroy ORDER BY id').all() as Row[]).map(r => ({ id: n(r.id), ost: n(r.ost), oid: b(r.oid) }))
  }

  destroyDone(id: number): void {
    this.q('DELETE FROM pending_destroy WHERE id = ?').run(id)
  }

  close(): void {
    this.commit()
    this.db.close()
  }
}
