// PcapWriter output checked byte for byte, and its TCP framing checked by recomputing
// every checksum with an implementation independent of the module's.

import t from 'tap';
import type { Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTcpFrame, CaptureError, MAX_TCP_PAYLOAD, PcapWriter, TCP_FLAGS } from '../../src/capture/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

// RFC 1071, written differently from the module on purpose (DataView, fold at the end).
function rfc1071(...parts: Uint8Array[]): number {
  const b = concat(parts);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += i + 1 < b.length ? v.getUint16(i) : b[i]! << 8;
  while (s > 0xffff) s = (s >>> 16) + (s & 0xffff);
  return ~s & 0xffff;
}

interface Rec { sec: number; usec: number; frame: Uint8Array }
function records(t: Test, file: Uint8Array): Rec[] {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const out: Rec[] = [];
  for (let o = 24; o < file.length; ) {
    const incl = v.getUint32(o + 8, true);
    t.equal(v.getUint32(o + 12, true), incl, 'orig_len equals incl_len');
    out.push({ sec: v.getUint32(o, true), usec: v.getUint32(o + 4, true), frame: file.subarray(o + 16, o + 16 + incl) });
    o += 16 + incl;
  }
  return out;
}

/** Verifies the IPv4 and TCP checksums of an Ethernet frame; returns the TCP fields. */
function verify(t: Test, f: Uint8Array) {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  t.equal(v.getUint16(12), 0x0800, 'ethertype IPv4');
  const ip = f.subarray(14, 34);
  t.equal(rfc1071(ip), 0, 'IPv4 header checksum verifies');
  const total = v.getUint16(16);
  t.equal(total, f.length - 14, 'IPv4 total length');
  t.equal(v.getUint16(20), 0x4000, 'DF, no fragment offset');
  t.equal(f[22], 64, 'TTL 64');
  const tcp = f.subarray(34);
  const pseudo = concat([f.subarray(26, 34), Uint8Array.of(0, 6, tcp.length >> 8, tcp.length & 255)]);
  t.equal(rfc1071(pseudo, tcp), 0, 'TCP checksum verifies');
  t.equal(tcp[12], 0x50, 'data offset 5');
  return { ipId: v.getUint16(18), seq: v.getUint32(38), ack: v.getUint32(42), flags: f[47]!, len: tcp.length - 20, payload: tcp.subarray(20) };
}

const client = { ip: '10.0.0.1', port: 1023 };
const server = { ip: '10.0.0.2', port: 988 };

t.test('global header and SYN, byte for byte', async (t) => {
  const chunks: Uint8Array[] = [];
  const w = new PcapWriter({ write: (b) => chunks.push(b) }, { clock: () => 1700000000123456n });
  w.flow(client, server, { clientIsn: 1000, serverIsn: 5000 });
  await w.close();
  const file = concat(chunks);
  t.equal(hex(file.subarray(0, 24)), 'd4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + '00000400' + '01000000');
  // 1700000000 = 0x6553f100, 123456 = 0x0001e240, 54 bytes = 0x36
  t.equal(hex(file.subarray(24, 40)), '00f15365' + '40e20100' + '36000000' + '36000000');
  const syn =
    '02000a000002' + '02000a000001' + '0800' +
    '45000028' + '00014000' + '400626cd' + '0a000001' + '0a000002' +
    '03ff03dc' + '000003e8' + '00000000' + '5002ffff' + '901d0000';
  t.equal(hex(file.subarray(40, 94)), syn);
  const recs = records(t, file);
  t.equal(recs.length, 3, 'SYN, SYN-ACK, ACK');
  const [a, b, c] = recs.map((r) => verify(t, r.frame));
  t.same([a!.flags, b!.flags, c!.flags], [TCP_FLAGS.SYN, TCP_FLAGS.SYN | TCP_FLAGS.ACK, TCP_FLAGS.ACK]);
  t.same([b!.seq, b!.ack], [5000, 1001]);
  t.same([c!.seq, c!.ack], [1001, 5001]);
});

t.test('messages, segmentation, window ACKs and close', async (t) => {
  const chunks: Uint8Array[] = [];
  let now = 5_000_000n;
  const w = new PcapWriter({ write: (b) => chunks.push(b) }, { clock: () => (now -= 1n) }); // a clock going backwards
  const f = w.flow(client, server, { clientIsn: 0xffffff00, serverIsn: 7 }); // client seq wraps
  const big = new Uint8Array(2 * MAX_TCP_PAYLOAD + 10).map((_, i) => i * 7);
  f.send('client', Uint8Array.of(1, 2, 3));
  f.send('client', big);
  f.send('server', new Uint8Array(0)); // nothing
  f.send('server', Uint8Array.of(9));
  f.close('server');
  t.throws(() => f.send('client', Uint8Array.of(1)), { code: 'CAPTURE_CLOSED' });
  await w.close();
  const recs = records(t, concat(chunks));
  const ts = recs.map((r) => r.sec * 1e6 + r.usec);
  t.same(ts, [...ts].sort((x, y) => x - y), 'timestamps never decrease');
  const segs = recs.map((r) => verify(t, r.frame));
  const { PSH, ACK, FIN } = TCP_FLAGS;
  const summary = segs.slice(3).map((s) => `${s.flags.toString(16)}:${s.len}`);
  t.same(summary, [
    '18:3', // first message, one segment
    '18:65495', // the big one: as few segments as possible ...
    '10:0', // ... with the server ACKing before the window would overflow
    '18:65495', // 65495 + 10 bytes in flight fit the window: no ACK needed
    '18:10',
    '18:1', // the server's one byte
    '11:0', '11:0', '10:0', // FIN+ACK from the server, FIN+ACK, ACK
  ]);
  // Reassemble the client's data by seq and compare.
  const fromClient = (i: number): boolean => recs[i]!.frame[29] === 1; // last octet of the source address
  const clientData = segs.filter((s, i) => fromClient(i) && s.len > 0);
  t.ok(clientData.every((s) => s.flags === (PSH | ACK)), 'data segments are PSH+ACK');
  let expectSeq = 0xffffff01;
  for (const s of clientData) {
    t.equal(s.seq, expectSeq, 'client seq continues, wrapping past 2^32');
    expectSeq = (expectSeq + s.len) >>> 0;
  }
  const bytes = concat(clientData.map((s) => s.payload));
  t.same(hex(bytes), hex(concat([Uint8Array.of(1, 2, 3), big])));
  // seq/ack consistency: the server's byte acks everything the client sent.
  const srv = segs[8]!;
  t.equal(srv.ack, (0xffffff01 + 3 + big.length) >>> 0);
  t.equal(srv.seq, 8);
  const fin1 = segs[9]!;
  t.same([fin1.flags, fin1.seq, fin1.ack], [FIN | ACK, 9, srv.ack]);
  const fin2 = segs[10]!;
  t.same([fin2.seq, fin2.ack], [srv.ack, 10]);
  t.same([segs[11]!.seq, segs[11]!.ack], [10, (srv.ack + 1) >>> 0]);
  // IP ids increment per sender.
  const clientIds = segs.filter((_, i) => fromClient(i)).map((s) => s.ipId);
  t.same(clientIds, clientIds.map((_, i) => i + 1));
});

t.test('file sink, flush and close', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'capw-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'x.pcap');
  const w = new PcapWriter(path, { clock: () => 0n });
  const f = w.flow(client, server);
  for (let i = 0; i < 300; i++) f.send(i % 2 ? 'server' : 'client', new Uint8Array(1000).fill(i));
  t.equal(w.packetCount, 303);
  await w.close();
  await w.close(); // idempotent
  const file = readFileSync(path);
  t.equal(records(t, new Uint8Array(file)).length, 303);
  t.throws(() => w.writePacket(0n, new Uint8Array(60)), { code: 'CAPTURE_CLOSED' });
});

t.test('Node stream sink is ended and awaited', async (t) => {
  const { PassThrough } = await import('node:stream');
  const s = new PassThrough();
  const got: Buffer[] = [];
  s.on('data', (b: Buffer) => got.push(b));
  const w = new PcapWriter(s);
  w.flow(client, server).send('client', Uint8Array.of(1));
  await w.close();
  t.ok(s.writableFinished, 'stream finished');
  t.equal(records(t, new Uint8Array(Buffer.concat(got))).length, 4);
});

t.test('argument checks raise CaptureError', async (t) => {
  const w = new PcapWriter({ write: () => {} });
  const bad = (fn: () => unknown, what: string): void => {
    try {
      fn();
      t.fail(`${what}: no error`);
    } catch (e) {
      t.ok(e instanceof CaptureError && e.code === 'CAPTURE_BAD_ARGUMENT' && e.offset === -1, what);
    }
  };
  bad(() => w.flow({ ip: '10.0.0.256', port: 1 }, server), 'octet over 255');
  bad(() => w.flow({ ip: '10.00.0.1', port: 1 }, server), 'leading zero');
  bad(() => w.flow({ ip: '::1', port: 1 }, server), 'IPv6 is not written');
  bad(() => w.flow({ ip: '10.0.0.1', port: 65536 }, server), 'port');
  bad(() => w.flow(client, server, { clientIsn: 2 ** 32 }), 'isn');
  bad(() => w.flow(client, server).send('both' as 'client', Uint8Array.of(1)), 'side');
  bad(() => w.writePacket(-1n, new Uint8Array(1)), 'negative time');
  bad(() => w.writePacket(0n, new Uint8Array(262145)), 'over snaplen');
  bad(() => w.writePacket(0n, new Uint8Array(10), 5), 'origLen below length');
  bad(() => buildTcpFrame({ src: client, dst: server, seq: 0, ack: 0, flags: 0, payload: new Uint8Array(MAX_TCP_PAYLOAD + 1) }), 'payload');
  bad(() => buildTcpFrame({ src: client, dst: server, seq: -1, ack: 0, flags: 0 }), 'seq');
  bad(() => buildTcpFrame({ src: client, dst: server, seq: 0, ack: 0, flags: 256 }), 'flags');
  bad(() => buildTcpFrame({ src: client, dst: server, seq: 0, ack: 0, flags: 0, srcMac: new Uint8Array(5) }), 'mac');
});

t.test('buildTcpFrame: largest segment and odd lengths checksum correctly', async (t) => {
  for (const n of [0, 1, 2, 3, 1459, MAX_TCP_PAYLOAD]) {
    const payload = new Uint8Array(n).map((_, i) => (i * 131 + 7) & 255);
    const f = buildTcpFrame({ src: client, dst: server, seq: 123, ack: 456, flags: 0x18, payload, ipId: 0xffff, window: 1 });
    const s = verify(t, f);
    t.equal(s.len, n);
    t.equal(hex(s.payload), hex(payload));
  }
});
