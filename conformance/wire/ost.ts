// The object requests the harness sends to an OST, packed as osc packs them: OST_GETATTR,
// and OST_WRITE / OST_READ of one contiguous range of an object (one obd_ioobj, one
// niobuf_remote, the bytes by bulk).
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import type { Obj, TargetSession } from './session.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

export interface ObjectRef { id: bigint; seq: bigint }

const body = (o: ObjectRef): Obj => makeStruct('ost_body', { oa: { o_valid: C('OBD_MD_FLID') | C('OBD_MD_FLGROUP'), o_oi: { oi: { oi_id: o.id, oi_seq: o.seq } } } })
const io = (o: ObjectRef, offset: number, length: number): Obj => ({
  RMF_OST_BODY: body(o),
  RMF_OBD_IOOBJ: [makeStruct('obd_ioobj', { ioo_oid: { oi: { oi_id: o.id, oi_seq: o.seq } }, ioo_bufcnt: 1 })],
  RMF_NIOBUF_REMOTE: [makeStruct('niobuf_remote', { rnb_offset: BigInt(offset), rnb_len: length, rnb_flags: 0 })],
})

export async function getattr(s: TargetSession, o: ObjectRef): Promise<{ status: number; size?: bigint }> {
  const r = await s.call('RQF_OST_GETATTR', { RMF_OST_BODY: body(o) })
  const oa = (r.reply.fields.RMF_OST_BODY as Obj | undefined)?.oa as Obj | undefined
  return { status: r.reply.body.pb_status as number, size: oa?.o_size as bigint | undefined }
}

export async function write(s: TargetSession, o: ObjectRef, offset: number, data: Uint8Array): Promise<number> {
  const r = await s.callBulk('RQF_OST_BRW_WRITE', io(o, offset, data.length), { source: data })
  return r.reply.body.pb_status as number
}

export async function read(s: TargetSession, o: ObjectRef, offset: number, length: number): Promise<{ status: number; data: Uint8Array }> {
  const r = await s.callBulk('RQF_OST_BRW_READ', io(o, offset, length), { sinkLength: length })
  return { status: r.reply.body.pb_status as number, data: r.bulk ?? new Uint8Array(0) }
}
