// reference/oss/open-objects.ts: descriptors kept open between requests. What must hold:
// a destroyed object is never reached again through the cache, busy descriptors are
// never closed under their users, and idle ones are closed beyond the limit.
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync, unlinkSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OpenObjects } from '../../reference/oss/open-objects.js'

function setup(t: Test, max = 4) {
  const dir = mkdtempSync(join(tmpdir(), 'lc-open-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pathOf = (id: bigint): string => join(dir, id.toString())
  const objects = new OpenObjects(pathOf, max)
  t.teardown(() => objects.closeAll())
  return { dir, pathOf, objects }
}

t.test('a descriptor is reused between uses, and writes land in the file', async t => {
  const { pathOf, objects } = setup(t)
  writeFileSync(pathOf(1n), '')
  let first: unknown
  await objects.use(1n, async fh => { first = fh; await fh.write(Buffer.from('abc'), 0, 3, 0) })
  await objects.use(1n, async fh => { t.equal(fh, first, 'same descriptor'); await fh.write(Buffer.from('d'), 0, 1, 3) })
  t.equal(readFileSync(pathOf(1n), 'utf8'), 'abcd')
  t.equal(objects.size, 1)
})

t.test('a missing object fails with ENOENT and is not cached; created later, it opens', async t => {
  const { pathOf, objects } = setup(t)
  await t.rejects(objects.use(7n, async () => 0), { code: 'ENOENT' })
  t.equal(objects.size, 0)
  writeFileSync(pathOf(7n), 'x')
  t.equal(await objects.use(7n, async fh => (await fh.stat()).size), 1)
})

t.test('after forget (a destroy), the next use reopens by path: ENOENT once the file is gone', async t => {
  const { pathOf, objects } = setup(t)
  writeFileSync(pathOf(2n), 'old')
  await objects.use(2n, async () => {})
  unlinkSync(pathOf(2n))
  await objects.forget(2n)
  await t.rejects(objects.use(2n, async () => 0), { code: 'ENOENT' }, 'no stale descriptor reaches the destroyed object')
})

t.test('forget while in use: the running user keeps its descriptor, it closes when the user is done', async t => {
  const { pathOf, objects } = setup(t)
  writeFileSync(pathOf(3n), '')
  let release!: () => void
  const gate = new Promise<void>(r => { release = r })
  let closedEarly = false
  const user = objects.use(3n, async fh => {
    await gate
    try { await fh.stat() } catch { closedEarly = true }
    return fh
  })
  await new Promise(r => setImmediate(r))
  await objects.forget(3n)
  release()
  const fh = await user
  t.notOk(closedEarly, 'not closed under its user')
  await t.rejects(fh.stat(), { code: 'EBADF' }, 'closed once the user finished')
})

t.test('idle descriptors beyond the limit are closed, least recently used first; busy ones stay', async t => {
  const { pathOf, objects } = setup(t, 2)
  for (const id of [1n, 2n, 3n, 4n]) writeFileSync(pathOf(id), '')
  const handles = new Map<bigint, import('node:fs/promises').FileHandle>()
  for (const id of [1n, 2n, 3n]) await objects.use(id, async fh => { handles.set(id, fh) })
  t.equal(objects.size, 2)
  await t.rejects(handles.get(1n)!.stat(), { code: 'EBADF' }, 'the oldest was closed')
  t.ok(await handles.get(3n)!.stat(), 'the newest is open')
  // Four busy at once: none may be closed while in use, whatever the limit.
  let release!: () => void
  const gate = new Promise<void>(r => { release = r })
  const users = [1n, 2n, 3n, 4n].map(id => objects.use(id, async fh => { await gate; return (await fh.stat()).size }))
  await new Promise(r => setImmediate(r))
  release()
  t.same(await Promise.all(users), [0, 0, 0, 0])
  t.equal(objects.size, 2, 'trimmed back to the limit when idle')
})
