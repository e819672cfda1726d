// `lustre-conformance client --mds NID [--oss NID]... COMMAND ARGS`: file system
// commands done by the reference client over the wire (no mount), in the spirit of the
// coreutils and `lfs` commands of the same names. Exit 0 on success, 1 when the file
// system answered an error, 2 on a usage error or when the servers cannot be reached.
import { open as openLocal, stat as statLocal } from 'node:fs/promises'
import {
  ClientError, E, LustreClient, LustreRpcError, errnoName, formatGetstripe, type CreateOptions, type StatResult,
} from '../../reference/client/index.js'

const USAGE = `usage: lustre-conformance client --mds NID [--oss NID]... [--fsname F] [--brw-size N] [--nid NID] COMMAND ARGS
commands:
  mkdir DIR                          ls [-F] DIR              stat PATH
  put [-S size] [-c count] [-i index] LOCAL REMOTE            get REMOTE LOCAL
  cat REMOTE                         rm [-d] PATH             rmdir DIR
  mv FROM TO                         ln [-s] EXISTING NEW     truncate PATH SIZE
  setstripe [-S size] [-c count] [-i index] PATH              getstripe PATH
  df
NIDs are a.b.c.d@tcp (port 988) or host:port; sizes take K, M, G, T suffixes (powers of 1024).`

class UsageError extends Error {}

/** A size as lfs reads one: digits with an optional K/M/G/T (binary) suffix. */
export function parseSize(s: string): number {
  const m = /^(\d+)([kKmMgGtT]?)[bB]?$/.exec(s)
  if (!m) throw new UsageError(`${s} is not a size (digits with an optional K, M, G or T)`)
  const shift = { '': 0, k: 10, m: 20, g: 30, t: 40 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't']
  const n = Number(m[1]) * 2 ** shift
  if (!Number.isSafeInteger(n)) throw new UsageError(`${s} is too large`)
  return n
}

function parseInt10(s: string, what: string): number {
  if (!/^-?\d+$/.test(s)) throw new UsageError(`${what} ${s} is not an integer`)
  return Number(s)
}

/** Splits the command's own flags (-S 64K, -d, ...) from its operands. */
function flags(args: string[], withValue: string[], bare: string[]): { opts: Map<string, string>; rest: string[] } {
  const opts = new Map<string, string>()
  const rest: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '--') { rest.push(...args.slice(i + 1)); break }
    if (withValue.includes(a)) {
      if (i + 1 >= args.length) throw new UsageError(`${a} needs a value`)
      opts.set(a, args[++i])
    } else if (bare.includes(a)) opts.set(a, '')
    else if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) throw new UsageError(`unknown option ${a}`)
    else rest.push(a)
  }
  return { opts, rest }
}

const LONG_STRIPE: Record<string, string> = { '--stripe-size': '-S', '--stripe-count': '-c', '--stripe-index': '-i', '--size': '-S', '--count': '-c', '--index': '-i' }

function stripeOptions(args: string[]): { layout: CreateOptions; rest: string[] } {
  const { opts, rest } = flags(args.map(a => LONG_STRIPE[a] ?? a), ['-S', '-c', '-i'], [])
  const layout: CreateOptions = {}
  if (opts.has('-S')) layout.stripeSize = parseSize(opts.get('-S')!)
  if (opts.has('-c')) layout.stripeCount = parseInt10(opts.get('-c')!, 'stripe count')
  if (opts.has('-i')) layout.stripeOffset = parseInt10(opts.get('-i')!, 'stripe index')
  return { layout, rest }
}

function operands(rest: string[], n: number, names: string): string[] {
  if (rest.length !== n) throw new UsageError(`expects ${names}`)
  return rest
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`
const when = (s: bigint): string => new Date(Number(s) * 1000).toISOString()

function modeString(mode: number): string {
  const t = { 0o040000: 'd', 0o120000: 'l', 0o100000: '-' }[mode & 0o170000] ?? '?'
  const rwx = (b: number) => `${b & 4 ? 'r' : '-'}${b & 2 ? 'w' : '-'}${b & 1 ? 'x' : '-'}`
  return t + rwx(mode >> 6) + rwx(mode >> 3) + rwx(mode)
}

function formatStat(path: string, s: StatResult): string {
  return [
    `  File: ${path}${s.target !== undefined ? ` -> ${s.target}` : ''}`,
    `  Size: ${s.size}\tType: ${s.type}\tLinks: ${s.nlink}`,
    `   FID: [${hex(s.fid.seq)}:${hex(s.fid.oid)}:${hex(s.fid.ver)}]`,
    `Access: (${(s.mode & 0o7777).toString(8).padStart(4, '0')}/${modeString(s.mode)})  Uid: ${s.uid}  Gid: ${s.gid}`,
    `Access: ${when(s.atime)}`,
    `Modify: ${when(s.mtime)}`,
    `Change: ${when(s.ctime)}`,
  ].join('\n') + '\n'
}

/**
 * Writes to stdout and resolves once the bytes are handed over (cat of a large file waits
 * for the pipe, and get's reused buffer is not overwritten while stdout still holds it).
 * A failed write (a closed pipe) is reported by stdout's error event, not here.
 */
function out(data: string | Uint8Array): Promise<void> {
  return new Promise(resolve => { process.stdout.write(data, () => resolve()) })
}

/**
 * Bytes per local read / remote write in put and get: at least one BRW RPC per object so
 * every OST works at once, and at least 8 RPCs so a file on few OSTs still has 8 in flight.
 */
const chunkFor = (client: LustreClient, stripes: number): number => Math.min(64 << 20, client.brwSize * Math.max(8, stripes))

async function put(client: LustreClient, local: string, remote: string, layout: CreateOptions): Promise<void> {
  const src = await openLocal(local, 'r')
  try {
    const asked = Object.keys(layout).length > 0
    if (asked) await client.create(remote, layout)
    else await client.truncate(remote, 0).catch(e => { if (!(e instanceof LustreRpcError) || e.status !== E.ENOENT) throw e })
    const f = await client.open(remote, { create: true })
    const buf = new Uint8Array(chunkFor(client, f.layout.stripeCount))
    for (let off = 0; ;) {
      const { bytesRead } = await src.read(buf, 0, buf.length, off)
      if (bytesRead === 0) break
      await f.write(off, buf.subarray(0, bytesRead))
      off += bytesRead
    }
    // put returns once the data are durable on the OSTs, as cp followed by sync would.
    await client.fsync(remote)
  } finally {
    await src.close()
  }
}

async function get(client: LustreClient, remote: string, sink: (b: Uint8Array) => Promise<void>): Promise<void> {
  const f = await client.open(remote)
  const size = await f.size()
  const chunk = chunkFor(client, f.layout.stripeCount)
  // One buffer for the whole file: each chunk is handed to the sink, which is done with it before the next read.
  const buf = new Uint8Array(Math.min(chunk, size))
  for (let off = 0; off < size; off += chunk) await sink(buf.subarray(0, await f.readInto(off, buf, size)))
}

async function run(client: LustreClient, cmd: string, args: string[]): Promise<void> {
  switch (cmd) {
    case 'mkdir': return client.mkdir(operands(args, 1, 'DIR')[0])
    case 'ls': {
      // One name a line, sorted, as ls -1; -F marks directories with / and symlinks with @.
      const { opts, rest } = flags(args, [], ['-F', '-1'])
      const [dir] = operands(rest, 1, 'DIR')
      const names = (await client.readdir(dir)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      const mark = (t?: string): string => (!opts.has('-F') ? '' : t === 'dir' ? '/' : t === 'symlink' ? '@' : '')
      return out(names.map(n => `${n.name}${mark(n.type)}\n`).join(''))
    }
    case 'stat': {
      const [p] = operands(args, 1, 'PATH')
      return out(formatStat(p, await client.stat(p)))
    }
    case 'put': {
      const { layout, rest } = stripeOptions(args)
      const [local, remote] = operands(rest, 2, 'LOCAL REMOTE')
      if (!(await statLocal(local)).isFile()) throw new UsageError(`${local} is not a regular file`)
      return put(client, local, remote, layout)
    }
    case 'get': {
      const [remote, local] = operands(args, 2, 'REMOTE LOCAL')
      const dst = await openLocal(local, 'w')
      try {
        let at = 0
        await get(client, remote, async b => { await dst.write(b, 0, b.length, at); at += b.length })
      } finally {
        await dst.close()
      }
      return
    }
    case 'cat': return get(client, operands(args, 1, 'REMOTE')[0], out)
    case 'rm': {
      const { opts, rest } = flags(args, [], ['-d', '-f'])
      const [p] = operands(rest, 1, 'PATH')
      try {
        if (opts.has('-d') && (await client.stat(p)).type === 'dir') return await client.rmdir(p)
        return await client.unlink(p)
      } catch (e) {
        // -f: a name that is already gone is not an error (rm -f).
        if (opts.has('-f') && e instanceof LustreRpcError && e.status === E.ENOENT) return
        throw e
      }
    }
    case 'rmdir': return client.rmdir(operands(args, 1, 'DIR')[0])
    case 'mv': {
      const [from, to] = operands(args, 2, 'FROM TO')
      return client.rename(from, to)
    }
    case 'ln': {
      const { opts, rest } = flags(args, [], ['-s'])
      const [a, b] = operands(rest, 2, opts.has('-s') ? 'TARGET NEW' : 'EXISTING NEW')
      return opts.has('-s') ? client.symlink(a, b) : client.link(a, b)
    }
    case 'truncate': {
      const [p, size] = operands(args, 2, 'PATH SIZE')
      return client.truncate(p, parseSize(size))
    }
    case 'setstripe': {
      const { layout, rest } = stripeOptions(args)
      return client.setstripe(operands(rest, 1, 'PATH')[0], layout)
    }
    case 'getstripe': {
      const [p] = operands(args, 1, 'PATH')
      const l = await client.getstripe(p)
      return out(l ? formatGetstripe(p, l) : `${p} has no stripe info\n`)
    }
    case 'df': {
      operands(args, 0, 'no operands')
      const s = await client.statfs()
      const lines = ['UUID                   bytes        Used   Available']
      for (const { index, statfs: o } of s.osts) {
        const bs = BigInt((o.os_bsize as number) ?? 0)
        const total = (o.os_blocks as bigint) * bs
        lines.push(`${client.osts.get(index)!.padEnd(18)} ${String(total).padStart(12)} ${String(total - (o.os_bfree as bigint) * bs).padStart(11)} ${String((o.os_bavail as bigint) * bs).padStart(11)}`)
      }
      lines.push(`filesystem_summary: ${s.total.bytes} ${s.total.bytes - s.total.free} ${s.total.avail}`)
      return out(lines.join('\n') + '\n')
    }
    default:
      throw new UsageError(`unknown command ${cmd}`)
  }
}

export async function clientCommand(args: string[]): Promise<number> {
  let cmd = ''
  let rest: string[] = []
  let client: LustreClient | undefined
  try {
    const o = { mds: '', oss: [] as string[], fsname: undefined as string | undefined, brwSize: undefined as number | undefined, nid: undefined as string | undefined }
    let i = 0
    for (; i < args.length && args[i].startsWith('--'); i++) {
      const [name, inline] = args[i].split(/=(.*)/s, 2)
      const value = (): string => {
        if (inline !== undefined) return inline
        if (i + 1 >= args.length) throw new UsageError(`${name} needs a value`)
        return args[++i]
      }
      if (name === '--mds') o.mds = value()
      else if (name === '--oss') o.oss.push(value())
      else if (name === '--fsname') o.fsname = value()
      else if (name === '--brw-size') o.brwSize = parseSize(value())
      else if (name === '--nid') o.nid = value()
      else if (name === '--help') { console.log(USAGE); return 0 }
      else throw new UsageError(`unknown option ${name}`)
    }
    cmd = args[i] ?? ''
    rest = args.slice(i + 1)
    if (!o.mds) throw new UsageError('--mds is required')
    if (!cmd) throw new UsageError('a command is required')
    client = await LustreClient.connect(o)
    await run(client, cmd, rest)
    return 0
  } catch (e) {
    const what = `lustre-conformance client: ${[cmd, ...rest.filter(a => !a.startsWith('-'))].filter(Boolean).join(' ')}`
    if (e instanceof UsageError) { console.error(`${what}: ${e.message}\n${USAGE}`); return 2 }
    if (e instanceof LustreRpcError) {
      // Which target answered, unless the client found the error itself while walking the path.
      console.error(`${what}: ${errnoName(e.status)}${e.target === 'client' ? '' : ` (${e.opcode} to ${e.target})`}`)
      return 1
    }
    if (e instanceof ClientError) { console.error(`${what}: ${e.message} [${e.code}]`); return e.code === 'LC_CLIENT_ARG' || e.code === 'LC_CLIENT_PATH' ? 2 : 1 }
    const err = e as Error & { code?: string }
    console.error(`${what}: ${err.message}${err.code ? ` [${err.code}]` : ''}`)
    return 2
  } finally {
    await client?.close().catch(() => {})
  }
}
