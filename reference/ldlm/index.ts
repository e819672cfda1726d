// The lock manager the reference MDS and OSS share.
export { LockEngine, LdlmError } from './engine.js'
export type { Lock, EnqueueRequest, Outcome, LockFaults } from './engine.js'
export { conflicts, grownExtent, overlaps, OBJECT_EOF } from './policy.js'
export type { LockType, LockPolicy, LockShape, Range } from './policy.js'
export { LdlmService } from './service.js'
export type { LdlmServiceOptions } from './service.js'
export { toWireDesc, fromWireDesc, requestHandles, LR_TYPE } from './wire.js'
export { MODE, ALL_MODES, CLIENT_MODES, compatible, modeName } from './modes.js'
