// pcapng reading: files converted by tshark/editcap from our pcap output, and hand-built
// files exercising both byte orders, several sections, if_tsresol/if_tsoffset, EPB, SPB,
// the obsolete Packet Block and skipped blocks. Also the other classic pcap variants.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTcpFrame, LINKTYPE, PcapWriter, readCapture } from '../../src/capture/index.js';
import type { CapturedPacket } from '../../src/capture/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const summary = (p: CapturedPacket): string =>
  `${p.frame} ${p.tsMicros} ${p.src.ip}:${p.src.port}>${p.dst.ip}:${p.dst.port} ${p.seq} ${p.ack} ${p.flags} ${p.wireLen} ${hex(p.payload)}`;
const dir = mkdtempSync(join(tmpdir(), 'capng-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// ---- a small pcapng builder (either byte order) ----
class Bytes {
  private readonly parts: number[] = [];
  constructor(readonly le: boolean) {}
  u8(...v: number[]): this { this.parts.push(...v); return this; }
  u16(v: number): this { return this.le ? this.u8(v & 255, v >>> 8) : this.u8(v >>> 8, v & 255); }
  u32(v: number): this { return this.le ? this.u16(v & 0xffff).u16(v >>> 16) : this.u16(v >>> 16).u16(v & 0xffff); }
  bytes(b: Uint8Array): this { return this.u8(...b); }
  pad(): this { while (this.parts.length % 4) this.parts.push(0); return this; }
  get length(): number { return this.parts.length; }
  done(): Uint8Array { return Uint8Array.from(this.parts); }
}
function block(le: boolean, type: number, body: (b: Bytes) => void): Uint8Array {
  const b = new Bytes(le);
  body(b);
  b.pad();
  const len = b.length + 12;
  return new Bytes(le).u32(type).u32(len).bytes(b.done()).u32(len).done();
}
const shb = (le: boolean): Uint8Array =>
  block(le, 0x0a0d0d0a, (b) => b.u32(0x1a2b3c4d).u16(1).u16(0).u32(0xffffffff).u32(0xffffffff));
function idb(le: boolean, linkType: number, snaplen: number, opts: [number, Uint8Array][] = []): Uint8Array {
  return block(le, 1, (b) => {
    b.u16(linkType).u16(0).u32(snaplen);
    for (const [code, v] of opts) b.u16(code).u16(v.length).bytes(v).pad();
    if (opts.length) b.u16(0).u16(0);
  });
}
const epb = (le: boolean, ifId: number, hi: number, lo: number, data: Uint8Array, orig = data.length): Uint8Array =>
  block(le, 6, (b) => b.u32(ifId).u32(hi).u32(lo).u32(data.length).u32(orig).bytes(data).pad().u16(1).u16(4).u32(0xdeadbeef).u16(0).u16(0));
const opb = (le: boolean, ifId: number, hi: number, lo: number, data: Uint8Array): Uint8Array =>
  block(le, 2, (b) => b.u16(ifId).u16(0).u32(hi).u32(lo).u32(data.length).u32(data.length).bytes(data));
const spb = (le: boolean, data: Uint8Array, orig = data.length): Uint8Array =>
  block(le, 3, (b) => b.u32(orig).bytes(data));

const c = { ip: '10.0.0.1', port: 1023 };
const s = { ip: '10.0.0.2', port: 988 };
const frame = (seq: number, payload: number[]): Uint8Array =>
  buildTcpFrame({ src: c, dst: s, seq, ack: 1, flags: 0x18, payload: Uint8Array.from(payload) });

const tsharkMissing = spawnSync('tshark', ['--version']).status !== 0 || spawnSync('editcap', ['--version']).status !== 0;
if (tsharkMissing) console.log('# tshark/editcap are not installed: skipping the conversion tests');

t.test('tshark/editcap conversions of our pcap read back identically', { skip: tsharkMissing && 'tshark/editcap not installed' }, async (t) => {
  const src = join(dir, 'in.pcap');
  const w = new PcapWriter(src, { clock: (() => { let n = 1_700_000_000_000_001n; return () => (n += 1234567n); })() });
  const f = w.flow(c, s);
  for (let i = 0; i < 20; i++) f.send(i % 2 ? 'server' : 'client', new Uint8Array(i * 300 + 1).fill(i));
  f.send('server', new Uint8Array(150000).fill(9));
  f.close();
  await w.close();
  const want = [...readCapture(readFileSync(src))].map(summary);

  const ng = join(dir, 'out.pcapng');
  const r = spawnSync('tshark', ['-r', src, '-F', 'pcapng', '-w', ng], { encoding: 'utf8' });
  t.equal(r.status, 0, 'tshark converted to pcapng');
  const ngBytes = readFileSync(ng);
  t.equal(ngBytes.readUInt32LE(0), 0x0a0d0d0a, 'tshark wrote pcapng');
  t.same([...readCapture(ngBytes)].map(summary), want, 'pcapng from tshark');

  const ns = join(dir, 'ns.pcap');
  t.equal(spawnSync('editcap', ['-F', 'nsecpcap', src, ns]).status, 0);
  t.equal(readFileSync(ns).readUInt32LE(0), 0xa1b23c4d, 'editcap wrote nanosecond pcap');
  t.same([...readCapture(readFileSync(ns))].map(summary), want, 'nanosecond pcap');
});

t.test('classic pcap: big-endian and nanosecond headers by hand', async (t) => {
  const f = frame(100, [1, 2, 3]);
  for (const [magic, le, frac, ts] of [
    [0xa1b2c3d4, false, 999999, 5999999n],
    [0xa1b23c4d, false, 999999999, 5999999n],
    [0xa1b23c4d, true, 1500, 5000001n],
  ] as const) {
    const b = new Bytes(le).u32(magic).u16(2).u16(4).u32(0).u32(0).u32(65535).u32(LINKTYPE.ETHERNET);
    b.u32(5).u32(frac).u32(f.length).u32(f.length).bytes(f);
    const [p] = [...readCapture(b.done())];
    t.equal(p?.tsMicros, ts, `magic ${magic.toString(16)} le=${le}`);
    t.equal(hex(p!.payload), '010203');
  }
});

/** Writes the block's length fields without its padding, as some writers do. */
function unpadded(le: boolean, blk: Uint8Array): Uint8Array {
  const v = new DataView(blk.buffer, blk.byteOffset, blk.byteLength);
  const len = v.getUint32(4, le) - 3;
  v.setUint32(4, len, le);
  v.setUint32(blk.length - 4, len, le);
  return blk;
}

/** Two sections (LE then BE), several interfaces, every packet block type, skipped blocks. */
function handBuilt(): Uint8Array {
  const le = true;
  const secOffset = new Uint8Array(8);
  new DataView(secOffset.buffer).setBigInt64(0, 10n, true);
  const v6 = ipv6Tcp();
  return concat([
    shb(le),
    block(le, 0x00000bad, (b) => b.u32(1).u32(2).u32(3)), // custom block: a frame, not a packet
    block(le, 0x00000f0f, (b) => b.u32(1)), // unknown type: skipped
    idb(le, LINKTYPE.ETHERNET, 0, [[9, Uint8Array.of(9)], [14, secOffset]]), // ns, +10 s
    block(le, 4, (b) => b.u16(0).u16(0)), // name resolution block: skipped
    epb(le, 0, 0x17979cfe, 0x3d85cd15, frame(1000, [1])), // 1700000000.123456789 s in ns
    spb(le, frame(1001, [2, 2])),
    opb(le, 0, 0x17979cfe, 0x3d85cd15 + 1000, frame(1003, [3])),
    idb(le, LINKTYPE.IPV4, 0), // interface 1: default microseconds
    epb(le, 1, 0, 42, frame(1004, [4]).subarray(14)),
    block(le, 5, (b) => b.u32(0).u32(0).u32(0)), // interface statistics: skipped
    shb(false),
    idb(false, LINKTYPE.RAW, 89, [[9, Uint8Array.of(0x83)]]), // 2^-3 s units, snaplen 89
    epb(false, 0, 0, 17, v6.subarray(0, 89), v6.length), // 17/8 s = 2125000 us
    spb(false, v6, v6.length), // cut to snaplen 89
    epb(false, 0, 0, 18, Uint8Array.of(0x45, 0, 0)), // IPv4 cut short: counted, skipped
    unpadded(false, block(false, 0x40000bad, (b) => b.u32(7).u8(1, 2, 3, 4, 5))), // length field without padding
  ]);
}

t.test('hand-built pcapng: two sections, both byte orders, every packet block', async (t) => {
  const file = handBuilt();
  const skipped: string[] = [];
  const r = readCapture(file, { onSkip: (fr, why) => skipped.push(`${fr}:${why}`) });
  const pkts = [...r];
  t.same(pkts.map((p) => p.frame), [2, 3, 4, 5, 6, 7], 'the custom block is frame 1, as in Wireshark');
  t.same(pkts.map((p) => p.tsMicros), [
    1700000010123456n, 1700000010123456n, 1700000010123457n, 42n, 2125000n, 2125000n,
  ], 'tsresol, tsoffset; an SPB keeps the previous timestamp');
  t.same(pkts.map((p) => hex(p.payload)), ['01', '0202', '03', '04', 'aa', 'aa']);
  t.same(pkts.map((p) => p.seq), [1000, 1001, 1003, 1004, 77, 77]);
  t.equal(pkts[4]!.src.ip, '2001:db8::1');
  t.equal(pkts[4]!.dst.ip, 'fe80::1:0:2');
  t.same([pkts[4]!.payload.length, pkts[4]!.wireLen], [1, 3], 'snaplen-cut EPB: wireLen tells');
  t.same([pkts[5]!.payload.length, pkts[5]!.wireLen], [1, 3], 'SPB cut to the snaplen');
  t.same(skipped, ['1:not-a-packet', '8:short', '9:not-a-packet']);
  t.same(r.stats, {
    frames: 9, tcp: 6,
    skipped: { 'not-ip': 0, 'not-tcp': 0, 'ip-fragment': 0, short: 1, malformed: 0, 'unsupported-linktype': 0, 'not-a-packet': 2 },
  });
});

t.test('tshark numbers and decodes frames as we do', { skip: tsharkMissing && 'tshark not installed' }, async (t) => {
  // A pcap mixing TCP with UDP, ARP and an IP fragment, so frame numbers only match if
  // every record is counted; and the hand-built pcapng (SPB, obsolete PB, two sections).
  const mixed = join(dir, 'mixed.pcap');
  const w = new PcapWriter(mixed, { clock: () => 0n });
  const udp = frame(1, [1]).slice();
  udp[23] = 17;
  const arp = concat([frame(1, []).subarray(0, 12), Uint8Array.of(0x08, 0x06), new Uint8Array(28)]);
  const fragment = frame(1, [1]).slice();
  fragment.set([0x20, 0x00], 20); // MF
  [frame(10, [1, 2]), udp, arp, frame(12, [3]), fragment, frame(13, [4, 5, 6])].forEach((f, i) => w.writePacket(BigInt(i), f));
  await w.close();
  const hand = join(dir, 'hand.pcapng');
  writeFileSync(hand, handBuilt());
  for (const path of [mixed, hand]) {
    const r = spawnSync('tshark', [
      '-n', '-r', path, '-Y', 'tcp', '-T', 'fields', '-E', 'separator=,',
      '-e', 'frame.number', '-e', 'tcp.srcport', '-e', 'tcp.seq_raw', '-e', 'tcp.len',
    ], { encoding: 'utf8' });
    t.equal(r.status, 0, `tshark read ${path}`);
    const theirs = r.stdout.trim().split('\n');
    const reader = readCapture(readFileSync(path));
    const ours = [...reader].map((p) => `${p.frame},${p.src.port},${p.seq},${p.wireLen}`);
    t.same(ours, theirs, `frame, port, seq, length agree for ${path}`);
    const all = spawnSync('tshark', ['-n', '-r', path, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' });
    t.equal(reader.stats.frames, all.stdout.trim().split('\n').length, 'same number of frames in all');
  }
});

t.test('pcapng structural errors', async (t) => {
  const le = true;
  const good = concat([shb(le), idb(le, 1, 0), epb(le, 0, 0, 0, frame(1, [1]))]);
  const code = (bytes: Uint8Array, opts = {}): string => {
    try {
      for (const _ of readCapture(bytes, opts));
      return 'ok';
    } catch (e) {
      return (e as { code?: string }).code ?? String(e);
    }
  };
  t.equal(code(good), 'ok');
  const patched = (at: number, v: number): Uint8Array => {
    const b = good.slice();
    new DataView(b.buffer).setUint32(at, v, true);
    return b;
  };
  const idbAt = shb(le).length;
  const epbAt = idbAt + idb(le, 1, 0).length;
  t.equal(code(patched(4, 27)), 'ok', 'a length without its padding is rounded up, as Wireshark does');
  t.equal(code(patched(4, 30)), 'CAPTURE_BAD_BLOCK', 'rounded up past the trailer');
  t.equal(code(patched(4, 8)), 'CAPTURE_BAD_BLOCK', 'length below 12');
  t.equal(code(patched(4, 0x7ffffff0)), 'CAPTURE_BAD_BLOCK', 'length over the bound');
  t.equal(code(patched(epbAt + 4, 4096)), 'CAPTURE_TRUNCATED', 'length past the end');
  t.equal(code(patched(idbAt - 4, 99)), 'CAPTURE_BAD_BLOCK', 'trailer differs');
  t.equal(code(patched(8, 0x12345678)), 'CAPTURE_BAD_MAGIC', 'byte-order magic');
  t.equal(code(patched(12, 2)), 'CAPTURE_UNSUPPORTED_VERSION', 'major version 2');
  t.equal(code(patched(epbAt + 8, 1)), 'CAPTURE_BAD_BLOCK', 'undeclared interface');
  t.equal(code(patched(epbAt + 20, 5000)), 'CAPTURE_BAD_BLOCK', 'captured length past the block');
  t.equal(code(concat([shb(le), idb(le, 1, 40), epb(le, 0, 0, 0, frame(1, [1]))])), 'CAPTURE_BAD_BLOCK', 'over snaplen');
  t.equal(code(concat([shb(le), idb(le, 1, 40), epb(le, 0, 0, 0, frame(1, [1]))]), { ignoreSnaplen: true }), 'ok');
  t.equal(code(concat([shb(le), spb(le, frame(1, [1]))])), 'CAPTURE_BAD_BLOCK', 'SPB without interface');
  t.equal(code(concat([shb(le), idb(le, 1, 0, [[9, new Uint8Array(200)]])]).subarray(0, 60)), 'CAPTURE_TRUNCATED');
  const badOpt = concat([shb(le), block(le, 1, (b) => b.u16(1).u16(0).u32(0).u16(9).u16(100).u32(0))]);
  t.equal(code(badOpt), 'CAPTURE_BAD_BLOCK', 'option runs past its block');
  const usb = concat([shb(le), idb(le, 189, 0), epb(le, 0, 0, 0, Uint8Array.of(1, 2, 3))]);
  t.equal(code(usb), 'CAPTURE_UNSUPPORTED_LINKTYPE');
  t.equal(code(usb, { unsupportedLinkType: 'skip' }), 'ok');
  const idle = concat([shb(le), idb(le, 189, 0)]);
  t.equal(code(idle), 'ok', 'an unsupported interface without packets is no error');
});

/** IPv6 + hop-by-hop + destination options + TCP with 4 bytes of options, payload aabbcc. */
function ipv6Tcp(): Uint8Array {
  const tcp = concat([
    Uint8Array.of(0x30, 0x39, 0x00, 0x50, 0, 0, 0, 77, 0, 0, 0, 0, 0x60, 0x18, 0xff, 0xff, 0, 0, 0, 0),
    Uint8Array.of(1, 1, 1, 1), // NOP options
    Uint8Array.of(0xaa, 0xbb, 0xcc),
  ]);
  const hbh = Uint8Array.of(60, 0, 1, 4, 0, 0, 0, 0); // next: destination options
  const dst = Uint8Array.of(6, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0); // 16 bytes, next: TCP
  const payloadLen = hbh.length + dst.length + tcp.length;
  const hdr = Uint8Array.of(0x60, 0, 0, 0, payloadLen >> 8, payloadLen & 255, 0, 64);
  const srcIp = Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1);
  const dstIp = Uint8Array.of(0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2);
  return concat([hdr, srcIp, dstIp, hbh, dst, tcp]);
}
