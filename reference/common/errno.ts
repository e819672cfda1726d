// Errno values as they travel in pb_status: negative, under Lustre's on-wire
// numbering (lustre_errno.h, LUSTRE_E*), read from spec/constants. Handlers
// return these; the client library turns them back into typed errors.
import { loadSpec } from '../../src/wire/index.js'

const spec = loadSpec()

function errno(name: string): number {
  const v = spec.constant.get(`LUSTRE_${name}`)
  if (v === undefined) throw new Error(`spec/constants has no LUSTRE_${name}`)
  return -Number(v)
}

/** Negative errnos by their usual names, as a handler returns them in pb_status. */
export const E = {
  EPERM: errno('EPERM'),
  ENOENT: errno('ENOENT'),
  EAGAIN: errno('EAGAIN'),
  EDEADLK: errno('EDEADLK'),
  EIO: errno('EIO'),
  EBADF: errno('EBADF'),
  ENOMEM: errno('ENOMEM'),
  EACCES: errno('EACCES'),
  EFAULT: errno('EFAULT'),
  EBUSY: errno('EBUSY'),
  EEXIST: errno('EEXIST'),
  EXDEV: errno('EXDEV'),
  ENODEV: errno('ENODEV'),
  ENOTDIR: errno('ENOTDIR'),
  EISDIR: errno('EISDIR'),
  EINVAL: errno('EINVAL'),
  EFBIG: errno('EFBIG'),
  ENOSPC: errno('ENOSPC'),
  ERANGE: errno('ERANGE'),
  ENAMETOOLONG: errno('ENAMETOOLONG'),
  ENOTEMPTY: errno('ENOTEMPTY'),
  ENODATA: errno('ENODATA'),
  EPROTO: errno('EPROTO'),
  EOVERFLOW: errno('EOVERFLOW'),
  EOPNOTSUPP: errno('EOPNOTSUPP'),
  ENOTCONN: errno('ENOTCONN'),
  EALREADY: errno('EALREADY'),
  ESTALE: errno('ESTALE'),
} as const

const names = new Map<number, string>(Object.entries(E).map(([k, v]) => [v, k]))

/** "-ENOENT" for -2; the number itself for an errno this table lacks. */
export function errnoName(status: number): string {
  const n = names.get(status)
  return n ? `-${n}` : String(status)
}
