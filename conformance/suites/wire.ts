// Suite `wire`: connecting, pinging and addressing a target (WIRE-* requirements).
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { TargetSession } from '../wire/session.js'
import { MDS_FLAGS } from '../core/runner.js'
import { expectEqual, expectThat, type ConformanceTest } from '../core/test.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)
const errno = (n: string): number => -Number(C(`LUSTRE_${n}`))

/** lustre_msg_v2: lm_buflens[i] sits at 32 + 4 * i (lustre_msg_v2's fixed header is 32 bytes). */
const BUFLENS = 32

export const wireTests: ConformanceTest[] = [
  {
    id: 'wire.malformed.short-buffer', tags: ['wire', 'errors'], requirements: ['WIRE-MALFORMED'],
    title: 'a request whose mdt_body buffer is too short is answered -EPROTO (or its connection closed), and other clients go on',
    async run(ctx) {
      const bad = await ctx.mds()
      const other = await ctx.mds()
      let outcome: string
      try {
        const r = await bad.call('RQF_MDS_GETATTR', { RMF_MDT_BODY: makeStruct('mdt_body', {}) }, bad.handle, bytes => {
          // Buffer 1 declared 8 bytes long: an mdt_body needs 216; the rest of the message stays as it was.
          const out = bytes.slice()
          new DataView(out.buffer).setUint32(BUFLENS + 4, 8, true)
          return out
        })
        outcome = `status ${r.reply.body.pb_status as number}`
      } catch (e) {
        outcome = /closed|CLOSED/.test((e as Error).message) ? 'connection closed' : `no reply (${(e as Error).message})`
      }
      expectThat('answer to a request with a short mdt_body', outcome === `status ${errno('EPROTO')}` || outcome === 'connection closed', `status ${errno('EPROTO')}, or the connection closed`, outcome)
      expectEqual('another client\'s OBD_PING afterwards', await other.ping(), 0)
    },
  },
  {
    id: 'wire.request.unknown-opcode', tags: ['wire', 'errors'], requirements: ['WIRE-UNKNOWN-OPCODE'],
    title: 'a request with an opcode the target does not serve is answered -EOPNOTSUPP',
    async run(ctx) {
      const s = await ctx.mds()
      // An OBD_PING whose pb_opc says 9999: ptlrpc_body sits right after the padded header, pb_opc at 16 in it.
      const r = await s.call('RQF_OBD_PING', {}, s.handle, bytes => {
        const out = bytes.slice()
        const dv = new DataView(out.buffer)
        const header = (32 + 4 * dv.getUint32(0, true) + 7) & ~7
        dv.setUint32(header + 16, 9999, true)
        return out
      })
      expectEqual('status', r.reply.body.pb_status, errno('EOPNOTSUPP'))
    },
  },
  {
    id: 'wire.connect.flags-granted-subset', tags: ['wire', 'connect'], requirements: ['WIRE-CONNECT-FLAGS'],
    title: 'the MDT grants no connect flag the client did not ask for',
    async run(ctx) {
      const s = await ctx.mds({ flags: MDS_FLAGS })
      const extra = s.flags & ~MDS_FLAGS
      expectThat('granted OBD_CONNECT_* flags', extra === 0n, `a subset of 0x${MDS_FLAGS.toString(16)}`, `0x${s.flags.toString(16)} (extra 0x${extra.toString(16)})`)
    },
  },
  {
    id: 'wire.connect.unknown-target', tags: ['wire', 'connect'], requirements: ['WIRE-CONNECT-NODEV'],
    title: 'a connect to a target the server does not serve is answered -ENODEV',
    async run(ctx) {
      let status = 0
      try {
        await TargetSession.open({ service: 'mds', address: ctx.target.mds, targetUuid: `${ctx.target.fsname}-MDT7fff_UUID`, flags: MDS_FLAGS, pid: 0x4e4f4400 | Math.floor(ctx.random() * 255), recorder: ctx.recorder })
      } catch (e) {
        status = Number(/status (-?\d+)/.exec((e as Error).message)?.[1] ?? NaN)
      }
      expectEqual('connect status', status, errno('ENODEV'))
    },
  },
  {
    id: 'wire.ping.live-export', tags: ['wire', 'ping'], requirements: ['WIRE-PING'],
    title: 'OBD_PING on a live export is answered 0',
    async run(ctx) {
      const s = await ctx.mds()
      expectEqual('OBD_PING status', await s.ping(), 0)
    },
  },
  {
    id: 'wire.request.unknown-export', tags: ['wire'], requirements: ['WIRE-NO-EXPORT'],
    title: 'a request with an export handle the target does not know is answered -ENOTCONN',
    async run(ctx) {
      const s = await ctx.mds()
      const r = await s.call('RQF_OBD_PING', {}, s.handle ^ 0x5a5a5a5a5a5a5a5an)
      expectEqual('OBD_PING status with a made-up handle', r.reply.body.pb_status, errno('ENOTCONN'))
    },
  },
]
