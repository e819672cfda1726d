// pcapng parser: SHB (either byte order, several sections), IDB (if_tsresol, if_tsoffset),
// EPB, SPB and the obsolete Packet Block (read rather than skipped, because Wireshark
// counts it as a frame and our frame numbers must match Wireshark's; for the same reason
// custom, systemd-journal and Sysdig blocks are counted as frames that hold no packet).
// Every other block type is skipped by its length.

import { isSupportedLinkType, NOT_A_PACKET } from './decode.js';
import { EMPTY, MAX_RECORD, PCAPNG_SHB, u16, u32, u32le } from './pcap-classic.js';
import type { ContainerOptions, ContainerParser } from './pcap-classic.js';
import { CaptureError } from './types.js';

const IDB = 1;
const OPB = 2;
const SPB = 3;
const EPB = 6;
/** Custom blocks (copyable or not), systemd journal export, Sysdig event blocks. */
const FRAME_BLOCKS = new Set([0x00000bad, 0x40000bad, 0x9, 0x204, 0x208, 0x216, 0x217, 0x221, 0x222]);
const OPT_TSRESOL = 9;
const OPT_TSOFFSET = 14;

const roundUp4 = (n: number): number => n + ((4 - (n % 4)) % 4);

type TsConv = (hi: number, lo: number) => bigint;

interface Iface {
  linkType: number;
  /** 0 = no limit beyond MAX_RECORD. */
  snaplen: number;
  supported: boolean;
  ts: TsConv;
}

export class PcapngParser implements ContainerParser {
  started = false;
  hasFrame = false;
  linkType = 0;
  tsMicros = 0n;
  data: Uint8Array = EMPTY;
  dataStart = 0;
  dataEnd = 0;
  private le = true;
  private ifaces: Iface[] = [];
  private readonly opts: ContainerOptions;

  constructor(opts: ContainerOptions) {
    this.opts = opts;
  }

  step(buf: Uint8Array, off: number, abs: number): number {
    this.hasFrame = false;
    const avail = buf.length - off;
    // 12 bytes hold type, length and, for an SHB, the byte-order magic that says how to
    // read the length; every block is at least 12 bytes long.
    if (avail < 12) return -12;
    let le = this.le;
    let type: number;
    if (u32le(buf, off) === PCAPNG_SHB) {
      type = PCAPNG_SHB; // a palindrome: the same in both byte orders
      const bom = u32le(buf, off + 8);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else throw new CaptureError(this.started ? 'CAPTURE_BAD_BLOCK' : 'CAPTURE_BAD_MAGIC', 'bad section byte-order magic', abs + 8);
    } else {
      type = u32(buf, off, le);
    }
    const raw = u32(buf, off + 4, le);
    if (raw < 12 || raw > MAX_RECORD) throw new CaptureError('CAPTURE_BAD_BLOCK', `block length ${raw}`, abs + 4);
    // Lengths must be multiples of 4, but some writers leave the padding out; Wireshark
    // rounds both length fields up, and so do we, to read what it reads.
    const len = roundUp4(raw);
    if (avail < len) return -len;
    if (roundUp4(u32(buf, off + len - 4, le)) !== len) {
      throw new CaptureError('CAPTURE_BAD_BLOCK', `trailing block length differs from ${raw}`, abs + len - 4);
    }
    switch (type) {
      case PCAPNG_SHB:
        this.section(buf, off, abs, len, le);
        break;
      case IDB:
        this.interface(buf, off, abs, len);
        break;
      case EPB:
      case OPB:
        this.packet(buf, off, abs, len, type);
        break;
      case SPB:
        this.simplePacket(buf, off, abs, len);
        break;
      default:
        // Records that are not packets but that Wireshark lists as frames: counted, so
        // that frame numbers stay Wireshark's.
        if (FRAME_BLOCKS.has(type)) {
          this.linkType = NOT_A_PACKET;
          this.hasFrame = true;
        }
        break; // anything else (NRB, ISB, DSB, unknown types): skipped by length
    }
    return len;
  }

  private section(buf: Uint8Array, off: number, abs: number, len: number, le: boolean): void {
    if (len < 28) throw new CaptureError('CAPTURE_BAD_BLOCK', `section header block of ${len} bytes`, abs + 4);
    const major = u16(buf, off + 12, le);
    if (major !== 1) {
      throw new CaptureError('CAPTURE_UNSUPPORTED_VERSION', `pcapng version ${major}.${u16(buf, off + 14, le)}`, abs + 12);
    }
    // Interfaces are numbered per section.
    this.le = le;
    this.ifaces = [];
    this.started = true;
  }

  private interface(buf: Uint8Array, off: number, abs: number, len: number): void {
    if (len < 20) throw new CaptureError('CAPTURE_BAD_BLOCK', `interface block of ${len} bytes`, abs + 4);
    const le = this.le;
    const linkType = u16(buf, off + 8, le);
    const snaplen = u32(buf, off + 12, le);
    let resol = 6;
    let offsetSec = 0n;
    const end = off + len - 4;
    for (let p = off + 16; p + 4 <= end; ) {
      const code = u16(buf, p, le);
      const olen = u16(buf, p + 2, le);
      if (code === 0) break;
      if (p + 4 + olen > end) throw new CaptureError('CAPTURE_BAD_BLOCK', `option ${code} runs past its block`, abs + (p - off));
      if (code === OPT_TSRESOL && olen === 1) resol = buf[p + 4]!;
      if (code === OPT_TSOFFSET && olen === 8) {
        const a = u32(buf, p + 4, le);
        const b = u32(buf, p + 8, le);
        const [lo, hi] = le ? [a, b] : [b, a];
        offsetSec = BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
      }
      p += 4 + ((olen + 3) & ~3);
    }
    this.ifaces.push({ linkType, snaplen, supported: isSupportedLinkType(linkType), ts: tsConverter(resol, offsetSec) });
  }

  private iface(id: number, abs: number): Iface {
    const i = this.ifaces[id];
    if (i === undefined) throw new CaptureError('CAPTURE_BAD_BLOCK', `packet on undeclared interface ${id}`, abs);
    if (!i.supported && this.opts.unsupportedLinkType === 'throw') {
      throw new CaptureError('CAPTURE_UNSUPPORTED_LINKTYPE', `link type ${i.linkType} (interface ${id})`, abs);
    }
    return i;
  }

  private packet(buf: Uint8Array, off: number, abs: number, len: number, type: number): void {
    if (len < 32) throw new CaptureError('CAPTURE_BAD_BLOCK', `packet block of ${len} bytes`, abs + 4);
    const le = this.le;
    // The obsolete Packet Block has a 16-bit interface id followed by a drop count.
    const i = this.iface(type === EPB ? u32(buf, off + 8, le) : u16(buf, off + 8, le), abs + 8);
    const cap = u32(buf, off + 20, le);
    if (cap > len - 32) throw new CaptureError('CAPTURE_BAD_BLOCK', `captured length ${cap} runs past its block`, abs + 20);
    if (i.snaplen !== 0 && cap > i.snaplen && !this.opts.ignoreSnaplen) {
      throw new CaptureError('CAPTURE_BAD_BLOCK', `captured length ${cap} exceeds snaplen ${i.snaplen}`, abs + 20);
    }
    this.tsMicros = i.ts(u32(buf, off + 12, le), u32(buf, off + 16, le));
    this.emit(i, buf, off + 28, cap);
  }

  private simplePacket(buf: Uint8Array, off: number, abs: number, len: number): void {
    if (len < 16) throw new CaptureError('CAPTURE_BAD_BLOCK', `simple packet block of ${len} bytes`, abs + 4);
    const i = this.iface(0, abs);
    // The captured length is implied: the original length, cut by snaplen and the block.
    let cap = Math.min(u32(buf, off + 8, this.le), len - 16);
    if (i.snaplen !== 0) cap = Math.min(cap, i.snaplen);
    // An SPB has no timestamp: it keeps the previous packet's, so durations stay sane.
    this.emit(i, buf, off + 12, cap);
  }

  private emit(i: Iface, buf: Uint8Array, start: number, cap: number): void {
    this.linkType = i.linkType;
    this.data = buf;
    this.dataStart = start;
    this.dataEnd = start + cap;
    this.hasFrame = true;
  }
}

const TWO32 = 4294967296;
const FAST_LIMIT = 0x200000; // hi below 2^21 keeps hi * 2^32 + lo below 2^53

/** Converts a 64-bit timestamp in if_tsresol units to microseconds since the epoch. */
function tsConverter(resol: number, offsetSec: bigint): TsConv {
  const binary = (resol & 0x80) !== 0;
  const exp = resol & 0x7f;
  const slow: TsConv = (hi, lo) => {
    const v = (BigInt(hi) << 32n) | BigInt(lo);
    if (binary) return (v * 1000000n) >> BigInt(exp);
    return exp >= 6 ? v / 10n ** BigInt(exp - 6) : v * 10n ** BigInt(6 - exp);
  };
  let conv = slow;
  // Fast paths for microseconds (the default) and nanoseconds (common): Number
  // arithmetic while it is exact, one BigInt allocation per packet.
  if (!binary && exp === 6) {
    conv = (hi, lo) => (hi < FAST_LIMIT ? BigInt(hi * TWO32 + lo) : slow(hi, lo));
  } else if (!binary && exp === 9) {
    conv = (hi, lo) => {
      // (hi * 2^32 + lo) / 1000 = q * 2^32 + (r * 2^32 + lo) / 1000 with hi = 1000q + r
      const q = Math.floor(hi / 1000);
      if (q >= FAST_LIMIT) return slow(hi, lo);
      const x = (hi - q * 1000) * TWO32 + lo; // < 1000 * 2^32: exact
      let d = Math.floor(x / 1000);
      if (d * 1000 > x) d--; // guard against the division rounding up
      return BigInt(q * TWO32 + d);
    };
  }
  if (offsetSec === 0n) return conv;
  const offMicros = offsetSec * 1000000n;
  return (hi, lo) => conv(hi, lo) + offMicros;
}
