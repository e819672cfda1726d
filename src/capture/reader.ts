// Reading captures: from a buffer (readCapture), a file read in chunks (readCaptureFile)
// or any async source of chunks (readCaptureStream). All three drive the same Engine,
// which feeds container parsers (pcap-classic.ts, pcapng.ts) and the frame decoder.
//
// Bytes are never copied wholesale: records are handed out as views into the chunk they
// sit in. Only a record that straddles two chunks is copied, into a buffer sized by the
// parser's (bounded) `need`. Chunks are never reused, so payload views stay valid.

import { closeSync, openSync, readSync } from 'node:fs';
import { Decoder } from './decode.js';
import type { CaptureStats } from './decode.js';
import { ClassicPcapParser, detectFormat, EMPTY } from './pcap-classic.js';
import type { ContainerOptions, ContainerParser } from './pcap-classic.js';
import { PcapngParser } from './pcapng.js';
import { CaptureError } from './types.js';
import type { CapturedPacket, SkipReason } from './types.js';

export interface ReadOptions {
  /** Called for every frame that is not yielded (the stats count them too). */
  onSkip?: (frame: number, reason: SkipReason) => void;
  /** Accept records longer than the file's snaplen. Default false: CAPTURE_BAD_RECORD/BLOCK. */
  ignoreSnaplen?: boolean;
  /** 'throw' (default): CAPTURE_UNSUPPORTED_LINKTYPE; 'skip': count the frames and go on. */
  unsupportedLinkType?: 'throw' | 'skip';
  /** readCaptureFile only: bytes per read, default 4 MiB. */
  chunkSize?: number;
}

/** What the readers return: iterate it; `stats` fills in as you go. */
export interface CaptureReader extends Iterable<CapturedPacket> {
  readonly stats: CaptureStats;
}

export interface AsyncCaptureReader extends AsyncIterable<CapturedPacket> {
  readonly stats: CaptureStats;
}

class Engine {
  readonly decoder: Decoder;
  private readonly opts: ContainerOptions;
  private parser: ContainerParser | undefined;
  private buf: Uint8Array = EMPTY;
  private off = 0;
  private base = 0; // file offset of buf[0]
  private queue: Uint8Array[] = [];
  private qHead = 0;
  private queued = 0; // bytes in queue[qHead..], so a short input is detected in O(1)
  private ended = false;
  private frame = 0;

  constructor(opts: ReadOptions) {
    this.decoder = new Decoder(opts.onSkip);
    this.opts = { ignoreSnaplen: opts.ignoreSnaplen ?? false, unsupportedLinkType: opts.unsupportedLinkType ?? 'throw' };
  }

  push(chunk: Uint8Array): void {
    if (!(chunk instanceof Uint8Array)) {
      throw new CaptureError('CAPTURE_BAD_ARGUMENT', 'capture chunks must be Uint8Array (no string encoding)', -1);
    }
    if (chunk.length > 0) {
      this.queue.push(chunk);
      this.queued += chunk.length;
    }
  }

  end(): void {
    this.ended = true;
  }

  /**
   * The next TCP packet; null when more input is needed (or, with primeOnly, once the
   * file header has been read); undefined at the clean end of the capture.
   */
  next(primeOnly = false): CapturedPacket | null | undefined {
    for (;;) {
      let p = this.parser;
      if (p === undefined) {
        if (!this.ensure(4)) return this.starved('the file header');
        const fmt = detectFormat(this.buf, this.off, this.base + this.off);
        p = this.parser = fmt === 'pcap' ? new ClassicPcapParser(this.opts) : new PcapngParser(this.opts);
      }
      if (primeOnly && p.started) return null;
      if (this.off === this.buf.length && !this.ensure(1)) {
        if (!this.ended) return null;
        return undefined; // a clean end: the last record ended exactly here
      }
      const r = p.step(this.buf, this.off, this.base + this.off);
      if (r < 0) {
        if (!this.ensure(-r)) return this.starved(p.started ? 'a record or block' : 'the file header');
        continue;
      }
      this.off += r;
      if (p.hasFrame) {
        const pkt = this.decoder.decode(p.linkType, p.data, p.dataStart, p.dataEnd, ++this.frame, p.tsMicros);
        if (pkt !== null) return pkt;
      }
    }
  }

  private starved(what: string): null {
    if (!this.ended) return null;
    const at = this.base + this.off;
    throw new CaptureError('CAPTURE_TRUNCATED', at === 0 && this.buf.length === 0 ? 'empty input' : `input ends inside ${what}`, at);
  }

  /** Makes buf[off..off+n) contiguous; false if the input so far holds fewer bytes. */
  private ensure(n: number): boolean {
    while (this.buf.length - this.off < n) {
      const rem = this.buf.length - this.off;
      if (this.qHead >= this.queue.length) return false;
      if (rem === 0) {
        this.base += this.buf.length;
        this.buf = this.queue[this.qHead]!;
        this.off = 0;
        this.dequeue(this.buf.length);
        continue;
      }
      if (rem + this.queued < n) return false;
      // Stitch the straddling record; n was bounds-checked by the parser (MAX_RECORD).
      const st = new Uint8Array(n);
      st.set(this.buf.subarray(this.off));
      for (let fill = rem; fill < n; ) {
        const c = this.queue[this.qHead]!;
        const take = Math.min(c.length, n - fill);
        st.set(c.subarray(0, take), fill);
        fill += take;
        if (take === c.length) this.dequeue(take);
        else {
          this.queue[this.qHead] = c.subarray(take);
          this.queued -= take;
        }
      }
      this.base += this.off;
      this.buf = st;
      this.off = 0;
    }
    return true;
  }

  private dequeue(bytes: number): void {
    this.queued -= bytes;
    this.qHead++;
    if (this.qHead === this.queue.length) {
      this.queue = [];
      this.qHead = 0;
    }
  }
}

/**
 * An iterator that reuses its result object: one allocation per packet fewer than a
 * generator. Callers that keep IteratorResult objects (rare) must copy `value`.
 */
class PacketIterator implements Iterator<CapturedPacket> {
  private readonly result: { done: boolean; value: CapturedPacket } = { done: false, value: undefined as never };
  private readonly engine: Engine;
  private readonly refill: (() => boolean) | undefined;
  private readonly cleanup: (() => void) | undefined;

  constructor(engine: Engine, refill?: () => boolean, cleanup?: () => void) {
    this.engine = engine;
    this.refill = refill;
    this.cleanup = cleanup;
  }

  next(): IteratorResult<CapturedPacket> {
    try {
      for (;;) {
        const p = this.engine.next();
        if (p === undefined) return this.finish();
        if (p !== null) {
          this.result.value = p;
          return this.result;
        }
        // Needs input: pull a chunk, or end the input.
        if (this.refill === undefined || !this.refill()) this.engine.end();
      }
    } catch (e) {
      this.cleanup?.();
      throw e;
    }
  }

  return(): IteratorResult<CapturedPacket> {
    return this.finish();
  }

  private finish(): IteratorResult<CapturedPacket> {
    this.cleanup?.();
    return { done: true, value: undefined };
  }
}

/**
 * Reads a whole capture held in memory. The file header is checked at once (a bad magic
 * throws here); later errors are thrown by the iterator when it reaches them, after the
 * packets before them were yielded. Iterating again starts over.
 */
export function readCapture(bytes: Uint8Array, opts: ReadOptions = {}): CaptureReader {
  const start = (): Engine => {
    const e = new Engine(opts);
    e.push(bytes);
    e.end();
    e.next(true);
    return e;
  };
  let current = start();
  let fresh = true;
  return {
    get stats() {
      return current.decoder.stats;
    },
    [Symbol.iterator]() {
      if (!fresh) current = start();
      fresh = false;
      return new PacketIterator(current);
    },
  };
}

/**
 * Reads a capture file in chunks with synchronous reads: memory stays at a few chunks
 * whatever the file size. The file is opened when iteration starts and closed when it
 * ends, stops early (break) or throws.
 */
export function readCaptureFile(path: string, opts: ReadOptions = {}): CaptureReader {
  const chunkSize = opts.chunkSize ?? 4 * 1024 * 1024;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new CaptureError('CAPTURE_BAD_ARGUMENT', `chunkSize must be a positive integer: ${chunkSize}`, -1);
  }
  let current = new Engine(opts);
  let used = false;
  return {
    get stats() {
      return current.decoder.stats;
    },
    [Symbol.iterator]() {
      if (used) current = new Engine(opts);
      used = true;
      const engine = current;
      let fd: number | undefined = openSync(path, 'r');
      const refill = (): boolean => {
        if (fd === undefined) return false;
        const chunk = new Uint8Array(chunkSize); // fresh each time: views into it are handed out
        const n = readSync(fd, chunk, 0, chunkSize, null);
        if (n === 0) return false;
        engine.push(n === chunkSize ? chunk : chunk.subarray(0, n));
        return true;
      };
      const cleanup = (): void => {
        if (fd !== undefined) closeSync(fd);
        fd = undefined;
      };
      return new PacketIterator(engine, refill, cleanup);
    },
  };
}

/** Reads a capture from any async source of byte chunks: a Node Readable, a web stream ... */
export function readCaptureStream(source: AsyncIterable<Uint8Array>, opts: ReadOptions = {}): AsyncCaptureReader {
  const engine = new Engine(opts);
  async function* packets(): AsyncGenerator<CapturedPacket> {
    for await (const chunk of source) {
      engine.push(chunk);
      for (let p = engine.next(); p; p = engine.next()) yield p;
    }
    engine.end();
    for (let p = engine.next(); p; p = engine.next()) yield p;
  }
  return {
    get stats() {
      return engine.decoder.stats;
    },
    [Symbol.asyncIterator]: packets,
  };
}
