// Writer -> reader -> reassembler round trips, the three reading entry points agreeing
// with each other whatever the chunking, and tshark reading what we write.

import t from 'tap';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_TCP_PAYLOAD, PcapWriter, readCapture, readCaptureFile, readCaptureStream, reassemble, TCP_FLAGS,
} from '../../src/capture/index.js';
import type { CapturedPacket, Direction } from '../../src/capture/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const dir = mkdtempSync(join(tmpdir(), 'caprt-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const client = { ip: '192.168.7.21', port: 1023 };
const server = { ip: '192.168.7.1', port: 988 };

type Msg = { from: Direction; bytes: Uint8Array };

function write(msgs: Msg[], flows = 1): { file: Uint8Array; times: bigint[] } {
  const chunks: Uint8Array[] = [];
  const times: bigint[] = [];
  let now = 1_700_000_000_000_000n;
  const w = new PcapWriter({ write: (b) => chunks.push(b) }, { clock: () => { now += 17n; times.push(now); return now; } });
  const fs = Array.from({ length: flows }, (_, i) => w.flow({ ...client, port: client.port - i }, server));
  msgs.forEach((m, i) => fs[i % flows]!.send(m.from, m.bytes));
  for (const f of fs) f.close();
  void w.close();
  return { file: concat(chunks), times };
}

const summary = (p: CapturedPacket): string =>
  `${p.frame} ${p.tsMicros} ${p.src.ip}:${p.src.port}>${p.dst.ip}:${p.dst.port} ${p.seq} ${p.ack} ${p.flags} ${p.wireLen} ${hex(p.payload)}`;

const msgArb = fc.record({
  from: fc.constantFrom<Direction>('client', 'server'),
  bytes: fc.oneof(
    { weight: 10, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 300 }) },
    { weight: 1, arbitrary: fc.integer({ min: MAX_TCP_PAYLOAD - 2, max: 2 * MAX_TCP_PAYLOAD + 3 }).map((n) => new Uint8Array(n).map((_, i) => i % 251)) },
  ),
});

t.test('writer -> reader -> reassembler gives the messages back', async (t) => {
  let multiSegment = 0;
  fc.assert(
    fc.property(fc.array(msgArb, { maxLength: 12 }), (msgs) => {
      const { file, times } = write(msgs);
      const pkts = [...readCapture(file)];
      // Frames are numbered 1.. and carry the writer clock's values exactly.
      if (pkts.map((p) => p.frame).join() !== pkts.map((_, i) => i + 1).join()) return false;
      if (pkts.map((p) => p.tsMicros).join() !== times.join()) return false;
      // Segments never mix messages: the data segments of each message, in order.
      const data = pkts.filter((p) => p.payload.length > 0);
      let k = 0;
      for (const m of msgs) {
        const segs: Uint8Array[] = [];
        for (let n = 0; n < m.bytes.length; k++) {
          const p = data[k]!;
          if (p.flags !== (TCP_FLAGS.PSH | TCP_FLAGS.ACK)) return false;
          if ((p.src.port === server.port) !== (m.from === 'server')) return false;
          segs.push(p.payload);
          n += p.payload.length;
        }
        if (segs.length !== Math.ceil(m.bytes.length / MAX_TCP_PAYLOAD)) return false;
        if (segs.length > 1) multiSegment++;
        if (hex(concat(segs)) !== hex(m.bytes)) return false;
      }
      // Reassembly: per direction, the concatenation of that side's messages.
      const got: Record<Direction, Uint8Array[]> = { client: [], server: [] };
      const events: string[] = [];
      reassemble(pkts, {
        open: (c) => events.push(`open ${c.roles} ${c.client.port}`),
        data: (_c, from, b) => got[from].push(b.slice()),
        gap: () => events.push('gap'),
        end: (_c, why) => events.push(`end ${why}`),
      });
      for (const d of ['client', 'server'] as const) {
        const want = concat(msgs.filter((m) => m.from === d).map((m) => m.bytes));
        if (hex(concat(got[d])) !== hex(want)) return false;
      }
      return events.join() === 'open syn 1023,end fin';
    }),
    { numRuns: 60 },
  );
  t.ok(multiSegment > 0, `messages spanning segments were tried (${multiSegment})`);
});

t.test('file, stream and buffer readers agree, however the bytes are chunked', async (t) => {
  const msgs: Msg[] = [];
  for (let i = 0; i < 40; i++) {
    msgs.push({ from: i % 3 ? 'client' : 'server', bytes: new Uint8Array((i * 977) % 70000 + 1).fill(i) });
  }
  const { file } = write(msgs, 3);
  const path = join(dir, 'chunks.pcap');
  writeFileSync(path, file);
  const whole = readCapture(file);
  const want = [...whole].map(summary);
  t.equal(whole.stats.frames, want.length);
  t.equal(whole.stats.tcp, want.length);
  t.same([...whole].map(summary), want, 'a buffer reader can be iterated again');
  for (const chunkSize of [1, 7, 16, 24, 25, 1000, 65536, 1 << 22]) {
    const r = readCaptureFile(path, { chunkSize });
    t.same([...r].map(summary), want, `readCaptureFile chunkSize ${chunkSize}`);
    t.equal(r.stats.frames, want.length);
  }
  // Stop early: the file is closed and nothing throws.
  for (const p of readCaptureFile(path, { chunkSize: 100 })) if (p.frame === 3) break;

  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 70000 }), { maxLength: 30 }), async (cuts) => {
      async function* chunks(): AsyncGenerator<Uint8Array> {
        let o = 0;
        for (const c of cuts) {
          yield file.subarray(o, Math.min(file.length, o + c));
          o = Math.min(file.length, o + c);
        }
        yield file.subarray(o);
      }
      const got: string[] = [];
      for await (const p of readCaptureStream(chunks())) got.push(summary(p));
      return got.join('\n') === want.join('\n');
    }),
    { numRuns: 40 },
  );
});

t.test('readCaptureStream on a Node file stream', async (t) => {
  const { createReadStream } = await import('node:fs');
  const { file } = write([{ from: 'client', bytes: new Uint8Array(100000).fill(5) }]);
  const path = join(dir, 'stream.pcap');
  writeFileSync(path, file);
  const r = readCaptureStream(createReadStream(path, { highWaterMark: 1000 }));
  let bytes = 0;
  for await (const p of r) bytes += p.payload.length;
  t.equal(bytes, 100000);
  t.equal(r.stats.frames, 3 + 2 + 1 + 3);
});

const tsharkMissing = spawnSync('tshark', ['--version']).status !== 0;
if (tsharkMissing) console.log('# tshark is not installed: skipping the Wireshark conformance check');

t.test('tshark reads what we write without complaint', { skip: tsharkMissing && 'tshark is not installed' }, async (t) => {
  const msgs: Msg[] = [];
  let seed = 12345;
  const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 30; i++) {
    const n = i === 7 ? 3 * MAX_TCP_PAYLOAD + 11 : Math.floor(rnd() * 3000) + 1;
    msgs.push({ from: rnd() < 0.5 ? 'client' : 'server', bytes: new Uint8Array(n).map(() => Math.floor(rnd() * 256)) });
  }
  const path = join(dir, 'tshark.pcap');
  const w = new PcapWriter(path);
  const flows = [w.flow(client, server), w.flow({ ip: '10.1.2.3', port: 40000 }, { ip: '10.9.8.7', port: 5001 })];
  msgs.forEach((m, i) => flows[i % 2]!.send(m.from, m.bytes));
  for (const f of flows) f.close();
  await w.close();
  const frames = [...readCapture(new Uint8Array((await import('node:fs')).readFileSync(path)))].length;

  const list = spawnSync('tshark', ['-n', '-r', path, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' });
  t.equal(list.status, 0, 'tshark read the file');
  if (list.status !== 0) t.comment(list.stderr);
  t.equal(list.stdout.trim().split('\n').length, frames, 'tshark sees every frame');
  // Malformed packets and any expert info at warning level or above. The payloads are
  // random bytes, so the Lustre dissectors (port 988) are turned off: this checks our
  // Ethernet/IP/TCP framing, not what we put inside it.
  const noLustre = ['--disable-protocol', 'lnet', '--disable-protocol', 'lustre'];
  const bad = spawnSync('tshark', ['-n', '-r', path, ...noLustre, '-Y', '_ws.malformed || _ws.expert.severity >= "Warning"'], { encoding: 'utf8' });
  t.equal(bad.status, 0, 'tshark filtered the file');
  t.equal(bad.stdout.trim(), '', 'no malformed packets, no warnings');
  const expert = spawnSync('tshark', ['-n', '-r', path, ...noLustre, '-q', '-z', 'expert'], { encoding: 'utf8' });
  t.notMatch(expert.stdout, /Errors|Warns|Malformed/, 'expert summary has no errors or warnings');
  const stderr = bad.stderr.split('\n').filter((l) => l.trim() !== '' && !/Running as user "root"/.test(l));
  t.same(stderr, [], 'tshark printed no errors');
  // Wireshark verifies checksums when asked to: none may be flagged bad.
  const ck = spawnSync('tshark', [
    '-n', '-r', path, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE',
    '-Y', 'ip.checksum.status == "Bad" || tcp.checksum.status == "Bad"',
  ], { encoding: 'utf8' });
  t.equal(ck.status, 0, 'checksum check ran');
  if (ck.status !== 0) t.comment(ck.stderr);
  t.equal(ck.stdout.trim(), '', 'Wireshark finds every checksum good');
});
