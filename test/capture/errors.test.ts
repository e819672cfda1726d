// Bad input: every prefix of a valid file, random corruption, and the individual
// structural errors. The reader may throw CaptureError or read cleanly, nothing else, and
// must finish.

import t from 'tap';
import fc from 'fast-check';
import { CaptureError, PcapWriter, readCapture, readCaptureStream } from '../../src/capture/index.js';
import type { CaptureErrorCode, ReadOptions } from '../../src/capture/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

function pcapFile(): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new PcapWriter({ write: (b) => chunks.push(b) }, { clock: () => 1n });
  const f = w.flow({ ip: '10.0.0.1', port: 1023 }, { ip: '10.0.0.2', port: 988 });
  f.send('client', Uint8Array.of(1, 2, 3));
  f.send('server', new Uint8Array(70).fill(4));
  f.close();
  void w.close();
  return concat(chunks);
}

/** A little-endian pcapng: SHB, IDB, EPBs, a custom block, an SPB; built from pcap records. */
function pcapngFile(pcap: Uint8Array): Uint8Array {
  const blk = (type: number, body: number[]): number[] => {
    while (body.length % 4) body.push(0);
    const len = body.length + 12;
    return [...u32(type), ...u32(len), ...body, ...u32(len)];
  };
  const u32 = (v: number): number[] => [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24];
  const u16 = (v: number): number[] => [v & 255, v >>> 8];
  const out = [
    ...blk(0x0a0d0d0a, [...u32(0x1a2b3c4d), ...u16(1), ...u16(0), ...u32(0xffffffff), ...u32(0xffffffff)]),
    ...blk(1, [...u16(1), 0, 0, ...u32(0), ...u16(9), ...u16(1), 6, 0, 0, 0, 0, 0, 0, 0]),
  ];
  const v = new DataView(pcap.buffer, pcap.byteOffset, pcap.byteLength);
  let i = 0;
  for (let o = 24; o < pcap.length; i++) {
    const incl = v.getUint32(o + 8, true);
    const data = [...pcap.subarray(o + 16, o + 16 + incl)];
    if (i === 2) out.push(...blk(0x40000bad, [1, 2, 3]));
    out.push(...(i === 3 ? blk(3, [...u32(incl), ...data]) : blk(6, [...u32(0), ...u32(0), ...u32(i), ...u32(incl), ...u32(incl), ...data])));
    o += 16 + incl;
  }
  return Uint8Array.from(out);
}

const CODES = new Set<CaptureErrorCode>([
  'CAPTURE_BAD_MAGIC', 'CAPTURE_TRUNCATED', 'CAPTURE_BAD_BLOCK', 'CAPTURE_BAD_RECORD',
  'CAPTURE_UNSUPPORTED_VERSION', 'CAPTURE_UNSUPPORTED_LINKTYPE',
]);

interface Outcome { payloads: string[]; error?: CaptureError }
/** Reads everything; rethrows anything that is not a CaptureError. */
function attempt(bytes: Uint8Array, opts: ReadOptions = {}): Outcome {
  const payloads: string[] = [];
  try {
    for (const p of readCapture(bytes, opts)) payloads.push(`${p.frame}:${p.seq}:${hex(p.payload)}`);
    return { payloads };
  } catch (e) {
    if (!(e instanceof CaptureError)) throw e;
    if (!CODES.has(e.code) || !(e.offset >= 0 && e.offset <= bytes.length)) throw new Error(`bad error ${e.code} @${e.offset}`);
    return { payloads, error: e };
  }
}

function boundaries(file: Uint8Array, ng: boolean): number[] {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const out: number[] = [];
  for (let o = ng ? 0 : 24; o < file.length; ) {
    out.push(o);
    o += ng ? v.getUint32(o + 4, true) : 16 + v.getUint32(o + 8, true);
  }
  return [...out, file.length];
}

for (const ng of [false, true]) {
  t.test(`${ng ? 'pcapng' : 'pcap'}: every prefix reads cleanly or throws CAPTURE_TRUNCATED`, async (t) => {
    const file = ng ? pcapngFile(pcapFile()) : pcapFile();
    const full = attempt(file);
    t.equal(full.error, undefined);
    t.equal(full.payloads.length, 8);
    const bounds = boundaries(file, ng);
    let clean = 0;
    for (let len = 0; len < file.length; len++) {
      const r = attempt(file.subarray(0, len));
      const next = bounds.findIndex((b) => b > len);
      const recordStart = next <= 0 ? 0 : bounds[next - 1]!;
      // Packets before the cut are all delivered first, in full.
      const before = full.payloads.filter((p) => Number(p.split(':')[0]) <= frameCountBefore(bounds, len, ng));
      if (r.payloads.join() !== before.join()) t.fail(`prefix ${len}: packets differ`);
      if (bounds.includes(len) && len >= (ng ? 28 : 24)) {
        if (r.error !== undefined) t.fail(`prefix ${len}: error ${r.error.message} at a record boundary`);
        clean++;
      } else if (r.error?.code !== 'CAPTURE_TRUNCATED' || r.error.offset !== recordStart) {
        t.fail(`prefix ${len}: ${r.error?.code}@${r.error?.offset}, expected CAPTURE_TRUNCATED@${recordStart}`);
      }
    }
    t.equal(clean, bounds.length - (ng ? 2 : 1), 'clean reads at every record boundary');
  });
}

// Packet records wholly inside the first len bytes (pcapng: minus SHB and IDB, which are not frames).
function frameCountBefore(bounds: number[], len: number, ng: boolean): number {
  let n = 0;
  for (let i = 0; i + 1 < bounds.length; i++) if (bounds[i + 1]! <= len) n++;
  return ng ? Math.max(0, n - 2) : n; // the custom block counts, as Wireshark counts it
}

t.test('random corruption: only CaptureError, and it ends', async (t) => {
  const files = [pcapFile(), pcapngFile(pcapFile())];
  fc.assert(
    fc.property(
      fc.constantFrom(0, 1),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 8 }),
      fc.nat(),
      (which, edits, cut) => {
        const b = files[which]!.slice();
        for (const [pos, val] of edits) b[pos % b.length] = val;
        attempt(b.subarray(0, b.length - (cut % 50)));
        attempt(b.subarray(0, b.length - (cut % 50)), { ignoreSnaplen: true, unsupportedLinkType: 'skip' });
      },
    ),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.constantFrom(0xa1b2c3d4, 0xd4c3b2a1, 0x0a0d0d0a, 0xa1b23c4d), fc.uint8Array({ maxLength: 400 }), (magic, rest) => {
      const b = new Uint8Array(4 + rest.length);
      new DataView(b.buffer).setUint32(0, magic, true);
      b.set(rest, 4);
      attempt(b);
    }),
    { numRuns: 3000 },
  );
  t.pass('6000 corrupted files read or rejected with CaptureError');
});

t.test('chunked streaming and whole-buffer reading agree, errors included', async (t) => {
  const files = [pcapFile(), pcapngFile(pcapFile())];
  const outcome = async (chunks: Uint8Array[]): Promise<string> => {
    async function* src(): AsyncGenerator<Uint8Array> { yield* chunks; }
    const got: string[] = [];
    try {
      for await (const p of readCaptureStream(src())) got.push(`${p.frame}:${p.seq}:${hex(p.payload)}`);
    } catch (e) {
      if (!(e instanceof CaptureError)) throw e;
      got.push(`${e.code}@${e.offset}`);
    }
    return got.join();
  };
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(0, 1),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 4 }),
      fc.nat({ max: 60 }),
      fc.array(fc.integer({ min: 1, max: 120 }), { maxLength: 20 }),
      async (which, edits, cut, sizes) => {
        const b = files[which]!.slice();
        for (const [pos, val] of edits) b[pos % b.length] = val;
        const bytes = b.subarray(0, Math.max(0, b.length - cut));
        const whole = attempt(bytes);
        const want = [...whole.payloads, ...(whole.error ? [`${whole.error.code}@${whole.error.offset}`] : [])].join();
        const chunks: Uint8Array[] = [];
        let o = 0;
        for (const n of sizes) { chunks.push(bytes.subarray(o, o + n)); o = Math.min(bytes.length, o + n); }
        chunks.push(bytes.subarray(o));
        return (await outcome(chunks)) === want;
      },
    ),
    { numRuns: 1000 },
  );
  t.pass('1000 runs');
});

t.test('individual classic pcap errors', async (t) => {
  const good = pcapFile();
  const patch = (at: number, v: number, le = true): Uint8Array => {
    const b = good.slice();
    new DataView(b.buffer).setUint32(at, v, le);
    return b;
  };
  const code = (b: Uint8Array, opts?: ReadOptions): string => attempt(b, opts).error?.code ?? 'ok';
  t.equal(code(new Uint8Array(0)), 'CAPTURE_TRUNCATED', 'empty');
  t.equal(code(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)), 'CAPTURE_BAD_MAGIC');
  t.equal(code(new TextEncoder().encode('hello, this is not a capture file at all')), 'CAPTURE_BAD_MAGIC');
  t.equal(code(patch(0, 0xa1b2cd34)), 'CAPTURE_BAD_MAGIC', 'Kuznetsov pcap');
  t.equal(code(patch(4, 0x00040001)), 'CAPTURE_UNSUPPORTED_VERSION');
  t.equal(code(patch(16, 40)), 'CAPTURE_BAD_RECORD', 'record over snaplen');
  t.equal(code(patch(16, 40), { ignoreSnaplen: true }), 'ok');
  t.equal(code(patch(16, 0)), 'ok', 'snaplen 0: only the fixed bound');
  const huge = patch(24 + 8, 0x7fffffff);
  const e = attempt(huge).error;
  t.same([e?.code, e?.offset], ['CAPTURE_BAD_RECORD', 32], 'a length that is never allocated for');
  t.equal(code(patch(24 + 8, 1000)), 'CAPTURE_TRUNCATED', 'a record running past the end');
  t.equal(code(patch(24 + 8, 1000), { ignoreSnaplen: true }), 'CAPTURE_TRUNCATED');
});

t.test('streaming reader: same errors, bounded buffering', async (t) => {
  const good = pcapFile();
  async function run(chunks: Uint8Array[]): Promise<string> {
    async function* src(): AsyncGenerator<Uint8Array> { yield* chunks; }
    try {
      for await (const _ of readCaptureStream(src()));
      return 'ok';
    } catch (e) {
      return e instanceof CaptureError ? `${e.code}@${e.offset}` : `OTHER ${String(e)}`;
    }
  }
  t.equal(await run([good.subarray(0, 10), good.subarray(10)]), 'ok');
  t.equal(await run([good.subarray(0, 10)]), 'CAPTURE_TRUNCATED@0');
  t.equal(await run([good.subarray(0, 30), good.subarray(30, 50)]), 'CAPTURE_TRUNCATED@24');
  t.equal(await run([]), 'CAPTURE_TRUNCATED@0');
  // A pcapng block announcing 60 MB, followed by only a few bytes: nothing is allocated
  // for it until its bytes exist, and the end of input reports it as truncated.
  const ng = pcapngFile(good);
  const shbLen = 28;
  const big = concat([ng.subarray(0, shbLen), Uint8Array.of(6, 0, 0, 0, 0, 0, 0xc0, 3), new Uint8Array(100)]);
  const before = process.memoryUsage().arrayBuffers;
  t.equal(await run([big.subarray(0, 40), big.subarray(40)]), `CAPTURE_TRUNCATED@${shbLen}`);
  t.ok(process.memoryUsage().arrayBuffers - before < 10_000_000, 'no 60 MB buffer');
  t.equal(await run([Uint8Array.of(1, 2, 3, 4, 5)]), 'CAPTURE_BAD_MAGIC@0');
  t.equal(await run([good.subarray(0, 30), 'text' as unknown as Uint8Array]), 'CAPTURE_BAD_ARGUMENT@-1', 'string chunks');
});
