// The reference cluster under load, each figure beside a baseline from the same run:
//  - streaming write then read of a striped file (4 OSTs, loopback) against a raw TCP
//    transfer between two node processes on loopback, the practical ceiling;
//  - create + stat + unlink from 8 concurrent clients against bare OBD_PING RPCs;
//  - peak RSS of the server processes during the transfer, at two file sizes, to show
//    that it does not grow with the file.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { startClusterProcesses, type RunningCluster } from '../reference/cluster/index.js'
import { LustreClient } from '../reference/client/index.js'
import { nowMs } from './harness.js'

const MiB = 1 << 20

const BLOCK = pseudoRandom(16 * MiB)

function pseudoRandom(n: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = 0x9e3779b9
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/**
 * Deterministic bytes for file offset `off`, cheap enough not to weigh on the timing: a fixed
 * pseudo-random block, with every 4 KiB page stamped with its own file offset, so that a page
 * read back from the wrong place does not compare equal.
 */
export function pattern(off: number, len: number): Uint8Array {
  const out = new Uint8Array(len)
  for (let i = 0; i < len; ) {
    const at = (off + i) % BLOCK.length
    const n = Math.min(len - i, BLOCK.length - at)
    out.set(BLOCK.subarray(at, at + n), i)
    i += n
  }
  const dv = new DataView(out.buffer)
  for (let page = Math.ceil(off / 4096) * 4096; page + 8 <= off + len; page += 4096) dv.setFloat64(page - off, page, true)
  return out
}

// A sink in its own node process: counts bytes until the sender ends, then says how many.
const SINK = `
const net = require('node:net')
const srv = net.createServer(s => { let n = 0; s.on('data', d => { n += d.length }); s.on('end', () => { console.log('done ' + n); srv.close() }) })
srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port))
`

/** MB/s of `bytes` sent over TCP from this process to another on loopback, in 1 MiB writes. */
export async function rawTcp(bytes: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', SINK], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  const next = (): Promise<string> => new Promise(r => lines.once('line', r))
  const port = Number((await next()).split(' ')[1])
  const chunk = pattern(0, MiB)
  const t0 = nowMs()
  const done = next()
  await new Promise<void>((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    s.on('error', reject)
    let sent = 0
    const pump = (): void => {
      while (sent < bytes) {
        sent += chunk.length
        if (!s.write(chunk)) return void s.once('drain', pump)
      }
      s.end(() => resolve())
    }
    s.once('connect', pump)
  })
  await done
  const seconds = (nowMs() - t0) / 1000
  child.kill()
  return bytes / seconds / 1e6
}

/**
 * MB/s of writing then reading back a new file of `bytes` in `dir`, 1 MiB positional
 * writes and reads from one process, no network: what the host's file system allows the
 * OSS at best (extending writes allocate blocks; reads come from the page cache, as the
 * OSS's do right after the write).
 */
export async function localFile(dir: string, bytes: number): Promise<{ writeMBs: number; readMBs: number }> {
  const path = join(dir, `local-${Date.now()}`)
  const chunk = pattern(0, MiB)
  const fh = await open(path, 'w+')
  try {
    let t0 = nowMs()
    for (let off = 0; off < bytes; off += MiB) await fh.write(chunk, 0, Math.min(MiB, bytes - off), off)
    const writeS = (nowMs() - t0) / 1000
    t0 = nowMs()
    for (let off = 0; off < bytes; off += MiB) await fh.read(chunk, 0, Math.min(MiB, bytes - off), off)
    const readS = (nowMs() - t0) / 1000
    return { writeMBs: bytes / writeS / 1e6, readMBs: bytes / readS / 1e6 }
  } finally {
    await fh.close()
    await rm(path, { force: true })
  }
}

/** Resident set size now (VmRSS) of a process, in bytes; 0 if it is gone. */
function rss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

export interface TransferResult {
  bytes: number
  writeMBs: number
  readMBs: number
  /** largest sum of the servers' RSS seen, sampled every 50 ms */
  peakRss: number
  verified: boolean
}

/** Writes then reads back `bytes` of a file striped -c 4 -S 1M, in `piece`-sized calls. */
export async function transfer(c: RunningCluster, bytes: number, name: string, piece = 16 * MiB): Promise<TransferResult> {
  const pids = [c.pids!.mds, ...c.pids!.oss]
  let peak = 0
  const client = await LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses })
  const timer = setInterval(() => { peak = Math.max(peak, pids.reduce((a, p) => a + rss(p), 0)) }, 50)
  try {
    const path = `/${name}`
    await client.create(path, { stripeCount: 4, stripeSize: MiB })
    // Streamed as put and get stream: the file opened once, one reused read buffer.
    const f = await client.open(path)
    // Only the client calls are timed: making the pattern and comparing it are the bench's work, not the cluster's.
    let writeS = 0
    for (let off = 0; off < bytes; off += piece) {
      const data = pattern(off, Math.min(piece, bytes - off))
      const t0 = nowMs()
      await f.write(off, data)
      writeS += (nowMs() - t0) / 1000
    }
    let readS = 0
    let verified = true
    const buf = new Uint8Array(piece)
    for (let off = 0; off < bytes; off += piece) {
      const t0 = nowMs()
      const got = buf.subarray(0, await f.readInto(off, buf, bytes))
      readS += (nowMs() - t0) / 1000
      const want = pattern(off, got.length)
      if (got.length !== Math.min(piece, bytes - off) || Buffer.compare(got, want) !== 0) verified = false
    }
    await client.unlink(path)
    return { bytes, writeMBs: bytes / writeS / 1e6, readMBs: bytes / readS / 1e6, peakRss: peak, verified }
  } finally {
    clearInterval(timer)
    await client.close()
  }
}

/** Operations per second of `op`, run by `clients` concurrent clients for `seconds`. */
async function concurrentRate(c: RunningCluster, clients: number, seconds: number, op: (cl: LustreClient, k: number, i: number) => Promise<number>): Promise<number> {
  const cls = await Promise.all(Array.from({ length: clients }, () => LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses })))
  try {
    let ops = 0
    const end = nowMs() + seconds * 1000
    const t0 = nowMs()
    await Promise.all(cls.map(async (cl, k) => {
      for (let i = 0; nowMs() < end; i++) {
        // Not `ops += await op()`: that reads ops before the await, and eight loops would overwrite each other.
        const n = await op(cl, k, i)
        ops += n
      }
    }))
    return ops / ((nowMs() - t0) / 1000)
  } finally {
    for (const cl of cls) await cl.close()
  }
}

export interface MetadataResult {
  /** create, stat and unlink each count as one operation */
  opsPerSec: number
  pingsPerSec: number
}

export async function metadataRates(c: RunningCluster, clients: number, seconds: number): Promise<MetadataResult> {
  const setup = await LustreClient.connect({ mds: c.mdsAddress, oss: c.ossAddresses })
  await setup.mkdir('/md')
  await setup.close()
  const pingsPerSec = await concurrentRate(c, clients, seconds, async cl => { await cl.ping(); return 1 })
  const opsPerSec = await concurrentRate(c, clients, seconds, async (cl, k, i) => {
    const p = `/md/c${k}-${i}`
    await cl.create(p)
    await cl.stat(p)
    await cl.unlink(p)
    return 3
  })
  return { opsPerSec, pingsPerSec }
}

export async function withCluster<T>(dir: string, fn: (c: RunningCluster) => Promise<T>): Promise<T> {
  const c = await startClusterProcesses({ dir: join(dir, `cluster-${Date.now()}`), osts: 4, mdsPort: 0, ossPort: 0 })
  try {
    return await fn(c)
  } finally {
    await c.stop()
  }
}
