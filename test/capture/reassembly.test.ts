// TCP reassembly: property tests (random streams cut into random segments, shuffled,
// duplicated, overlapped, with a segment dropped) and the individual rules.

import t from 'tap';
import fc from 'fast-check';
import { buildTcpFrame, PcapWriter, readCapture, reassemble, TCP_FLAGS, TcpReassembler } from '../../src/capture/index.js';
import type { Direction, ReassemblerOptions, TcpConnection, TcpSegment } from '../../src/capture/index.js';

const { SYN, ACK, FIN, RST, PSH } = TCP_FLAGS;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const C = { ip: '10.0.0.1', port: 1022 };
const S = { ip: '10.0.0.2', port: 988 };

class Recorder {
  events: string[] = [];
  bytes: Record<Direction, Uint8Array[]> = { client: [], server: [] };
  conns: TcpConnection[] = [];
  handler = {
    open: (c: TcpConnection) => { this.conns.push(c); this.events.push(`open ${c.id} ${c.roles} ${c.client.port}`); },
    data: (c: TcpConnection, from: Direction, b: Uint8Array, frame: number) => {
      this.bytes[from].push(b.slice());
      this.events.push(`data ${c.id} ${from} ${b.length} @${frame}`);
    },
    gap: (c: TcpConnection, from: Direction, n: number, at: number) => this.events.push(`gap ${c.id} ${from} ${n} @${at}`),
    end: (c: TcpConnection, why: string) => this.events.push(`end ${c.id} ${why}`),
  };
  text(d: Direction): string { return hex(concat(this.bytes[d])); }
  run(segs: TcpSegment[], opts?: ReassemblerOptions): this {
    reassemble(segs, this.handler, opts);
    return this;
  }
  /** Events without data lines, data lines merged per direction: the shape that matters. */
  shape(): string[] {
    return this.events.filter((e) => !e.startsWith('data'));
  }
}

let frameNo = 0;
function seg(from: Direction, seq: number, flags: number, payload: Uint8Array | number[] = [], extra: Partial<TcpSegment> = {}): TcpSegment {
  return {
    frame: ++frameNo,
    src: from === 'client' ? C : S,
    dst: from === 'client' ? S : C,
    seq: seq >>> 0,
    ack: 0,
    flags,
    payload: payload instanceof Uint8Array ? payload : Uint8Array.from(payload),
    ...extra,
  };
}

/** Cuts [0, len) at the given points into [start, end) ranges. */
function cut(len: number, points: number[]): [number, number][] {
  const ps = [...new Set(points.map((p) => p % (len + 1)))].filter((p) => p > 0 && p < len).sort((a, b) => a - b);
  const edges = [0, ...ps, len];
  return edges.slice(1).map((e, i) => [edges[i]!, e]);
}

const streamArb = fc.record({
  data: fc.uint8Array({ minLength: 1, maxLength: 3000 }),
  isn: fc.oneof(fc.constant(0xffffffff - 700), fc.constant(0xffffffff), fc.nat({ max: 0xffffffff })),
  cuts: fc.array(fc.nat(), { maxLength: 40 }),
});

function segmentsOf(d: Direction, st: { data: Uint8Array; isn: number }, ranges: [number, number][]): TcpSegment[] {
  return ranges.map(([a, b]) => seg(d, st.isn + 1 + a, PSH | ACK, st.data.subarray(a, b)));
}

t.test('property: shuffled, duplicated, overlapping segments give the exact bytes', async (t) => {
  fc.assert(
    fc.property(
      streamArb, streamArb,
      fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.nat({ max: 1500 })), { maxLength: 15 }), // overlapping re-sends
      fc.array(fc.nat(), { maxLength: 15 }), // duplicates
      fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
      (cs, ss, overlaps, dups, keys) => {
        const body = [...segmentsOf('client', cs, cut(cs.data.length, cs.cuts)), ...segmentsOf('server', ss, cut(ss.data.length, ss.cuts))];
        for (const [client, start, len] of overlaps) {
          const st = client ? cs : ss;
          const a = start % st.data.length;
          body.push(...segmentsOf(client ? 'client' : 'server', st, [[a, Math.min(st.data.length, a + len + 1)]]));
        }
        for (const i of dups) body.push({ ...body[i % body.length]! });
        const shuffled = body.map((s) => [keys.next().value as number, s] as const).sort((x, y) => x[0] - y[0]).map((x) => x[1]);
        const segs = [
          seg('client', cs.isn, SYN), seg('server', ss.isn, SYN | ACK), ...shuffled,
          seg('client', cs.isn + 1 + cs.data.length, FIN | ACK), seg('server', ss.isn + 1 + ss.data.length, FIN | ACK),
        ];
        const r = new Recorder().run(segs);
        return r.text('client') === hex(cs.data) && r.text('server') === hex(ss.data) &&
          r.shape().join() === 'open 1 syn 1022,end 1 fin';
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 runs');
});

t.test('property: a dropped segment is one gap of exactly its size', async (t) => {
  fc.assert(
    fc.property(streamArb, fc.nat(), fc.array(fc.nat(), { maxLength: 10 }), fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })), fc.boolean(),
      (st, which, dups, keys, withFin) => {
        const ranges = cut(st.data.length, [...st.cuts, 1]);
        const drop = which % ranges.length;
        const [a, b] = ranges[drop]!;
        const kept = segmentsOf('client', st, ranges.filter((_, i) => i !== drop));
        for (const i of dups) if (kept.length) kept.push({ ...kept[i % kept.length]! });
        const shuffled = kept.map((s) => [keys.next().value as number, s] as const).sort((x, y) => x[0] - y[0]).map((x) => x[1]);
        const segs = [seg('client', st.isn, SYN), ...shuffled];
        if (withFin) segs.push(seg('client', st.isn + 1 + st.data.length, FIN | ACK));
        const r = new Recorder().run(segs);
        const want = hex(concat([st.data.subarray(0, a), st.data.subarray(b)]));
        const gaps = r.events.filter((e) => e.startsWith('gap'));
        // A dropped last segment is only known to be missing when a FIN says so.
        const expectGap = b < st.data.length || withFin;
        if (r.text('client') !== (expectGap ? want : hex(st.data.subarray(0, a)))) return false;
        if (!expectGap) return gaps.length === 0;
        if (gaps.length !== 1 || !gaps[0]!.startsWith(`gap 1 client ${b - a} `)) return false;
        // The gap sits between the bytes before and after the hole.
        const before = r.events.slice(0, r.events.indexOf(gaps[0]!)).filter((e) => e.startsWith('data'));
        return before.reduce((n, e) => n + Number(e.split(' ')[3]), 0) === a;
      }),
    { numRuns: 300 },
  );
  t.pass('300 runs');
});

t.test('property: a stream seen mid-way starts at its first segment', async (t) => {
  fc.assert(
    fc.property(streamArb, fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })), (st, keys) => {
      const [first, ...rest] = segmentsOf('server', st, cut(st.data.length, st.cuts));
      const shuffled = rest.map((s) => [keys.next().value as number, s] as const).sort((x, y) => x[0] - y[0]).map((x) => x[1]);
      const r = new Recorder().run([first!, ...shuffled]);
      return r.text('server') === hex(st.data) && r.shape().join() === 'open 1 lower-port 1022,end 1 eof';
    }),
    { numRuns: 200 },
  );
  t.pass('200 runs');
});

t.test('first copy wins; retransmissions are trimmed', async (t) => {
  const r = new Recorder().run([
    seg('client', 99, SYN),
    seg('client', 105, ACK, [5, 6, 7, 8]), // buffered: 105..108
    seg('client', 103, ACK, [0xa3, 0xa4, 0xa5, 0xa6, 0xa7]), // overlaps the buffered piece: only 103,104 are new
    seg('client', 100, ACK, [0, 1, 2]),
    seg('client', 100, ACK, [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 9]), // only byte 109 is new
  ]);
  t.equal(r.text('client'), '000102a3a4050607080' + '9');
});

t.test('sequence numbers wrap around 2^32', async (t) => {
  const isn = 0xfffffffa;
  const data = Uint8Array.from({ length: 20 }, (_, i) => i);
  const r = new Recorder().run([
    seg('client', isn, SYN),
    seg('client', isn + 11, ACK, data.subarray(10)), // seq 5 after the wrap
    seg('client', isn + 1, ACK, data.subarray(0, 10)),
    seg('client', isn + 21, FIN | ACK),
    seg('server', 7, FIN | ACK),
  ]);
  t.equal(r.text('client'), hex(data));
  t.same(r.shape(), ['open 1 syn 1022', 'end 1 fin']);
});

t.test('gaps: at FIN, at end of input, over the buffer bound, from snaplen cuts', async (t) => {
  // Hole, then a FIN from both sides: the hole is reported before the later bytes.
  frameNo = 0;
  let r = new Recorder().run([
    seg('client', 0, SYN), seg('client', 1, ACK, [1, 1]), seg('client', 6, ACK, [6]), // frames 1-3
    seg('client', 7, FIN | ACK), seg('server', 50, FIN | ACK), // frames 4-5
  ]);
  t.same(r.events, ['open 1 syn 1022', 'data 1 client 2 @2', 'gap 1 client 3 @3', 'data 1 client 1 @3', 'end 1 fin']);
  // Bytes missing right before a FIN.
  frameNo = 0;
  r = new Recorder().run([seg('client', 0, SYN), seg('client', 1, ACK, [1]), seg('client', 10, FIN | ACK)]);
  t.same(r.shape(), ['open 1 syn 1022', 'gap 1 client 8 @3', 'end 1 eof']);
  // Buffer bound: with 300 bytes allowed, the hole is given up once more is buffered.
  frameNo = 0;
  const big = new Uint8Array(200).fill(2);
  r = new Recorder().run([
    seg('server', 0, SYN | ACK), seg('server', 11, ACK, big), seg('server', 211, ACK, big), // frames 1-3
    seg('server', 1, ACK, new Uint8Array(10)), // frame 4: the hole's bytes, too late
  ], { maxBufferedBytes: 300 });
  t.same(r.events, ['open 1 syn-ack 1022', 'gap 1 server 10 @2', 'data 1 server 200 @2', 'data 1 server 200 @3', 'end 1 eof']);
  // Snaplen: the captured part is delivered, the rest reported at once.
  frameNo = 0;
  r = new Recorder().run([
    seg('client', 0, SYN), seg('client', 1, ACK, [1, 2], { wireLen: 1000 }), seg('client', 1001, ACK, [3], { wireLen: 1 }),
  ]);
  t.same(r.events, ['open 1 syn 1022', 'data 1 client 2 @2', 'gap 1 client 998 @2', 'data 1 client 1 @3', 'end 1 eof']);
});

t.test('roles: SYN, SYN+ACK, server ports, lower port', async (t) => {
  const roles = (segs: TcpSegment[], opts?: ReassemblerOptions): string => {
    const r = new Recorder().run(segs, opts);
    return r.conns.map((c) => `${c.roles} ${c.client.ip}:${c.client.port}>${c.server.ip}:${c.server.port}`).join();
  };
  t.equal(roles([seg('client', 1, SYN)]), 'syn 10.0.0.1:1022>10.0.0.2:988');
  t.equal(roles([seg('server', 1, SYN | ACK)]), 'syn-ack 10.0.0.1:1022>10.0.0.2:988');
  t.equal(roles([seg('client', 1, ACK, [1])]), 'lower-port 10.0.0.1:1022>10.0.0.2:988');
  t.equal(roles([seg('server', 1, ACK, [1])]), 'lower-port 10.0.0.1:1022>10.0.0.2:988');
  t.equal(roles([seg('server', 1, ACK, [1])], { serverPorts: [1022] }), 'server-port 10.0.0.2:988>10.0.0.1:1022');
  const same = { frame: 1, src: { ip: '10.0.0.9', port: 5 }, dst: { ip: '10.0.0.10', port: 5 }, seq: 1, ack: 0, flags: ACK, payload: Uint8Array.of(1) };
  t.equal(roles([same]), 'lower-port 10.0.0.9:5>10.0.0.10:5', 'equal ports: the lower address text is the server');
  t.equal(roles([seg('client', 1, ACK)]), '', 'a pure ACK opens nothing');
  t.equal(roles([seg('client', 1, RST)]), '', 'nor does a RST');
});

t.test('RST, reuse of a 4-tuple, late segments', async (t) => {
  frameNo = 0;
  const r = new Recorder();
  const ra = new TcpReassembler(r.handler);
  for (const s of [
    seg('client', 100, SYN), seg('client', 101, ACK, [1]), seg('client', 105, ACK, [5]), // hole 102-104
    seg('server', 9, RST | ACK), // frame 4: ends it; the hole is reported
    seg('client', 102, ACK, [2, 3, 4]), // late: ignored, opens nothing
    seg('client', 5000, SYN), seg('client', 5001, ACK, [7]), // a new connection on the same 4-tuple
    seg('client', 5002, FIN | ACK), seg('server', 1, FIN | ACK), // closed
    seg('client', 9000, SYN), // reuse after close
    seg('client', 9001, ACK, [8]),
    seg('client', 100, SYN), // a SYN with a new ISN on a used connection: the tuple is reused
  ]) ra.push(s);
  ra.finish();
  t.same(r.shape(), [
    'open 1 syn 1022', 'gap 1 client 3 @3', 'end 1 rst',
    'open 2 syn 1022', 'end 2 fin',
    'open 3 syn 1022', 'end 3 reused',
    'open 4 syn 1022', 'end 4 eof',
  ]);
  t.equal(ra.stats.lateSegments, 1);
  t.equal(ra.stats.connections, 4);
});

t.test('end to end: out-of-order frames in a pcap, read and reassembled', async (t) => {
  const chunks: Uint8Array[] = [];
  const w = new PcapWriter({ write: (b) => chunks.push(b) });
  const msg = new TextEncoder().encode('the quick brown fox jumps over the lazy dog');
  const frame = (seq: number, flags: number, payload?: Uint8Array, from = C, to = S): Uint8Array =>
    buildTcpFrame({ src: from, dst: to, seq, ack: 1, flags, ...(payload ? { payload } : {}) });
  const order: Uint8Array[] = [
    frame(999, SYN),
    frame(1020, PSH | ACK, msg.subarray(20)), // 1
    frame(1010, ACK, msg.subarray(10, 25)), // 2: overlaps 1
    frame(1000, ACK, msg.subarray(0, 10)), // 3
    frame(1000, ACK, msg.subarray(0, 10)), // 4: retransmission
    frame(1000 + msg.length, FIN | ACK),
    frame(1, FIN | ACK, undefined, S, C),
  ];
  order.forEach((f, i) => w.writePacket(BigInt(i), f));
  await w.close();
  const r = new Recorder();
  const stats = reassemble(readCapture(concat(chunks)), r.handler);
  t.equal(new TextDecoder().decode(concat(r.bytes.client)), 'the quick brown fox jumps over the lazy dog');
  t.same(r.events, ['open 1 syn 1022', 'data 1 client 10 @4', 'data 1 client 10 @3', 'data 1 client 23 @2', 'end 1 fin']);
  t.equal(stats.duplicateBytes, 5 + 10);
});
