// `lustre-conformance decode FILE`: JSON Lines, one object per LNet message.
import { parseArgs } from 'node:util'
import { decodeTrace, eventToJson, fieldGetter, fieldText } from '../trace/index.js'

export async function decodeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: 'string', multiple: true },
      socklnd: { type: 'boolean', default: false },
      names: { type: 'boolean', default: false },
      field: { type: 'string', multiple: true },
    },
  })
  if (positionals.length !== 1) {
    console.error('usage: lustre-conformance decode FILE [--port N]... [--socklnd] [--names] [--field PATH]...')
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
  // --field: tab-separated values, one line per LNet message, as tshark -T fields -e prints them.
  const getters = (values.field ?? []).map(fieldGetter)
  for (const ev of decodeTrace(positionals[0], { ports })) {
    if (ev.error) errors++
    if (getters.length) {
      if (ev.unit !== 'lnet') continue
      out.push(getters.map(g => fieldText(g(ev))).join('\t'))
    } else {
      if (!values.socklnd && (ev.unit === 'connreq' || ev.unit === 'hello' || ev.unit === 'noop')) continue
      out.push(JSON.stringify(eventToJson(ev, { names: values.names })))
    }
    if (out.length >= 4096) flush()
  }
  flush()
  return errors ? 1 : 0
}
