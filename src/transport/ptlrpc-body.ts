// ptlrpc_body_v3 contents for requests, replies and error replies. Every member
// is written (the struct is fixed size); callers override what they own.
import { constantOf, structOf, frameMessage, encodeMessage, zeroValue, type Spec } from '../wire/index.js'

export type BodyFields = Record<string, unknown>

/**
 * pb_version: PTLRPC_MSG_VERSION | the service's LUSTRE_*_VERSION, picked by the opcode's family
 * as lu_target.h's TGT_*_HDL macros register them (SEQ_, FLD_ and QUOTA_ requests are the MDS's).
 */
export function versionFor(spec: Spec, opc: number): number {
  const name = spec.opcodes.get(opc)?.opcode ?? ''
  const family = name.startsWith('OST_') ? 'LUSTRE_OST_VERSION'
    : /^(MDS|SEQ|FLD|QUOTA)_/.test(name) ? 'LUSTRE_MDS_VERSION'
    : name.startsWith('LDLM_') ? 'LUSTRE_DLM_VERSION'
    : name.startsWith('MGS_') ? 'LUSTRE_MGS_VERSION'
    : name.startsWith('LLOG_') ? 'LUSTRE_LOG_VERSION'
    : 'LUSTRE_OBD_VERSION'
  return Number(constantOf(spec, 'PTLRPC_MSG_VERSION') | constantOf(spec, family))
}

function zeroBody(spec: Spec): BodyFields {
  return zeroValue(structOf(spec, 'ptlrpc_body_v3'))
}

/** A request body: type REQUEST, version by opcode, overrides applied. */
export function buildBody(spec: Spec, o: BodyFields, kind: 'request'): BodyFields {
  const opc = o.pb_opc as number
  return {
    ...zeroBody(spec),
    pb_type: Number(constantOf(spec, kind === 'request' ? 'PTL_RPC_MSG_REQUEST' : 'PTL_RPC_MSG_REPLY')),
    pb_version: versionFor(spec, opc),
    ...o,
  }
}

/**
 * A reply body for a request body: the server answers with the request's opcode,
 * handle and xid-related members, its own status, transno and commit point.
 */
export function replyBodyFor(spec: Spec, req: BodyFields, o: BodyFields): BodyFields {
  return {
    ...zeroBody(spec),
    pb_handle: req.pb_handle,
    pb_type: Number(constantOf(spec, 'PTL_RPC_MSG_REPLY')),
    pb_version: req.pb_version,
    pb_opc: req.pb_opc,
    pb_conn_cnt: req.pb_conn_cnt,
    pb_timeout: req.pb_timeout,
    pb_mbits: req.pb_mbits,
    pb_tag: req.pb_tag,
    ...o,
  }
}

/**
 * Statuses ptlrpc_send_error() still sends as PTL_RPC_MSG_REPLY: outcomes a client expects
 * in the normal course (no such name, no permission, no space, read-only, quota, retry later).
 */
const REPLY_STATUSES = ['EPERM', 'ENOENT', 'EACCES', 'ENOSPC', 'EROFS', 'EINPROGRESS', 'EDQUOT']

/**
 * An error reply, one buffer (the body): PTL_RPC_MSG_ERR, or PTL_RPC_MSG_REPLY for the statuses
 * above, as ptlrpc_send_error() types it. When the request could not be decoded, what can be
 * read of its body is echoed (its opcode, when framing holds).
 */
export function errorReply(spec: Spec, status: number, opc: number, rawRequest?: Uint8Array, reqBody?: BodyFields, extra?: BodyFields): Uint8Array {
  let base: BodyFields = reqBody ?? {}
  if (!reqBody && rawRequest) {
    try {
      const { r, offsets, lengths } = frameMessage(rawRequest)
      if (lengths[0] >= 24) base = { pb_opc: r.dv.getUint32(offsets[0] + 16, r.le) }
    } catch {
      // Nothing of the request can be read; the error reply stands on its own.
    }
  }
  const reqOpc = (base.pb_opc as number | undefined) ?? opc
  const body = replyBodyFor(spec, { pb_handle: { cookie: 0n }, pb_version: versionFor(spec, reqOpc), pb_conn_cnt: 0, pb_timeout: 0, pb_mbits: 0n, pb_tag: 0, ...base, pb_opc: reqOpc }, {
    ...extra,
    pb_type: Number(constantOf(spec, REPLY_STATUSES.some(n => status === -Number(constantOf(spec, `LUSTRE_${n}`))) ? 'PTL_RPC_MSG_REPLY' : 'PTL_RPC_MSG_ERR')),
    pb_status: status,
  })
  return encodeMessage({ body, buffers: [] }, spec)
}
