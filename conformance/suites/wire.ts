// Suite `wire`: connecting, pinging and addressing a target (WIRE-* requirements).
import { constantOf, loadSpec, makeStruct, structOf } from '../../src/wire/index.js'
import { TargetSession, errno, type Obj } from '../wire/session.js'
import { getRoot, mkdir } from '../wire/mdt.js'
import { MDS_FLAGS } from '../core/runner.js'
import { Failure, expectEqual, expectThat, type ConformanceTest, type TestContext } from '../core/test.js'
import { TransportError, type CallResult } from '../../src/transport/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

/** lustre_msg_v2: lm_buflens[i] sits at 32 + 4 * i (lustre_msg_v2's fixed header is 32 bytes). */
const BUFLENS = 32

const round8 = (n: number): number => (n + 7) & ~7

/** Where a member sits in ptlrpc_body_v3, from spec/wire. */
const bodyOffset = (name: string): number => structOf(spec, 'ptlrpc_body_v3').fields.find(f => f.name === name)!.offset
const PB_VERSION = bodyOffset('pb_version')
const PB_OPC = bodyOffset('pb_opc')

/** A request mutation: one u32 of the ptlrpc_body set to `value` (the body follows the header padded to 8). */
const withBodyU32 = (at: number, value: number) => (bytes: Uint8Array): Uint8Array => {
  const out = bytes.slice()
  const dv = new DataView(out.buffer)
  dv.setUint32(round8(BUFLENS + 4 * dv.getUint32(0, true)) + at, value, true)
  return out
}

/**
 * Replies to a few requests every target serves, successful ones with several buffers
 * among them: ping, the root, statfs and getattr on the MDT, statfs on OST 0 (when an OSS is given).
 */
async function sampleReplies(ctx: TestContext): Promise<Array<{ format: string; r: CallResult }>> {
  const mds = await ctx.mds()
  const out: Array<{ format: string; r: CallResult }> = []
  const call = async (s: TargetSession, format: string, fields: Obj = {}): Promise<CallResult> => {
    const r = await s.call(format, fields)
    out.push({ format, r })
    return r
  }
  await call(mds, 'RQF_OBD_PING')
  const root = await call(mds, 'RQF_MDS_GET_ROOT', { RMF_MDT_BODY: makeStruct('mdt_body', {}) })
  await call(mds, 'RQF_MDS_STATFS')
  const fid = (root.reply.fields.RMF_MDT_BODY as Obj | undefined)?.mbo_fid1
  if (fid) await call(mds, 'RQF_MDS_GETATTR', { RMF_MDT_BODY: makeStruct('mdt_body', { mbo_fid1: fid, mbo_valid: C('OBD_MD_FLGETATTR') }) })
  // A target given without an OSS is certified on its MDT alone.
  if (ctx.target.oss.length) await call(await ctx.ost(0), 'RQF_OST_STATFS')
  return out
}

export const wireTests: ConformanceTest[] = [
  {
    id: 'wire.msg.pad8', tags: ['wire', 'framing'], requirements: ['WIRE-MSG-PAD8'],
    title: 'replies pad the lustre_msg_v2 header and every buffer to 8 bytes, and are exactly that long',
    async run(ctx) {
      let sample: Awaited<ReturnType<typeof sampleReplies>>
      try {
        sample = await sampleReplies(ctx)
      } catch (e) {
        // Here a reply that does not decode is taken as badly framed: 8-byte padding is what framing rests on.
        if (!(e instanceof TransportError && e.code === 'LC_RPC_BAD_REPLY')) throw e
        throw new Failure('a reply does not decode with its header and buffers padded to 8', 'lustre_msg_v2 framing with 8-byte padding', e.message)
      }
      for (const { format, r } of sample) {
        const lens = r.reply.header.lm_buflens as number[]
        const size = round8(BUFLENS + 4 * lens.length) + lens.reduce((a, n) => a + round8(n), 0)
        expectEqual(`length of the ${format} reply (buffer lengths ${lens.join(', ')})`, r.replyLength, size)
      }
    },
  },
  {
    id: 'wire.reply.buffers', tags: ['wire', 'framing'], requirements: ['WIRE-REPLY-BUFFERS', 'WIRE-REPLY-DECODES'],
    title: 'replies decode as their formats say, and a successful one carries every buffer its format requires (ping, get-root, statfs, getattr, OST statfs)',
    async run(ctx) {
      // The session fails any successful reply short of its format's buffers (missingReplyBuffers);
      // here every sample must be successful, so that the check had something to look at.
      for (const { format, r } of await sampleReplies(ctx)) {
        expectEqual(`${format} status`, r.reply.body.pb_status, 0)
        ctx.note(`${format}: ${r.reply.buffers.length + 1} buffers`)
      }
    },
  },
  {
    id: 'wire.malformed.short-buffer', tags: ['wire', 'errors'], requirements: ['WIRE-MALFORMED'],
    title: 'a request whose mdt_body buffer is too short is refused (-EFAULT or -EPROTO, or its connection closed), and other clients go on',
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
      // Lustre's MDT answers -EFAULT (tgt_mdt_body_unpack finds no mdt_body of its size); -EPROTO and a closed connection also refuse it.
      const refused = [`status ${errno('EFAULT')}`, `status ${errno('EPROTO')}`, 'connection closed']
      expectThat('answer to a request with a short mdt_body', refused.includes(outcome), refused.join(', or '), outcome)
      expectEqual('another client\'s OBD_PING afterwards', await other.ping(), 0)
    },
  },
  {
    id: 'wire.request.unknown-opcode', tags: ['wire', 'errors'], requirements: ['WIRE-UNKNOWN-OPCODE'],
    title: 'a request with an opcode the target does not serve is answered -EOPNOTSUPP',
    async run(ctx) {
      const s = await ctx.mds()
      // An OBD_PING whose pb_opc says 9999.
      const r = await s.call('RQF_OBD_PING', {}, s.handle, withBodyU32(PB_OPC, 9999))
      expectEqual('status', r.reply.body.pb_status, errno('EOPNOTSUPP'))
    },
  },
  {
    id: 'wire.request.wrong-version', tags: ['wire', 'errors'], requirements: ['WIRE-VERSION'],
    title: 'an OBD_PING whose pb_version says LUSTRE_MDS_VERSION is refused -EINVAL',
    async run(ctx) {
      const s = await ctx.mds()
      // PTLRPC_MSG_VERSION | LUSTRE_MDS_VERSION, where OBD_PING wants LUSTRE_OBD_VERSION.
      const r = await s.call('RQF_OBD_PING', {}, s.handle, withBodyU32(PB_VERSION, Number(C('PTLRPC_MSG_VERSION') | C('LUSTRE_MDS_VERSION'))))
      expectEqual('reply kind and status', `${r.reply.kind}, status ${r.reply.body.pb_status as number}`, `error, status ${errno('EINVAL')}`)
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
        // Only a connect answered with a status says anything here; anything else is not the target's answer.
        const m = /status (-?\d+)/.exec((e as Error).message)
        if (!m) throw e
        status = Number(m[1])
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
  {
    id: 'wire.error.reply-kinds', tags: ['wire', 'errors'], requirements: ['WIRE-ERROR-REPLY'],
    title: 'a refusal before any handler is an error reply (PTL_RPC_MSG_ERR, the body alone); a handler\'s -EEXIST is a normal reply',
    async run(ctx) {
      const s = await ctx.mds()
      const shape = (r: CallResult): string => `${r.reply.kind}, status ${r.reply.body.pb_status as number}, ${r.reply.buffers.length + 1} buffer(s)`
      const noExport = await s.call('RQF_OBD_PING', {}, s.handle ^ 0x5a5a5a5a5a5a5a5an)
      expectEqual('OBD_PING with a made-up handle', shape(noExport), `error, status ${errno('ENOTCONN')}, 1 buffer(s)`)
      const root = await getRoot(s)
      const name = `lc-${Math.floor(ctx.random() * 2 ** 48).toString(36)}`
      expectEqual('first mkdir', (await mkdir(s, root, name)).status, 0)
      const again = await mkdir(s, root, name)
      expectEqual('second mkdir of the name: reply kind and status', `${again.kind}, status ${again.status}`, `reply, status ${errno('EEXIST')}`)
    },
  },
]
