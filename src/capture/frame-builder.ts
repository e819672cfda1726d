// Synthesizes Ethernet/IPv4/TCP frames. Used by PcapWriter for its flows and exported so
// tests can build arbitrary segment sequences (out of order, overlapping, missing ...)
// and write them with PcapWriter.writePacket.

import { checkPort, checkU32, finishChecksum, macFromIPv4, parseIPv4, sum16 } from './net.js';
import { CaptureError } from './types.js';
import type { TcpEndpoint } from './types.js';

export const ETH_HEADER_LEN = 14;
export const IPV4_HEADER_LEN = 20;
export const TCP_HEADER_LEN = 20;
/** Largest payload one segment can carry: IPv4 total length 65535 minus 40 header bytes. */
export const MAX_TCP_PAYLOAD = 0xffff - IPV4_HEADER_LEN - TCP_HEADER_LEN;

export interface TcpFrameSpec {
  src: TcpEndpoint;
  dst: TcpEndpoint;
  seq: number;
  ack: number;
  /** TCP flag byte, see TCP_FLAGS. */
  flags: number;
  payload?: Uint8Array;
  /** Default 65535. */
  window?: number;
  /** IPv4 identification; default 0. */
  ipId?: number;
  /** Default 64. */
  ttl?: number;
  /** Default: 02:00 followed by the four address bytes (locally administered). */
  srcMac?: Uint8Array;
  dstMac?: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * Returns a complete Ethernet frame: IPv4 with DF set and a correct header checksum, TCP
 * with data offset 5 (no options) and a correct checksum over the pseudo header.
 */
export function buildTcpFrame(spec: TcpFrameSpec): Uint8Array {
  const payload = spec.payload ?? EMPTY;
  if (payload.length > MAX_TCP_PAYLOAD) {
    throw new CaptureError('CAPTURE_BAD_ARGUMENT', `payload of ${payload.length} bytes exceeds ${MAX_TCP_PAYLOAD}`, -1);
  }
  const srcIp = parseIPv4(spec.src.ip);
  const dstIp = parseIPv4(spec.dst.ip);
  checkPort(spec.src.port, 'source');
  checkPort(spec.dst.port, 'destination');
  checkU32(spec.seq, 'seq');
  checkU32(spec.ack, 'ack');
  const window = spec.window ?? 0xffff;
  const ipId = spec.ipId ?? 0;
  const ttl = spec.ttl ?? 64;
  checkField(spec.flags, 0xff, 'flags');
  checkField(window, 0xffff, 'window');
  checkField(ipId, 0xffff, 'ipId');
  checkField(ttl, 0xff, 'ttl');
  const srcMac = spec.srcMac ?? macFromIPv4(srcIp);
  const dstMac = spec.dstMac ?? macFromIPv4(dstIp);
  if (srcMac.length !== 6 || dstMac.length !== 6) {
    throw new CaptureError('CAPTURE_BAD_ARGUMENT', 'MAC addresses are 6 bytes', -1);
  }

  const ipLen = IPV4_HEADER_LEN + TCP_HEADER_LEN + payload.length;
  const f = new Uint8Array(ETH_HEADER_LEN + ipLen);
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  f.set(dstMac, 0);
  f.set(srcMac, 6);
  v.setUint16(12, 0x0800);

  const ip = ETH_HEADER_LEN;
  f[ip] = 0x45; // version 4, IHL 5
  v.setUint16(ip + 2, ipLen);
  v.setUint16(ip + 4, ipId);
  v.setUint16(ip + 6, 0x4000); // DF, fragment offset 0
  f[ip + 8] = ttl;
  f[ip + 9] = 6; // TCP
  v.setUint32(ip + 12, srcIp);
  v.setUint32(ip + 16, dstIp);
  v.setUint16(ip + 10, finishChecksum(sum16(f, ip, ip + IPV4_HEADER_LEN)));

  const tcp = ip + IPV4_HEADER_LEN;
  v.setUint16(tcp, spec.src.port);
  v.setUint16(tcp + 2, spec.dst.port);
  v.setUint32(tcp + 4, spec.seq);
  v.setUint32(tcp + 8, spec.ack);
  f[tcp + 12] = 5 << 4;
  f[tcp + 13] = spec.flags;
  v.setUint16(tcp + 14, window);
  f.set(payload, tcp + TCP_HEADER_LEN);
  v.setUint16(tcp + 16, tcpChecksum(f, ip + 12, tcp, f.length));
  return f;
}

/**
 * TCP checksum of f[tcp..end) with the IPv4 pseudo header whose two addresses start at
 * f[addrs] (source then destination, as in the IPv4 header). The checksum field must be
 * zero, or the result is the value that makes the segment verify (0 when it already does).
 */
export function tcpChecksum(f: Uint8Array, addrs: number, tcp: number, end: number): number {
  let acc = sum16(f, addrs, addrs + 8);
  acc += 6 + (end - tcp); // zero byte, protocol, TCP length
  return finishChecksum(sum16(f, tcp, end, acc));
}

function checkField(n: number, max: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new CaptureError('CAPTURE_BAD_ARGUMENT', `${what} out of range 0..${max}: ${n}`, -1);
  }
}
