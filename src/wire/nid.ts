// NIDs as socklnd V3 puts them on the wire: the 8-byte lnet_nid_t,
// (LND type << 48) | (network number << 32) | IPv4 address as a host-order u32.
// Only TCP NIDs (`a.b.c.d@tcp`, `@tcpN`) are spoken here; others are refused.
import { BadNidError } from './errors.js'

/** LND type of socklnd (nidstr.h: SOCKLND). */
export const SOCKLND = 2
export const LNET_NID_ANY = 0xffffffffffffffffn

export interface Nid {
  /** dotted IPv4 address */
  addr: string
  /** network number: 0 for `tcp`, N for `tcpN` */
  net: number
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

export function ipv4ToU32(addr: string): number {
  const m = IPV4.exec(addr)
  if (!m) throw new BadNidError(addr, 'not a dotted IPv4 address')
  const parts = m.slice(1).map(Number)
  if (parts.some(p => p > 255)) throw new BadNidError(addr, 'IPv4 octet over 255')
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0
}

export function u32ToIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
}

/** Parses `192.168.1.5@tcp` or `10.0.0.1@tcp2`. */
export function parseNid(s: string): Nid {
  const at = s.lastIndexOf('@')
  if (at < 0) throw new BadNidError(s, 'a NID has the form a.b.c.d@tcp')
  const net = s.slice(at + 1)
  const m = /^tcp(\d*)$/.exec(net)
  if (!m) throw new BadNidError(s, `network ${net} is not a TCP (socklnd) network`)
  const n = m[1] === '' ? 0 : Number(m[1])
  if (n > 0xffff) throw new BadNidError(s, 'network number over 65535')
  const addr = s.slice(0, at)
  ipv4ToU32(addr)
  return { addr, net: n }
}

export function formatNid(n: Nid): string {
  return `${n.addr}@tcp${n.net === 0 ? '' : n.net}`
}

export function nidToWire(n: Nid | string): bigint {
  const nid = typeof n === 'string' ? parseNid(n) : n
  return (BigInt(SOCKLND) << 48n) | (BigInt(nid.net) << 32n) | BigInt(ipv4ToU32(nid.addr))
}

/** The NID's text form; non-TCP or reserved values are shown as Lustre's libcfs would not, but without throwing. */
export function nidFromWire(v: bigint): string {
  if (v === LNET_NID_ANY) return 'LNET_NID_ANY'
  const lnd = Number((v >> 48n) & 0xffffn)
  const net = Number((v >> 32n) & 0xffffn)
  const addr = u32ToIpv4(Number(v & 0xffffffffn))
  if (lnd === SOCKLND) return `${addr}@tcp${net === 0 ? '' : net}`
  return `${addr}@lnd${lnd}:${net}`
}

/** Splits `host:port`; a bare NID (or host) means the default port. */
export function parseAddress(s: string, defaultPort = 988): { host: string; port: number; nid?: string } {
  if (s.includes('@')) {
    const nid = parseNid(s.replace(/:(\d+)$/, ''))
    const pm = /:(\d+)$/.exec(s)
    return { host: nid.addr, port: pm ? Number(pm[1]) : defaultPort, nid: formatNid(nid) }
  }
  const m = /^(.*):(\d+)$/.exec(s)
  if (m) {
    const port = Number(m[2])
    if (port < 1 || port > 65535) throw new BadNidError(s, 'port out of range')
    return { host: m[1], port }
  }
  return { host: s, port: defaultPort }
}
