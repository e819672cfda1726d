// The client's directory cache (reference/client/dcache.ts) against a real reference MDS
// and OSS on loopback: how many MDS requests a path operation costs with directories
// cached, that a stale entry left by another client's changes is caught by the retry,
// and that this client's own rmdir/rename/symlink changes invalidate what they must.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OssServer } from '../../reference/oss/index.js'
import { MdsServer } from '../../reference/mds/index.js'
import { E, LustreClient, LustreRpcError } from '../../reference/client/index.js'
import { DirCache } from '../../reference/client/dcache.js'
import type { ImportCall, TargetImport } from '../../reference/common/index.js'

const dir = mkdtempSync(join(tmpdir(), 'lc-dcache-'))
const oss = new OssServer({ dir: join(dir, 'oss'), osts: 2, host: '127.0.0.1', port: 0, log: () => {} })
let mds: MdsServer
const clients: LustreClient[] = []

async function connect(): Promise<LustreClient> {
  const c = await LustreClient.connect({ mds: `127.0.0.1:${mds.port}`, oss: [`127.0.0.1:${oss.port}`] })
  clients.push(c)
  return c
}

t.before(async () => {
  await oss.start()
  mds = new MdsServer({ dir: join(dir, 'mds'), osts: [0, 1].map(index => ({ index, host: '127.0.0.1', port: oss.port, nid: oss.nid })), host: '127.0.0.1', port: 0, log: () => {} })
  await mds.start()
})

t.teardown(async () => {
  for (const c of clients) await c.close()
  await mds?.close()
  await oss.close()
  rmSync(dir, { recursive: true, force: true })
})

/** The MDS requests a client sends (their RQF_ format names without the prefix), from when `take` was last called. */
function mdsRequests(c: LustreClient): { take: () => string[] } {
  const imp = (c as unknown as { c: { mdc: { imp: TargetImport } } }).c.mdc.imp
  const sent: string[] = []
  const call = imp.call.bind(imp)
  imp.call = (x: ImportCall) => { sent.push(x.format.replace(/^RQF_MDS_/, '')); return call(x) }
  return { take: () => sent.splice(0) }
}

const status = (e: unknown): number | undefined => (e instanceof LustreRpcError ? e.status : undefined)

t.test('DirCache keeps directories only, drops the least recently used, and forgets subtrees', async t => {
  const fid = (oid: number) => ({ seq: 0x200000400n, oid, ver: 0 })
  const c = new DirCache(3)
  c.put('/f', { fid: fid(9), mode: 0o100644 })
  c.put('/l', { fid: fid(8), mode: 0o120777 })
  t.equal(c.size, 0, 'a regular file and a symlink are not kept')
  c.put('/a', { fid: fid(1), mode: 0o40755 })
  c.put('/a/b', { fid: fid(2), mode: 0o40755 })
  c.put('/ab', { fid: fid(3), mode: 0o40755 })
  t.ok(c.get('/a'), 'a use makes /a the most recent')
  c.put('/c', { fid: fid(4), mode: 0o40755 })
  t.equal(c.get('/a/b'), undefined, 'the least recently used went first')
  t.equal(c.size, 3)
  const d = new DirCache()
  for (const [i, p] of ['/a', '/a/x', '/a/x/y', '/ab', '/c'].entries()) d.put(p, { fid: fid(i), mode: 0o40755 })
  d.drop('/a')
  t.same(['/a', '/a/x', '/a/x/y', '/ab', '/c'].map(p => d.get(p) !== undefined), [false, false, false, true, true], '/a and all under it gone, /ab kept')
  d.put('/ab/y', { fid: fid(6), mode: 0o40755 })
  d.drop('/ab', false)
  t.same([d.get('/ab'), d.get('/ab/y')?.fid.oid], [undefined, 6], 'without subtree only the path itself goes')
})

t.test('a repeated stat in a deep directory costs one MDS request', async t => {
  const maker = await connect()
  let p = ''
  for (const d of ['a', 'b', 'c', 'd', 'e']) { p += `/${d}`; await maker.mkdir(p) }
  await maker.create(`${p}/f`)
  const c = await connect()
  const mds = mdsRequests(c)
  await c.stat(`${p}/f`)
  t.same(mds.take(), Array(6).fill('GETATTR_NAME'), 'first walk: one lookup per component')
  const st = await c.stat(`${p}/f`)
  t.equal(st.type, 'file')
  t.same(mds.take(), ['GETATTR_NAME'], 'again: only the file itself (its layout came in the reply)')

  // A directory's own attributes are never taken from the cache.
  const before = (await c.stat('/a/b/c')).nlink
  await maker.mkdir('/a/b/c/new')
  t.equal((await c.stat('/a/b/c')).nlink, before + 1, 'the nlink another client changed is seen')
  mds.take()

  await c.create('/a/b/n')
  t.same(mds.take(), ['REINT_OPEN', 'CLOSE'], 'create in a cached directory: open + close')
  await c.stat('/a/b/n')
  t.same(mds.take(), ['GETATTR_NAME'], 'stat: one lookup (and OST_GETATTR for the size)')
  await c.unlink('/a/b/n')
  t.same(mds.take(), ['REINT_UNLINK'], 'unlink: REINT_UNLINK by parent FID and name, no lookup first')
  await c.readdir('/')
  t.same(mds.take(), ['READPAGE'], 'readdir of the root: no getattr of the root first')
  await c.readdir('/a/b')
  t.same(mds.take(), ['READPAGE'], 'readdir of a cached directory')
})

t.test('unlink and rmdir without a lookup keep their errnos', async t => {
  const c = await connect()
  await c.mkdir('/u')
  await c.mkdir('/u/empty')
  await c.create('/u/f')
  t.equal(status(await c.unlink('/u/empty').catch(e => e)), E.EISDIR, 'unlink of an empty directory')
  t.equal((await c.stat('/u/empty')).type, 'dir', 'and it is still there')
  t.equal(status(await c.rmdir('/u/f').catch(e => e)), E.ENOTDIR, 'rmdir of a file')
  t.equal(status(await c.unlink('/u/none').catch(e => e)), E.ENOENT, 'unlink of a missing name')
  t.equal(status(await c.rmdir('/u').catch(e => e)), E.ENOTEMPTY)
  await c.symlink('empty', '/u/s')
  await c.unlink('/u/s')
  t.equal((await c.stat('/u/empty')).type, 'dir', 'unlink of a symlink to a directory removes the symlink only')
  await c.unlink('/u/f')
  await c.rmdir('/u/empty')
  await c.rmdir('/u')
  t.equal(status(await c.stat('/u').catch(e => e)), E.ENOENT)
})

t.test('a directory another client replaced: the create lands in the new one (retry with fresh lookups)', async t => {
  const a = await connect()
  const b = await connect()
  await b.mkdir('/d')
  await b.create('/d/seed')
  await a.stat('/d/seed') // a caches /d
  const old = (await b.stat('/d')).fid
  await b.unlink('/d/seed')
  await b.rmdir('/d')
  await b.mkdir('/d')
  t.not((await b.stat('/d')).fid.oid, old.oid, 'a new /d')
  const mds = mdsRequests(a)
  await a.create('/d/f')
  t.same(mds.take(), ['REINT_OPEN', 'GETATTR_NAME', 'REINT_OPEN', 'CLOSE'], 'the open in the old FID failed, /d was looked up again')
  t.same(await b.readdir('/d'), [{ name: 'f', type: 'file' }], 'the file is in the new /d')
  await a.stat('/d/f')
  t.same(mds.take(), ['GETATTR_NAME'], 'and the new /d is cached')

  // Replaced by a file: the retry finds a non-directory (-ENOTDIR), and a missing name stays -ENOENT.
  await b.unlink('/d/f')
  await b.rmdir('/d')
  await b.create('/d')
  t.equal(status(await a.stat('/d/f').catch(e => e)), E.ENOTDIR)
  await b.unlink('/d')
  t.equal(status(await a.readdir('/d').catch(e => e)), E.ENOENT)
})

t.test('this client\'s rename of a directory forgets the old path and what was under it', async t => {
  const c = await connect()
  await c.mkdir('/r1')
  await c.mkdir('/r1/sub')
  await c.create('/r1/sub/f')
  await c.stat('/r1/sub/f') // /r1 and /r1/sub cached
  await c.rename('/r1', '/r2')
  await c.mkdir('/r1')
  // The old /r1/sub is alive (now /r2/sub): a stale entry would find f through it, and nothing would fail.
  t.equal(status(await c.stat('/r1/sub/f').catch(e => e)), E.ENOENT, 'not found under the new /r1')
  t.equal((await c.stat('/r2/sub/f')).type, 'file', 'found under /r2')
  const mds = mdsRequests(c)
  await c.stat('/r2/sub/f')
  t.same(mds.take(), ['GETATTR_NAME'], 'the renamed directory and its subtree are cached again under the new name')

  // rmdir by this client, then a file by the same name: the directory entry must not survive.
  await c.mkdir('/gone')
  await c.readdir('/gone')
  await c.rmdir('/gone')
  await c.create('/gone')
  t.equal(status(await c.readdir('/gone').catch(e => e)), E.ENOTDIR)
})

t.test('symlinks in the middle of a path are read each time, never cached', async t => {
  const c = await connect()
  await c.mkdir('/t1')
  await c.mkdir('/t1/x')
  await c.mkdir('/t2')
  await c.mkdir('/t2/x')
  await c.create('/t1/x/one')
  await c.create('/t2/x/two')
  await c.symlink('/t1', '/s')
  t.equal((await c.stat('/s/x/one')).type, 'file')
  const mds = mdsRequests(c)
  await c.stat('/s/x/one')
  t.same(mds.take(), ['GETATTR_NAME', 'GETATTR', 'GETATTR_NAME'], 'the symlink and its target read again, /t1 and /t1/x from the cache')
  const other = await connect()
  await other.unlink('/s')
  await other.symlink('t2', '/s')
  t.equal((await c.stat('/s/x/two')).type, 'file', 'the new target of a symlink another client changed is followed')
  t.equal(status(await c.stat('/s/x/one').catch(e => e)), E.ENOENT)
  await c.symlink('x', '/t1/y')
  t.equal((await c.stat('/t1/y/one')).type, 'file', 'a relative symlink')
  t.same(await c.readdir('/t1/y/..'), await c.readdir('/t1'), '.. after a symlink is the parent of its target')
  t.same(await c.readdir('/s/..'), await c.readdir('/'))
})
