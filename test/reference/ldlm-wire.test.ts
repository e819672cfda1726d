// reference/ldlm on the wire, against a real OssServer: LDLM_ENQUEUE granted or blocked,
// the BL AST to the holder, LDLM_CANCEL and the CP AST to the waiter, early lock cancel,
// eviction of a holder that ignores its BL AST, and bad requests answered with Lustre's
// errno without changing any lock. Clients are raw: TargetImport plus a callback portal.
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LnetEndpoint, PtlrpcEndpoint } from '../../src/transport/index.js'
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { E, TargetImport } from '../../reference/common/index.js'
import { OssServer } from '../../reference/oss/index.js'
import { ClientLocks } from '../../reference/client/locks.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
/** ldlm_handle_cancel() answers a cancel of no lock with LUSTRE_ESTALE itself: positive. */
const LUSTRE_ESTALE = Number(C('LUSTRE_ESTALE'))
const FLAGS = ['VERSION', 'INDEX', 'BRW_SIZE', 'GRANT', 'FID', 'FULL20', 'BULK_MBITS'].reduce((f, n) => f | C(`OBD_CONNECT_${n}`), 0n)
const EOF = 0xffffffffffffffffn
const PW = Number(C('LCK_PW'))
const PR = Number(C('LCK_PR'))
type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

let pid = 7000
interface Ast { opcode: string; dlm: Obj; lvb: unknown }

async function setup(t: Test, lockTimeoutMs = 30_000) {
  const dir = mkdtempSync(join(tmpdir(), 'lc-ldlm-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const oss = new OssServer({ dir, osts: 1, port: 0, lockTimeoutMs })
  await oss.start()
  t.teardown(() => oss.close())
  /** A client: its import of OST0000 and the ASTs it received; `onBl` decides what it does with a BL AST. */
  const client = async (name: string) => {
    const lnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid: pid++ })
    const peer = await lnet.connect('127.0.0.1', oss.port)
    const rpc = new PtlrpcEndpoint(lnet)
    t.teardown(() => lnet.close())
    const imp = new TargetImport(rpc, peer, { service: 'ost', targetUuid: 'lustre-OST0000_UUID', clientUuid: `${name}_UUID`, flags: FLAGS, ocd: { ocd_brw_size: 1 << 20 }, timeoutMs: 10_000 })
    await imp.connect()
    const asts: Ast[] = []
    const waiters: Array<() => void> = []
    const c = {
      imp, asts, onBl: undefined as undefined | ((remote: bigint) => void),
      /** Resolves once `n` ASTs have come in. */
      async astCount(n: number): Promise<void> {
        while (asts.length < n) await new Promise<void>(r => waiters.push(r))
      },
    }
    rpc.serve(Number(C('LDLM_CB_REQUEST_PORTAL')), Number(C('LDLM_CB_REPLY_PORTAL')), req => {
      const dlm = req.msg.fields.RMF_DLM_REQ as Obj
      asts.push({ opcode: req.msg.opcode!, dlm, lvb: req.msg.fields.RMF_DLM_LVB })
      for (const w of waiters.splice(0)) w()
      if (req.msg.opcode === 'LDLM_BL_CALLBACK') c.onBl?.(dlm.lock_handle[0].cookie)
      return { status: 0 }
    })
    return c
  }
  const a = await client('a')
  // An object to lock: its ost_lvb is read at enqueue.
  const made = await a.imp.call({ format: 'RQF_OST_CREATE', fields: { RMF_OST_BODY: makeStruct('ost_body', { oa: { o_valid: C('OBD_MD_FLID') | C('OBD_MD_FLGROUP'), o_oi: { oi: { oi_id: 1n, oi_seq: 0n } } } }) } })
  const id = (made.reply.fields.RMF_OST_BODY as Obj).oa.o_oi.oi.oi_id as bigint
  return { oss, client, a, id }
}

const desc = (id: bigint, mode: number, start: bigint, end: bigint, type = 'LDLM_EXTENT'): Obj => ({
  l_resource: { lr_type: Number(C(type)), lr_pad: 0, lr_name: { name: [id, 0n, 0n, 0n] } },
  l_req_mode: mode, l_granted_mode: 0, l_policy_data: type === 'LDLM_EXTENT' ? { l_extent: { start, end, gid: 0n } } : {},
})
let remote = 0x5000n
async function enqueue(imp: TargetImport, d: Obj, extra: { flags?: number; cancel?: bigint[]; count?: number } = {}) {
  const handles = [{ cookie: remote++ }, ...(extra.cancel ?? []).map(cookie => ({ cookie }))]
  const r = await imp.call({
    format: 'RQF_LDLM_ENQUEUE', allowError: true,
    fields: { RMF_DLM_REQ: makeStruct('ldlm_request', { lock_flags: extra.flags ?? 0, lock_count: extra.count ?? handles.length, lock_desc: d, lock_handle: handles }) },
  })
  return { status: r.reply.body.pb_status as number, rep: r.reply.fields.RMF_DLM_REP as Obj, lvb: r.reply.fields.RMF_DLM_LVB as Obj | null, remote: handles[0].cookie }
}
async function cancel(imp: TargetImport, handles: bigint[], count = handles.length): Promise<number> {
  const r = await imp.call({ format: 'RQF_LDLM_CANCEL', allowError: true, fields: { RMF_DLM_REQ: makeStruct('ldlm_request', { lock_count: count, lock_desc: makeStruct('ldlm_lock_desc'), lock_handle: handles.map(cookie => ({ cookie })) }) } })
  return r.reply.body.pb_status as number
}

t.test('PW granted and grown; a PR waits; the holder gets a BL AST, cancels, and the waiter a CP AST', async t => {
  const { client, a, id } = await setup(t)
  const b = await client('b')
  const la = await enqueue(a.imp, desc(id, PW, 0n, 4095n))
  t.equal(la.status, 0)
  t.equal(la.rep.lock_desc.l_granted_mode, PW)
  t.same(la.rep.lock_desc.l_policy_data.l_extent, { start: 0n, end: EOF, gid: 0n }, 'grown to the whole object')
  t.equal(BigInt(la.rep.lock_flags) & C('LDLM_FL_LOCK_CHANGED'), C('LDLM_FL_LOCK_CHANGED'))
  t.equal(la.lvb?.lvb_size, 0n, 'ost_lvb in the reply (the new object is empty)')
  t.equal(typeof la.lvb?.lvb_mtime, 'bigint')
  const lb = await enqueue(b.imp, desc(id, PR, 0n, 4095n))
  t.equal(lb.status, 0)
  t.equal(lb.rep.lock_desc.l_granted_mode, 0, 'not granted')
  t.equal(BigInt(lb.rep.lock_flags) & C('LDLM_FL_BLOCK_GRANTED'), C('LDLM_FL_BLOCK_GRANTED'))
  await a.astCount(1)
  t.equal(a.asts[0].opcode, 'LDLM_BL_CALLBACK')
  t.equal(a.asts[0].dlm.lock_handle[0].cookie, la.remote, 'names the holder\'s own handle')
  t.equal(a.asts[0].dlm.lock_desc.l_req_mode, PR, 'describes the blocked request')
  t.equal(b.asts.length, 0)
  t.equal(await cancel(a.imp, [la.rep.lock_handle.cookie]), 0)
  await b.astCount(1)
  t.equal(b.asts[0].opcode, 'LDLM_CP_CALLBACK')
  t.equal(b.asts[0].dlm.lock_handle[0].cookie, lb.remote)
  t.equal(b.asts[0].dlm.lock_desc.l_granted_mode, PR)
  t.equal((b.asts[0].lvb as Obj).lvb_size, 0n, 'the object\'s size in the CP AST\'s LVB')
})

t.test('early lock cancel: handles after the first are the sender\'s locks, dropped before the enqueue', async t => {
  const { client, a, id } = await setup(t)
  const b = await client('b')
  const held = await enqueue(a.imp, desc(id, PR, 0n, 10n))
  const up = await enqueue(a.imp, desc(id, PW, 0n, 10n), { cancel: [held.rep.lock_handle.cookie] })
  t.equal(up.rep.lock_desc.l_granted_mode, PW, 'granted at once: the PR went first')
  t.equal(a.asts.length, 0, 'no BL AST to itself')
  // The cancelled PR is gone: cancelling it again finds nothing.
  t.equal(await cancel(a.imp, [held.rep.lock_handle.cookie]), LUSTRE_ESTALE)
  void b
})

t.test('a holder that ignores its BL AST is evicted; the waiter is granted; the evicted client must reconnect', async t => {
  const { client, a, id } = await setup(t, 300)
  const b = await client('b')
  const la = await enqueue(a.imp, desc(id, PW, 0n, 4095n))
  const lb = await enqueue(b.imp, desc(id, PW, 0n, 4095n))
  t.equal(lb.rep.lock_desc.l_granted_mode, 0)
  await a.astCount(1)
  await b.astCount(1)
  t.equal(b.asts[0].opcode, 'LDLM_CP_CALLBACK', 'granted once the holder was evicted')
  const after = await a.imp.call({ format: 'RQF_OBD_PING', allowError: true })
  t.equal(after.reply.body.pb_status, E.ENOTCONN, 'the evicted export is gone')
  t.equal(await cancel(b.imp, [la.rep.lock_handle.cookie]), LUSTRE_ESTALE, 'its lock went with it')
  await a.imp.connect()
  t.equal((await a.imp.call({ format: 'RQF_OBD_PING', allowError: true })).reply.body.pb_status, 0, 'a reconnect is a new export')
})

t.test('bad requests: Lustre\'s errno, and no lock changes', async t => {
  const { client, a, id } = await setup(t)
  const b = await client('b')
  t.equal((await enqueue(a.imp, desc(id, 3, 0n, 1n))).status, E.EFAULT, 'mode of two bits')
  t.equal((await enqueue(a.imp, desc(id, 512, 0n, 1n))).status, E.EFAULT, 'mode out of range')
  const badType = desc(id, PW, 0n, 1n)
  badType.l_resource.lr_type = 9
  badType.l_policy_data = {}
  t.equal((await enqueue(a.imp, badType)).status, E.EFAULT, 'unknown lock type')
  t.equal((await enqueue(a.imp, desc(id, PW, 10n, 9n))).status, E.EPROTO, 'extent start past its end')
  t.equal((await enqueue(a.imp, desc(id, PW, 0n, 1n), { flags: Number(C('LDLM_FL_CANCEL_ON_BLOCK')) << 1 })).status, E.EPROTO, 'a flag clients may not send')
  t.equal((await enqueue(a.imp, desc(999n, PW, 0n, 1n))).status, E.ENOENT, 'no such object')
  const held = await enqueue(a.imp, desc(id, PR, 0n, 1n))
  t.equal(await cancel(b.imp, [held.rep.lock_handle.cookie]), LUSTRE_ESTALE, 'another client\'s lock')
  t.equal(await cancel(a.imp, [0xdeadbeefn]), LUSTRE_ESTALE, 'unknown handle')
  t.equal(await cancel(a.imp, [held.rep.lock_handle.cookie], 5), LUSTRE_ESTALE, 'lock_count past the buffer')
  // Still held: a conflicting request from b waits for it.
  const w = await enqueue(b.imp, desc(id, PW, 0n, 1n))
  t.equal(w.rep.lock_desc.l_granted_mode, 0, 'a\'s lock survived every bad request')
})

t.test('glimpse: granted at once without conflict; else no lock, GL AST to the writer, its size in the LVB', async t => {
  const { oss, id } = await setup(t)
  const side = async (name: string) => {
    const lnet = new LnetEndpoint({ nid: '127.0.0.1@tcp', pid: pid++ })
    const peer = await lnet.connect('127.0.0.1', oss.port)
    const rpc = new PtlrpcEndpoint(lnet)
    t.teardown(() => lnet.close())
    const imp = new TargetImport(rpc, peer, { service: 'ost', targetUuid: 'lustre-OST0000_UUID', clientUuid: `${name}_UUID`, flags: FLAGS, ocd: { ocd_brw_size: 1 << 20 } })
    await imp.connect()
    return { imp, locks: new ClientLocks(rpc) }
  }
  const w = await side('writer')
  const r = await side('reader')
  const name = [id, 0n, 0n, 0n]
  const free = await r.locks.glimpse(r.imp, name)
  t.ok(free.lock, 'nobody holds a lock: the glimpse is granted a PR lock')
  t.equal(free.lock?.mode, PR)
  t.equal(free.lvb.lvb_size, 0n)
  await r.locks.cancel(free.lock!)
  const held = await w.locks.enqueue(w.imp, { kind: 'extent', name, mode: PW, start: 0n, end: 4095n })
  // The writer knows of bytes the OST has not seen yet (cached writes, in Lustre): it answers with them.
  held.onGlimpse = () => makeStruct('ost_lvb', { lvb_size: 12345n, lvb_mtime: 1_900_000_000n })
  const g = await r.locks.glimpse(r.imp, name)
  t.notOk(g.lock, 'no lock granted against a writer (ELDLM_LOCK_ABORTED)')
  t.equal(g.lvb.lvb_size, 12345n, 'the size is the writer\'s')
  t.equal(g.lvb.lvb_mtime, 1_900_000_000n, 'so is the later mtime')
  t.same(w.locks.received.map(x => x.ast), ['GL'], 'the writer got a GL AST, not a BL AST')
  t.equal(held.state, 'granted', 'and keeps its lock')
})
