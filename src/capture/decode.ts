// Link layer, IPv4/IPv6 and TCP header decoding of one captured frame. Works on a view of
// the frame and allocates only the packet object and the payload view (endpoints come
// from a cache), because the reader runs this once per frame of 100+ MB files.

import { EndpointCache } from './net.js';
import { LINKTYPE } from './types.js';
import type { CapturedPacket, SkipReason } from './types.js';

export interface CaptureStats {
  /** Packet records read, TCP or not: the last frame number. */
  frames: number;
  /** Frames yielded as TCP packets. */
  tcp: number;
  /** Frames not yielded, by reason. */
  skipped: Record<SkipReason, number>;
}

export function newStats(): CaptureStats {
  return {
    frames: 0,
    tcp: 0,
    skipped: {
      'not-ip': 0, 'not-tcp': 0, 'ip-fragment': 0, short: 0, malformed: 0, 'unsupported-linktype': 0, 'not-a-packet': 0,
    },
  };
}

const SUPPORTED = new Set<number>(Object.values(LINKTYPE));
/** Link type a container parser reports for a record that is a frame but no packet. */
export const NOT_A_PACKET = -1;

export function isSupportedLinkType(lt: number): boolean {
  return SUPPORTED.has(lt);
}

// Where the network header starts, or a negative code: a reason for not decoding.
const NOT_IP = -1;
const SHORT = -2;
const UNSUPPORTED = -3;
// Set by linkLayer as a second result, to avoid returning an object.
let ipVersion = 0;

function etherType(b: Uint8Array, off: number, n: number, type: number): number {
  // 802.1Q, 802.1ad and the old QinQ type: skip every tag, however deep.
  while (type === 0x8100 || type === 0x88a8 || type === 0x9100) {
    if (off + 4 > n) return SHORT;
    type = (b[off + 2]! << 8) | b[off + 3]!;
    off += 4;
  }
  if (type === 0x0800) ipVersion = 4;
  else if (type === 0x86dd) ipVersion = 6;
  else return NOT_IP;
  return off;
}

function family(af: number, s: number): number {
  // AF_INET is 2 everywhere; AF_INET6 is 10 on Linux, 24/28/30 on the BSDs and macOS.
  if (af === 2) ipVersion = 4;
  else if (af === 10 || af === 24 || af === 28 || af === 30) ipVersion = 6;
  else return NOT_IP;
  return s + 4;
}

// The frame is b[s..n); offsets returned are absolute indexes into b.
function linkLayer(lt: number, b: Uint8Array, s: number, n: number): number {
  const len = n - s;
  switch (lt) {
    case LINKTYPE.ETHERNET:
      return len < 14 ? SHORT : etherType(b, s + 14, n, (b[s + 12]! << 8) | b[s + 13]!);
    case LINKTYPE.RAW:
    case LINKTYPE.RAW_LEGACY: {
      if (len < 1) return SHORT;
      const v = b[s]! >> 4;
      if (v !== 4 && v !== 6) return NOT_IP;
      ipVersion = v;
      return s;
    }
    case LINKTYPE.IPV4:
      ipVersion = 4;
      return s;
    case LINKTYPE.IPV6:
      ipVersion = 6;
      return s;
    case LINKTYPE.NULL: {
      if (len < 4) return SHORT;
      // The family is in the byte order of the capturing host, which the file does not
      // record: a value only fits in the low 16 bits when read the right way round.
      const le = (b[s]! | (b[s + 1]! << 8) | (b[s + 2]! << 16) | (b[s + 3]! << 24)) >>> 0;
      const be = ((b[s]! << 24) | (b[s + 1]! << 16) | (b[s + 2]! << 8) | b[s + 3]!) >>> 0;
      return family(le <= 0xffff ? le : be, s);
    }
    case LINKTYPE.LOOP:
      return len < 4 ? SHORT : family(((b[s]! << 24) | (b[s + 1]! << 16) | (b[s + 2]! << 8) | b[s + 3]!) >>> 0, s);
    case LINKTYPE.LINUX_SLL:
      return len < 16 ? SHORT : etherType(b, s + 16, n, (b[s + 14]! << 8) | b[s + 15]!);
    case LINKTYPE.LINUX_SLL2:
      return len < 20 ? SHORT : etherType(b, s + 20, n, (b[s]! << 8) | b[s + 1]!);
    default:
      return UNSUPPORTED;
  }
}

export class Decoder {
  readonly stats: CaptureStats = newStats();
  private readonly endpoints = new EndpointCache();
  private readonly onSkip: ((frame: number, reason: SkipReason) => void) | undefined;

  constructor(onSkip?: (frame: number, reason: SkipReason) => void) {
    this.onSkip = onSkip;
  }

  skip(frame: number, reason: SkipReason): null {
    this.stats.skipped[reason]++;
    if (this.onSkip !== undefined) this.onSkip(frame, reason);
    return null;
  }

  /**
   * Decodes frame number `frame`, the bytes b[start..end) (offsets rather than a view:
   * one allocation less per frame); returns null, after counting why, if it is not TCP.
   */
  decode(lt: number, b: Uint8Array, start: number, end: number, frame: number, tsMicros: bigint): CapturedPacket | null {
    this.stats.frames = frame;
    if (lt === NOT_A_PACKET) return this.skip(frame, 'not-a-packet');
    const o = linkLayer(lt, b, start, end);
    if (o < 0) return this.skip(frame, o === SHORT ? 'short' : o === NOT_IP ? 'not-ip' : 'unsupported-linktype');
    return ipVersion === 4 ? this.ipv4(b, o, end, frame, tsMicros) : this.ipv6(b, o, end, frame, tsMicros);
  }

  // o: IP header offset; n: end of the captured frame.
  private ipv4(b: Uint8Array, o: number, n: number, frame: number, ts: bigint): CapturedPacket | null {
    if (o + 20 > n) return this.skip(frame, 'short');
    if (b[o]! >> 4 !== 4) return this.skip(frame, 'malformed');
    const ihl = (b[o]! & 15) * 4;
    let total = (b[o + 2]! << 8) | b[o + 3]!;
    // Total length 0 is what TSO leaves in segments captured on the sending host; like
    // Wireshark, take the captured length then.
    if (total === 0) total = n - o;
    if (ihl < 20 || total < ihl) return this.skip(frame, 'malformed');
    if (((b[o + 6]! << 8) | b[o + 7]!) & 0x3fff) return this.skip(frame, 'ip-fragment');
    if (b[o + 9] !== 6) return this.skip(frame, 'not-tcp');
    const src = ((b[o + 12]! << 24) | (b[o + 13]! << 16) | (b[o + 14]! << 8) | b[o + 15]!) >>> 0;
    const dst = ((b[o + 16]! << 24) | (b[o + 17]! << 16) | (b[o + 18]! << 8) | b[o + 19]!) >>> 0;
    const t = o + ihl;
    const end = o + total;
    if (t + 20 > end) return this.skip(frame, 'malformed');
    if (t + 20 > n) return this.skip(frame, 'short');
    const sport = (b[t]! << 8) | b[t + 1]!;
    const dport = (b[t + 2]! << 8) | b[t + 3]!;
    return this.tcp(b, t, end, n, frame, ts, this.endpoints.ipv4(src, sport), this.endpoints.ipv4(dst, dport));
  }

  private ipv6(b: Uint8Array, o: number, n: number, frame: number, ts: bigint): CapturedPacket | null {
    if (o + 40 > n) return this.skip(frame, 'short');
    if (b[o]! >> 4 !== 6) return this.skip(frame, 'malformed');
    const plen = (b[o + 4]! << 8) | b[o + 5]!;
    // 0 means a jumbogram or a TSO segment: the captured length is the best we have.
    const end = plen === 0 ? n : o + 40 + plen;
    let nh = b[o + 6]!;
    let p = o + 40;
    // Extension headers: each advances p by at least 8, so this loop ends.
    for (;;) {
      if (nh === 6) break;
      if (nh === 0 || nh === 43 || nh === 60 || nh === 135 || nh === 139 || nh === 140 || nh === 253 || nh === 254) {
        if (p + 2 > n) return this.skip(frame, 'short');
        nh = b[p]!;
        p += (b[p + 1]! + 1) * 8;
      } else if (nh === 51) {
        if (p + 2 > n) return this.skip(frame, 'short');
        nh = b[p]!;
        p += (b[p + 1]! + 2) * 4;
      } else if (nh === 44) {
        if (p + 8 > n) return this.skip(frame, 'short');
        if (((b[p + 2]! << 8) | b[p + 3]!) & 0xfff9) return this.skip(frame, 'ip-fragment');
        nh = b[p]!; // an atomic fragment (offset 0, no M flag) is a whole packet
        p += 8;
      } else {
        return this.skip(frame, 'not-tcp');
      }
      if (p > end) return this.skip(frame, 'malformed');
    }
    if (p + 20 > end) return this.skip(frame, 'malformed');
    if (p + 20 > n) return this.skip(frame, 'short');
    const sport = (b[p]! << 8) | b[p + 1]!;
    const dport = (b[p + 2]! << 8) | b[p + 3]!;
    const src = this.endpoints.ipv6(b, o + 8, sport);
    const dst = this.endpoints.ipv6(b, o + 24, dport);
    return this.tcp(b, p, end, n, frame, ts, src, dst);
  }

  // t: TCP header offset; end: where the IP packet ends on the wire; n: end of capture.
  private tcp(
    b: Uint8Array, t: number, end: number, n: number, frame: number, tsMicros: bigint,
    src: CapturedPacket['src'], dst: CapturedPacket['dst'],
  ): CapturedPacket | null {
    const doff = (b[t + 12]! >> 4) * 4;
    if (doff < 20 || t + doff > end) return this.skip(frame, 'malformed');
    if (t + doff > n) return this.skip(frame, 'short');
    this.stats.tcp++;
    const from = t + doff;
    // Ethernet padding and FCS lie beyond the IP length and are cut off here.
    const to = end < n ? end : n;
    return {
      frame,
      tsMicros,
      src,
      dst,
      seq: ((b[t + 4]! << 24) | (b[t + 5]! << 16) | (b[t + 6]! << 8) | b[t + 7]!) >>> 0,
      ack: ((b[t + 8]! << 24) | (b[t + 9]! << 16) | (b[t + 10]! << 8) | b[t + 11]!) >>> 0,
      flags: b[t + 13]!,
      // A plain Uint8Array view even when b is a Buffer: cheaper to make than
      // Buffer#subarray, and the same type whatever the input.
      payload: new Uint8Array(b.buffer, b.byteOffset + from, to - from),
      wireLen: end - from,
    };
  }
}
