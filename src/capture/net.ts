// Address text, the Internet checksum, and the endpoint cache the reader uses so that
// a packet costs one small object rather than two objects and two strings.

import { CaptureError } from './types.js';
import type { TcpEndpoint } from './types.js';

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses dotted-quad IPv4 text into an unsigned 32-bit number. */
export function parseIPv4(ip: string): number {
  const m = DOTTED.exec(ip);
  if (m === null) throw new CaptureError('CAPTURE_BAD_ARGUMENT', `not a dotted IPv4 address: ${JSON.stringify(ip)}`, -1);
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = Number(m[i]);
    // Leading zeros are rejected because some tools read them as octal.
    if (part > 255 || (m[i]!.length > 1 && m[i]!.startsWith('0'))) {
      throw new CaptureError('CAPTURE_BAD_ARGUMENT', `not a dotted IPv4 address: ${JSON.stringify(ip)}`, -1);
    }
    n = n * 256 + part;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** RFC 5952 text of the 16 bytes at b[off..off+16]. */
export function formatIPv6(b: Uint8Array, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  // IPv4-mapped addresses keep their dotted tail, as RFC 5952 section 5 recommends.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  }
  // The longest run of two or more zero groups becomes "::" (the first one on a tie).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (from: number, to: number): string => g.slice(from, to).map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

/** Unfolded one's-complement sum of the big-endian 16-bit words of b[start..end). */
export function sum16(b: Uint8Array, start: number, end: number, acc = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) acc += (b[i]! << 8) | b[i + 1]!;
  if (i < end) acc += b[i]! << 8; // an odd trailing byte is padded with zero
  return acc;
}

/** Folds a sum16 accumulator and complements it: the value to store in a header. */
export function finishChecksum(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return ~acc & 0xffff;
}

/** A locally administered unicast MAC made from an IPv4 address: 02:00:a:b:c:d. */
export function macFromIPv4(ip: number): Uint8Array {
  return Uint8Array.of(0x02, 0x00, (ip >>> 24) & 255, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255);
}

export function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new CaptureError('CAPTURE_BAD_ARGUMENT', `${what} port out of range: ${port}`, -1);
  }
}

export function checkU32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new CaptureError('CAPTURE_BAD_ARGUMENT', `${what} is not an unsigned 32-bit integer: ${n}`, -1);
  }
}

// Caches are cleared when they reach this many entries, so a capture with millions of
// distinct endpoints (a port scan) costs memory bounded by this, not by the file.
const CACHE_LIMIT = 1 << 16;

/**
 * Hands out frozen endpoint objects, one per (address, port) while cached. Consumers get
 * the same object for the same endpoint most of the time (handy as a Map key), but must
 * compare by value when they need certainty.
 */
export class EndpointCache {
  private readonly v4 = new Map<number, TcpEndpoint>();
  private readonly v4Text = new Map<number, string>();
  private readonly v6 = new Map<string, TcpEndpoint>();

  ipv4(ip: number, port: number): TcpEndpoint {
    const key = ip * 65536 + port; // < 2^48: exact as a double
    let ep = this.v4.get(key);
    if (ep === undefined) {
      let text = this.v4Text.get(ip);
      if (text === undefined) {
        if (this.v4Text.size >= CACHE_LIMIT) this.v4Text.clear();
        text = formatIPv4(ip);
        this.v4Text.set(ip, text);
      }
      if (this.v4.size >= CACHE_LIMIT) this.v4.clear();
      ep = Object.freeze({ ip: text, port });
      this.v4.set(key, ep);
    }
    return ep;
  }

  ipv6(b: Uint8Array, off: number, port: number): TcpEndpoint {
    const ip = formatIPv6(b, off);
    const key = `${ip}#${port}`;
    let ep = this.v6.get(key);
    if (ep === undefined) {
      if (this.v6.size >= CACHE_LIMIT) this.v6.clear();
      ep = Object.freeze({ ip, port });
      this.v6.set(key, ep);
    }
    return ep;
  }
}
