// Before any test: can the target's servers be reached at all? A wrong address or a server
// that is down would otherwise end every test as an error, one by one; here it is one clear
// message, and nothing is certified. Only TCP is tried: what the servers answer is for the tests.
import { connect } from 'node:net'
import { parseAddress } from '../../src/wire/index.js'
import type { TargetAddress } from './test.js'

export interface Unreachable {
  role: string
  address: string
  reason: string
}

/** Opens (and closes) a TCP connection to the MDS and to every OSS; the ones that fail, with why. */
export async function unreachable(target: TargetAddress, timeoutMs = 5000): Promise<Unreachable[]> {
  const all = [{ role: 'MDS', address: target.mds }, ...target.oss.map(a => ({ role: 'OSS', address: a }))]
  const reasons = await Promise.all(all.map(async ({ address }) => {
    let host: string, port: number
    try {
      ({ host, port } = parseAddress(address))
    } catch (e) {
      return (e as Error).message
    }
    return new Promise<string | undefined>(resolve => {
      const s = connect({ host, port })
      const done = (why?: string): void => { s.destroy(); resolve(why) }
      s.setTimeout(timeoutMs, () => done(`no TCP connection within ${timeoutMs} ms`))
      s.once('connect', () => done())
      s.once('error', e => done(e.message))
    })
  }))
  return all.flatMap((a, i) => (reasons[i] ? [{ ...a, reason: reasons[i]! }] : []))
}
