// The container-parser contract shared by the classic pcap and pcapng parsers, format
// detection, and the classic pcap parser itself.
//
// A parser is a step function over bytes it does not own: given buf[off..] it either
// consumes one header/record/block (returning its length) or says how many bytes it needs
// (returning -need) without reading past buf.length. That lets one parser serve both an
// in-memory buffer and a stream of chunks (see reader.ts), and every `need` is checked
// against a fixed bound before anyone allocates for it.

import { isSupportedLinkType } from './decode.js';
import { CaptureError } from './types.js';

/** No record or block larger than this is accepted, whatever the file's snaplen says. */
export const MAX_RECORD = 64 * 1024 * 1024;

export interface ContainerOptions {
  /** Accept records longer than the file's snaplen (still bounded by MAX_RECORD). */
  ignoreSnaplen: boolean;
  /** What to do with a packet on a link type we cannot decode. */
  unsupportedLinkType: 'throw' | 'skip';
}

export interface ContainerParser {
  /** True once the file header (pcap global header or the first SHB) has been read. */
  readonly started: boolean;
  /** See the file comment. `abs` is the file offset of buf[off], for error reports. */
  step(buf: Uint8Array, off: number, abs: number): number;
  // The packet record consumed by the last step, when it consumed one (hasFrame): its
  // bytes are data[dataStart..dataEnd) (offsets, not a view: one allocation less).
  hasFrame: boolean;
  linkType: number;
  tsMicros: bigint;
  data: Uint8Array;
  dataStart: number;
  dataEnd: number;
}

export const EMPTY = new Uint8Array(0);
export const PCAPNG_SHB = 0x0a0d0d0a;

export function u32le(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}
export function u32be(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
export function u32(b: Uint8Array, o: number, le: boolean): number {
  return le ? u32le(b, o) : u32be(b, o);
}
export function u16(b: Uint8Array, o: number, le: boolean): number {
  return le ? b[o]! | (b[o + 1]! << 8) : (b[o]! << 8) | b[o + 1]!;
}

/** Recognises the format from the four bytes at buf[off]; the caller ensures they exist. */
export function detectFormat(buf: Uint8Array, off: number, abs: number): 'pcap' | 'pcapng' {
  const m = u32le(buf, off);
  switch (m) {
    case 0xa1b2c3d4:
    case 0xd4c3b2a1:
    case 0xa1b23c4d:
    case 0x4d3cb2a1:
      return 'pcap';
    case PCAPNG_SHB:
      return 'pcapng';
    case 0xa1b2cd34:
    case 0x34cdb2a1:
      throw new CaptureError('CAPTURE_BAD_MAGIC', 'modified (Kuznetsov) pcap is not supported', abs);
    default:
      throw new CaptureError('CAPTURE_BAD_MAGIC', `not a pcap or pcapng file (magic 0x${m.toString(16).padStart(8, '0')})`, abs);
  }
}

export class ClassicPcapParser implements ContainerParser {
  started = false;
  hasFrame = false;
  linkType = 0;
  tsMicros = 0n;
  data: Uint8Array = EMPTY;
  dataStart = 0;
  dataEnd = 0;
  private le = true;
  private nanos = false;
  private limit = MAX_RECORD;
  private readonly opts: ContainerOptions;

  constructor(opts: ContainerOptions) {
    this.opts = opts;
  }

  step(buf: Uint8Array, off: number, abs: number): number {
    this.hasFrame = false;
    const avail = buf.length - off;
    if (!this.started) return this.header(buf, off, abs, avail);
    if (avail < 16) return -16;
    const le = this.le;
    const incl = u32(buf, off + 8, le);
    if (incl > this.limit) {
      const why = this.limit === MAX_RECORD ? `the ${MAX_RECORD}-byte limit` : `snaplen ${this.limit}`;
      throw new CaptureError('CAPTURE_BAD_RECORD', `captured length ${incl} exceeds ${why}`, abs + 8);
    }
    if (avail < 16 + incl) return -(16 + incl);
    const sec = u32(buf, off, le);
    const frac = u32(buf, off + 4, le);
    // sec * 1e6 + frac stays below 2^53, so the Number arithmetic is exact.
    this.tsMicros = BigInt(sec * 1000000 + (this.nanos ? Math.floor(frac / 1000) : frac));
    this.data = buf;
    this.dataStart = off + 16;
    this.dataEnd = off + 16 + incl;
    this.hasFrame = true;
    return 16 + incl;
  }

  private header(buf: Uint8Array, off: number, abs: number, avail: number): number {
    if (avail < 24) return -24;
    const m = u32le(buf, off);
    this.le = m === 0xa1b2c3d4 || m === 0xa1b23c4d;
    this.nanos = m === 0xa1b23c4d || m === 0x4d3cb2a1;
    if (!this.le && m !== 0xd4c3b2a1 && m !== 0x4d3cb2a1) {
      throw new CaptureError('CAPTURE_BAD_MAGIC', 'not a classic pcap header', abs);
    }
    const major = u16(buf, off + 4, this.le);
    if (major !== 2) {
      throw new CaptureError('CAPTURE_UNSUPPORTED_VERSION', `pcap version ${major}.${u16(buf, off + 6, this.le)}`, abs + 4);
    }
    const snaplen = u32(buf, off + 16, this.le);
    // Snaplen 0 appears in some writers' output and means "unknown": only the fixed
    // bound applies then.
    if (snaplen !== 0 && snaplen < MAX_RECORD && !this.opts.ignoreSnaplen) this.limit = snaplen;
    // The upper 16 bits carry FCS information (and reserved bits), not the link type.
    this.linkType = u32(buf, off + 20, this.le) & 0xffff;
    if (!isSupportedLinkType(this.linkType) && this.opts.unsupportedLinkType === 'throw') {
      throw new CaptureError('CAPTURE_UNSUPPORTED_LINKTYPE', `link type ${this.linkType}`, abs + 20);
    }
    this.started = true;
    return 24;
  }
}
