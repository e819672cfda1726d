// reference/ldlm: the compatibility matrix of spec/ldlm/compat.json against Lustre's own
// table, and the engine's queues: grants, blocking ASTs owed, FIFO waiting, cancels,
// eviction, extent growth, inode bits, GROUP gids and FLOCK deadlocks.
import t from 'tap'
import { LockEngine, LdlmError, MODE, ALL_MODES, compatible, grownExtent, OBJECT_EOF, type EnqueueRequest, type Lock } from '../../reference/ldlm/index.js'

const { EX, PW, PR, CW, CR, NL, GROUP, COS, TXN } = MODE
void CW
const MiB = 1n << 20n
const RES = [0x200000401n, 7n, 0n, 0n]

t.test('the matrix is Lustre\'s table (lustre_dlm.h), symmetric, over every mode', async t => {
  // Rows as the table in Lustre's header prints them: NL CR CW PR PW EX GROUP COS TXN.
  const order = [NL, CR, CW, PR, PW, EX, GROUP, COS, TXN]
  const table = [
    '111111111',
    '111110001',
    '111000000',
    '110100001',
    '110000000',
    '100000000',
    '100000100',
    '100000010',
    '110100001',
  ]
  order.forEach((a, i) => order.forEach((b, j) => {
    t.equal(compatible(a, b), table[i][j] === '1', `${a} vs ${b}`)
  }))
  for (const a of ALL_MODES) for (const b of ALL_MODES) t.equal(compatible(a, b), compatible(b, a), `symmetric ${a} ${b}`)
})

const req = (owner: bigint, mode: number, extra: Partial<EnqueueRequest> = {}): EnqueueRequest =>
  ({ owner, type: 'plain', name: RES, mode, policy: {}, ...extra })
const handles = (ls: Lock[]): bigint[] => ls.map(l => l.handle)
/** The LdlmError errno fn throws, or what happened instead. */
function errnoOf(fn: () => unknown): string {
  try {
    fn()
    return 'no error'
  } catch (x) {
    return x instanceof LdlmError ? x.errno : `not an LdlmError: ${String(x)}`
  }
}

t.test('PLAIN: readers share; a writer waits, every reader gets one BL AST; the last cancel grants it', async t => {
  const e = new LockEngine()
  const a = e.enqueue(req(1n, PR))
  const b = e.enqueue(req(2n, PR))
  t.equal(a.lock.state, 'granted')
  t.equal(b.lock.state, 'granted')
  const w = e.enqueue(req(3n, PW))
  t.equal(w.lock.state, 'waiting')
  t.same(handles(w.blocking), [a.lock.handle, b.lock.handle], 'BL AST owed to both readers')
  const again = e.enqueue(req(4n, EX))
  t.same(again.blocking, [], 'a BL AST goes once per lock')
  t.same(e.cancel(a.lock.handle, 1n).granted, [], 'one reader left: still waiting')
  const done = e.cancel(b.lock.handle, 2n)
  t.same(handles(done.granted), [w.lock.handle], 'granted: a CP AST is owed')
  t.same(handles(done.blocking), [w.lock.handle], 'the EX behind it now waits on the new holder')
  t.equal(e.get(again.lock.handle)!.state, 'waiting')
})

t.test('waiting is FIFO: a compatible request does not pass a writer that waits', async t => {
  const e = new LockEngine()
  e.enqueue(req(1n, PR))
  const w = e.enqueue(req(2n, PW))
  const r = e.enqueue(req(3n, PR))
  t.equal(r.lock.state, 'waiting', 'PR behind the waiting PW')
  t.same(r.blocking, [], 'it conflicts with no granted lock')
  t.equal(w.lock.state, 'waiting')
})

t.test('IBITS: disjoint bits coexist in EX; shared bits conflict', async t => {
  const e = new LockEngine()
  const ib = (owner: bigint, bits: bigint): EnqueueRequest => req(owner, EX, { type: 'ibits', policy: { bits } })
  t.equal(e.enqueue(ib(1n, 0x1n)).lock.state, 'granted')
  t.equal(e.enqueue(ib(2n, 0x2n)).lock.state, 'granted')
  const c = e.enqueue(ib(3n, 0x3n))
  t.equal(c.lock.state, 'waiting')
  t.equal(c.blocking.length, 2)
})

t.test('EXTENT: an uncontended lock grows to the whole object; a conflicting one waits for it', async t => {
  const e = new LockEngine()
  const ext = (owner: bigint, mode: number, start: bigint, end: bigint): EnqueueRequest => req(owner, mode, { type: 'extent', policy: { range: { start, end }, gid: 0n } })
  const a = e.enqueue(ext(1n, PW, 0n, 4095n))
  t.same(a.lock.policy.range, { start: 0n, end: OBJECT_EOF }, 'grown')
  t.same(a.lock.requested.range, { start: 0n, end: 4095n }, 'what was asked is kept')
  const b = e.enqueue(ext(2n, PR, MiB, 2n * MiB - 1n))
  t.equal(b.lock.state, 'waiting', 'the grown lock covers it')
  t.same(handles(b.blocking), [a.lock.handle])
  t.same(handles(e.cancel(a.lock.handle, 1n).granted), [b.lock.handle])
  t.same(e.get(b.lock.handle)!.policy.range, { start: 0n, end: OBJECT_EOF })
  t.equal(e.enqueue(ext(3n, PR, 0n, 10n)).lock.state, 'granted', 'readers share')
})

t.test('EXTENT growth stops at conflicting granted locks, on the request\'s alignment', async t => {
  const g = (mode: number, start: bigint, end: bigint) => ({ owner: 9n, type: 'extent' as const, mode, policy: { range: { start, end } } })
  const asked = { owner: 1n, type: 'extent' as const, mode: PW, policy: { range: { start: 2n * MiB, end: 2n * MiB + 4095n } } }
  t.same(grownExtent(asked, [g(PW, 0n, MiB - 1n), g(PR, 4n * MiB, 5n * MiB)]), { start: MiB, end: 4n * MiB - 1n })
  t.same(grownExtent(asked, [g(CR, 0n, OBJECT_EOF)]), { start: 0n, end: OBJECT_EOF }, 'compatible locks do not limit')
  // A conflicting lock ending mid-page: the grant starts on the next boundary the request is aligned to.
  t.same(grownExtent(asked, [g(PW, 0n, MiB + 100n)]), { start: MiB + 4096n, end: OBJECT_EOF })
  const many = Array.from({ length: 5 }, (_, i) => g(PW, BigInt(i) * 4096n, BigInt(i) * 4096n + 10n))
  t.equal(grownExtent(asked, many).start, 2n * MiB, 'more than 4 conflicting: no growing downwards')
})

t.test('GROUP locks share one gid and conflict across gids', async t => {
  const e = new LockEngine()
  const grp = (owner: bigint, gid: bigint): EnqueueRequest => req(owner, GROUP, { type: 'extent', policy: { range: { start: 0n, end: OBJECT_EOF }, gid } })
  t.equal(e.enqueue(grp(1n, 5n)).lock.state, 'granted')
  t.equal(e.enqueue(grp(2n, 5n)).lock.state, 'granted', 'same gid')
  t.equal(e.enqueue(grp(3n, 6n)).lock.state, 'waiting', 'another gid')
})

t.test('bad requests are refused with Lustre\'s errno and change nothing', async t => {
  const e = new LockEngine()
  const bad: Array<[EnqueueRequest, string]> = [
    [req(1n, 0), 'EFAULT'],
    [req(1n, 3), 'EFAULT'],
    [req(1n, 512), 'EFAULT'],
    [req(1n, PW, { type: 'extent', policy: { range: { start: 10n, end: 9n } } }), 'EPROTO'],
    [req(1n, PW, { type: 'extent', policy: {} }), 'EPROTO'],
    [req(1n, PW, { name: [1n] }), 'EPROTO'],
    [req(1n, EX, { type: 'flock', policy: { range: { start: 0n, end: 1n }, flockOwner: 1n } }), 'EINVAL'],
  ]
  for (const [r, errno] of bad) t.equal(errnoOf(() => e.enqueue(r)), errno, `${errno}`)
  const held = e.enqueue(req(1n, PR))
  t.equal(errnoOf(() => e.cancel(held.lock.handle, 2n)), 'ENOENT', 'another client\'s lock')
  t.equal(errnoOf(() => e.cancel(0xdeadn, 1n)), 'ENOENT', 'unknown handle')
  t.equal(e.size, 1)
  t.equal(e.get(held.lock.handle)!.state, 'granted')
})

t.test('eviction drops every lock of a client and grants what waited for them', async t => {
  const e = new LockEngine()
  const a = e.enqueue(req(1n, EX))
  const w1 = e.enqueue(req(1n, PR))
  const w2 = e.enqueue(req(2n, PR))
  const out = e.evict(1n)
  t.same(handles(out.dropped).sort(), [a.lock.handle, w1.lock.handle].sort())
  t.same(handles(out.granted), [w2.lock.handle])
  t.equal(e.size, 1)
})

t.test('FLOCK: one owner never blocks itself; a cycle of waits is -EDEADLK; NOWAIT is EAGAIN', async t => {
  const e = new LockEngine()
  const fl = (owner: bigint, pid: number, mode: number, start: bigint, end: bigint, noWait = false): EnqueueRequest =>
    req(owner, mode, { type: 'flock', policy: { range: { start, end }, flockOwner: BigInt(pid), pid }, noWait })
  t.equal(e.enqueue(fl(1n, 10, PW, 0n, 9n)).lock.state, 'granted')
  t.equal(e.enqueue(fl(1n, 10, PW, 5n, 15n)).lock.state, 'granted', 'same owner')
  t.equal(e.enqueue(fl(2n, 20, PW, 20n, 29n)).lock.state, 'granted')
  t.equal(e.enqueue(fl(1n, 10, PW, 25n, 26n)).lock.state, 'waiting', 'owner 1 waits for owner 2')
  t.equal(errnoOf(() => e.enqueue(fl(2n, 20, PW, 0n, 0n))), 'EDEADLK')
  t.equal(errnoOf(() => e.enqueue(fl(3n, 30, PR, 0n, 0n, true))), 'EAGAIN')
  t.equal(e.enqueue(fl(3n, 30, PR, 40n, 50n)).lock.state, 'granted', 'no overlap')
  t.equal(e.size, 4, 'refused requests left nothing behind (the owner\'s two overlapping write locks merged into one)')
})

t.test('spec/ldlm/compat.json validates against its schema', async t => {
  const { readFileSync } = await import('node:fs')
  const { Ajv2020 } = await import('ajv/dist/2020.js')
  const schema = JSON.parse(readFileSync('spec/ldlm/compat.schema.json', 'utf8'))
  const data = JSON.parse(readFileSync('spec/ldlm/compat.json', 'utf8'))
  const ajv = new Ajv2020({ strict: true })
  const ok = ajv.validate(schema, data)
  t.ok(ok, JSON.stringify(ajv.errors))
  t.same(Object.keys(data.compatible).sort(), [...data.modes].sort(), 'a row for every mode')
})

t.test('FLOCK is POSIX: one owner\'s locks merge, split and unlock; an unlock lets a waiter in', async t => {
  const e = new LockEngine()
  const name = [9n, 0n, 0n, 0n]
  const fl = (owner: bigint, lo: bigint, mode: number, start: bigint, end: bigint): EnqueueRequest =>
    ({ owner, type: 'flock', name, mode, policy: { range: { start, end }, flockOwner: lo } })
  const ranges = (): string[] => e.locksOn('flock', name).granted.map(l => `${l.owner}/${l.policy.flockOwner}:${l.mode === PW ? 'W' : 'R'}[${l.policy.range!.start},${l.policy.range!.end}]`).sort()
  e.enqueue(fl(1n, 7n, PW, 0n, 9n))
  e.enqueue(fl(1n, 7n, PW, 10n, 19n))
  t.same(ranges(), ['1/7:W[0,19]'], 'same mode, adjoining: one lock')
  e.enqueue(fl(1n, 7n, PR, 5n, 9n))
  t.same(ranges(), ['1/7:R[5,9]', '1/7:W[0,4]', '1/7:W[10,19]'], 'another mode in the middle: the write lock is split around it')
  const w = e.enqueue(fl(2n, 8n, PW, 12n, 14n))
  t.equal(w.lock.state, 'waiting', 'another owner waits for [10,19]')
  t.same(w.blocking, [], 'a flock holder gets no BL AST: only its owner releases it')
  const un = e.enqueue(fl(1n, 7n, NL, 11n, 15n))
  t.same(ranges(), ['1/7:R[5,9]', '1/7:W[0,4]', '1/7:W[10,10]', '1/7:W[16,19]', '2/8:W[12,14]'], 'the unlock cut [11,15] out; the waiter got it')
  t.same(un.granted.map(l => l.handle), [w.lock.handle], 'a CP AST is owed to the waiter')
  t.equal(e.get(un.lock.handle), undefined, 'an unlock leaves no lock of its own')
  t.ok(un.removed && un.removed.length >= 1, 'the trimmed lock is reported gone')
  t.same(ranges().filter(r => r.startsWith('1/')).length, 4)
  const other = e.enqueue(fl(1n, 99n, PW, 0n, 0n))
  t.equal(other.lock.state, 'waiting', 'another owner on the same export is another owner')
})
