// Captures to decoded Lustre messages: the engine of `lustre-conformance decode`.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeTrace, eventToJson } from '../../src/trace/index.js'
import { packageRoot } from '../../src/wire/index.js'
import { readCapture } from '../../src/capture/index.js'
import { runTour } from '../../src/tour/index.js'

const root = packageRoot()
const dir = mkdtempSync(join(tmpdir(), 'lc-trace-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const pcap = join(dir, 'tour.pcap')

t.before(async () => {
  await runTour({ pcapPath: pcap })
})

t.test('a file path (read in chunks) and the same bytes decode to the same events', async t => {
  const a = [...decodeTrace(pcap)].map(e => JSON.stringify(eventToJson(e)))
  const b = [...decodeTrace(readFileSync(pcap))].map(e => JSON.stringify(eventToJson(e)))
  t.ok(a.length > 80, `${a.length} events`)
  t.same(a, b)
})

t.test('every message decodes, and each reply with the format of its request', async t => {
  const requests = new Map<string, string>()
  let replies = 0
  for (const e of decodeTrace(pcap)) {
    t.notOk(e.error, `frame ${e.frame}: no decode error`)
    const m = e.message
    if (!m) continue
    const put = (e.frameUnit?.kind === 'lnet' ? e.frameUnit.hdr.msg : {}) as Record<string, Record<string, unknown>>
    const xid = String(put.put.match_bits)
    if (m.kind === 'request') requests.set(`${e.srcNid}/${xid}`, m.format!)
    else {
      replies++
      t.equal(m.format, requests.get(`${e.dstNid}/${xid}`), `frame ${e.frame} ${m.opcode} ${m.kind} decoded as its request's format`)
    }
  }
  t.ok(replies >= 40, `${replies} replies matched`)
})

t.test('a missing segment is reported as a gap and decoding resumes after it', async t => {
  // Rewrite the capture without one data segment from the client in the middle.
  const pkts = [...readCapture(readFileSync(pcap))]
  const data = pkts.filter(p => p.payload.length > 0 && p.dst.port === 988)
  const victim = data[Math.floor(data.length / 2)].frame
  const out = join(dir, 'gap.pcap')
  const raw = readFileSync(pcap)
  // Copy every record but the victim, byte for byte, from the classic pcap (24-byte header, 16-byte record headers).
  let off = 24
  let frame = 0
  const kept: Uint8Array[] = [raw.subarray(0, 24)]
  while (off < raw.length) {
    const len = raw.readUInt32LE(off + 8)
    frame++
    if (frame !== victim) kept.push(raw.subarray(off, off + 16 + len))
    off += 16 + len
  }
  writeFileSync(out, Buffer.concat(kept))
  const events = [...decodeTrace(out)]
  const gap = events.find(e => e.unit === 'gap')
  t.ok(gap, 'a gap event')
  t.ok((gap?.gapBytes ?? 0) > 0, `of ${gap?.gapBytes} bytes`)
  const after = events.filter(e => e.message && e.frame > victim)
  t.ok(after.length > 5, `${after.length} messages decoded after the hole`)
})

t.test('the decode command prints JSON Lines and honours --port', async t => {
  const cli = join(root, 'bin', 'lustre-conformance.js')
  const lines = execFileSync(process.execPath, [cli, 'decode', join(root, 'traces', 'tour.pcap')], { encoding: 'utf8' }).trim().split('\n')
  const objs = lines.map(l => JSON.parse(l) as Record<string, unknown>)
  t.ok(objs.length > 80, `${objs.length} lines`)
  t.ok(objs.every(o => typeof o.frame === 'number' && o.unit === 'lnet'), 'one LNet message per line')
  const enq = objs.find(o => o.opcode === 'LDLM_ENQUEUE' && o.kind === 'request') as { buffers: Record<string, { lock_desc: { l_req_mode: number } }> } | undefined
  t.ok(enq?.buffers.RMF_DLM_REQ.lock_desc.l_req_mode, 'buffers under Lustre field names')
  const none = execFileSync(process.execPath, [cli, 'decode', join(root, 'traces', 'tour.pcap'), '--port', '7988'], { encoding: 'utf8' }).trim()
  t.equal(none, '', 'another port decodes nothing from a port-988 capture')
})

t.test('the decode command stops quietly when its reader closes the pipe', async t => {
  const cli = join(root, 'bin', 'lustre-conformance.js')
  // `decode FILE | head -c 100` through a real pipe (node's own child pipes are socket pairs
  // large enough to take the whole output): head exits while decode is still writing.
  const errFile = join(dir, 'pipe-stderr')
  let status = 0
  try {
    execFileSync('bash', ['-c', 'set -o pipefail; "$0" "$1" decode "$2" 2>"$3" | head -c 100 >/dev/null', process.execPath, cli, join(root, 'traces', 'tour.pcap'), errFile])
  } catch (e) {
    status = (e as { status: number }).status
  }
  t.equal(status, 0, 'exit status 0')
  t.equal(readFileSync(errFile, 'utf8'), '', 'nothing on stderr')
})

t.test('a message carried by several TCP segments names the frame where it ends', async t => {
  const big = join(dir, 'big-bulk.pcap')
  await runTour({ pcapPath: big, bulkSize: 200 * 1024, filter: (_f, op) => op.opcode === 'OST_WRITE' || op.opcode === 'OST_CONNECT' })
  const events = [...decodeTrace(big)].filter(e => e.unit === 'lnet')
  const long = events.filter(e => e.endFrame !== undefined)
  t.ok(long.length > 0, `${long.length} messages span several frames`)
  t.ok(long.every(e => e.endFrame! > e.frame), 'each ends after it starts')
  t.ok(long.some(e => (e.bulkBytes ?? 0) >= 200 * 1024), 'the 200 KiB bulk among them')
  const json = eventToJson(long[0]) as { frame: number; end_frame?: number }
  t.equal(json.end_frame, long[0].endFrame, 'end_frame in JSON Lines')
  t.ok(events.filter(e => e.endFrame === undefined).every(e => !('end_frame' in (eventToJson(e) as object))), 'absent when the message fits one frame')
})
