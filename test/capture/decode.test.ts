// Frame decoding: every supported link type, VLAN tags, IPv4 options and fragments, IPv6
// extension headers and fragments, TCP options, padding, snaplen cuts, and the reasons
// reported for frames that are not yielded.

import t from 'tap';
import { buildTcpFrame, LINKTYPE, readCapture } from '../../src/capture/index.js';
import type { CaptureError, CapturedPacket, ReadOptions, SkipReason } from '../../src/capture/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const be16 = (v: number): number[] => [v >> 8, v & 255];
const be32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const le32 = (v: number): number[] => be32(v).reverse();

/** A classic little-endian pcap; frames are [captured bytes, original length?]. */
function pcap(linkType: number, frames: (Uint8Array | [Uint8Array, number])[], snaplen = 262144): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(...le32(0xa1b2c3d4), 2, 0, 4, 0, ...le32(0), ...le32(0), ...le32(snaplen), ...le32(linkType))];
  frames.forEach((f, i) => {
    const [bytes, orig] = f instanceof Uint8Array ? [f, f.length] : f;
    parts.push(Uint8Array.of(...le32(1000 + i), ...le32(0), ...le32(bytes.length), ...le32(orig)), bytes);
  });
  return concat(parts);
}

function read(file: Uint8Array, opts: ReadOptions = {}): { pkts: CapturedPacket[]; skipped: string[] } {
  const skipped: string[] = [];
  const pkts = [...readCapture(file, { ...opts, onSkip: (f: number, why: SkipReason) => skipped.push(`${f}:${why}`) })];
  return { pkts, skipped };
}

const c = { ip: '172.16.0.5', port: 40001 };
const s = { ip: '172.16.0.9', port: 988 };
const eth = (payload: number[] = [0xde, 0xad], seq = 1): Uint8Array =>
  buildTcpFrame({ src: c, dst: s, seq, ack: 2, flags: 0x18, payload: Uint8Array.from(payload) });
const ip4 = (payload?: number[], seq?: number): Uint8Array => eth(payload, seq).subarray(14);

/** IPv6/TCP with the given extension headers ([nextHeader-of-this, bytes]) before TCP. */
function ip6(exts: [number, number[]][] = [], payload = [0xbe, 0xef]): Uint8Array {
  const tcp = [...be16(5000), ...be16(988), ...be32(9), ...be32(0), 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0, ...payload];
  let next = 6;
  const body: number[] = [];
  for (let i = exts.length - 1; i >= 0; i--) {
    const [type, bytes] = exts[i]!;
    body.unshift(next, ...bytes);
    next = type;
  }
  body.push(...tcp);
  const addr = (last: number): number[] => [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last];
  return Uint8Array.from([0x60, 0, 0, 0, ...be16(body.length), next, 64, ...addr(1), ...addr(2), ...body]);
}

t.test('every supported link type', async (t) => {
  const v4 = ip4();
  const v6 = ip6();
  const cases: [string, number, Uint8Array][] = [
    ['null, little-endian AF_INET', LINKTYPE.NULL, concat([Uint8Array.of(2, 0, 0, 0), v4])],
    ['null, big-endian AF_INET', LINKTYPE.NULL, concat([Uint8Array.of(0, 0, 0, 2), v4])],
    ['null, macOS AF_INET6', LINKTYPE.NULL, concat([Uint8Array.of(30, 0, 0, 0), v6])],
    ['null, Linux AF_INET6 big-endian', LINKTYPE.NULL, concat([Uint8Array.of(0, 0, 0, 10), v6])],
    ['loop', LINKTYPE.LOOP, concat([Uint8Array.of(0, 0, 0, 2), v4])],
    ['raw v4', LINKTYPE.RAW, v4],
    ['raw v6', LINKTYPE.RAW, v6],
    ['raw (legacy 12)', LINKTYPE.RAW_LEGACY, v4],
    ['ipv4', LINKTYPE.IPV4, v4],
    ['ipv6', LINKTYPE.IPV6, v6],
    ['sll', LINKTYPE.LINUX_SLL, concat([Uint8Array.of(0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00), v4])],
    ['sll2', LINKTYPE.LINUX_SLL2, concat([Uint8Array.of(0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0), v6])],
    ['ethernet', LINKTYPE.ETHERNET, eth()],
    ['ethernet, 802.1ad + 802.1Q', LINKTYPE.ETHERNET, concat([eth().subarray(0, 12), Uint8Array.of(0x88, 0xa8, 0, 5, 0x81, 0, 0, 7, 0x08, 0), v4])],
  ];
  for (const [name, lt, frame] of cases) {
    const { pkts, skipped } = read(pcap(lt, [frame]));
    t.same(skipped, [], name);
    const p = pkts[0];
    const isV6 = p?.src.ip.includes(':');
    t.equal(p?.frame, 1, name);
    t.equal(hex(p?.payload ?? new Uint8Array()), isV6 ? 'beef' : 'dead', `${name}: payload`);
    t.equal(p?.tsMicros, 1000000000n, `${name}: timestamp`);
    if (isV6) t.same([p!.src.ip, p!.src.port, p!.dst.ip, p!.seq], ['2001:db8::1', 5000, '2001:db8::2', 9], name);
    else t.same([p!.src, p!.dst, p!.seq, p!.ack, p!.flags], [c, s, 1, 2, 0x18], name);
  }
});

t.test('headers with options, padding, TSO, snaplen cuts', async (t) => {
  // IPv4 with 4 bytes of options (IHL 6) and TCP with 12 bytes of options (data offset 8).
  const base = ip4([1, 2, 3]);
  const ipOpts = concat([base.subarray(0, 20), Uint8Array.of(1, 1, 1, 0), base.subarray(20, 32), Uint8Array.of(0x80), base.subarray(33, 40), new Uint8Array(12).fill(1), base.subarray(40)]);
  ipOpts[0] = 0x46;
  ipOpts.set(be16(ipOpts.length), 2);
  const padded = concat([eth([7]), new Uint8Array(60 - eth([7]).length).fill(0xee), Uint8Array.of(1, 2, 3, 4)]); // padding + FCS
  const tso = ip4([5, 5, 5]).slice();
  tso.set([0, 0], 2); // total length 0, as TSO leaves it
  const cut = eth(new Array(100).fill(6));
  const { pkts, skipped } = read(pcap(LINKTYPE.RAW, [ipOpts, tso]));
  t.same(skipped, []);
  t.same(pkts.map((p) => hex(p.payload)), ['010203', '050505']);
  const e = read(pcap(LINKTYPE.ETHERNET, [padded, [cut.subarray(0, 64), cut.length]], 64));
  t.same(e.pkts.map((p) => [hex(p.payload), p.wireLen]), [['07', 1], ['06'.repeat(10), 100]]);
});

t.test('frames not yielded are counted with their reason', async (t) => {
  const frag = (flagsOffset: number): Uint8Array => {
    const f = ip4().slice();
    f.set(be16(flagsOffset), 6);
    return f;
  };
  const udp = ip4().slice();
  udp[9] = 17;
  const badIhl = ip4().slice();
  badIhl[0] = 0x44;
  const badDoff = ip4().slice();
  badDoff[32] = 0x40;
  const longIhl = ip4().slice();
  longIhl[0] = 0x4f; // 60-byte header: TCP would start past the IP total length
  const fragHdr = (offsetM: number): [number, number[]] => [44, [0, ...be16(offsetM), 0, 0, 0, 1]];
  const frames: [string, number, Uint8Array][] = [
    ['1:ip-fragment', LINKTYPE.RAW, frag(0x2000)], // MF
    ['2:ip-fragment', LINKTYPE.RAW, frag(0x4000 | 185)], // DF with an offset: still a fragment
    ['3:not-tcp', LINKTYPE.RAW, udp],
    ['4:malformed', LINKTYPE.RAW, badIhl],
    ['5:malformed', LINKTYPE.RAW, badDoff],
    ['6:malformed', LINKTYPE.RAW, longIhl],
    ['7:short', LINKTYPE.RAW, ip4().subarray(0, 30)],
    ['8:ip-fragment', LINKTYPE.RAW, ip6([fragHdr(8)])],
    ['9:ip-fragment', LINKTYPE.RAW, ip6([fragHdr(1)])],
    ['10:not-tcp', LINKTYPE.RAW, ip6([[0, [0, 1, 4, 0, 0, 0, 0]]]).map((b, i) => (i === 40 ? 17 : b))],
    ['11:not-ip', LINKTYPE.RAW, Uint8Array.of(0x50, 0)],
    ['12:short', LINKTYPE.RAW, new Uint8Array(0)],
  ];
  const skipped: string[] = [];
  const r = readCapture(pcap(LINKTYPE.RAW, frames.map((f) => f[2])), {
    onSkip: (f, why) => skipped.push(`${f}:${why}`),
  });
  t.same([...r], []);
  t.same(skipped, frames.map((f) => f[0]));
  t.equal(r.stats.frames, 12);
  t.equal(r.stats.skipped['ip-fragment'], 4);
  // An atomic IPv6 fragment (offset 0, no M flag) is a whole packet.
  const atomic = read(pcap(LINKTYPE.RAW, [ip6([fragHdr(0), [60, [0, 1, 4, 0, 0, 0, 0]]])]));
  t.same(atomic.pkts.map((p) => hex(p.payload)), ['beef']);
  // Ethernet non-IP, VLAN cut short, and frames too short for their link header.
  const arp = concat([eth().subarray(0, 12), Uint8Array.of(0x08, 0x06), new Uint8Array(28)]);
  const shortVlan = concat([eth().subarray(0, 12), Uint8Array.of(0x81, 0, 0)]);
  const eo = read(pcap(LINKTYPE.ETHERNET, [arp, shortVlan, eth().subarray(0, 13)]));
  t.same(eo.skipped, ['1:not-ip', '2:short', '3:short']);
  const sll = read(pcap(LINKTYPE.LINUX_SLL, [new Uint8Array(15)]));
  t.same(sll.skipped, ['1:short']);
});

t.test('endpoint objects are shared, frozen values', async (t) => {
  const { pkts } = read(pcap(LINKTYPE.RAW, [ip4([1], 1), ip4([2], 2), ip6(), ip6()]));
  t.equal(pkts[0]!.src, pkts[1]!.src, 'same object for the same endpoint');
  t.equal(pkts[2]!.src, pkts[3]!.src);
  t.ok(Object.isFrozen(pkts[0]!.src));
});

t.test('link types: unsupported ones throw at once unless skipped', async (t) => {
  const file = pcap(147, [eth(), eth()]);
  let err: CaptureError | undefined;
  try {
    readCapture(file);
  } catch (e) {
    err = e as CaptureError;
  }
  t.equal(err?.code, 'CAPTURE_UNSUPPORTED_LINKTYPE');
  t.equal(err?.offset, 20);
  const { pkts, skipped } = read(file, { unsupportedLinkType: 'skip' });
  t.same([pkts.length, skipped], [0, ['1:unsupported-linktype', '2:unsupported-linktype']]);
  // The FCS bits above the 16-bit link type do not change it.
  const fcs = pcap(LINKTYPE.ETHERNET | 0x14000000, [eth()]);
  t.equal(read(fcs).pkts.length, 1);
});
