// `lustre-conformance decode FILE`: JSON Lines, one object per LNet message.
import { parseArgs } from 'node:util'
import { decodeTrace, eventToJson } from '../trace/index.js'

export async function decodeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: 'string', multiple: true },
      socklnd: { type: 'boolean', default: false },
      names: { type: 'boolean', default: false },
    },
  })
  if (positionals.length !== 1) {
    console.error('usage: lustre-conformance decode FILE [--port N]... [--socklnd] [--names]')
    return 2
  }
  const ports = (values.port ?? ['988']).map(p => {
    const n = Number(p)
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`--port ${p} is not a TCP port`)
    return n
  })
  let errors = 0
  const out: string[] = []
  const flush = (): void => { if (out.length) { process.stdout.write(out.join('\n') + '\n'); out.length = 0 } }
  // The file is read in chunks: memory stays bounded for captures of any size.
  for (const ev of decodeTrace(positionals[0], { ports })) {
    if (!values.socklnd && (ev.unit === 'connreq' || ev.unit === 'hello' || ev.unit === 'noop')) continue
    if (ev.error) errors++
    out.push(JSON.stringify(eventToJson(ev, { names: values.names })))
    if (out.length >= 256) flush()
  }
  flush()
  return errors ? 1 : 0
}
