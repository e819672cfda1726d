// Oracle 1: Lustre's own wire assertions (../shared/lustre-wire/wiretest-layout.json),
// read through the shared checker, must agree with every schema and constant in spec/.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../../src/wire/index.js'

const root = packageRoot()
const checker = join(root, '..', 'shared', 'tools', 'check-layout.mjs')

// Structs issue 2 requires spec/wire to describe (names as the table spells them).
const REQUIRED = [
  'lnet_acceptor_connreq', 'ksock_hello_msg_nid4', 'ksock_msg_hdr', '_lnet_hdr_nid4', 'lnet_ack', 'lnet_put', 'lnet_get', 'lnet_reply', 'lnet_hello', 'lnet_handle_wire',
  'lustre_msg_v2', 'ptlrpc_body_v3', 'ptlrpc_body_v2', 'lustre_handle', 'obd_uuid', 'obd_connect_data',
  'lu_fid', 'mdt_body', 'mdt_rec_create', 'mdt_rec_setattr', 'mdt_rec_unlink', 'mdt_rec_rename', 'mdt_rec_link', 'lov_mds_md_v1', 'lov_ost_data_v1', 'lov_comp_md_v1', 'lov_comp_md_entry_v1', 'lu_dirpage', 'lu_dirent', 'obd_statfs',
  'ost_id', 'obdo', 'ost_body', 'obd_ioobj', 'niobuf_remote', 'ost_lvb',
  'ldlm_res_id', 'ldlm_extent', 'ldlm_inodebits', 'ldlm_flock_wire', 'ldlm_resource_desc', 'ldlm_lock_desc', 'ldlm_request', 'ldlm_reply', 'ldlm_intent',
]

t.test('spec/ agrees with Lustre 2.17.57 wiretest assertions', { skip: existsSync(checker) ? false : `no ${checker}: ../shared is absent` }, async t => {
  let out: string
  try {
    out = execFileSync(process.execPath, [checker, join(root, 'spec'), '--json'], { encoding: 'utf8' })
  } catch (e) {
    out = (e as { stdout?: string }).stdout ?? ''
  }
  const r = JSON.parse(out) as { errors: number; error_list: string[]; structs_checked: number; fields_matched: number; constants_matched: number; described: string[] }
  t.same(r.error_list, [], 'no disagreement with Lustre')
  t.equal(r.errors, 0)
  t.ok(r.structs_checked >= 35, `${r.structs_checked} structs checked (at least 35)`)
  t.ok(r.constants_matched >= 500, `${r.constants_matched} constants checked`)
  const missing = REQUIRED.filter(s => !r.described.includes(s))
  t.same(missing, [], 'every struct the wire foundation needs is described')
})
