// OST handlers without bulk: create, destroy, getattr, setattr, punch, sync, statfs.
// Each names its object by ost_body.oa.o_oi, checks it (objectId), acts on the
// object store and answers an ost_body (or obd_statfs). The Lustre handler each one
// follows is named above it; the choices reference/README.md fixes are noted.
import type { TargetRequest } from '../common/index.js'
import type { ReplySpec } from '../../src/transport/index.js'
import { makeStruct } from '../../src/wire/index.js'
import { E } from '../common/index.js'
import {
  MD, N, OBD_OBJECT_EOF, OST_MAX_PRECREATE, FID_SEQ_OST_MDT0, IDIF_MAX_OID, MAX_OBJECT_BYTES, OstError,
  obdoOf, ostIdOf, objectId, attrObdo, ostBody, has, hasFlag,
} from './obdo.js'
import type { OstContext } from './ost.js'

/**
 * OST_CREATE (ofd_create_hdl): o_oi.oi_id is the last id the MDS wants; the OST creates
 * every id after its last one up to it and answers its new last id in o_oi. Id 0 asks
 * for the last id without creating (reference/README.md; Lustre would create one).
 * Orphan cleanup and recreation (OBD_FL_DELORPHAN, OBD_FL_RECREATE_OBJS) are not
 * implemented and are refused rather than mistaken for a plain create.
 */
export async function createHdl(ost: OstContext, { msg }: TargetRequest): Promise<ReplySpec> {
  const oa = obdoOf(msg.fields)
  const { id, seq } = ostIdOf(oa)
  if (seq !== FID_SEQ_OST_MDT0) throw new OstError(E.EINVAL, `create in sequence ${seq}: only ${FID_SEQ_OST_MDT0} is served`)
  if (id > IDIF_MAX_OID) throw new OstError(E.EBADF, `create up to ${id}: wider than 48 bits`)
  if (hasFlag(oa, 'OBD_FL_DELORPHAN') || hasFlag(oa, 'OBD_FL_RECREATE_OBJS')) throw new OstError(E.EOPNOTSUPP, 'orphan cleanup and recreate are not implemented')
  const last = id === 0n ? ost.store.lastId : await ost.store.create(id)
  if (id > last) ost.log(`OST_CREATE up to ${id}: created up to ${last} in this request`)
  return { status: 0, fields: { RMF_OST_BODY: ostBody({ o_valid: MD.FLID | MD.FLGROUP, o_oi: { oi: { oi_id: last, oi_seq: FID_SEQ_OST_MDT0 } } }) } }
}

/**
 * OST_DESTROY (ofd_destroy_hdl): removes the object, or with OBD_MD_FLOBJCOUNT the
 * o_misc objects from it on. A missing object is -ENOENT, and with a count the others
 * are still destroyed. The early-cancel locks of RMF_DLM_REQ name no lock here (this
 * OSS grants none), so they are ignored.
 */
export async function destroyHdl(ost: OstContext, { msg }: TargetRequest): Promise<ReplySpec> {
  const oa = obdoOf(msg.fields)
  const first = objectId(oa, ost.store.lastId)
  const count = has(oa, MD.FLOBJCOUNT) ? BigInt(oa.o_misc ?? 0) : 1n
  if (count > OST_MAX_PRECREATE) throw new OstError(E.EINVAL, `destroy of ${count} objects at once`)
  let status = 0
  for (let id = first; id < first + count; id++) {
    if (id > ost.store.lastId) { status ||= E.ENOENT; continue }
    try {
      await ost.store.destroy(id)
    } catch (e) {
      if (!(e instanceof OstError && e.status === E.ENOENT)) throw e
      status ||= E.ENOENT
    }
  }
  if (status) throw new OstError(status, `destroy ${first} (count ${count}): no such object`)
  return { status: 0, fields: { RMF_OST_BODY: ostBody({ o_valid: MD.FLID | MD.FLGROUP, o_oi: { oi: { oi_id: first, oi_seq: FID_SEQ_OST_MDT0 } } }) } }
}

/** OST_GETATTR (ofd_getattr_hdl): the object's attributes; o_size is its size. */
export async function getattrHdl(ost: OstContext, { msg }: TargetRequest): Promise<ReplySpec> {
  const id = objectId(obdoOf(msg.fields), ost.store.lastId)
  return { status: 0, fields: { RMF_OST_BODY: ostBody(attrObdo(id, await ost.store.stat(id))) } }
}

/**
 * OST_SETATTR (ofd_setattr_hdl): sets atime/mtime (OBD_MD_FLATIME/FLMTIME). A size
 * other than OBD_OBJECT_EOF is -EPERM, as in Lustre (bug 12203: a setattr must never
 * truncate; OST_PUNCH does that). Owner, group, project and mode are accepted and not
 * kept: the objects are files of the server's user.
 */
export async function setattrHdl(ost: OstContext, { msg }: TargetRequest): Promise<ReplySpec> {
  const oa = obdoOf(msg.fields)
  if (has(oa, MD.FLSIZE) && oa.o_size !== OBD_OBJECT_EOF) throw new OstError(E.EPERM, `setattr may not change the size (o_size ${oa.o_size})`)
  const id = objectId(oa, ost.store.lastId)
  const atime = has(oa, MD.FLATIME) ? seconds(oa.o_atime) : undefined
  const mtime = has(oa, MD.FLMTIME) ? seconds(oa.o_mtime) : undefined
  if (atime !== undefined || mtime !== undefined) await ost.store.setTimes(id, atime, mtime)
  return { status: 0, fields: { RMF_OST_BODY: ostBody(attrObdo(id, await ost.store.stat(id))) } }
}

/** Times on the wire are s64 seconds; the file system takes what a Date can hold. */
function seconds(v: bigint | undefined): number {
  const s = v ?? 0n
  if (s < -8_640_000_000_000n || s > 8_640_000_000_000n) throw new OstError(E.EINVAL, `time ${s} out of range`)
  return Number(s)
}

/**
 * OST_PUNCH (ofd_punch_hdl): o_size = start, o_blocks = end. To OBD_OBJECT_EOF it is a
 * truncate: the object's size becomes start (growing it sparsely if start is past the
 * end). An end before EOF zeros [start, end) and keeps the size (Lustre itself answers
 * -EPROTO there and punches holes through OST_FALLOCATE; reference/README.md allows it).
 */
export async function punchHdl(ost: OstContext, { msg }: TargetRequest): Promise<ReplySpec> {
  const oa = obdoOf(msg.fields)
  const id = objectId(oa, ost.store.lastId)
  const start = oa.o_size ?? 0n
  const end = oa.o_blocks ?? 0n
  if (start > BigInt(MAX_OBJECT_BYTES)) throw new OstError(E.EFBIG, `punch from ${start}: past the largest object size`)
  if (end === OBD_OBJECT_EOF) await ost.store.truncate(id, Number(start))
  else if (end <= start) throw new OstError(E.EINVAL, `punch of [${start}, ${end}): empty or reversed range`)
  else await ost.store.zero(id, Number(start), Number(end < BigInt(MAX_OBJECT_BYTES) ? end : BigInt(MAX_OBJECT_BYTES)))
  return { status: 0, fields: { RMF_OST_BODY: ostBody(attrObdo(id, await ost.store.stat(id))) } }
}

/**
 * OST_SYNC (ofd_sync_hdl): fsync of the object, after which its data are durable, and
 * its attributes in the reply. Object id 0 syncs the whole OST (every object written
 * since its last fsync) and answers an empty body, as Lustre does for a zero FID.
 */
export async function syncHdl(ost: OstContext, { msg }: TargetRequest): Promise<ReplySpec> {
  const oa = obdoOf(msg.fields)
  const { id, seq } = ostIdOf(oa)
  if (id === 0n && seq === FID_SEQ_OST_MDT0) {
    await ost.store.sync()
    return { status: 0, fields: { RMF_OST_BODY: ostBody({}) } }
  }
  const obj = objectId(oa, ost.store.lastId)
  await ost.store.sync(obj)
  return { status: 0, fields: { RMF_OST_BODY: ostBody(attrObdo(obj, await ost.store.stat(obj))) } }
}

/** obd_statfs counts blocks of 4 KiB, as ofd_statfs shows clients without GRANT_PARAM (COMPAT_BSIZE_SHIFT). */
const STATFS_BSIZE = 4096n

/**
 * OST_STATFS (ofd_statfs_hdl, ofd_statfs): the host file system holding the OST's
 * directory. os_type is that file system's magic (the osd passes the kernel's f_type
 * on), blocks are rescaled to 4 KiB, os_fsid carries the OST's UUID (obd_statfs has no
 * index member; the UUID names the index), os_namelen 255, os_maxbytes the largest object.
 */
export async function statfsHdl(ost: OstContext, _r: TargetRequest): Promise<ReplySpec> {
  const s = await ost.store.statfs()
  const scale = (n: bigint): bigint => (n * s.bsize) / STATFS_BSIZE
  const fsid = new Uint8Array(40)
  fsid.set(new TextEncoder().encode(ost.uuid).subarray(0, 39))
  const bavail = scale(s.bavail)
  return {
    status: 0,
    fields: {
      RMF_OBD_STATFS: makeStruct('obd_statfs', {
        os_type: s.type, os_blocks: scale(s.blocks), os_bfree: scale(s.bfree), os_bavail: bavail,
        os_files: s.files, os_ffree: s.ffree, os_fsid: fsid, os_bsize: Number(STATFS_BSIZE), os_namelen: 255,
        os_maxbytes: BigInt(MAX_OBJECT_BYTES),
        os_state: bavail === 0n ? N('OS_STATFS_ENOSPC') : 0,
      }),
    },
  }
}
