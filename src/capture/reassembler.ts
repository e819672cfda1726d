// TCP reassembly: a table of connections keyed by 4-tuple, each with two HalfStreams,
// reporting in-order data, gaps and ends through a handler object (plain callbacks: no
// EventEmitter cost per chunk, and typed).
//
// Roles: the sender of a SYN (without ACK) is the client, the sender of a SYN+ACK the
// server. Without a SYN, a port listed in `serverPorts` marks the server; failing that,
// the lower port is the server (ephemeral ports are high; Lustre clients use 1021-1023
// against 988, which this rule also gets right); on equal ports, the lower address text.
//
// Holes become gaps (reported, never guessed) when: both sides have sent a FIN (the
// connection is over); a RST arrives; more than maxBufferedBytes wait behind the hole;
// finish() is called. A FIN from one side alone does not close a hole, because the
// retransmission that fills it usually arrives after that FIN. Bytes the capture cut
// off (wireLen > payload.length) are reported as soon as the stream reaches them.
// A connection ends (once) at both FINs, at RST, on 4-tuple reuse (a SYN with a new
// ISN) or at finish(). Segments of a recently ended connection are counted as late and
// dropped, instead of opening a bogus mid-stream connection.

import { HalfStream } from './tcp-stream.js';
import type { StreamStats } from './tcp-stream.js';
import { TCP_FLAGS } from './types.js';
import type { CapturedPacket, TcpEndpoint } from './types.js';

/** The side that sent the bytes. */
export type Direction = 'client' | 'server';
export type EndReason = 'fin' | 'rst' | 'eof' | 'reused';

export interface TcpConnection {
  /** 1, 2, ... in order of first appearance. */
  readonly id: number;
  readonly client: TcpEndpoint;
  readonly server: TcpEndpoint;
  /** Which rule decided the roles (see the file comment). */
  readonly roles: 'syn' | 'syn-ack' | 'server-port' | 'lower-port';
  readonly firstFrame: number;
}

export interface ReassemblyHandler {
  open?(conn: TcpConnection): void;
  /**
   * In-order bytes, all from one segment (frame). `bytes` is a view into the packet's
   * payload when it arrived in order, else a private copy; do not write to it.
   */
  data?(conn: TcpConnection, from: Direction, bytes: Uint8Array, frame: number, tsMicros: bigint): void;
  /** Bytes that never arrived. atFrame: the frame after the hole, or the one cut short. */
  gap?(conn: TcpConnection, from: Direction, missingBytes: number, atFrame: number): void;
  /** Once per connection, after its last data and gap. */
  end?(conn: TcpConnection, reason: EndReason): void;
}

export interface ReassemblerOptions {
  /** Ports that mark the server side of a connection seen without its SYN (e.g. 988). */
  serverPorts?: Iterable<number>;
  /** Per direction: buffered bytes beyond a hole before it is reported as a gap. 16 MiB. */
  maxBufferedBytes?: number;
}

/** What push() needs: a CapturedPacket fits; tsMicros and wireLen are optional. */
export type TcpSegment = Pick<CapturedPacket, 'frame' | 'src' | 'dst' | 'seq' | 'ack' | 'flags' | 'payload'> & {
  tsMicros?: bigint;
  wireLen?: number;
};

export interface ReassemblyStats extends StreamStats {
  connections: number;
  /** Segments of connections already ended (late retransmissions, final ACKs ...). */
  lateSegments: number;
}

interface Conn {
  info: TcpConnection;
  client: HalfStream;
  server: HalfStream;
  clientKey: string;
  serverKey: string;
}

const RECENT_LIMIT = 4096;

export class TcpReassembler {
  readonly stats: ReassemblyStats = {
    connections: 0, lateSegments: 0, duplicateBytes: 0, ignoredSegments: 0, gaps: 0, gapBytes: 0,
  };
  private readonly handler: ReassemblyHandler;
  private readonly serverPorts: ReadonlySet<number>;
  private readonly maxBuffered: number;
  // conns.get(srcKey).get(dstKey): both orders are registered, so no key is built per packet.
  private readonly conns = new Map<string, Map<string, Conn>>();
  private readonly keys = new WeakMap<TcpEndpoint, string>();
  // Recently ended 4-tuples: their stray segments must not open a mid-stream connection.
  private readonly recent = new Set<string>();
  private nextId = 1;

  constructor(handler: ReassemblyHandler, opts: ReassemblerOptions = {}) {
    this.handler = handler;
    this.serverPorts = new Set(opts.serverPorts ?? []);
    this.maxBuffered = opts.maxBufferedBytes ?? 16 * 1024 * 1024;
  }

  push(p: TcpSegment): void {
    const { SYN, ACK, FIN, RST } = TCP_FLAGS;
    const srcKey = this.key(p.src);
    const dstKey = this.key(p.dst);
    let c = this.conns.get(srcKey)?.get(dstKey);
    const pureSyn = (p.flags & (SYN | ACK)) === SYN;
    const wireLen = p.wireLen ?? p.payload.length;
    if (c !== undefined && pureSyn) {
      // A SYN with a new ISN on a connection that carried data: the 4-tuple was reused.
      const h = c.clientKey === srcKey ? c.client : c.server;
      if (h.active && h.initialSeq !== ((p.seq + 1) >>> 0)) {
        this.close(c, 'reused');
        c = undefined;
      }
    }
    if (c === undefined) {
      const interesting = (p.flags & SYN) !== 0 || (wireLen > 0 && (p.flags & RST) === 0);
      if (!interesting) return;
      if (!(p.flags & SYN) && this.recent.has(pairKey(srcKey, dstKey))) {
        this.stats.lateSegments++;
        return;
      }
      c = this.open(p, srcKey, dstKey);
    }
    const fromClient = c.clientKey === srcKey;
    if (p.flags & RST) {
      this.close(c, 'rst');
      return;
    }
    (fromClient ? c.client : c.server).segment(p.seq, p.flags, p.payload, wireLen, p.frame, p.tsMicros ?? 0n);
    // Both FINs seen: nothing more will be sent, so holes before them are gaps now.
    if (p.flags & FIN && c.client.finSeen && c.server.finSeen) this.close(c, 'fin');
  }

  /** End of input: reports every hole and ends every open connection, oldest first. */
  finish(): void {
    const all = new Set<Conn>();
    for (const m of this.conns.values()) for (const c of m.values()) all.add(c);
    for (const c of [...all].sort((a, b) => a.info.id - b.info.id)) {
      this.close(c, c.client.finished && c.server.finished ? 'fin' : 'eof');
    }
    this.recent.clear();
  }

  private open(p: TcpSegment, srcKey: string, dstKey: string): Conn {
    const { SYN, ACK } = TCP_FLAGS;
    let srcIsClient: boolean;
    let roles: TcpConnection['roles'];
    if (p.flags & SYN) {
      srcIsClient = (p.flags & ACK) === 0;
      roles = srcIsClient ? 'syn' : 'syn-ack';
    } else if (this.serverPorts.has(p.src.port) !== this.serverPorts.has(p.dst.port)) {
      srcIsClient = this.serverPorts.has(p.dst.port);
      roles = 'server-port';
    } else {
      srcIsClient = p.src.port !== p.dst.port ? p.src.port > p.dst.port : p.src.ip > p.dst.ip;
      roles = 'lower-port';
    }
    const client = srcIsClient ? p.src : p.dst;
    const server = srcIsClient ? p.dst : p.src;
    const info: TcpConnection = Object.freeze({
      id: this.nextId++,
      client: Object.freeze({ ip: client.ip, port: client.port }),
      server: Object.freeze({ ip: server.ip, port: server.port }),
      roles,
      firstFrame: p.frame,
    });
    const h = this.handler;
    const half = (from: Direction): HalfStream =>
      new HalfStream(
        this.maxBuffered,
        this.stats,
        (bytes, frame, ts) => h.data?.(info, from, bytes, frame, ts),
        (n, atFrame) => h.gap?.(info, from, n, atFrame),
      );
    const c: Conn = {
      info,
      client: half('client'),
      server: half('server'),
      clientKey: srcIsClient ? srcKey : dstKey,
      serverKey: srcIsClient ? dstKey : srcKey,
    };
    this.table(c.clientKey).set(c.serverKey, c);
    this.table(c.serverKey).set(c.clientKey, c);
    this.recent.delete(pairKey(srcKey, dstKey));
    this.stats.connections++;
    h.open?.(info);
    return c;
  }

  private close(c: Conn, reason: EndReason): void {
    c.client.flush();
    c.server.flush();
    this.untable(c.clientKey, c.serverKey);
    this.untable(c.serverKey, c.clientKey);
    if (this.recent.size >= RECENT_LIMIT) this.recent.delete(this.recent.values().next().value!);
    this.recent.add(pairKey(c.clientKey, c.serverKey));
    this.handler.end?.(c.info, reason);
  }

  private table(k: string): Map<string, Conn> {
    let m = this.conns.get(k);
    if (m === undefined) this.conns.set(k, (m = new Map()));
    return m;
  }

  private untable(a: string, b: string): void {
    const m = this.conns.get(a);
    if (m === undefined) return;
    m.delete(b);
    if (m.size === 0) this.conns.delete(a);
  }

  // Endpoint objects from the reader are cached there, so this usually costs one
  // WeakMap lookup and no string building.
  private key(ep: TcpEndpoint): string {
    let k = this.keys.get(ep);
    if (k === undefined) {
      k = `${ep.ip}/${ep.port}`;
      this.keys.set(ep, k);
    }
    return k;
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a} ${b}` : `${b} ${a}`;
}

/** Feeds every packet to a new TcpReassembler, then finishes it. Returns its stats. */
export function reassemble(
  packets: Iterable<TcpSegment>, handler: ReassemblyHandler, opts: ReassemblerOptions = {},
): ReassemblyStats {
  const r = new TcpReassembler(handler, opts);
  for (const p of packets) r.push(p);
  r.finish();
  return r.stats;
}
