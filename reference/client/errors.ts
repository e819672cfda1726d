// Errors of the client library. Two kinds, so that callers can tell them apart:
//  - a filesystem error (no such file, not a directory, ...) is a LustreRpcError with
//    the negative errno in .status, whether the MDS/OST answered it or the client found
//    it while walking a path (then its target is 'client');
//  - a bad argument (stripe size not a multiple of 64 KiB, negative offset, ...) is a
//    ClientError with a stable code, before anything goes on the wire.
import { E, LustreRpcError } from '../common/index.js'

export type ClientErrorCode =
  | 'LC_CLIENT_ARG'        // an argument out of range or of the wrong form
  | 'LC_CLIENT_PATH'       // a path that is not absolute, or a name Lustre cannot store
  | 'LC_CLIENT_NO_OST'     // a layout names an OST index no OSS serves
  | 'LC_CLIENT_LAYOUT'     // a layout the client cannot do I/O with (not RAID0 V1)
  | 'LC_CLIENT_CLOSED'     // the client was closed
  | 'LC_CLIENT_LOCK'       // a lock was dropped (eviction, cancel) before it was granted

export class ClientError extends Error {
  constructor(readonly code: ClientErrorCode, message: string) {
    super(message)
    this.name = 'ClientError'
  }
}

export type Errno = keyof typeof E

/** A filesystem error the client itself detected, shaped as if a target had answered it. */
export function fsError(opcode: string, errno: Errno): LustreRpcError {
  return new LustreRpcError(opcode, E[errno], 'client')
}

/** The negative errno of a LustreRpcError, undefined for anything else. */
export function statusOf(e: unknown): number | undefined {
  return e instanceof LustreRpcError ? e.status : undefined
}
