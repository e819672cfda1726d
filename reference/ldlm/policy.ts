// What makes two locks of one resource conflict, per lock type, and how far an extent
// lock may grow when it is granted. Pure functions over lock values: the engine keeps
// the queues, this decides.
//
//  - PLAIN: incompatible modes conflict.
//  - IBITS: incompatible modes conflict when their inode bits intersect (ldlm_inodebits).
//  - EXTENT: incompatible modes conflict when their byte ranges intersect; two GROUP
//    locks conflict unless they carry the same gid (ldlm_extent_compat_queue).
//  - FLOCK: POSIX record locks: locks of one owner (the export and lfw_owner, as
//    ldlm_same_flock_owner says) never conflict with each other; otherwise incompatible
//    modes (PR read, PW write) conflict when ranges intersect.
import { compatible, MODE } from './modes.js'

export type LockType = 'plain' | 'extent' | 'flock' | 'ibits'

export const OBJECT_EOF = 0xffffffffffffffffn

export interface Range { start: bigint; end: bigint }

export interface LockPolicy {
  /** extent and flock: the byte range, inclusive */
  range?: Range
  /** extent GROUP locks: the group id */
  gid?: bigint
  /** ibits: the inode bits (MDS_INODELOCK_*) */
  bits?: bigint
  /** flock: lfw_owner, the client's lock owner (with the export, the POSIX lock owner) */
  flockOwner?: bigint
  /** flock: the process, as reported back (F_GETLK); not part of the owner */
  pid?: number
}

/** What conflict checks need of a lock, granted or waiting. */
export interface LockShape {
  owner: bigint
  type: LockType
  mode: number
  policy: LockPolicy
}

export const overlaps = (a: Range, b: Range): boolean => a.start <= b.end && b.start <= a.end

export const sameFlockOwner = (a: LockShape, b: LockShape): boolean => a.owner === b.owner && a.policy.flockOwner === b.policy.flockOwner

/** Whether `held` (granted, or ahead in the waiting queue) stops `asked` from being granted. */
export function conflicts(held: LockShape, asked: LockShape): boolean {
  if (held.type === 'flock' && sameFlockOwner(held, asked)) return false
  if (compatible(held.mode, asked.mode)) {
    if (held.mode === MODE.GROUP && asked.mode === MODE.GROUP) return held.policy.gid !== asked.policy.gid
    return false
  }
  switch (asked.type) {
    case 'plain': return true
    case 'ibits': return ((held.policy.bits ?? 0n) & (asked.policy.bits ?? 0n)) !== 0n
    case 'extent': case 'flock': return overlaps(held.policy.range!, asked.policy.range!)
  }
}

/** Largest extent a lock whose growth is capped under contention may reach past its start (LDLM_MAX_GROWN_EXTENT). */
const MAX_GROWN = 32n * 1024n * 1024n - 1n
const PAGE = 4096n

/**
 * The extent to grant an extent lock asking for `req` (ldlm_extent_policy): as wide as
 * possible without touching a conflicting granted lock outside the request, not growing
 * downwards when more than 4 locks conflict, capped at 32 MiB past the start for PW/CW
 * beyond 32, and cut to the request's own alignment (at least a page) so that no page
 * is covered by two write locks. `granted` are the resource's other granted locks.
 */
export function grownExtent(asked: LockShape, granted: Iterable<LockShape>): Range {
  const req = asked.policy.range!
  if (req.start === 0n && req.end === OBJECT_EOF) return req
  let start = 0n
  let end = OBJECT_EOF
  let conflicting = 0
  for (const g of granted) {
    if (compatible(g.mode, asked.mode)) continue
    conflicting++
    if (conflicting > 4) start = req.start
    const r = g.policy.range!
    // A lock over the request itself is one we wait for anyway: it does not limit growth.
    if (overlaps(r, req)) continue
    if (r.end < req.start && r.end + 1n > start) start = r.end + 1n
    if (r.start > req.end && r.start - 1n < end) end = r.start - 1n
  }
  if (conflicting > 32 && (asked.mode === MODE.PW || asked.mode === MODE.CW) && req.end < req.start + MAX_GROWN) {
    if (req.start + MAX_GROWN < end) end = req.start + MAX_GROWN
  }
  if (start === 0n && end === OBJECT_EOF) return { start, end }
  // Alignment: the largest power of two (a page at least) that both request bounds sit on.
  let mask = PAGE
  const align = (req.end + 1n) | req.start
  if (align !== 0n && (align & (mask - 1n)) === 0n) while ((align & mask) === 0n && mask < 1n << 63n) mask <<= 1n
  mask -= 1n
  const s = start === 0n ? 0n : ((start - 1n) | mask) + 1n
  const e = end === OBJECT_EOF ? OBJECT_EOF : ((end + 1n) & ~mask) - 1n
  // The cut only ever shrinks; it never goes inside the request.
  return { start: s <= req.start ? s : req.start, end: e >= req.end ? e : req.end }
}
