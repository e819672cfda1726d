// The conformance harness's public entry point. It reaches targets only through the
// wire (src/wire, src/transport): nothing here imports the reference servers.
export { TargetSession } from './wire/session.js'
export type { SessionOptions, ReceivedAst } from './wire/session.js'
export { replayLdlmTrace, stepsOf } from './ldlm/mbt.js'
export type { ItfTrace, MbtTarget, StepResult } from './ldlm/mbt.js'
export { Failure, Unsupported, expectEqual, expectThat } from './core/test.js'
export type { ConformanceTest, TargetAddress, TestContext, Verdict } from './core/test.js'
export { runTests, select, seededRandom, requirementVerdicts, MDS_FLAGS, OST_FLAGS } from './core/runner.js'
export type { RunOptions, TestResult, RequirementVerdict } from './core/runner.js'
export { tapHeader, tapLine, tapSummary } from './core/tap.js'
export { allTests, requirements } from './suites/index.js'
export type { Requirement } from './suites/index.js'
