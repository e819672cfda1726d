// Plausible values for every request message field, so that a scripted exchange
// can send each format of spec/rpc with contents a Lustre peer (or Wireshark)
// would recognise: real lock modes and types, FIDs in the normal sequence range,
// NUL-terminated names, layouts with their magic.
import { makeStruct, encodeStruct, constantOf, loadSpec, type RpcFormat, type RpcSlot } from '../wire/index.js'

const spec = loadSpec()
const C = (n: string): number => Number(constantOf(spec, n))
const CB = (n: string): bigint => constantOf(spec, n)

export const FID = { f_seq: 0x200000401n, f_oid: 7, f_ver: 0 }
export const RES_FID = [0x200000401n, 7n, 0n, 0n]

export interface SampleContext {
  /** lock type for DLM requests: extent on the OST, ibits on the MDS */
  lockType: 'extent' | 'ibits'
  handle: bigint
  seq: number
}

export function lockDesc(ctx: SampleContext, mode = 'LCK_PW'): Record<string, unknown> {
  const extent = ctx.lockType === 'extent'
  return {
    l_resource: { lr_type: C(extent ? 'LDLM_EXTENT' : 'LDLM_IBITS'), lr_pad: 0, lr_name: { name: extent ? [0x1000n + BigInt(ctx.seq), 0n, 0n, 0n] : RES_FID } },
    l_req_mode: C(mode),
    l_granted_mode: 0,
    l_policy_data: extent
      ? { l_extent: { start: 0n, end: 0xffffffffffffffffn, gid: 0n } }
      : { l_inodebits: { bits: CB('MDS_INODELOCK_LOOKUP') | CB('MDS_INODELOCK_UPDATE'), try_bits: 0n, cancel_bits: 0n, li_gid: 0n, li_padding: 0, li_initiator_id: 0 } },
  }
}

function selectorValue(fmt: RpcFormat): { field: string; path: string; value: bigint } | undefined {
  const s = fmt.select
  if (!s) return undefined
  const x = (s.equals ?? s.bitsSet ?? [])[0]
  const v = typeof x === 'number' ? BigInt(x) : constantOf(spec, x)
  return { field: s.field, path: s.path, value: v }
}

function reintStruct(slot: RpcSlot): string {
  return slot.struct ?? 'mdt_rec_reint'
}

/** A value for one field of a format, request or reply side. */
export function sampleField(slot: RpcSlot, fmt: RpcFormat, side: 'request' | 'reply', ctx: SampleContext): unknown {
  const def = spec.fields.get(slot.field)!
  switch (slot.field) {
    case 'RMF_TGTUUID': return ctx.lockType === 'extent' ? 'lustre-OST0000_UUID' : 'lustre-MDT0000_UUID'
    case 'RMF_CLUUID': return 'tour-client-0001_UUID'
    case 'RMF_CONN': return { cookie: ctx.handle }
    case 'RMF_CONNECT_DATA': return makeStruct('obd_connect_data', {
      ocd_connect_flags: CB('OBD_CONNECT_VERSION') | CB('OBD_CONNECT_IBITS') | CB('OBD_CONNECT_FID') | CB('OBD_CONNECT_FULL20') | CB('OBD_CONNECT_BULK_MBITS'),
      ocd_version: 0x02113900, ocd_ibits_known: CB('MDS_INODELOCK_LOOKUP') | CB('MDS_INODELOCK_UPDATE'), ocd_brw_size: 1 << 20,
    })
    case 'RMF_DLM_REQ': return makeStruct('ldlm_request', { lock_flags: 0, lock_count: 1, lock_desc: lockDesc(ctx), lock_handle: [{ cookie: ctx.handle }, { cookie: 0n }] })
    case 'RMF_DLM_REP': return makeStruct('ldlm_reply', { lock_flags: 0, lock_desc: { ...lockDesc(ctx), l_granted_mode: C('LCK_PW') }, lock_handle: { cookie: ctx.handle + 1n } })
    case 'RMF_DLM_LVB':
      // Extent locks carry the object's ost_lvb (56 bytes: ofd_lvbo_size, osc_ldlm_glimpse_ast); an
      // inodebits lock without the DoM bit has none (mdt_lvbo_size returns 0, so the buffer is empty).
      // Sent as its bytes: given as an object, the codec would pick ost_lvb_v1 (40 bytes) for it.
      if (ctx.lockType !== 'extent') return null
      return encodeStruct('ost_lvb', makeStruct('ost_lvb', { lvb_size: 4096n, lvb_blocks: 8n, lvb_mtime: 1700000000n }))
    case 'RMF_MDT_BODY':
      // mdc_statfs asks for aggregated statistics with an otherwise empty body (mbo_valid = OBD_MD_FLAGSTATFS).
      if (fmt.select?.field === 'RMF_MDT_BODY' && fmt.select.path === 'mbo_valid') return makeStruct('mdt_body', { mbo_valid: selectorValue(fmt)!.value })
      return makeStruct('mdt_body', { mbo_fid1: FID, mbo_valid: CB('OBD_MD_FLID') | CB('OBD_MD_FLMODE'), mbo_mode: 0o100644 })
    case 'RMF_OST_BODY': return makeStruct('ost_body', { oa: { o_valid: CB('OBD_MD_FLID') | CB('OBD_MD_FLGROUP'), o_oi: { oi: { oi_id: 0x1000n + BigInt(ctx.seq), oi_seq: 0n } }, o_size: 4096n, o_mode: 0o100644 } })
    case 'RMF_OBD_IOOBJ': return [makeStruct('obd_ioobj', { ioo_oid: { oi: { oi_id: 0x1000n, oi_seq: 0n } }, ioo_bufcnt: 1 })]
    case 'RMF_NIOBUF_REMOTE': return [makeStruct('niobuf_remote', { rnb_offset: 0n, rnb_len: 8192 })]
    case 'RMF_OBD_STATFS': return makeStruct('obd_statfs', { os_type: 0x0bd00bd0n, os_blocks: 1000000n, os_bfree: 500000n, os_bavail: 400000n, os_bsize: 4096, os_namelen: 255 })
    case 'RMF_MDT_MD': return new Uint8Array(0)
    case 'RMF_LDLM_INTENT': return { opc: selectorValue(fmt)?.value ?? CB('IT_GETATTR') }
    case 'RMF_LAYOUT_INTENT': return makeStruct('layout_intent', { lai_opc: 1, lai_extent: { e_start: 0n, e_end: 0xffffffffffffffffn } })
    case 'RMF_MDT_EPOCH': return makeStruct('mdt_ioepoch', {})
    case 'RMF_SEQ_OPC': return Number(CB('SEQ_ALLOC_META'))
    // The request's range is what the asker has (nothing yet); the reply's the meta-sequence given.
    case 'RMF_SEQ_RANGE': return makeStruct('lu_seq_range', side === 'request' ? {} : { lsr_start: 0x200000401n, lsr_end: 0x200000402n, lsr_flags: Number(CB('LU_SEQ_RANGE_MDT')) })
    case 'RMF_REC_REINT': {
      const rec = makeStruct(reintStruct(slot), {}) as Record<string, unknown>
      const sel = fmt.select?.field === 'RMF_REC_REINT' ? selectorValue(fmt) : undefined
      const opField = Object.keys(rec)[0]
      // The record's opcode: from the selector, or from the intent (open intents carry REINT_OPEN).
      const op = fmt.name.includes('INTENT_OPEN') ? C('REINT_OPEN') : fmt.name.includes('INTENT_CREATE') ? C('REINT_CREATE') : sel && fmt.select!.path.endsWith('opcode') ? Number(sel.value) : C('REINT_CREATE')
      rec[opField] = op
      // Symlink creates are told by the mode (S_IFLNK), other creates here make directories.
      if ('cr_mode' in rec) rec.cr_mode = fmt.name.endsWith('CREATE_SYM') ? 0o120777 : fmt.name.includes('OPEN') ? 0o100644 : 0o40755
      for (const k of Object.keys(rec)) if (k.endsWith('_fid1')) rec[k] = FID
      return rec
    }
    case 'RMF_NAME': return 'tour-file'
    case 'RMF_SYMTGT': return 'tour-target'
    case 'RMF_CAPA1': case 'RMF_CAPA2': return null
    // Without an SELinux policy to report (send_sepol = 0) sptlrpc_sepol_get() returns NULL and
    // sptlrpc_sepol_size(NULL) = 0; without a security context the name is not sent either
    // (mdc_create, mdc_intent_getattr_pack): both buffers are empty, not a lone NUL.
    case 'RMF_SELINUX_POL': case 'RMF_FILE_SECCTX_NAME': return null
    default:
      if (def.kind === 'string') return side === 'request' ? '' : null
      return null
  }
}

/** Values for every non-body buffer of a format side (absent optional fields left out). */
export function sampleFields(fmt: RpcFormat, side: 'request' | 'reply', ctx: SampleContext): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const slots = side === 'request' ? fmt.request : fmt.reply
  for (const s of slots.slice(1)) {
    const v = sampleField(s, fmt, side, ctx)
    if (v !== null && !(s.optional && (v instanceof Uint8Array && v.length === 0))) out[s.field] = v
  }
  return out
}
