// lustre-conformance command line: one table of commands, each in its own file.
// Exit codes: 0 success, 1 the command ran and found a failure, 2 usage or environment error.
import { certifyCommand } from './certify-cmd.js'
import { clientCommand } from './client-cmd.js'
import { clusterCommand, serveCommand } from './cluster-cmd.js'
import { decodeCommand } from './decode-cmd.js'
import { demoCommand } from './demo-cmd.js'
import { locksCommand } from './locks-cmd.js'
import { tourCommand } from './tour-cmd.js'

interface Command {
  summary: string
  usage: string
  run(args: string[]): Promise<number>
}

const COMMANDS: Record<string, Command> = {
  decode: {
    summary: 'print every LNet message of a pcap/pcapng file as JSON Lines',
    usage: 'decode FILE [--port N]... [--names] [--field PATH]...',
    run: decodeCommand,
  },
  demo: {
    summary: 'a reference cluster in a temporary directory, a striped file put and got back, the traffic recorded',
    usage: 'demo [--out traces/demo.pcap] [--quiet] [--keep]',
    run: demoCommand,
  },
  cluster: {
    summary: 'start the reference MDS and OSS as processes (stop with Ctrl-C or SIGTERM)',
    usage: 'cluster start --dir DIR [--osts 4] [--oss 1] [--host H] [--mds-port P] [--oss-port P] [--lock-timeout MS]',
    run: clusterCommand,
  },
  serve: {
    summary: 'run one reference server in this process (what cluster start spawns)',
    usage: 'serve mds|oss --dir DIR [--host H] [--port P] [...]',
    run: serveCommand,
  },
  client: {
    summary: 'talk to an MDS and OSSes directly: mkdir ls stat put get cat rm mv ln truncate setstripe getstripe',
    usage: 'client --mds NID [--oss NID]... COMMAND ARGS',
    run: clientCommand,
  },
  locks: {
    summary: 'record two clients taking conflicting locks from the reference MDS and OST (BL and CP ASTs, cancels) to a pcap',
    usage: 'locks [--out traces/locks.pcap] [--skip-tshark-limits] [--quiet]',
    run: locksCommand,
  },
  certify: {
    summary: 'run the conformance suites against a Lustre implementation reached by address; TAP 14 on stdout',
    usage: 'certify (--target FILE | --mds ADDR --oss ADDR...) [--only GLOB]... [--except GLOB]... [--seed N] [--timeout MS] [--lock-timeout MS] [--list] [--out DIR] [--json FILE] [--junit FILE] [--html FILE] [--pcap-dir DIR] [--expect FILE] [--reference]',
    run: certifyCommand,
  },
  tour: {
    summary: 'record an exchange of every request format of spec/rpc to a pcap',
    usage: 'tour [--out traces/tour.pcap] [--skip-tshark-limits]',
    run: tourCommand,
  },
}

function help(): string {
  const lines = ['usage: lustre-conformance COMMAND [OPTIONS]', '', 'commands:']
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${c.usage.padEnd(48)} ${c.summary}`)
  return lines.join('\n')
}

/**
 * A reader that stops early (`decode FILE | head`) closes our stdout: stop quietly with
 * status 0, as Unix tools do, instead of dying on an unhandled EPIPE.
 */
function stopOnClosedPipe(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0)
    console.error(`lustre-conformance: cannot write output: ${e.message}`)
    process.exit(2)
  })
}

export async function run(argv: string[]): Promise<number> {
  stopOnClosedPipe()
  const [name, ...rest] = argv
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    console.log(help())
    return name ? 0 : 2
  }
  const cmd = COMMANDS[name]
  if (!cmd) {
    console.error(`lustre-conformance: unknown command ${name}\n\n${help()}`)
    return 2
  }
  try {
    return await cmd.run(rest)
  } catch (e) {
    const err = e as Error & { code?: string }
    console.error(`lustre-conformance ${name}: ${err.code ? '' : 'error: '}${err.message}`)
    return 2
  }
}
