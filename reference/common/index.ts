// Public entry point of what the reference servers and client share: targets and
// exports on the server side, imports on the client side, errnos as they travel.
export { E, errnoName } from './errno.js'
export { TargetHost } from './target.js'
export type { Target, TargetHandler, TargetRequest, Export, TargetHostOptions, HostFaults } from './target.js'
export { shiftStripes } from './faults.js'
export { TargetImport, LustreRpcError } from './import.js'
export type { ImportOptions, ImportCall } from './import.js'
export { userLnetPid } from './lnet-pid.js'
