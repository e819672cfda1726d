// FrameDecoder: one direction of a socklnd connection (connreq, hello, then NOOP
// and LNet frames) decodes to the same units whatever the chunking; every unit's
// offset is where it starts in the stream; a declared length larger than its
// limit (payload_length, kshm_nips) is refused as soon as the header holding it
// is in, before anything sized by it is buffered; big-endian peers are detected
// from the connreq / hello / ksock magic while the LNet header stays little-endian.
import t from 'tap'
import fc from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import {
  loadSpec, FrameDecoder, encodeConnreq, encodeHello, encodeNoop, encodeLnetFrame, encodeStruct, isWireError,
  SOCKLND_CONSTANTS as K, CONNREQ_SIZE, HELLO_V3_SIZE, KSOCK_HDR_SIZE, LNET_HDR_SIZE, MAX_HELLO_IPS,
  type LnetFrame, type HelloFields, type LustreWireError, type StreamStart,
} from '../../src/wire/index.js'
import { runProperty, structArb, scalarArb } from '../helpers/arbitraries.js'

const SEED = 0x5eed0004
t.comment(`fast-check seed ${SEED}`)

const spec = loadSpec()
type Obj = Record<string, unknown>
const FRAME_HDR = KSOCK_HDR_SIZE + LNET_HDR_SIZE

t.equal(FRAME_HDR, 96, 'ksock + LNet header is 96 bytes')
t.equal(CONNREQ_SIZE, 16)
t.equal(HELLO_V3_SIZE, 56)

// ---- stream generation ----------------------------------------------------------

const u64 = scalarArb('u64') as fc.Arbitrary<bigint>
const u32 = scalarArb('u32') as fc.Arbitrary<number>
const helloArb: fc.Arbitrary<HelloFields> = fc.record({
  srcNid: u64, dstNid: u64, srcPid: u32, dstPid: u32, srcIncarnation: u64, dstIncarnation: u64, ctype: u32,
})
/** LNet headers the decoder accepts: type ACK..HELLO (payload_length is set by encodeLnetFrame). */
const lnetHdrArb = (structArb(spec.structs.get('_lnet_hdr_nid4')!) as fc.Arbitrary<Obj>)
  .filter(h => (h.type as number) >= K.LNET_MSG_ACK && (h.type as number) <= K.LNET_MSG_HELLO)

/** A payload of `len` bytes, cheap to make at 64 KiB: a pattern from `seed`. */
function payloadOf(len: number, seed: number): Uint8Array {
  const p = new Uint8Array(len)
  let x = seed | 1
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    p[i] = x & 0xff
  }
  return p
}

type Unit = { kind: 'noop' } | { kind: 'lnet'; hdr: Obj; len: number; seed: number }
const unitArb = (maxPayload: number): fc.Arbitrary<Unit> => fc.oneof(
  fc.constant({ kind: 'noop' as const }),
  fc.record({
    kind: fc.constant('lnet' as const),
    hdr: lnetHdrArb,
    len: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.noBias(fc.integer({ min: 0, max: maxPayload }))),
    seed: fc.integer(),
  }),
)

interface Stream {
  bytes: Uint8Array
  /** what the decoder must give, with offsets */
  want: Array<Obj>
  le: boolean
}

function buildStream(start: StreamStart, le: boolean, nid: bigint, hello: HelloFields, units: Unit[]): Stream {
  const parts: Uint8Array[] = []
  const want: Obj[] = []
  let off = 0
  const add = (b: Uint8Array, w: Obj) => { parts.push(b); want.push({ ...w, offset: off }); off += b.length }
  const helloValue = {
    kshm_magic: K.HELLO_MAGIC, kshm_version: K.PROTO_V3, kshm_src_nid: hello.srcNid, kshm_dst_nid: hello.dstNid,
    kshm_src_pid: hello.srcPid, kshm_dst_pid: hello.dstPid, kshm_src_incarnation: hello.srcIncarnation,
    kshm_dst_incarnation: hello.dstIncarnation, kshm_ctype: hello.ctype, kshm_nips: 0, kshm_ips: [],
  }
  if (start === 'connreq' || start === 'auto') {
    add(encodeConnreq(nid, le), { kind: 'connreq', littleEndian: le, connreq: { acr_magic: K.ACCEPTOR_MAGIC, acr_version: K.ACCEPTOR_VERSION, acr_nid: nid } })
  }
  if (start !== 'message') add(encodeHello(hello, le), { kind: 'hello', littleEndian: le, hello: helloValue })
  const ksock = (type: number) => ({ ksh_type: type, ksh_csum: 0, ksh_zc_cookies: [0n, 0n] })
  for (const u of units) {
    if (u.kind === 'noop') add(encodeNoop(le), { kind: 'noop', ksock: ksock(K.MSG_NOOP) })
    else {
      const payload = payloadOf(u.len, u.seed)
      add(encodeLnetFrame(u.hdr, payload, le), { kind: 'lnet', ksock: ksock(K.MSG_LNET), hdr: { ...u.hdr, payload_length: u.len }, payload })
    }
  }
  const bytes = new Uint8Array(off)
  let at = 0
  for (const p of parts) { bytes.set(p, at); at += p.length }
  return { bytes, want, le }
}

/** Feeds `bytes` cut at `cuts` (sorted, deduplicated positions); returns every unit. */
function feed(d: FrameDecoder, bytes: Uint8Array, cuts: number[]): LnetFrame[] {
  const out: LnetFrame[] = []
  let prev = 0
  for (const c of [...cuts, bytes.length]) {
    // A fresh copy per chunk: the decoder may keep views of what it is given.
    out.push(...d.push(bytes.slice(prev, c)))
    prev = c
  }
  return out
}

const cutsArb = (len: number) => fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, len) }), { maxLength: 40 }).map(a => a.sort((x, y) => x - y))

function strip(f: LnetFrame): Obj {
  // An LNet unit builds its headers when read: compare what it shows.
  if (f.kind === 'lnet') return f.toJSON()
  const { raw: _raw, ...rest } = f as LnetFrame & { raw?: Uint8Array }
  return rest
}

function explain(a: unknown, b: unknown): string {
  const show = (x: unknown) => JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `<${v.length} bytes>` : v))
  return `\n  want ${show(a)}\n  got  ${show(b)}`.slice(0, 2000)
}

t.test('any chunking gives the units of the whole stream, at their offsets', async t => {
  const arb = fc.record({
    start: fc.constantFrom<StreamStart>('auto', 'connreq', 'hello', 'message'),
    le: fc.boolean(),
    nid: u64,
    hello: helloArb,
    units: fc.array(unitArb(64 * 1024), { minLength: 0, maxLength: 8 }),
  }).map(g => ({ ...g, le: g.start === 'message' ? true : g.le })) // start 'message' cannot learn the byte order: it is little-endian
    .chain(g => {
    const s = buildStream(g.start, g.le, g.nid, g.hello, g.units)
    return fc.record({ g: fc.constant(g), s: fc.constant(s), cuts: cutsArb(s.bytes.length) })
  })
  let bytes = 0
  let unitCount = 0
  let largest = 0
  runProperty(t, 'chunked === whole === built', fc.property(arb, ({ g, s, cuts }) => {
    bytes += s.bytes.length
    unitCount += s.want.length
    for (const w of s.want) if (w.payload instanceof Uint8Array) largest = Math.max(largest, w.payload.length)
    const whole = new FrameDecoder({ start: g.start }).push(s.bytes.slice()).map(strip)
    if (!isDeepStrictEqual(whole, s.want)) throw new Error(`whole stream${explain(s.want, whole)}`)
    const d = new FrameDecoder({ start: g.start, keepRaw: true })
    const units = feed(d, s.bytes, cuts)
    const chunked = units.map(strip)
    if (!isDeepStrictEqual(chunked, s.want)) throw new Error(`chunked at ${cuts.join(',')}${explain(s.want, chunked)}`)
    // keepRaw: each unit's raw bytes are exactly its span of the stream.
    units.forEach((u, i) => {
      const end = i + 1 < units.length ? units[i + 1].offset : s.bytes.length
      if (!isDeepStrictEqual(u.raw, s.bytes.slice(u.offset, end))) throw new Error(`unit ${i} (${u.kind}): raw is not bytes ${u.offset}..${end}`)
    })
    if (d.pending !== 0) throw new Error(`${d.pending} bytes left pending`)
    if (d.offset !== s.bytes.length) throw new Error(`decoder offset ${d.offset}, stream is ${s.bytes.length}`)
    if (g.start !== 'message' && d.littleEndian !== g.le) throw new Error('byte order not reported')
    return true
  }), { seed: SEED, numRuns: 150 })
  t.comment(`${unitCount} units, ${(bytes / 2 ** 20).toFixed(1)} MiB decoded twice, largest payload ${largest} bytes`)
  t.ok(bytes > 2 * 2 ** 20 && largest > 60 * 1024, 'the streams carry payloads up to 64 KiB')
})

t.test('one byte at a time', async t => {
  const s = buildStream('auto', true, 0x2000bc0a80105n, fc.sample(helloArb, { seed: SEED, numRuns: 1 })[0], [
    { kind: 'noop' },
    { kind: 'lnet', hdr: fc.sample(lnetHdrArb, { seed: SEED, numRuns: 1 })[0], len: 300, seed: 7 },
    { kind: 'lnet', hdr: fc.sample(lnetHdrArb, { seed: SEED + 1, numRuns: 1 })[0], len: 0, seed: 8 },
    { kind: 'noop' },
  ])
  const d = new FrameDecoder()
  const got: LnetFrame[] = []
  const emittedAt: number[] = []
  for (let i = 0; i < s.bytes.length; i++) {
    const fs = d.push(s.bytes.subarray(i, i + 1))
    for (const f of fs) { got.push(f); emittedAt.push(i + 1) }
  }
  t.strictSame(got.map(strip), s.want, 'same units')
  // Each unit comes out with its last byte, not later.
  const ends = s.want.map((w, i) => (i + 1 < s.want.length ? (s.want[i + 1].offset as number) : s.bytes.length))
  t.strictSame(emittedAt, ends, 'each unit is emitted when its last byte arrives')
  t.strictSame(d.push(new Uint8Array(0)), [], 'an empty push gives nothing')
})

t.test('payloads do not share memory with the pushed chunks', async t => {
  const hdr = fc.sample(lnetHdrArb, { seed: SEED, numRuns: 1 })[0]
  const payload = payloadOf(64, 3)
  const frame = encodeLnetFrame(hdr, payload)
  const d = new FrameDecoder({ start: 'message' })
  t.strictSame(d.push(frame.slice(0, FRAME_HDR)), [], 'header alone gives nothing')
  const chunk = frame.slice(FRAME_HDR) // exactly the payload, a whole ArrayBuffer of its own
  const [f] = d.push(chunk)
  t.equal(f?.kind, 'lnet')
  chunk.fill(0)
  t.strictSame(f && f.kind === 'lnet' ? f.payload : undefined, payload, 'the caller reusing its chunk does not change the payload')
  // A payload inside a larger chunk is copied.
  const d2 = new FrameDecoder({ start: 'message' })
  const big = frame.slice()
  const [f2] = d2.push(big)
  big.fill(0)
  t.strictSame(f2 && f2.kind === 'lnet' ? f2.payload : undefined, payload, 'payload from a larger chunk is a copy')
})

// ---- limits -------------------------------------------------------------------------

function code(f: () => unknown): LustreWireError | string {
  try {
    f()
  } catch (e) {
    return isWireError(e) ? e : `not a wire error: ${String(e)}`
  }
  return 'no error'
}

const lead = () => {
  const h = fc.sample(helloArb, { seed: SEED, numRuns: 1 })[0]
  const c = encodeConnreq(0x2000bc0a80105n)
  const hl = encodeHello(h)
  const b = new Uint8Array(c.length + hl.length)
  b.set(c)
  b.set(hl, c.length)
  return b
}

function bogusFrame(payloadLength: number, le = true): Uint8Array {
  const hdr = fc.sample(lnetHdrArb, { seed: SEED, numRuns: 1 })[0]
  const f = encodeLnetFrame(hdr, undefined, le)
  new DataView(f.buffer).setUint32(KSOCK_HDR_SIZE + 28, payloadLength, true) // payload_length, little-endian always
  return f
}

t.test('a payload_length over the limit is refused when the 96-byte header is in', async t => {
  const BUG_OFFSET = 'codec bug: decodeLnetHdr is given the ksock header\'s stream offset (frameStart) as the LNet header\'s base, so err.offset points 24 bytes before payload_length'
  for (const [label, pl, maxPayload] of [
    ['4 GiB - 1', 0xffffffff, undefined],
    ['LNET_MTU + 1', K.LNET_MTU + 1, undefined],
    ['maxPayload + 1', 1001, 1000],
  ] as Array<[string, number, number | undefined]>) {
    const d = new FrameDecoder(maxPayload === undefined ? {} : { maxPayload })
    const head = lead()
    t.equal(d.push(head).length, 2, `${label}: connreq and hello`)
    const f = bogusFrame(pl)
    const frameStart = head.length
    let pushed = 0
    let err: LustreWireError | string = 'no error'
    for (let i = 0; i < f.length; i++) {
      err = code(() => d.push(f.subarray(i, i + 1)))
      pushed++
      if (err !== 'no error') break
      if (d.pending > pushed || d.pending > FRAME_HDR) t.fail(`${label}: pending ${d.pending} after ${pushed} bytes`)
    }
    t.equal(pushed, FRAME_HDR, `${label}: refused with the 96th byte of the frame`)
    t.equal(typeof err === 'string' ? err : err.code, 'LC_WIRE_BUFFER_OVER_LIMIT', `${label}: LC_WIRE_BUFFER_OVER_LIMIT`)
    if (typeof err !== 'string') {
      t.equal(err.field, '_lnet_hdr_nid4.payload_length', `${label}: field`)
      t.equal(err.value, pl, `${label}: value`)
      t.equal(err.limit, maxPayload ?? K.LNET_MTU, `${label}: limit`)
      t.equal(err.offset, frameStart + KSOCK_HDR_SIZE + 28, `${label}: offset is payload_length's place in the stream`)
    }
  }
  // At the limit exactly: accepted.
  const d = new FrameDecoder({ start: 'message', maxPayload: 1000 })
  const ok = encodeLnetFrame(fc.sample(lnetHdrArb, { seed: SEED, numRuns: 1 })[0], payloadOf(1000, 1))
  t.equal(d.push(ok).length, 1, 'payload_length == maxPayload is accepted')
})

t.test('a huge declared payload allocates nothing sized by it', async t => {
  // Limit raised so the header is accepted: the decoder must then buffer only what arrives.
  const d = new FrameDecoder({ start: 'message', maxPayload: 2 ** 32 })
  const before = process.memoryUsage().arrayBuffers
  t.strictSame(d.push(bogusFrame(0xffffffff)), [], 'header accepted, waiting for the payload')
  const mib = new Uint8Array(1 << 20)
  for (let i = 0; i < 4; i++) t.strictSame(d.push(mib), [], `MiB ${i + 1}: still waiting`)
  t.equal(d.pending, 4 << 20, 'pending is what was pushed')
  const grew = process.memoryUsage().arrayBuffers - before
  t.ok(grew < 64 << 20, `array buffers grew by ${(grew / 2 ** 20).toFixed(1)} MiB, not 4 GiB`)
})

t.test('kshm_nips over MAX_HELLO_IPS is refused when the fixed hello is in', async t => {
  const h = fc.sample(helloArb, { seed: SEED, numRuns: 1 })[0]
  for (const le of [true, false]) {
    for (const nips of [1e9, 0xffffffff, MAX_HELLO_IPS + 1]) {
      const hello = encodeHello(h, le)
      new DataView(hello.buffer).setUint32(52, nips, le)
      const d = new FrameDecoder({ start: 'hello' })
      let err: LustreWireError | string = 'no error'
      let pushed = 0
      for (let i = 0; i < hello.length; i++) {
        err = code(() => d.push(hello.subarray(i, i + 1)))
        pushed++
        if (err !== 'no error') break
      }
      const what = `nips ${nips} (${le ? 'LE' : 'BE'})`
      t.equal(pushed, HELLO_V3_SIZE, `${what}: refused with the 56th byte`)
      t.equal(typeof err === 'string' ? err : err.code, 'LC_WIRE_BUFFER_OVER_LIMIT', what)
      if (typeof err !== 'string') {
        t.equal(err.offset, 52, `${what}: offset of kshm_nips`)
        t.equal(err.field, 'ksock_hello_msg_nid4.kshm_nips')
        t.equal(err.value, nips)
      }
    }
  }
  // MAX_HELLO_IPS addresses are fine, and the hello is 56 + 4n bytes.
  const ips = Array.from({ length: MAX_HELLO_IPS }, (_, i) => 0x0a000001 + i)
  const full = encodeStruct('ksock_hello_msg_nid4', {
    kshm_magic: K.HELLO_MAGIC, kshm_version: K.PROTO_V3, kshm_src_nid: h.srcNid, kshm_dst_nid: h.dstNid,
    kshm_src_pid: h.srcPid, kshm_dst_pid: h.dstPid, kshm_src_incarnation: h.srcIncarnation, kshm_dst_incarnation: h.dstIncarnation,
    kshm_ctype: h.ctype, kshm_nips: MAX_HELLO_IPS, kshm_ips: ips,
  })
  t.equal(full.length, HELLO_V3_SIZE + 4 * MAX_HELLO_IPS)
  const d = new FrameDecoder({ start: 'hello' })
  const noop = encodeNoop()
  const stream = new Uint8Array(full.length + noop.length)
  stream.set(full)
  stream.set(noop, full.length)
  const got = feed(d, stream, [8, 55, 56, 57, 100])
  t.equal(got.length, 2, 'hello and noop')
  t.strictSame(got[0]?.kind === 'hello' ? got[0].hello.kshm_ips : undefined, ips, 'addresses decoded')
  t.equal(got[1]?.offset, full.length, 'the noop starts after the addresses')
})

t.test('big-endian connreq, hello and ksock headers; the LNet header stays little-endian', async t => {
  const h = fc.sample(helloArb, { seed: SEED, numRuns: 1 })[0]
  const hdr = fc.sample(lnetHdrArb, { seed: SEED, numRuns: 1 })[0]
  const units: Unit[] = [{ kind: 'noop' }, { kind: 'lnet', hdr, len: 40, seed: 5 }]
  const le = buildStream('auto', true, 0x2000bc0a80105n, h, units)
  const be = buildStream('auto', false, 0x2000bc0a80105n, h, units)
  t.equal(be.bytes.length, le.bytes.length, 'same length')
  t.strictSame([...be.bytes.subarray(0, 4)], [...le.bytes.subarray(0, 4)].reverse(), 'connreq magic byte-swapped')
  t.strictSame([...be.bytes.subarray(16, 20)], [...le.bytes.subarray(16, 20)].reverse(), 'hello magic byte-swapped')
  const lnetAt = 16 + 56 + 24
  t.strictSame([...be.bytes.subarray(lnetAt, lnetAt + 4)], [...le.bytes.subarray(lnetAt, lnetAt + 4)].reverse(), 'ksock type byte-swapped')
  t.strictSame(be.bytes.subarray(lnetAt + 24, lnetAt + 96), le.bytes.subarray(lnetAt + 24, lnetAt + 96), 'LNet header bytes identical')

  const d = new FrameDecoder()
  const got = d.push(be.bytes).map(strip)
  t.equal(d.littleEndian, false, 'decoder reports a big-endian peer')
  t.strictSame(got, be.want, 'units decode to the same values')
  t.strictSame(got.map(f => (f as Obj).littleEndian), [false, false, undefined, undefined])
  const gotLe = new FrameDecoder().push(le.bytes).map(strip)
  const values = (fs: Obj[]) => fs.map(f => ({ ...f, littleEndian: undefined }))
  t.strictSame(values(got), values(gotLe), 'same values as the little-endian stream')

  // A big-endian stream that starts at a ksock header (start: 'auto') is recognised by the swapped type.
  const msgs = buildStream('message', false, 0n, h, units)
  const auto = new FrameDecoder().push(msgs.bytes).map(strip)
  t.strictSame(auto, msgs.want, 'auto start on big-endian ksock headers')
})

t.test('garbage at the start of a stream', async t => {
  for (const [start, first] of [['auto', 0x12345678], ['connreq', 0x12345678], ['hello', 0x12345678]] as Array<[StreamStart, number]>) {
    const b = new Uint8Array(64)
    new DataView(b.buffer).setUint32(0, first, true)
    const e = code(() => new FrameDecoder({ start }).push(b))
    t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_BAD_MAGIC', `${start}: bad magic`)
    if (typeof e !== 'string') t.equal(e.offset, 0, `${start}: at offset 0`)
  }
  const k = new Uint8Array(24)
  new DataView(k.buffer).setUint32(0, 0xc2, true)
  const e = code(() => new FrameDecoder({ start: 'message' }).push(k))
  t.equal(typeof e === 'string' ? e : e.code, 'LC_WIRE_UNKNOWN_MSG_TYPE', 'unknown ksock type')
  const lnet = bogusFrame(0)
  lnet[KSOCK_HDR_SIZE + 24] = 5 // LNet type 5
  const e2 = code(() => new FrameDecoder({ start: 'message' }).push(lnet))
  t.equal(typeof e2 === 'string' ? e2 : e2.code, 'LC_WIRE_UNKNOWN_MSG_TYPE', 'unknown LNet type')
  if (typeof e2 !== 'string') {
    t.equal(e2.field, '_lnet_hdr_nid4.type')
    t.equal(e2.offset, KSOCK_HDR_SIZE + 24, 'offset of the LNet type in the stream')
  }
  const cr = encodeConnreq(1n)
  new DataView(cr.buffer).setUint32(4, 2, true)
  const e3 = code(() => new FrameDecoder().push(cr))
  t.equal(typeof e3 === 'string' ? e3 : e3.code, 'LC_WIRE_BAD_VERSION', 'connreq version 2')
  const hl = encodeHello(fc.sample(helloArb, { seed: SEED, numRuns: 1 })[0])
  new DataView(hl.buffer).setUint32(4, 1, true)
  const e4 = code(() => new FrameDecoder({ start: 'hello' }).push(hl))
  t.equal(typeof e4 === 'string' ? e4 : e4.code, 'LC_WIRE_BAD_VERSION', 'hello version 1')
})
