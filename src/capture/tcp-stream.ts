// One direction of a TCP connection: turns segments into in-order bytes.
//
// Positions are kept as absolute stream offsets (Numbers, exact to 2^53) rather than
// 32-bit sequence numbers: a segment's offset is the expected offset plus the signed
// 32-bit distance of its seq from the expected seq, which handles wraparound for free as
// long as segments are within 2^31 of where the stream is, which TCP guarantees.

import { TCP_FLAGS } from './types.js';

/**
 * Bytes a buffered piece is charged beyond its data, so that many tiny pieces still hit
 * the bound (which also caps the piece count, and with it the cost of array inserts).
 */
const PIECE_OVERHEAD = 128;
/** Segments further ahead than the largest TCP window (2^30) are bogus, not future data. */
const MAX_AHEAD = 2 ** 30;

interface Piece {
  start: number;
  /** end - start may exceed data.length: the capture cut the segment short. */
  end: number;
  data: Uint8Array;
  frame: number;
  ts: bigint;
}

export interface StreamStats {
  /** Bytes dropped because they had been delivered or buffered already. */
  duplicateBytes: number;
  /** Segments ignored: implausibly far ahead, or after the FIN. */
  ignoredSegments: number;
  gaps: number;
  gapBytes: number;
}

export type DataSink = (bytes: Uint8Array, frame: number, tsMicros: bigint) => void;
export type GapSink = (missingBytes: number, atFrame: number) => void;

export class HalfStream {
  private started = false;
  private isn = 0; // seq of stream offset 0
  private nextAbs = 0; // offset of the next byte to deliver
  private pieces: Piece[] = []; // sorted, non-overlapping, all starting after nextAbs
  private buffered = 0;
  private finAbs = -1;
  private lastFrame = 0;
  private pendingGap = 0;
  private pendingGapFrame = 0;
  private readonly maxBuffered: number;
  private readonly stats: StreamStats;
  private readonly onData: DataSink;
  private readonly onGap: GapSink;

  constructor(maxBuffered: number, stats: StreamStats, onData: DataSink, onGap: GapSink) {
    this.maxBuffered = maxBuffered;
    this.stats = stats;
    this.onData = onData;
    this.onGap = onGap;
  }

  get hasStarted(): boolean {
    return this.started;
  }
  /** The seq of offset 0: the ISN + 1 after a SYN, else the first segment's seq. */
  get initialSeq(): number {
    return this.isn;
  }
  get finSeen(): boolean {
    return this.finAbs >= 0;
  }
  /** True once every byte before the FIN has been delivered or reported missing. */
  get finished(): boolean {
    return this.finAbs >= 0 && this.nextAbs >= this.finAbs;
  }
  /** True when data has been seen (used to tell a reused 4-tuple from a repeated SYN). */
  get active(): boolean {
    return this.nextAbs > 0 || this.pieces.length > 0 || this.finAbs >= 0;
  }

  /** Feeds one segment sent in this direction. RST is the connection's business. */
  segment(seq: number, flags: number, payload: Uint8Array, wireLen: number, frame: number, ts: bigint): void {
    this.lastFrame = frame;
    const syn = (flags & TCP_FLAGS.SYN) !== 0;
    const fin = (flags & TCP_FLAGS.FIN) !== 0;
    if (!this.started) {
      // A pure ACK says little (keepalives use seq - 1): only SYN, data or FIN start it.
      if (!syn && wireLen === 0 && !fin) return;
      this.started = true;
      this.isn = syn ? (seq + 1) >>> 0 : seq;
    }
    const dataSeq = syn ? (seq + 1) >>> 0 : seq; // a SYN occupies one sequence number
    let start = this.nextAbs + ((dataSeq - ((this.isn + this.nextAbs) >>> 0)) | 0);
    let end = start + wireLen;
    if (start > this.nextAbs + MAX_AHEAD) {
      this.stats.ignoredSegments++;
      return;
    }
    if (fin && this.finAbs < 0 && end >= this.nextAbs) this.finAbs = end;
    if (this.finAbs >= 0 && end > this.finAbs) {
      if (start >= this.finAbs) {
        if (wireLen > 0) this.stats.ignoredSegments++;
        return;
      }
      end = this.finAbs;
    }
    if (end <= this.nextAbs) {
      this.stats.duplicateBytes += end - start;
      return;
    }
    let data = payload;
    if (start < this.nextAbs) {
      // A retransmission overlapping what was delivered: the first copy won.
      const cut = this.nextAbs - start;
      this.stats.duplicateBytes += cut;
      data = data.subarray(Math.min(cut, data.length));
      start = this.nextAbs;
    }
    if (end - start < data.length) data = data.subarray(0, end - start);
    if (this.pieces.length === 0 && start === this.nextAbs) {
      // In order with nothing buffered, the common case: deliver the view, no copy.
      this.deliver(start, end, data, frame, ts);
    } else {
      this.insert(start, end, data, frame, ts);
      this.release();
      // Beyond the bound, give up on the oldest hole: report it and move past it.
      while (this.buffered > this.maxBuffered && this.pieces.length > 0) this.skipHole();
    }
  }

  /**
   * Gives up on every hole: reports it, releases what was buffered behind it, and
   * reports the bytes missing before a FIN. Called at RST, close and end of input.
   */
  flush(): void {
    while (this.pieces.length > 0) this.skipHole();
    if (this.finAbs > this.nextAbs) this.addGap(this.finAbs - this.nextAbs, this.lastFrame);
    if (this.finAbs > this.nextAbs) this.nextAbs = this.finAbs;
    this.flushGap();
  }

  private skipHole(): void {
    const p = this.pieces[0]!;
    this.addGap(p.start - this.nextAbs, p.frame);
    this.nextAbs = p.start;
    this.release();
  }

  private release(): void {
    const ps = this.pieces;
    let k = 0;
    for (; k < ps.length && ps[k]!.start === this.nextAbs; k++) {
      const p = ps[k]!;
      this.buffered -= p.data.length + PIECE_OVERHEAD;
      this.deliver(p.start, p.end, p.data, p.frame, p.ts);
    }
    if (k > 0) ps.splice(0, k); // once, not a shift() per piece
  }

  private deliver(start: number, end: number, data: Uint8Array, frame: number, ts: bigint): void {
    if (data.length > 0) {
      this.flushGap();
      this.onData(data, frame, ts);
    }
    // Bytes on the wire that the capture cut off will never come: report them now.
    if (end - start > data.length) this.addGap(end - start - data.length, frame);
    this.nextAbs = end;
  }

  /** Buffers the parts of [start, end) no buffered piece covers (first copy wins). */
  private insert(start: number, end: number, data: Uint8Array, frame: number, ts: bigint): void {
    const ps = this.pieces;
    // First piece ending after start (ends are sorted too, as pieces do not overlap).
    let lo = 0;
    let hi = ps.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ps[mid]!.end <= start) lo = mid + 1;
      else hi = mid;
    }
    let i = lo;
    let cur = start;
    while (cur < end) {
      const p = ps[i];
      if (p !== undefined && p.start <= cur) {
        this.stats.duplicateBytes += Math.min(end, p.end) - cur;
        cur = p.end;
        i++;
        continue;
      }
      const stop = p === undefined ? end : Math.min(end, p.start);
      // Copy: buffered data must not pin the caller's (possibly large) capture chunk.
      const part = data.slice(Math.min(cur - start, data.length), Math.min(stop - start, data.length));
      ps.splice(i, 0, { start: cur, end: stop, data: part, frame, ts });
      this.buffered += part.length + PIECE_OVERHEAD;
      i++;
      cur = stop;
    }
  }

  private addGap(n: number, frame: number): void {
    if (n <= 0) return;
    if (this.pendingGap === 0) this.pendingGapFrame = frame;
    this.pendingGap += n;
  }

  /** Adjacent missing ranges (a hole, then a cut-off tail ...) are reported as one gap. */
  private flushGap(): void {
    if (this.pendingGap === 0) return;
    const n = this.pendingGap;
    this.pendingGap = 0;
    this.stats.gaps++;
    this.stats.gapBytes += n;
    this.onGap(n, this.pendingGapFrame);
  }
}
