// The lock manager the reference MDS and OSS share.
export { LockEngine, LdlmError } from './engine.js'
export type { Lock, EnqueueRequest, Outcome } from './engine.js'
export { conflicts, grownExtent, overlaps, OBJECT_EOF } from './policy.js'
export type { LockType, LockPolicy, LockShape, Range } from './policy.js'
export { MODE, ALL_MODES, CLIENT_MODES, compatible, modeName } from './modes.js'
