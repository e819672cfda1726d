// The reference MDS, continued: rename, link and unlink counts, transnos and restart, statfs.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeStruct } from '../../src/wire/index.js'
import { E, LustreRpcError } from '../../reference/common/index.js'
import { MdsServer } from '../../reference/mds/index.js'
import { OssServer } from '../../reference/oss/index.js'
import { CB, C, ROOT, S_IFDIR, S_IFREG, MiB, OPEN_CREAT, AGAIN, lum, Mdc, status, parsePages, freePort, setup, objectStatus, lmmOf, stripes, type Obj } from '../helpers/mds.js'

t.test('rename', async t => {
  const s = await setup(t, { osts: 2 })
  const c = s.mdc
  const a = c.fid(await c.mkdir(ROOT, 'a'))
  const b = c.fid(await c.mkdir(a, 'b'))
  const x = c.fid(await c.mkdir(ROOT, 'x'))
  await c.create(x, 'inner', S_IFREG | 0o644)
  const f = await c.open(ROOT, 'f', OPEN_CREAT)
  const g = await c.open(ROOT, 'g', OPEN_CREAT)
  await c.close(c.fid(g), (c.body(g).mbo_open_handle as { cookie: bigint }).cookie)
  t.equal(await status(c.rename(ROOT, 'a', b, 'a2')), E.EINVAL, 'into its own subtree')
  t.equal(await status(c.rename(ROOT, 'a', a, 'a2')), E.EINVAL, 'into itself')
  t.equal(await status(c.rename(ROOT, 'a', ROOT, 'x')), E.ENOTEMPTY, 'over a non-empty directory')
  t.equal(await status(c.rename(ROOT, 'a', ROOT, 'f')), E.ENOTDIR, 'directory over a file')
  t.equal(await status(c.rename(ROOT, 'f', ROOT, 'a')), E.EISDIR, 'file over a directory')
  t.equal(await status(c.rename(ROOT, 'nope', ROOT, 'z')), E.ENOENT)
  t.equal(await status(c.rename(ROOT, 'f', ROOT, 'f')), 0, 'onto itself: nothing to do')
  await c.rename(a, 'b', ROOT, 'b')
  t.same(c.fid(await c.lookup(ROOT, 'b')), b, 'moved')
  t.equal(await status(c.lookup(a, 'b')), E.ENOENT, 'old name gone')
  t.equal(c.body(await c.getattr(a)).mbo_nlink, 2, 'old parent lost the ".." link')
  t.equal(c.body(await c.getattr(ROOT)).mbo_nlink, 5, 'new parent gained it')
  t.same(c.fid(await c.lookup(b, '..')), ROOT, '".." follows')
  const gObj = lmmOf(g).lmm_objects[0]
  const over = await c.rename(ROOT, 'f', ROOT, 'g')
  t.match(c.body(over), { mbo_fid1: c.fid(g), mbo_nlink: 0 }, 'reply: the replaced target, gone')
  t.same(c.fid(await c.lookup(ROOT, 'g')), c.fid(f))
  const probe = await s.ost(gObj.l_ost_idx)
  for (let i = 0; i < 50 && await objectStatus(probe, gObj.l_ost_oi.oi.oi_id) === 0; i++) await AGAIN(50)
  t.equal(await objectStatus(probe, gObj.l_ost_oi.oi.oi_id), E.ENOENT, "the replaced file's object is destroyed")
  await c.mkdir(ROOT, 'e')
  t.equal(await status(c.rename(ROOT, 'b', ROOT, 'e')), 0, 'directory over an empty directory')
})

t.test('link, unlink, rmdir and link counts; open-unlinked files live until closed', async t => {
  const s = await setup(t, { osts: 1 })
  const c = s.mdc
  const d = c.fid(await c.mkdir(ROOT, 'd'))
  const o = await c.open(d, 'f', OPEN_CREAT)
  const f = c.fid(o)
  t.equal(c.body(await c.link(f, ROOT, 'f1')).mbo_nlink, 2)
  t.equal(c.body(await c.link(f, d, 'f2')).mbo_nlink, 3)
  t.equal(await status(c.link(f, d, 'f2')), E.EEXIST)
  t.equal(await status(c.link(d, ROOT, 'dlink')), E.EPERM, 'hard link to a directory')
  const proj = c.fid(await c.mkdir(ROOT, 'proj'))
  await c.setattr(proj, CB('MDS_ATTR_ATTR_FLAG') | CB('MDS_ATTR_PROJID'), { sa_attr_flags: C('LUSTRE_PROJINHERIT_FL'), sa_projid: 7 })
  t.equal(await status(c.link(f, proj, 'f3')), E.EXDEV, 'link into a project-inherit tree of another project')
  t.equal(await status(c.rename(ROOT, 'd', proj, 'd')), E.EXDEV, 'rename of a directory into it')
  t.equal(c.body(await c.mkdir(proj, 'inner')).mbo_projid, 7, 'new directories inherit the project')
  t.equal(c.body(await c.unlink(d, 'f2')).mbo_nlink, 2, 'reply: the object as left')
  t.equal(await status(c.unlink(ROOT, 'd', S_IFDIR)), E.ENOTEMPTY, 'rmdir of a non-empty directory')
  t.equal(await status(c.unlink(ROOT, 'f1', S_IFDIR)), E.ENOTDIR, 'rmdir of a file')
  t.equal(await status(c.unlink(ROOT, 'd', S_IFREG)), E.EISDIR, 'unlink of a directory')
  t.equal(await status(c.unlink(ROOT, 'zz')), E.ENOENT)
  await c.unlink(ROOT, 'f1')
  const last = await c.unlink(d, 'f')
  t.equal(c.body(last).mbo_nlink, 0, 'last name gone')
  t.equal(c.body(await c.getattr(f)).mbo_nlink, 0, 'still open: still there')
  const obj = lmmOf(o).lmm_objects[0].l_ost_oi.oi.oi_id
  const probe = await s.ost(0)
  t.equal(await objectStatus(probe, obj), 0, 'its object too')
  await c.close(f, (c.body(o).mbo_open_handle as { cookie: bigint }).cookie)
  t.equal(await status(c.getattr(f)), E.ENOENT, 'gone at last close')
  for (let i = 0; i < 50 && await objectStatus(probe, obj) === 0; i++) await AGAIN(50)
  t.equal(await objectStatus(probe, obj), E.ENOENT, 'object destroyed on the OST')
  t.equal(c.body(await c.unlink(ROOT, 'd', S_IFDIR)).mbo_nlink, 0, 'rmdir')
  t.equal(c.body(await c.getattr(ROOT)).mbo_nlink, 3, 'parent link count back (2 + proj)')
})

t.test('transnos: one per update, committed at once; data survives a restart', async t => {
  const s = await setup(t, { osts: 2 })
  let c = s.mdc
  const seen: bigint[] = []
  for (const n of ['t1', 't2', 't3']) {
    const r = await c.mkdir(ROOT, n)
    seen.push(r.reply.body.pb_transno as bigint)
    t.equal(r.reply.body.pb_last_committed, r.reply.body.pb_transno, 'synchronous commit')
  }
  t.same(seen, [seen[0], seen[0] + 1n, seen[0] + 2n], 'transnos count up')
  const look = await c.lookup(ROOT, 't1')
  t.equal(look.reply.body.pb_transno, 0n, 'a read has no transno')
  t.equal(look.reply.body.pb_last_committed, seen[2])
  t.equal((await c.mkdir(ROOT, 't1').catch(e => e) as LustreRpcError).status, E.EEXIST)
  t.equal((await c.lookup(ROOT, 't2')).reply.body.pb_last_committed, seen[2], 'a failed update uses no transno')
  const f = await c.open(ROOT, 'kept', OPEN_CREAT, lum(MiB, 2, -1))
  const sub = c.fid(await c.mkdir(ROOT, 'withdef'))
  await c.setattr(sub, 0n, {}, lum(2 * MiB, 1, 1))
  const before = (await c.lookup(ROOT, 'kept')).reply.body.pb_last_committed as bigint
  c = await s.restart()
  const k = await c.lookup(ROOT, 'kept', CB('OBD_MD_FLEASIZE'))
  t.same(c.fid(k), c.fid(f), 'lookup after restart')
  t.same(lmmOf(k).lmm_objects, lmmOf(f).lmm_objects, 'same layout')
  t.match(lmmOf(await c.getattr(sub, CB('OBD_MD_FLDIREA'))), { lmm_stripe_size: 2 * MiB, lmm_layout_gen: 1 }, 'directory default kept')
  const n = await c.mkdir(ROOT, 't4')
  t.equal(n.reply.body.pb_transno, before + 1n, 'transnos go on from the last committed')
  const g = await c.open(ROOT, 'new', OPEN_CREAT, lum(0, 2, -1))
  const old = new Set(lmmOf(f).lmm_objects.map(o => `${o.l_ost_idx}:${o.l_ost_oi.oi.oi_id}`))
  t.ok(lmmOf(g).lmm_objects.every(o => !old.has(`${o.l_ost_idx}:${o.l_ost_oi.oi.oi_id}`)), 'no object handed out twice')
  const names = parsePages((await c.readpage(ROOT, 0n, 4096)).bulk!).entries.map(e => e.name).sort()
  t.same(names, ['.', '..', 'kept', 'new', 't1', 't2', 't3', 't4', 'withdef'])
})

t.test('statfs, and an OST that comes up after the MDS', async t => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'lc-mds-late-'))
  const mds = new MdsServer({ dir, osts: [{ index: 0, host: '127.0.0.1', port, nid: '127.0.0.1@tcp' }], port: 0 })
  let oss: OssServer | undefined
  t.teardown(async () => { await mds.close(); await oss?.close(); rmSync(dir, { recursive: true, force: true }) })
  await mds.start()
  const c = await Mdc.connect(mds.port)
  t.teardown(() => c.close_())
  t.equal(await status(c.open(ROOT, 'early', OPEN_CREAT)), E.ENOSPC, 'no OST up: -ENOSPC')
  t.equal(await status(c.mkdir(ROOT, 'dirs-need-no-ost')), 0)
  oss = new OssServer({ dir, osts: 1, host: '127.0.0.1', port })
  await oss.start()
  const f = await c.open(ROOT, 'late', OPEN_CREAT)
  t.same(stripes(f), [0], 'the OST is connected on demand')
  const own = (await c.call('RQF_MDS_STATFS', {})).reply.fields.RMF_OBD_STATFS as Obj
  t.match(own, { os_namelen: 255 })
  t.ok((own.os_files as bigint) - (own.os_ffree as bigint) >= 3n, 'inodes in use')
  const sum = (await c.call('RQF_MDS_STATFS_NEW', { RMF_MDT_BODY: makeStruct('mdt_body', { mbo_valid: CB('OBD_MD_FLAGSTATFS') }) })).reply.fields.RMF_OBD_STATFS as Obj
  t.equal(sum.os_bsize, 4096)
  t.ok((sum.os_blocks as bigint) > 0n, 'OST space summed')
})

t.test('SEQ_QUERY: a meta-sequence per ask, never given twice, not even after a restart; objects named in it keep their FIDs', async t => {
  const s = await setup(t)
  const seqOf = async (c: typeof s.mdc, opc = C('SEQ_ALLOC_META')) => {
    const r = await c.call('RQF_SEQ_QUERY', { RMF_SEQ_OPC: opc, RMF_SEQ_RANGE: makeStruct('lu_seq_range', {}) }, { allowError: true })
    return { status: r.reply.body.pb_status as number, range: r.reply.fields.RMF_SEQ_RANGE as { lsr_start: bigint; lsr_end: bigint; lsr_flags: number } | undefined }
  }
  const a = await seqOf(s.mdc)
  const b = await seqOf(s.mdc)
  t.equal(a.status, 0)
  t.equal(a.range!.lsr_end - a.range!.lsr_start, 1n, 'one sequence')
  t.ok(a.range!.lsr_start > CB('FID_SEQ_NORMAL'), 'after the MDT\'s own FID_SEQ_NORMAL')
  t.equal(a.range!.lsr_flags, C('LU_SEQ_RANGE_MDT'))
  t.ok(b.range!.lsr_start >= a.range!.lsr_end, 'the second ask gets another sequence')
  // A directory named in the sequence keeps that FID.
  const fid = { f_seq: a.range!.lsr_start, f_oid: 1, f_ver: 0 }
  const made = await s.mdc.call('RQF_MDS_REINT_CREATE_ACL', {
    RMF_REC_REINT: makeStruct('mdt_rec_create', { cr_opcode: C('REINT_CREATE'), cr_fid1: ROOT, cr_fid2: fid, cr_mode: S_IFDIR | 0o755, cr_fsuid: 0, cr_fsgid: 0 }),
    RMF_NAME: 'named',
  })
  t.same(s.mdc.fid(made), fid, 'mkdir with cr_fid2 from the sequence: that FID')
  const c = await s.restart()
  const after = await seqOf(c)
  t.ok(after.range!.lsr_start >= b.range!.lsr_end, `after a restart, a sequence not given before (${after.range!.lsr_start})`)
  t.equal((await seqOf(c, C('SEQ_ALLOC_SUPER'))).status, E.EINVAL, 'SEQ_ALLOC_SUPER is for MDTs asking a controller: -EINVAL')
})
