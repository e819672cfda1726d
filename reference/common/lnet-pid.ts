// LNet pids for the client side of reference processes. A userspace LNet process sets
// LNET_PID_USERFLAG; the low bits tell apart endpoints that share a NID (several clients
// in one test process, or an MDS beside the OSS it precreates on, both on 127.0.0.1),
// since a peer keys its connections by NID and pid alone.
import { constantOf, loadSpec } from '../../src/wire/index.js'

const USERFLAG = Number(constantOf(loadSpec(), 'LNET_PID_USERFLAG'))
let instance = 0

/** A pid no other endpoint of this host is likely to use: process id and a counter under LNET_PID_USERFLAG. */
export function userLnetPid(): number {
  return (USERFLAG | ((process.pid & 0xffff) << 8) | (instance++ & 0xff)) >>> 0
}
