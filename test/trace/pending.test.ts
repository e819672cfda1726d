// PendingRequests: replies find their request's format by requester and xid.
import t from 'tap'
import { PendingRequests } from '../../src/trace/pending.js'

const A = 0x20000c0a80001n
const B = 0x20000c0a80002n

t.test('a reply finds its request by NID, pid and xid', async t => {
  const p = new PendingRequests()
  p.set(A, 12345, 100n, 'RQF_LDLM_INTENT_OPEN')
  t.equal(p.get(A, 12345, 100n), 'RQF_LDLM_INTENT_OPEN')
  t.equal(p.get(A, 12346, 100n), undefined, 'another pid')
  t.equal(p.get(B, 12345, 100n), undefined, 'another NID')
  t.equal(p.get(A, 12345, 101n), undefined, 'another xid')
  p.delete(A, 12345, 100n)
  t.equal(p.get(A, 12345, 100n), undefined, 'gone once answered')
  t.equal(p.size, 0)
})

t.test('two clients may use the same xid at once', async t => {
  const p = new PendingRequests()
  p.set(A, 1, 7n, 'RQF_LDLM_ENQUEUE')
  p.set(B, 1, 7n, 'RQF_LDLM_INTENT_GETATTR')
  p.set(A, 2, 7n, 'RQF_MDS_REINT_OPEN')
  t.equal(p.get(A, 1, 7n), 'RQF_LDLM_ENQUEUE')
  t.equal(p.get(B, 1, 7n), 'RQF_LDLM_INTENT_GETATTR')
  t.equal(p.get(A, 2, 7n), 'RQF_MDS_REINT_OPEN')
  p.delete(B, 1, 7n)
  t.equal(p.get(B, 1, 7n), undefined)
  t.equal(p.get(A, 1, 7n), 'RQF_LDLM_ENQUEUE', 'the others stay')
  t.equal(p.get(A, 2, 7n), 'RQF_MDS_REINT_OPEN')
  p.delete(A, 2, 7n)
  p.delete(A, 1, 7n)
  t.equal(p.size, 0)
  p.delete(A, 1, 7n)
  t.equal(p.size, 0, 'deleting what is not there changes nothing')
})

t.test('a resent request keeps one entry with the latest format', async t => {
  const p = new PendingRequests()
  p.set(A, 1, 9n, 'RQF_MDS_REINT')
  p.set(A, 1, 9n, 'RQF_MDS_REINT_CREATE')
  t.equal(p.size, 1)
  t.equal(p.get(A, 1, 9n), 'RQF_MDS_REINT_CREATE')
})

t.test('past the limit the oldest requests are forgotten', async t => {
  const p = new PendingRequests(3)
  p.set(A, 1, 1n, 'one')
  p.set(A, 1, 2n, 'two')
  p.set(B, 1, 2n, 'two-b')
  p.set(A, 1, 3n, 'three')
  t.equal(p.size, 3)
  t.equal(p.get(A, 1, 1n), undefined, 'xid 1 was first in')
  p.set(A, 1, 4n, 'four')
  t.equal(p.size, 3)
  t.equal(p.get(A, 1, 2n), undefined, 'the older of the two requests with xid 2 goes next')
  t.equal(p.get(B, 1, 2n), 'two-b')
  t.equal(p.get(A, 1, 4n), 'four')
})
