// Writes classic pcap files (little-endian, magic 0xa1b2c3d4, microsecond timestamps,
// LINKTYPE_ETHERNET, snaplen 262144) with synthesized TCP flows, so traffic recorded by a
// test endpoint can be opened in Wireshark.

import { closeSync, openSync, writeSync } from 'node:fs';
import { buildTcpFrame, MAX_TCP_PAYLOAD } from './frame-builder.js';
import { checkPort, checkU32, parseIPv4 } from './net.js';
import { CaptureError, LINKTYPE, TCP_FLAGS } from './types.js';
import type { TcpEndpoint } from './types.js';

export const PCAP_SNAPLEN = 262144;
const GLOBAL_HEADER_LEN = 24;
const RECORD_HEADER_LEN = 16;
const FILE_BUFFER = 1 << 16;
const WINDOW = 0xffff;

/** Anything with write(bytes); Node Writables work (their end(cb) is awaited by close()). */
export interface PcapSink {
  write(chunk: Uint8Array): unknown;
  end?: (...args: never[]) => unknown;
}

export interface PcapWriterOptions {
  /** Microseconds since the epoch. Default: wall clock at construction + a monotonic timer. */
  clock?: () => bigint;
}

export interface FlowOptions {
  /** Initial sequence numbers; by default derived from the 4-tuple, so output is reproducible. */
  clientIsn?: number;
  serverIsn?: number;
}

export type FlowSide = 'client' | 'server';

export interface PcapFlow {
  readonly client: TcpEndpoint;
  readonly server: TcpEndpoint;
  /**
   * One logical message from `from`: as few PSH+ACK segments as possible (at most
   * MAX_TCP_PAYLOAD bytes each), never shared with another message. When the bytes in
   * flight would exceed the 65535-byte window, the peer first sends a pure ACK, so
   * Wireshark's analysis stays quiet. An empty payload writes nothing.
   */
  send(from: FlowSide, payload: Uint8Array): void;
  /** FIN+ACK from `initiator` (default client), FIN+ACK back, final ACK. */
  close(initiator?: FlowSide): void;
}

export class PcapWriter {
  private readonly sink: PcapSink | undefined;
  private readonly fd: number | undefined;
  private readonly clock: () => bigint;
  private fileBuf: Uint8Array | undefined;
  private fileFill = 0;
  private lastTs = 0n;
  private closed = false;
  private packets = 0;

  constructor(sink: PcapSink | string, opts: PcapWriterOptions = {}) {
    this.clock = opts.clock ?? realClock();
    if (typeof sink === 'string') {
      this.fd = openSync(sink, 'w');
      this.fileBuf = new Uint8Array(FILE_BUFFER);
    } else {
      this.sink = sink;
    }
    const h = new Uint8Array(GLOBAL_HEADER_LEN);
    const v = new DataView(h.buffer);
    v.setUint32(0, 0xa1b2c3d4, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 4, true);
    // thiszone and sigfigs stay 0, as every modern writer leaves them
    v.setUint32(16, PCAP_SNAPLEN, true);
    v.setUint32(20, LINKTYPE.ETHERNET, true);
    this.emit(h);
  }

  /** Number of packet records written so far. */
  get packetCount(): number {
    return this.packets;
  }

  /** The writer clock, clamped so timestamps never go backwards. */
  now(): bigint {
    const t = this.clock();
    if (t > this.lastTs) this.lastTs = t;
    return this.lastTs;
  }

  /** Starts a TCP connection: writes SYN, SYN+ACK, ACK. */
  flow(client: TcpEndpoint, server: TcpEndpoint, opts: FlowOptions = {}): PcapFlow {
    this.checkOpen();
    return new Flow(this, client, server, opts);
  }

  /**
   * Writes one record as given: no clamping of `tsMicros`, so tests can write any order.
   * `origLen` (default frame.length) is the on-the-wire length, for snaplen-cut frames.
   */
  writePacket(tsMicros: bigint, frame: Uint8Array, origLen: number = frame.length): void {
    this.checkOpen();
    if (tsMicros < 0n || tsMicros >= 0x100000000n * 1000000n) {
      throw new CaptureError('CAPTURE_BAD_ARGUMENT', `timestamp out of pcap range: ${tsMicros}`, -1);
    }
    if (frame.length > PCAP_SNAPLEN) {
      throw new CaptureError('CAPTURE_BAD_ARGUMENT', `frame of ${frame.length} bytes exceeds snaplen ${PCAP_SNAPLEN}`, -1);
    }
    checkU32(origLen, 'origLen');
    if (origLen < frame.length) throw new CaptureError('CAPTURE_BAD_ARGUMENT', 'origLen below frame length', -1);
    const rec = new Uint8Array(RECORD_HEADER_LEN + frame.length);
    const v = new DataView(rec.buffer);
    v.setUint32(0, Number(tsMicros / 1000000n), true);
    v.setUint32(4, Number(tsMicros % 1000000n), true);
    v.setUint32(8, frame.length, true);
    v.setUint32(12, origLen, true);
    rec.set(frame, RECORD_HEADER_LEN);
    this.emit(rec);
    this.packets++;
  }

  /** Pushes buffered bytes to the file (no-op for sinks, which get every record at once). */
  flush(): void {
    if (this.fd !== undefined && this.fileBuf !== undefined && this.fileFill > 0) {
      writeAll(this.fd, this.fileBuf.subarray(0, this.fileFill));
      this.fileFill = 0;
    }
  }

  /** Flushes and closes the file or ends the sink. Calling it again does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fileBuf = undefined;
      return;
    }
    const end = this.sink?.end as ((...a: unknown[]) => unknown) | undefined;
    if (end === undefined) return;
    // Node streams take a callback (and fire it on 'finish'); a custom end() without
    // parameters may return a promise. Never wait on a callback nobody will call.
    if (end.length >= 1) {
      await new Promise<void>((resolve, reject) => {
        const sink = this.sink as { once?: (ev: string, f: (e: unknown) => void) => unknown };
        sink.once?.('error', reject);
        end.call(this.sink, () => resolve());
      });
    } else {
      await end.call(this.sink);
    }
  }

  private emit(bytes: Uint8Array): void {
    if (this.sink !== undefined) {
      this.sink.write(bytes);
      return;
    }
    const buf = this.fileBuf!;
    if (this.fileFill + bytes.length > buf.length) {
      this.flush();
      if (bytes.length > buf.length) {
        writeAll(this.fd!, bytes);
        return;
      }
    }
    buf.set(bytes, this.fileFill);
    this.fileFill += bytes.length;
  }

  private checkOpen(): void {
    if (this.closed) throw new CaptureError('CAPTURE_CLOSED', 'PcapWriter is closed', -1);
  }
}

class Flow implements PcapFlow {
  readonly client: TcpEndpoint;
  readonly server: TcpEndpoint;
  private readonly writer: PcapWriter;
  // Index 0 is the client, 1 the server.
  private readonly nxt: [number, number];
  private readonly acked: [number, number]; // highest ack each side has sent
  private readonly ipId: [number, number] = [1, 1];
  private closed = false;

  constructor(writer: PcapWriter, client: TcpEndpoint, server: TcpEndpoint, opts: FlowOptions) {
    parseIPv4(client.ip);
    parseIPv4(server.ip);
    checkPort(client.port, 'client');
    checkPort(server.port, 'server');
    const cIsn = opts.clientIsn ?? fnv32(`${client.ip}:${client.port}>${server.ip}:${server.port}`);
    const sIsn = opts.serverIsn ?? fnv32(`${server.ip}:${server.port}>${client.ip}:${client.port}`);
    checkU32(cIsn, 'clientIsn');
    checkU32(sIsn, 'serverIsn');
    this.writer = writer;
    this.client = Object.freeze({ ip: client.ip, port: client.port });
    this.server = Object.freeze({ ip: server.ip, port: server.port });
    this.nxt = [cIsn, sIsn];
    this.acked = [0, 0]; // set by the handshake's ACKs below
    const { SYN, ACK } = TCP_FLAGS;
    this.segment(0, SYN, 0, undefined);
    this.nxt[0] = add32(cIsn, 1);
    this.segment(1, SYN | ACK, this.nxt[0], undefined);
    this.nxt[1] = add32(sIsn, 1);
    this.segment(0, ACK, this.nxt[1], undefined);
  }

  send(from: FlowSide, payload: Uint8Array): void {
    const s = sideIndex(from);
    if (this.closed) throw new CaptureError('CAPTURE_CLOSED', 'flow is closed', -1);
    const peer = 1 - s;
    for (let off = 0; off < payload.length; off += MAX_TCP_PAYLOAD) {
      const chunk = payload.subarray(off, Math.min(payload.length, off + MAX_TCP_PAYLOAD));
      const inFlight = sub32(this.nxt[s]!, this.acked[peer]!);
      if (inFlight + chunk.length > WINDOW) this.segment(peer, TCP_FLAGS.ACK, this.nxt[s]!, undefined);
      this.segment(s, TCP_FLAGS.PSH | TCP_FLAGS.ACK, this.nxt[peer]!, chunk);
      this.nxt[s] = add32(this.nxt[s]!, chunk.length);
    }
  }

  close(initiator: FlowSide = 'client'): void {
    const a = sideIndex(initiator);
    if (this.closed) throw new CaptureError('CAPTURE_CLOSED', 'flow is closed', -1);
    this.closed = true;
    const b = 1 - a;
    const { FIN, ACK } = TCP_FLAGS;
    this.segment(a, FIN | ACK, this.nxt[b]!, undefined);
    this.nxt[a] = add32(this.nxt[a]!, 1);
    this.segment(b, FIN | ACK, this.nxt[a]!, undefined);
    this.nxt[b] = add32(this.nxt[b]!, 1);
    this.segment(a, ACK, this.nxt[b]!, undefined);
  }

  private segment(s: number, flags: number, ack: number, payload: Uint8Array | undefined): void {
    const frame = buildTcpFrame({
      src: s === 0 ? this.client : this.server,
      dst: s === 0 ? this.server : this.client,
      seq: this.nxt[s]!,
      ack,
      flags,
      window: WINDOW,
      ipId: this.ipId[s]!,
      ...(payload === undefined ? {} : { payload }),
    });
    this.ipId[s] = (this.ipId[s]! + 1) & 0xffff;
    if (flags & TCP_FLAGS.ACK) this.acked[s] = ack;
    this.writer.writePacket(this.writer.now(), frame);
  }
}

function sideIndex(side: FlowSide): number {
  if (side === 'client') return 0;
  if (side === 'server') return 1;
  throw new CaptureError('CAPTURE_BAD_ARGUMENT', `side must be 'client' or 'server': ${String(side)}`, -1);
}

const add32 = (a: number, b: number): number => (a + b) >>> 0;
const sub32 = (a: number, b: number): number => (a - b) >>> 0;

function fnv32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Wall-clock start plus a monotonic timer: real time that never steps backwards. */
function realClock(): () => bigint {
  const startWall = BigInt(Date.now()) * 1000n;
  const startMono = process.hrtime.bigint();
  return () => startWall + (process.hrtime.bigint() - startMono) / 1000n;
}
