// The client's connections to OSTs and the per-object requests it sends them, packed
// as Lustre's osc packs them (osc_request.c: osc_getattr, osc_punch, osc_statfs,
// osc_brw_prep_request). Which OSS serves which OST index is learnt by connecting:
// for index 0, 1, ... every OSS is asked for <fs>-OST<index as 4 hex digits>_UUID, and
// the first index no OSS knows (-ENODEV everywhere) ends the list.
import { constantOf, loadSpec, makeStruct } from '../../src/wire/index.js'
import { BULK_MD_SIZE, type Peer, type PtlrpcEndpoint } from '../../src/transport/index.js'
import { E, LustreRpcError, TargetImport } from '../common/index.js'

const spec = loadSpec()
const C = (n: string): bigint => constantOf(spec, n)

export const OBD_OBJECT_EOF = C('OBD_OBJECT_EOF')
const IOOBJ_MAX_BRW_BITS = Number(C('IOOBJ_MAX_BRW_BITS'))
const ID_VALID = C('OBD_MD_FLID') | C('OBD_MD_FLGROUP')

/** OBD_CONNECT_* an osc asks for: no grant (every write is then a sync write), no checksums. */
export const OST_CONNECT_FLAGS = C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_INDEX') | C('OBD_CONNECT_BRW_SIZE') |
  C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20') | C('OBD_CONNECT_BULK_MBITS')

export const ostUuid = (fsname: string, index: number): string => `${fsname}-OST${index.toString(16).padStart(4, '0')}_UUID`

export interface ObjectId { objectId: bigint; seq: bigint }

/** The obdo members this client reads from OST replies. */
export interface Obdo {
  o_valid: bigint
  o_size: bigint
  o_mtime: bigint
  o_atime: bigint
  o_ctime: bigint
  o_blocks: bigint
}

/** One niobuf_remote: a byte range of the object, in bulk order. */
export interface Niobuf { offset: number; length: number }

function oa(o: ObjectId, members: Record<string, unknown> = {}): Record<string, unknown> {
  return makeStruct('ost_body', { oa: { o_valid: ID_VALID, o_oi: { oi: { oi_id: o.objectId, oi_seq: o.seq } }, ...members } })
}

export class Ost {
  constructor(readonly index: number, readonly imp: TargetImport) {}

  /** Largest bulk the OST accepts per RPC (ocd_brw_size when OBD_CONNECT_BRW_SIZE was granted). */
  get brwSize(): number | undefined {
    const granted = (this.imp.flags & C('OBD_CONNECT_BRW_SIZE')) !== 0n
    const n = Number(this.imp.ocd.ocd_brw_size ?? 0)
    return granted && n > 0 ? n : undefined
  }

  /** OST_GETATTR of one object (osc_getattr): its size and times. */
  async getattr(o: ObjectId): Promise<Obdo> {
    const r = await this.imp.call({ format: 'RQF_OST_GETATTR', fields: { RMF_OST_BODY: oa(o) } })
    return (r.reply.fields.RMF_OST_BODY as { oa: Obdo }).oa
  }

  /** OST_PUNCH (osc_punch): o_size = start, o_blocks = end; to OBD_OBJECT_EOF it sets the size. */
  async punch(o: ObjectId, start: bigint, end = OBD_OBJECT_EOF): Promise<void> {
    await this.imp.call({
      format: 'RQF_OST_PUNCH',
      fields: { RMF_OST_BODY: oa(o, { o_valid: ID_VALID | C('OBD_MD_FLSIZE') | C('OBD_MD_FLBLOCKS'), o_size: start, o_blocks: end }) },
    })
  }

  /** OST_SYNC (osc_sync): the object's data are durable on the OST once this returns. */
  async sync(o: ObjectId): Promise<void> {
    await this.imp.call({ format: 'RQF_OST_SYNC', fields: { RMF_OST_BODY: oa(o, { o_size: 0n, o_blocks: OBD_OBJECT_EOF }) } })
  }

  async statfs(): Promise<Record<string, unknown>> {
    const r = await this.imp.call({ format: 'RQF_OST_STATFS' })
    return (r.reply.fields.RMF_OBD_STATFS ?? {}) as Record<string, unknown>
  }

  /**
   * One bulk RPC for one object (osc_brw_prep_request): one obd_ioobj naming it, the
   * niobufs at object offsets, and the bulk = the niobufs' bytes in order. ioo_max_brw
   * carries (most bulk MDs - 1) << IOOBJ_MAX_BRW_BITS (ioobj_max_brw_set); the transport
   * splits a bulk into LNET_MTU (1 MiB) MDs. Writes are plain pages, not OBD_BRW_SYNC:
   * as with Lustre's page cache, they are durable once fsync (OST_SYNC) returns.
   */
  private brwFields(o: ObjectId, nio: Niobuf[], write: boolean): Record<string, unknown> {
    // osc asks ptlrpc_prep_bulk_imp for ocd_brw_size >> LNET_MTU_BITS MDs at most, a power
    // of two (servers check that); this client's RPCs never exceed that, whatever they carry.
    const total = nio.reduce((a, n) => a + n.length, 0)
    let mds = 1
    while (mds * BULK_MD_SIZE < total) mds *= 2
    const flags = 0
    return {
      RMF_OST_BODY: oa(o),
      RMF_OBD_IOOBJ: [makeStruct('obd_ioobj', { ioo_oid: { oi: { oi_id: o.objectId, oi_seq: o.seq } }, ioo_max_brw: (mds - 1) << IOOBJ_MAX_BRW_BITS, ioo_bufcnt: nio.length })],
      RMF_NIOBUF_REMOTE: nio.map(n => makeStruct('niobuf_remote', { rnb_offset: BigInt(n.offset), rnb_len: n.length, rnb_flags: flags })),
    }
  }

  /** OST_WRITE: the server GETs `data` (the niobufs' bytes in order); RMF_RCS has one rc per niobuf. */
  async write(o: ObjectId, nio: Niobuf[], data: Uint8Array): Promise<void> {
    const r = await this.imp.call({ format: 'RQF_OST_BRW_WRITE', fields: this.brwFields(o, nio, true), bulkSource: data })
    const rcs = r.reply.fields.RMF_RCS
    if (rcs instanceof Uint8Array) {
      const dv = new DataView(rcs.buffer, rcs.byteOffset, rcs.byteLength)
      for (let i = 0; i + 4 <= rcs.length; i += 4) {
        const rc = dv.getInt32(i, true)
        if (rc < 0) throw new LustreRpcError('OST_WRITE', rc, this.imp.opts.targetUuid)
      }
    }
  }

  /**
   * OST_READ: the server PUTs the niobufs' bytes; fewer bytes than asked means zeros after.
   * With `into` (zeroed, as long as the niobufs) the bytes land there, as in the pages osc
   * hands to the bulk descriptor, and what is returned is a view of it.
   */
  async read(o: ObjectId, nio: Niobuf[], into?: Uint8Array): Promise<Uint8Array> {
    const total = nio.reduce((a, n) => a + n.length, 0)
    if (into && into.length !== total) throw new Error(`OST_READ: a sink of ${into.length} bytes for ${total} asked`)
    const r = await this.imp.call({ format: 'RQF_OST_BRW_READ', fields: this.brwFields(o, nio, false), ...(into ? { bulkSink: into } : { bulkSinkLength: total }) })
    return r.bulk ?? new Uint8Array(0)
  }
}

export interface DiscoverOptions {
  fsname: string
  clientUuid: string
  brwSize: number
  timeoutMs?: number
  log?: (line: string) => void
}

/** An OSS as the client reaches it: the PtlRPC endpoint its connection lives on, and the peer. */
export interface OssLink { rpc: PtlrpcEndpoint; peer: Peer }

/** Connects to every OST the OSSes serve; returns them by index. */
export async function discoverOsts(oss: OssLink[], o: DiscoverOptions): Promise<Map<number, Ost>> {
  const osts = new Map<number, Ost>()
  if (!oss.length) return osts
  for (let index = 0; index < 0xffff; index++) {
    const target = ostUuid(o.fsname, index)
    const tries = await Promise.all(oss.map(async ({ rpc, peer }) => {
      const imp = new TargetImport(rpc, peer, {
        service: 'ost', targetUuid: target, clientUuid: o.clientUuid, flags: OST_CONNECT_FLAGS,
        ocd: { ocd_brw_size: o.brwSize, ocd_index: index }, timeoutMs: o.timeoutMs,
      })
      try {
        await imp.connect()
        return imp
      } catch (e) {
        if (e instanceof LustreRpcError && e.status === E.ENODEV) return undefined
        throw e
      }
    }))
    const found = tries.filter((x): x is TargetImport => !!x)
    if (!found.length) break
    // Two OSSes claiming one OST is a misconfiguration: keep the first, leave the others.
    for (const extra of found.slice(1)) await extra.disconnect().catch(() => {})
    const imp = found[0]
    const said = imp.ocd.ocd_index
    if ((imp.flags & C('OBD_CONNECT_INDEX')) !== 0n && typeof said === 'number' && said !== index) {
      o.log?.(`client: ${target} answered ocd_index ${said}; using ${index} from its UUID`)
    }
    osts.set(index, new Ost(index, imp))
  }
  return osts
}
