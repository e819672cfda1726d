// reference/mds: the MDS answers MDS_* requests as reference/README.md and Lustre's
// MDT do (mdt_handler.c, mdt_reint.c, mdt_open.c), over real LNet/PtlRPC, with its
// OST objects precreated on a real OssServer. Requests are packed as mdc_lib.c packs them.
import t from 'tap'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { makeStruct } from '../../src/wire/index.js'
import { E } from '../../reference/common/index.js'
import { CB, C, ROOT, S_IFDIR, S_IFREG, S_IFLNK, MiB, END, FLAGS, OPEN_CREAT, OPEN_EXCL, FMODE_WRITE, lum, status, parsePages, setup, objectStatus, lmmOf, stripes } from '../helpers/mds.js'

t.test('connect, ping, get root, getattr, disconnect', async t => {
  const s = await setup(t)
  const c = s.mdc
  t.equal(c.imp.flags, FLAGS, 'negotiated flags = asked & supported (no ACL)')
  t.equal(c.imp.ocd.ocd_connect_flags2, 0n, 'nothing of flags2 granted')
  t.ok(Number(c.imp.ocd.ocd_max_easize) >= 32, 'ocd_max_easize')
  t.equal(c.imp.ocd.ocd_ibits_known, 0x7fn, 'ibits known, masked to MDS_INODELOCK_FULL')
  t.equal(await c.imp.ping(), 0, 'ping')
  const root = await c.root()
  t.same(c.fid(root), ROOT, 'root FID [FID_SEQ_ROOT:1:0]')
  const a = c.body(await c.getattr(ROOT))
  t.equal(a.mbo_mode, S_IFDIR | 0o755)
  t.equal(a.mbo_nlink, 2)
  t.equal(await status(c.getattr({ f_seq: 0n, f_oid: 0, f_ver: 0 })), E.EPROTO, 'zero FID: -EPROTO')
  t.equal(await status(c.getattr({ f_seq: 0x200000400n, f_oid: 999, f_ver: 0 })), E.ENOENT, 'unknown FID: -ENOENT')
  t.equal(await status(c.call('RQF_MDS_REINT', { RMF_REC_REINT: makeStruct('mdt_rec_reint', { rr_opcode: C('REINT_SETXATTR') }) })), E.EOPNOTSUPP, 'REINT_SETXATTR is not served')
  t.equal(await status(c.call('RQF_MDS_GET_ROOT', { RMF_MDT_BODY: makeStruct('mdt_body', {}), RMF_NAME: 'nope' })), E.ENOENT, 'unknown fileset')
  const exportsOf = (): string[] => {
    const db = new Database(join(s.dir, 'mdt0', 'mdt.db'), { readonly: true })
    try { return (db.prepare('SELECT client_uuid FROM exports').all() as Array<{ client_uuid: string }>).map(r => r.client_uuid) } finally { db.close() }
  }
  t.same(exportsOf(), [c.imp.opts.clientUuid], 'the export is recorded in the database')
  await c.imp.disconnect()
  t.equal(await c.imp.ping(), E.ENOTCONN, 'no export after disconnect')
  t.same(exportsOf(), [], 'and its record goes with it')
})

t.test('mkdir, create, symlink, lookup, getattr, names', async t => {
  const { mdc: c } = await setup(t)
  const d = c.fid(await c.mkdir(ROOT, 'dir'))
  t.equal(c.body(await c.getattr(ROOT)).mbo_nlink, 3, 'a subdirectory adds a link to its parent')
  t.equal(await status(c.mkdir(ROOT, 'dir')), E.EEXIST, 'mkdir of an existing name')
  const f = await c.create(d, 'file', S_IFREG | 0o666)
  t.equal(c.body(f).mbo_mode, S_IFREG | 0o644, 'umask applied (mdd_acl_init without default ACL)')
  t.equal(c.body(f).mbo_uid, 500)
  const l = c.fid(await c.create(d, 'link', S_IFLNK | 0o777, { symlink: '../some/target' }))
  const la = await c.getattr(l, CB('OBD_MD_LINKNAME'))
  t.same(Buffer.from(la.reply.fields.RMF_MDT_MD as Uint8Array).toString(), '../some/target\0', 'symlink target with its NUL')
  t.equal(c.body(la).mbo_eadatasize, 15)
  const look = await c.lookup(d, 'file')
  t.same(c.fid(look), c.fid(f), 'lookup finds the created object')
  t.same(c.fid(await c.lookup(d, '..')), ROOT, '".." is the parent')
  t.same(c.fid(await c.lookup(d, '.')), d, '"." is the directory')
  t.equal(await status(c.lookup(d, 'missing')), E.ENOENT)
  t.equal(await status(c.lookup(c.fid(f), 'x')), E.ENOTDIR, 'lookup in a file')
  t.equal(await status(c.mkdir(d, 'a/b')), E.EPROTO, 'a name with "/" is malformed')
  t.equal(await status(c.mkdir(d, 'x'.repeat(256))), E.ENAMETOOLONG, '256-byte name')
  t.equal(await status(c.mkdir(d, 'é'.repeat(128))), E.ENAMETOOLONG, '256 bytes of UTF-8')
  t.equal(await status(c.mkdir(d, 'x'.repeat(255))), 0, '255-byte name')
  t.equal(await status(c.create(d, 'nul', 0o644)), E.EINVAL, 'no file type')
  const mine = { f_seq: 0x200000400n, f_oid: 0x7000, f_ver: 0 }
  t.same(c.fid(await c.mkdir(ROOT, 'chosen').then(() => c.create(ROOT, 'byfid', S_IFREG | 0o600, { fid: mine }))), mine, 'a client FID is honoured')
  t.equal(await status(c.create(ROOT, 'byfid2', S_IFREG | 0o600, { fid: mine })), E.EEXIST, 'a FID in use')
})

t.test('open-create with layouts, round robin, precreated objects on the OSTs', async t => {
  const s = await setup(t, { osts: 4 })
  const c = s.mdc
  const a = await c.open(ROOT, 'a', OPEN_CREAT | FMODE_WRITE, lum(MiB, 2, 1))
  t.equal(lmmOf(a).lmm_magic, C('LOV_MAGIC_V1'))
  t.equal(lmmOf(a).lmm_stripe_size, MiB)
  t.same(stripes(a), [1, 2], '-c 2 -i 1: OSTs 1 and 2')
  t.same(lmmOf(a).lmm_oi.oi, { oi_id: BigInt(c.fid(a).f_oid), oi_seq: c.fid(a).f_seq }, 'lmm_oi from the FID')
  t.ok(((c.body(a).mbo_valid as bigint) & CB('OBD_MD_FLEASIZE')) !== 0n, 'FLEASIZE')
  t.equal(c.body(a).mbo_eadatasize, 32 + 2 * 24)
  const handle = (c.body(a).mbo_open_handle as { cookie: bigint }).cookie
  t.not(handle, 0n, 'an open handle')
  t.ok(a.reply.body.pb_transno as bigint > 0n, 'a create has a transno')
  const probe = await s.ost(2)
  t.equal(await objectStatus(probe, lmmOf(a).lmm_objects[1].l_ost_oi.oi.oi_id), 0, 'the object exists on OST 2')
  t.equal(await status(c.close(c.fid(a), handle)), 0, 'close')
  t.equal(await status(c.close(c.fid(a), handle)), E.ESTALE, 'second close: -ESTALE')

  const defaults = await Promise.all(['d0', 'd1', 'd2', 'd3'].map(async n => stripes(await c.open(ROOT, n, OPEN_CREAT))))
  t.same(defaults.map(x => x.length), [1, 1, 1, 1], 'default count 1')
  t.same(new Set(defaults.flat()).size, 4, 'round robin: four files on four OSTs')
  t.same(lmmOf(await c.open(ROOT, 'all', OPEN_CREAT, lum(0, -1, -1))).lmm_objects.length, 4, '-c -1: every OST')
  t.same(stripes(await c.open(ROOT, 'wrap', OPEN_CREAT, lum(0, 3, 3))), [3, 0, 1], 'offset 3 wraps modulo 4')
  t.equal(lmmOf(await c.open(ROOT, 'big', OPEN_CREAT, lum(0, 9, -1))).lmm_stripe_count, 4, 'count capped at the OSTs')
  const again = await c.open(ROOT, 'a', FMODE_WRITE)
  t.same(lmmOf(again).lmm_objects, lmmOf(a).lmm_objects, 'reopen: same layout')
  t.equal(again.reply.body.pb_transno, 0n, 'an open that creates nothing has no transno')
  t.equal(await status(c.open(ROOT, 'a', OPEN_CREAT | OPEN_EXCL)), E.EEXIST, 'O_EXCL')
  t.equal(await status(c.open(ROOT, 'none', 0)), E.ENOENT, 'open without O_CREAT')
  await c.mkdir(ROOT, 'sub')
  t.equal(await status(c.open(ROOT, 'sub', FMODE_WRITE)), E.EISDIR, 'directory for writing')
  t.equal(await status(c.open(ROOT, 'bad', OPEN_CREAT, lum(MiB, 1, -1, 0x12345678))), E.EINVAL, 'bad lov_user_md magic')
  t.equal(await status(c.open(ROOT, 'bad', OPEN_CREAT, lum(1000, 1, -1))), E.EINVAL, 'stripe size not a multiple of 64 KiB')
  t.equal(await status(c.open(ROOT, 'bad', OPEN_CREAT, lum(MiB, 1, 7))), E.EINVAL, 'offset names no OST')
  // 30 single-stripe files on OST 0 at once take several precreate batches (8 each).
  const ids = await Promise.all(Array.from({ length: 30 }, async (_, i) => lmmOf(await c.open(ROOT, `p${i}`, OPEN_CREAT, lum(0, 1, 0))).lmm_objects[0].l_ost_oi.oi.oi_id))
  t.equal(new Set(ids).size, 30, 'distinct objects across concurrent refills')
  const p0 = await s.ost(0)
  for (const id of [ids[0], ids[29]]) t.equal(await objectStatus(p0, id), 0, `object ${id} precreated on OST 0`)
})

t.test('directory default layout: set, read back, inherited, removed', async t => {
  const s = await setup(t, { osts: 3, mds: { defaultStripe: { size: 2 * MiB, count: 1 } } })
  const c = s.mdc
  const d = c.fid(await c.mkdir(ROOT, 'striped'))
  await c.setattr(d, 0n, {}, lum(4 * MiB, 2, -1))
  const g = await c.getattr(d, CB('OBD_MD_FLDIREA'))
  t.ok(((c.body(g).mbo_valid as bigint) & CB('OBD_MD_FLDIREA')) !== 0n, 'OBD_MD_FLDIREA')
  t.match(lmmOf(g), { lmm_magic: C('LOV_USER_MAGIC_V1'), lmm_stripe_size: 4 * MiB, lmm_stripe_count: 2, lmm_layout_gen: 0xffff }, 'default read back (offset in place of layout_gen)')
  const f = await c.open(d, 'f', OPEN_CREAT)
  t.match(lmmOf(f), { lmm_stripe_size: 4 * MiB, lmm_stripe_count: 2 }, 'a new file inherits it')
  t.match(lmmOf(await c.open(d, 'g', OPEN_CREAT, lum(0, 1, -1))), { lmm_stripe_size: 4 * MiB, lmm_stripe_count: 1 }, 'what the request leaves 0 comes from the default')
  t.match(lmmOf(await c.open(ROOT, 'h', OPEN_CREAT)), { lmm_stripe_size: 2 * MiB, lmm_stripe_count: 1 }, 'elsewhere: the filesystem default')
  await c.setattr(ROOT, 0n, {}, lum(0, -1, -1))
  const other = c.fid(await c.mkdir(ROOT, 'plain'))
  t.equal(lmmOf(await c.open(other, 'x', OPEN_CREAT)).lmm_stripe_count, 3, "a directory without a default takes the root's")
  await c.setattr(d, 0n, {}, lum(0, 0, -1))
  t.notOk((await c.getattr(d, CB('OBD_MD_FLDIREA'))).reply.fields.RMF_MDT_MD, 'size 0, count 0, offset -1 removes it')
  t.equal(await status(c.setattr(c.fid(f), 0n, {}, lum(MiB, 1, -1))), E.EEXIST, 'a file with objects keeps its layout')
  t.equal(await status(c.setattr(d, 0n, {}, lum(MiB, 1, -1, 0xdeadbeef))), E.EINVAL, 'bad magic')
  const fa = await c.setattr(c.fid(f), CB('MDS_ATTR_MODE') | CB('MDS_ATTR_UID') | CB('MDS_ATTR_MTIME') | CB('MDS_ATTR_SIZE'), { sa_mode: 0o600, sa_uid: 42, sa_mtime: 1234n, sa_size: 77n })
  t.match(c.body(fa), { mbo_mode: S_IFREG | 0o600, mbo_uid: 42, mbo_mtime: 1234n, mbo_size: 77n }, 'setattr by sa_valid')
  t.equal(await status(c.setattr(d, CB('MDS_ATTR_SIZE'), { sa_size: 1n })), E.EISDIR, 'truncate of a directory')
})

t.test('readdir of 10,000 entries, page by page from cookies', async t => {
  const { mdc: c } = await setup(t)
  const d = c.fid(await c.mkdir(ROOT, 'big'))
  const names = Array.from({ length: 10_000 }, (_, i) => (i % 97 === 0 ? `ünï-${i}` : `f${i}`))
  for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map(n => c.create(d, n, S_IFREG | 0o644)))
  const seen = new Map<string, number>()
  let cookie = 0n
  let calls = 0
  let lastHash = -1n
  const bad: string[] = []
  for (;;) {
    const r = await c.readpage(d, cookie, 8192)
    calls++
    const p = parsePages(r.bulk!)
    for (const e of p.entries) {
      seen.set(e.name, (seen.get(e.name) ?? 0) + 1)
      if (e.name === '.' || e.name === '..') continue
      if (!(e.hash > lastHash && e.hash < END)) bad.push(`${e.name}: hash out of order`)
      if (e.type !== S_IFREG) bad.push(`${e.name}: type ${e.type}`)
      lastHash = e.hash
    }
    if (p.end === END) break
    cookie = p.end
    if (calls > 1000) throw new Error('readdir does not end')
  }
  t.same(bad, [], 'entries in hash order, below MDS_DIR_END_OFF, typed S_IFREG')
  t.ok(calls >= 40, `${calls} READPAGE calls of 2 pages (about 200 entries each)`)
  t.equal(seen.size, 10_002, 'every name, with "." and ".."')
  t.ok([...seen.values()].every(v => v === 1), 'each exactly once')
  t.ok(names.every(n => seen.has(n)))
  const one = await c.readpage(d, 0n, 1 << 20)
  t.equal(parsePages(one.bulk!).entries.length, 10_002, 'or 1 MiB at once')
  const empty = c.fid(await c.mkdir(d, 'empty-dir'))
  const e = parsePages((await c.readpage(empty, 0n, 4096)).bulk!)
  t.same(e.entries.map(x => x.name), ['.', '..'])
  t.same(e.entries[1].fid, d, '".." names the parent')
  const past = parsePages((await c.readpage(empty, END, 4096)).bulk!)
  t.same([past.entries.length, past.end, past.flags[0]], [0, END, C('LDF_EMPTY')], 'past the end: an empty page')
  t.equal(await status(c.readpage(d, 0n, 100)), E.EINVAL, 'less than a page')
})

