// The conformance harness's public entry point. It reaches targets only through the
// wire (src/wire, src/transport): nothing here imports the reference servers.
export { TargetSession } from './wire/session.js'
export type { SessionOptions, ReceivedAst } from './wire/session.js'
export { replayLdlmTrace, stepsOf } from './ldlm/mbt.js'
export type { ItfTrace, MbtTarget, StepResult } from './ldlm/mbt.js'
