// reference/mds/store.ts group commit: the updates of one event-loop turn share one
// transaction and one COMMIT, each in its own savepoint. What a reply may rely on:
// settled() resolves only once its update is on disk (another connection to the
// database sees it), a failed update undoes only itself, and transnos stay dense.
import t from 'tap'
import type { Test } from 'tap'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MdtStore } from '../../reference/mds/store.js'

function open(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'lc-mdt-'))
  const store = new MdtStore(dir)
  t.teardown(() => { try { store.close() } catch { /* closed by the test */ } rmSync(dir, { recursive: true, force: true }) })
  // A second connection sees only what is committed, as a restarted MDS would.
  const committed = (): bigint => {
    const db = new Database(join(dir, 'mdt0', 'mdt.db'), { readonly: true })
    db.defaultSafeIntegers(true)
    try {
      return (db.prepare("SELECT value FROM meta WHERE key = 'last_transno'").get() as { value: bigint }).value
    } finally {
      db.close()
    }
  }
  return { store, committed }
}

t.test('updates in one turn: one commit, none visible outside before settled(), all after', async t => {
  const { store, committed } = open(t)
  t.equal(store.settled(), undefined, 'nothing pending at start')
  const transnos = [1, 2, 3, 4, 5].map(() => store.update(() => store.allocFid()).transno)
  t.same(transnos, [1n, 2n, 3n, 4n, 5n])
  const done = store.settled()
  t.ok(done, 'a commit is pending')
  t.equal(committed(), 0n, 'not on disk yet: a reply must wait')
  await done
  t.equal(committed(), 5n, 'all five committed together')
  t.equal(store.settled(), undefined)
})

t.test('a failing update in a group undoes only itself and takes no transno', async t => {
  const { store, committed } = open(t)
  store.update(() => store.allocFid())
  t.throws(() => store.update(() => { store.allocFid(); throw new Error('refused') }), /refused/)
  const { transno } = store.update(() => store.allocFid())
  t.equal(transno, 2n, 'the failed one used none')
  await store.settled()
  t.equal(committed(), 2n)
  t.equal(store.lastTransno, 2n)
})

t.test('groups follow one another; close() commits what is pending', async t => {
  const { store, committed } = open(t)
  store.update(() => store.allocFid())
  await store.settled()
  store.update(() => store.allocFid())
  store.update(() => store.allocFid())
  t.equal(committed(), 1n)
  store.close()
  t.equal(committed(), 3n, 'a clean stop loses nothing')
})
