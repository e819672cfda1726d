// Deliberately wrong servers the certifier must fail: each names the reference MDS fault
// switches it turns on, the suites to run against it, and the tests that must fail. Used by
// the self-test (test/conformance/mutants.test.ts) and scripts/mutation-score.mjs. The
// harness itself never turns a fault on: a mutant is a description, not code that runs here.
export interface Mutant {
  name: string
  /** the MdsOptions['faults'] to start the reference MDS with */
  faults: Record<string, unknown>
  /** which tests to run against it (globs) */
  suites: string[]
  /** tests that must fail against it */
  caughtBy: string[]
  /** requirements whose verdict must be fail (not merely blocked) */
  breaks: string[]
}

export const MUTANTS: Mutant[] = [
  { name: 'grants PW while PR is held', faults: { ldlm: { grantConflicting: true } }, suites: ['ldlm.compat.*'], caughtBy: ['ldlm.compat.pr-pw', 'ldlm.compat.pw-pr', 'ldlm.compat.ex-ex'], breaks: ['LDLM-COMPAT-PR-PW', 'LDLM-COMPAT-PW-PR', 'LDLM-COMPAT-EX-EX'] },
  { name: 'skips the blocking AST', faults: { ldlm: { skipBlockingAst: true } }, suites: ['ldlm.compat.pw-pr', 'ldlm.compat.ex-cr'], caughtBy: ['ldlm.compat.pw-pr', 'ldlm.compat.ex-cr'], breaks: ['LDLM-COMPAT-PW-PR', 'LDLM-COMPAT-EX-CR'] },
  { name: 'ignores stripe_offset', faults: { ignoreStripeOffset: true }, suites: ['striping.layout.explicit'], caughtBy: ['striping.layout.explicit'], breaks: ['STRIPE-OFFSET'] },
  { name: 'answers an unknown opcode with success', faults: { unknownOpcodeSucceeds: true }, suites: ['wire.*'], caughtBy: ['wire.request.unknown-opcode'], breaks: ['WIRE-UNKNOWN-OPCODE'] },
  { name: 'shifts the RAID0 mapping by one stripe', faults: { shiftStripes: true }, suites: ['striping.*'], caughtBy: ['striping.raid0.placement'], breaks: ['STRIPE-RAID0-MAP'] },
  { name: 'drops the last buffer of a reply', faults: { dropLastReplyBuffer: ['MDS_GET_ROOT', 'MDS_STATFS'] }, suites: ['wire.*', 'metadata.*'], caughtBy: ['wire.reply.buffers', 'metadata.mkdir.lookup'], breaks: ['WIRE-REPLY-BUFFERS'] },
  { name: 'pads no buffer to 8 bytes', faults: { unpaddedReplies: true }, suites: ['wire.*'], caughtBy: ['wire.msg.pad8', 'wire.ping.live-export'], breaks: ['WIRE-MSG-PAD8', 'WIRE-REPLY-DECODES'] },
  { name: 'returns a wrong errno', faults: { wrongErrno: true }, suites: ['metadata.*'], caughtBy: ['metadata.lookup.enoent'], breaks: ['MD-ENOENT'] },
]
