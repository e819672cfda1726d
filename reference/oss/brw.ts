// OST_READ and OST_WRITE: one object (obd_ioobj), its byte ranges (niobuf_remote[])
// and the bulk transfer that carries their bytes, in niobuf order, on the opcode's
// bulk portal (tgt_brw_read, tgt_brw_write). The server moves the bulk: it GETs the
// client's pages for a write and PUTs pages for a read, then replies.
import type { Export, TargetRequest } from '../common/index.js'
import type { ReplySpec } from '../../src/transport/index.js'
import { loadSpec, constantOf } from '../../src/wire/index.js'
import { E } from '../common/index.js'
import {
  MD, N, MAX_BRW_BYTES, MAX_OBJECT_BYTES, ETIMEDOUT, OstError,
  obdoOf, ostIdOf, objectId, attrObdo, ostBody, has, hasFlag, type Obdo, type Obj,
} from './obdo.js'
import type { Extent } from './store.js'
import type { OstContext } from './ost.js'

const spec = loadSpec()

/** The bulk portal spec/rpc gives each opcode (op.bulkPortal: OST_BULK_PORTAL). */
function bulkPortalOf(opcode: string): number {
  const name = spec.opcodesByName.get(opcode)?.bulkPortal
  if (!name) throw new Error(`spec/rpc gives ${opcode} no bulk portal`)
  return Number(constantOf(spec, name))
}
const READ_PORTAL = bulkPortalOf('OST_READ')
const WRITE_PORTAL = bulkPortalOf('OST_WRITE')
const OST_IO_PORTAL = N('OST_IO_PORTAL')
const BRW_FROM_GRANT = N('OBD_BRW_FROM_GRANT')
const BRW_SYNC = N('OBD_BRW_SYNC')
/** A client that never serves its bulk does not hold a handler for ever (Lustre times bulk out too). */
const BULK_TIMEOUT_MS = 30_000
const PAGE = 4096

interface Niobuf {
  rnb_offset?: bigint
  rnb_len?: number
  rnb_flags?: number
}

interface IoObj {
  ioo_oid?: Obdo['o_oi']
  ioo_max_brw?: number
  ioo_bufcnt?: number
}

interface BrwPlan {
  oa: Obdo
  id: bigint
  extents: Extent[]
  flags: number[]
  total: number
}

/**
 * Checks a BRW request the way tgt_io_data_unpack, tgt_brw_read/write and ofd_preprw
 * do: only on OST_IO_PORTAL; exactly one obd_ioobj; ioo_bufcnt non-zero and equal to
 * the number of niobufs; the power-of-two max_brw packing. Malformed: -EPROTO. Then
 * the ranges: each non-empty, sorted, not overlapping, inside the largest object, and
 * together at most 4 MiB: else -EINVAL (-EFBIG for a write past the largest object).
 */
function planBrw(ost: OstContext, r: TargetRequest, write: boolean): BrwPlan {
  const f = r.msg.fields
  if (r.req.portal !== OST_IO_PORTAL) throw new OstError(E.EPROTO, `bulk I/O on portal ${r.req.portal}, not OST_IO_PORTAL`)
  const oa = obdoOf(f)
  if (hasFlag(oa, 'OBD_FL_SHORT_IO')) throw new OstError(E.EPROTO, 'short I/O was not negotiated (no OBD_CONNECT_SHORTIO)')
  const ioos = f.RMF_OBD_IOOBJ as IoObj[] | null | undefined
  if (!Array.isArray(ioos) || ioos.length !== 1) throw new OstError(E.EPROTO, `${Array.isArray(ioos) ? ioos.length : 0} obd_ioobj; exactly one is served`)
  const ioo = ioos[0]
  const maxBrw = ((ioo.ioo_max_brw ?? 0) >>> 16) + 1
  if ((maxBrw & (maxBrw - 1)) !== 0) throw new OstError(E.EPROTO, `ioo_max_brw ${maxBrw} is not a power of two`)
  const nbs = (Array.isArray(f.RMF_NIOBUF_REMOTE) ? f.RMF_NIOBUF_REMOTE : []) as Niobuf[]
  if (!ioo.ioo_bufcnt) throw new OstError(E.EPROTO, 'ioo_bufcnt is 0')
  if (ioo.ioo_bufcnt !== nbs.length) throw new OstError(E.EPROTO, `ioo_bufcnt ${ioo.ioo_bufcnt} but ${nbs.length} niobufs`)
  // The object is the body's o_oi (tgt_io_data_unpack overwrites ioo_oid with it); a body naming none falls back to ioo_oid.
  const { id: bodyId, seq: bodySeq } = ostIdOf(oa)
  const id = objectId(bodyId === 0n && bodySeq === 0n ? { o_oi: ioo.ioo_oid } : oa, ost.store.lastId)
  const extents: Extent[] = []
  const flags: number[] = []
  let end = 0
  let total = 0
  for (const [i, nb] of nbs.entries()) {
    const off = nb.rnb_offset ?? 0n
    const len = nb.rnb_len ?? 0
    if (len === 0) throw new OstError(E.EINVAL, `niobuf ${i} is empty`)
    if (off + BigInt(len) > BigInt(MAX_OBJECT_BYTES)) throw new OstError(write ? E.EFBIG : E.EINVAL, `niobuf ${i} [${off}, +${len}) ends past the largest object size`)
    if (Number(off) < end) throw new OstError(E.EINVAL, `niobuf ${i} at ${off} is out of order or overlaps the one before`)
    total += len
    if (total > MAX_BRW_BYTES) throw new OstError(E.EINVAL, `bulk of more than ${MAX_BRW_BYTES} bytes`)
    end = Number(off) + len
    extents.push({ offset: Number(off), length: len })
    flags.push(nb.rnb_flags ?? 0)
  }
  return { oa, id, extents, flags, total }
}

async function bulk<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OstError(ETIMEDOUT, `${what}: no bulk transfer in ${BULK_TIMEOUT_MS} ms`)), BULK_TIMEOUT_MS)
  })
  try {
    return await Promise.race([p, timeout])
  } catch (e) {
    throw e instanceof OstError ? e : new OstError(E.EIO, `${what}: ${(e as Error).message}`)
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Grant (tgt_grant_prepare_read/write), when the request carries OBD_MD_FLGRANT: a write
 * spends the grant of its OBD_BRW_FROM_GRANT pages and the reply's o_grant gives the
 * export back up to what it was promised at connect; a read gives nothing back; with
 * OBD_FL_SHRINK_GRANT the client returns o_grant bytes and is promised that much less.
 */
function grantReply(ost: OstContext, exp: Export, plan: BrwPlan, write: boolean): Obj {
  const oa = plan.oa
  if (!has(oa, MD.FLGRANT)) return {}
  const g = ost.grants.get(exp.handle) ?? { target: 0n, granted: 0n }
  let give = 0n
  if (hasFlag(oa, 'OBD_FL_SHRINK_GRANT')) {
    const back = (oa.o_grant ?? 0n) < g.granted ? oa.o_grant ?? 0n : g.granted
    g.granted -= back
    g.target = g.granted
  } else if (write) {
    let spent = 0n
    plan.extents.forEach((x, i) => {
      if (plan.flags[i] & BRW_FROM_GRANT) spent += BigInt(Math.ceil((x.offset + x.length) / PAGE) - Math.floor(x.offset / PAGE)) * BigInt(PAGE)
    })
    g.granted = g.granted > spent ? g.granted - spent : 0n
    give = g.target - g.granted
    g.granted = g.target
  }
  return { o_grant: give }
}

function withGrant(body: Obj, grant: Obj): Obj {
  return 'o_grant' in grant ? { ...body, ...grant, o_valid: (body.o_valid as bigint) | MD.FLGRANT } : body
}

/** OST_WRITE (tgt_brw_write): the object must exist before the bulk is fetched; RMF_RCS has one 0 per niobuf. */
export async function writeHdl(ost: OstContext, r: TargetRequest): Promise<ReplySpec> {
  const plan = planBrw(ost, r, true)
  await ost.store.stat(plan.id)
  const data = await bulk(r.req.bulkGet(plan.total, WRITE_PORTAL), `OST_WRITE of object ${plan.id}`)
  await ost.store.write(plan.id, plan.extents, data, plan.flags.some(fl => (fl & BRW_SYNC) !== 0))
  const body = withGrant(attrObdo(plan.id, await ost.store.stat(plan.id)), grantReply(ost, r.exp, plan, true))
  return { status: 0, fields: { RMF_OST_BODY: ostBody(body), RMF_RCS: new Uint8Array(4 * plan.extents.length) } }
}

/** OST_READ (tgt_brw_read): the ranges' bytes (zeros past the end and in holes) are PUT, then the reply gives the object's size. */
export async function readHdl(ost: OstContext, r: TargetRequest): Promise<ReplySpec> {
  const plan = planBrw(ost, r, false)
  const data = await ost.store.read(plan.id, plan.extents)
  await bulk(r.req.bulkPut(data, READ_PORTAL), `OST_READ of object ${plan.id}`)
  const body = withGrant(attrObdo(plan.id, await ost.store.stat(plan.id)), grantReply(ost, r.exp, plan, false))
  return { status: 0, fields: { RMF_OST_BODY: ostBody(body) } }
}
