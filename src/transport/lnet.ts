// An LNet endpoint over socklnd: one NID and pid, an acceptor, connections keyed
// by peer (NID, pid), and LNet's four message types. Incoming PUTs and GETs are
// matched, as LNet's match entries do, first against attached memory
// descriptors (portal + exact match bits: replies and bulk), then against bound
// portals (services, which take any match bits).
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'
import { nidToWire, nidFromWire, parseNid, SOCKLND_CONSTANTS as K } from '../wire/index.js'
import { SocklndConnection, type ConnRecorder, type PeerId, type Obj } from './socklnd-conn.js'
import { TransportError } from './errors.js'

export const LNET_PID_LUSTRE = 12345
const COOKIE_NONE = 0xffffffffffffffffn
const NO_WMD = { wh_interface_cookie: COOKIE_NONE, wh_object_cookie: COOKIE_NONE }

export interface Peer {
  nid: bigint
  pid: number
}

export interface Incoming {
  peer: Peer
  hdr: Obj
  /** the put/get body of the header */
  body: Obj
  payload: Uint8Array
}

export interface MemoryDescriptor {
  portal: number
  matchBits: bigint
  /** only this peer may match it */
  peer?: Peer
  /** sink: PUTs land here; source: GETs read from here */
  kind: 'sink' | 'source'
  buffer: Uint8Array
  /** called once per PUT (sink) or GET (source) that matched */
  onEvent?: (ev: { peer: Peer; length: number; offset: number }) => void
}

export interface RecorderFactory {
  (conn: { localIp: string; localPort: number; remoteIp: string; remotePort: number; role: 'active' | 'passive' }): ConnRecorder | undefined
}

export interface LnetEndpointOptions {
  nid: string
  pid?: number
  maxConnections?: number
  maxPayload?: number
  recorder?: RecorderFactory
  log?: (msg: string) => void
  /** local address for outgoing connections (defaults to the NID's address) */
  bindAddress?: string
}

const key = (p: Peer): string => `${p.nid}:${p.pid}`

export class LnetEndpoint {
  readonly nid: bigint
  readonly pid: number
  readonly incarnation: bigint
  private server: Server | undefined
  private readonly conns = new Map<string, SocklndConnection>()
  private readonly all = new Set<SocklndConnection>()
  private readonly portals = new Map<number, (m: Incoming) => void>()
  private mds: MemoryDescriptor[] = []
  private readonly pendingGets = new Map<bigint, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>()
  private readonly pendingAcks = new Map<bigint, { resolve: () => void; reject: (e: Error) => void }>()
  private cookie = 1n
  private closed = false
  readonly log: (msg: string) => void

  constructor(private readonly opts: LnetEndpointOptions) {
    parseNid(opts.nid)
    this.nid = nidToWire(opts.nid)
    this.pid = opts.pid ?? LNET_PID_LUSTRE
    this.incarnation = BigInt(Date.now()) * 1000n + BigInt(Math.floor(Math.random() * 1000))
    this.log = opts.log ?? (() => {})
  }

  get nidString(): string {
    return nidFromWire(this.nid)
  }

  /** Starts the acceptor on host:port (port 0 picks a free one); resolves with the bound port. */
  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      const srv = createServer(sock => this.accept(sock))
      srv.on('error', reject)
      srv.listen(port, host, () => {
        this.server = srv
        resolve((srv.address() as { port: number }).port)
      })
    })
  }

  private accept(sock: Socket): void {
    if (this.closed) return void sock.destroy()
    if (this.all.size >= (this.opts.maxConnections ?? 1024)) {
      this.log(`lnet: refusing connection from ${sock.remoteAddress}: connection limit`)
      return void sock.destroy()
    }
    const conn = new SocklndConnection(sock, {
      role: 'passive', local: this.localId(), acceptNids: [this.nid], maxPayload: this.opts.maxPayload, log: this.log,
      recorder: this.opts.recorder?.({ localIp: sock.localAddress ?? '0.0.0.0', localPort: sock.localPort ?? 0, remoteIp: sock.remoteAddress ?? '0.0.0.0', remotePort: sock.remotePort ?? 0, role: 'passive' }),
    })
    this.adopt(conn)
  }

  private localId() {
    return { nid: this.nid, pid: this.pid, incarnation: this.incarnation }
  }

  private adopt(conn: SocklndConnection): void {
    this.all.add(conn)
    conn.on('ready', (p: PeerId) => this.conns.set(key(p), conn))
    conn.on('frame', f => this.onFrame(conn, f.hdr, f.payload))
    conn.on('close', () => {
      this.all.delete(conn)
      if (conn.peer && this.conns.get(key(conn.peer)) === conn) this.conns.delete(key(conn.peer))
    })
  }

  /** Connects to the endpoint at host:port; its NID comes from its hello. */
  connect(host: string, port: number, peerNid?: string): Promise<Peer> {
    const nid = peerNid ? nidToWire(peerNid) : nidToWire(`${host === 'localhost' ? '127.0.0.1' : host}@tcp`)
    return new Promise((resolve, reject) => {
      const sock = tcpConnect({ host, port, localAddress: this.opts.bindAddress })
      sock.once('error', e => reject(new TransportError('LC_LNET_SOCKET', `connect ${host}:${port}: ${e.message}`)))
      sock.once('connect', () => {
        const conn = new SocklndConnection(sock, {
          role: 'active', local: this.localId(), peerNid: nid, peerPid: LNET_PID_LUSTRE, maxPayload: this.opts.maxPayload, log: this.log,
          recorder: this.opts.recorder?.({ localIp: sock.localAddress ?? '0.0.0.0', localPort: sock.localPort ?? 0, remoteIp: sock.remoteAddress ?? host, remotePort: port, role: 'active' }),
        })
        this.adopt(conn)
        conn.once('ready', (p: PeerId) => resolve({ nid: p.nid, pid: p.pid }))
        conn.once('close', (reason?: Error) => reject(reason ?? new TransportError('LC_LNET_NOT_CONNECTED', `connection to ${host}:${port} closed during handshake`)))
      })
    })
  }

  private conn(peer: Peer): SocklndConnection {
    const c = this.conns.get(key(peer))
    if (!c || !c.isReady) throw new TransportError('LC_LNET_NOT_CONNECTED', `no connection to ${nidFromWire(peer.nid)} pid ${peer.pid}`)
    return c
  }

  isConnected(peer: Peer): boolean {
    return this.conns.get(key(peer))?.isReady ?? false
  }

  private hdr(peer: Peer, type: number, msg: Obj): Obj {
    return { dest_nid: peer.nid, src_nid: this.nid, dest_pid: peer.pid, src_pid: this.pid, type, payload_length: 0, msg }
  }

  /**
   * Waits for the ACK or REPLY answering `cookie`. A peer whose MDs match nothing sends neither
   * (LNet drops such a message), so with `timeoutMs` the wait ends in LC_RPC_TIMEOUT and is forgotten.
   */
  private await<T>(table: Map<bigint, { resolve: (v: T) => void; reject: (e: Error) => void }>, cookie: bigint, what: string, timeoutMs?: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const done = (): void => { if (timer) clearTimeout(timer) }
      table.set(cookie, { resolve: v => { done(); resolve(v) }, reject: e => { done(); reject(e) } })
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          if (table.delete(cookie)) reject(new TransportError('LC_RPC_TIMEOUT', `${what}: no answer in ${timeoutMs} ms`))
        }, timeoutMs)
      }
    })
  }

  /** LNet PUT; with ack, resolves when the peer's ACK arrives (or fails after timeoutMs). */
  put(peer: Peer, o: { portal: number; matchBits: bigint; hdrData?: bigint; offset?: number; ack?: boolean; timeoutMs?: number }, payload: Uint8Array): Promise<void> {
    const c = this.conn(peer)
    const cookie = o.ack ? this.cookie++ : undefined
    const wmd = cookie !== undefined ? { wh_interface_cookie: this.incarnation, wh_object_cookie: cookie } : NO_WMD
    c.send(this.hdr(peer, K.LNET_MSG_PUT, { put: { ack_wmd: wmd, match_bits: o.matchBits, hdr_data: o.hdrData ?? 0n, ptl_index: o.portal, offset: o.offset ?? 0 } }), payload)
    // Waited for only once sent (an ACK cannot come in this tick): a send that throws leaves nothing pending.
    return cookie !== undefined ? this.await<void>(this.pendingAcks, cookie, `PUT portal ${o.portal} bits ${o.matchBits}`, o.timeoutMs) : Promise.resolve()
  }

  /** LNet GET: resolves with the REPLY's payload (or fails after timeoutMs). */
  get(peer: Peer, o: { portal: number; matchBits: bigint; srcOffset?: number; length: number; timeoutMs?: number }): Promise<Uint8Array> {
    const c = this.conn(peer)
    const cookie = this.cookie++
    c.send(this.hdr(peer, K.LNET_MSG_GET, {
      get: { return_wmd: { wh_interface_cookie: this.incarnation, wh_object_cookie: cookie }, match_bits: o.matchBits, ptl_index: o.portal, src_offset: o.srcOffset ?? 0, sink_length: o.length },
    }))
    return this.await<Uint8Array>(this.pendingGets, cookie, `GET portal ${o.portal} bits ${o.matchBits}`, o.timeoutMs)
  }

  /** Takes every PUT to `portal` that no memory descriptor claims (a service's request portal). */
  bindPortal(portal: number, handler: (m: Incoming) => void): void {
    this.portals.set(portal, handler)
  }

  attachMd(md: MemoryDescriptor): { detach(): void } {
    this.mds.push(md)
    return { detach: () => { this.mds = this.mds.filter(m => m !== md) } }
  }

  private findMd(portal: number, bits: bigint, peer: Peer, kind: MemoryDescriptor['kind']): MemoryDescriptor | undefined {
    return this.mds.find(m => m.kind === kind && m.portal === portal && m.matchBits === bits && (!m.peer || key(m.peer) === key(peer)))
  }

  private onFrame(conn: SocklndConnection, hdr: Obj, payload: Uint8Array): void {
    const peer: Peer = { nid: hdr.src_nid as bigint, pid: hdr.src_pid as number }
    // A peer may only speak for itself on its own connection.
    if (conn.peer && conn.peer.nid !== peer.nid) {
      conn.close(new TransportError('LC_LNET_PROTOCOL', `message from ${nidFromWire(peer.nid)} on the connection of ${nidFromWire(conn.peer.nid)}`))
      return
    }
    const msg = hdr.msg as Obj
    switch (hdr.type as number) {
      case K.LNET_MSG_PUT: return this.onPut(conn, peer, hdr, msg.put as Obj, payload)
      case K.LNET_MSG_GET: return this.onGet(conn, peer, msg.get as Obj)
      case K.LNET_MSG_REPLY: {
        const w = (msg.reply as Obj).dst_wmd as Obj
        const p = this.pendingGets.get(w.wh_object_cookie as bigint)
        if (!p) return this.log(`lnet: REPLY for unknown GET ${String(w.wh_object_cookie)} from ${nidFromWire(peer.nid)}`)
        this.pendingGets.delete(w.wh_object_cookie as bigint)
        return p.resolve(payload)
      }
      case K.LNET_MSG_ACK: {
        const w = (msg.ack as Obj).dst_wmd as Obj
        const p = this.pendingAcks.get(w.wh_object_cookie as bigint)
        if (p) { this.pendingAcks.delete(w.wh_object_cookie as bigint); p.resolve() }
        return
      }
      default:
        return this.log(`lnet: ignoring LNet message type ${String(hdr.type)} from ${nidFromWire(peer.nid)}`)
    }
  }

  // ACKs and REPLYs go back on the connection the message came on (its sender's own).
  private onPut(conn: SocklndConnection, peer: Peer, hdr: Obj, put: Obj, payload: Uint8Array): void {
    const portal = put.ptl_index as number
    const bits = put.match_bits as bigint
    const md = this.findMd(portal, bits, peer, 'sink')
    const ackWmd = put.ack_wmd as Obj
    const wantsAck = ackWmd.wh_object_cookie !== COOKIE_NONE
    if (md) {
      const offset = put.offset as number
      const n = Math.max(0, Math.min(payload.length, md.buffer.length - offset))
      if (n > 0) md.buffer.set(payload.subarray(0, n), offset)
      if (wantsAck) conn.send(this.hdr(peer, K.LNET_MSG_ACK, { ack: { dst_wmd: ackWmd, match_bits: bits, mlength: n } }))
      md.onEvent?.({ peer, length: n, offset })
      return
    }
    const handler = this.portals.get(portal)
    if (!handler) return this.log(`lnet: PUT to portal ${portal} match ${bits} from ${nidFromWire(peer.nid)} matched nothing; dropped`)
    if (wantsAck) conn.send(this.hdr(peer, K.LNET_MSG_ACK, { ack: { dst_wmd: ackWmd, match_bits: bits, mlength: payload.length } }))
    handler({ peer, hdr, body: put, payload })
  }

  private onGet(conn: SocklndConnection, peer: Peer, get: Obj): void {
    const md = this.findMd(get.ptl_index as number, get.match_bits as bigint, peer, 'source')
    if (!md) return this.log(`lnet: GET on portal ${String(get.ptl_index)} match ${String(get.match_bits)} from ${nidFromWire(peer.nid)} matched nothing; dropped`)
    const off = get.src_offset as number
    const len = Math.max(0, Math.min(get.sink_length as number, md.buffer.length - off))
    conn.send(this.hdr(peer, K.LNET_MSG_REPLY, { reply: { dst_wmd: get.return_wmd } }), md.buffer.subarray(off, off + len))
    md.onEvent?.({ peer, length: len, offset: off })
  }

  /** Sends a NOOP on every connection (socklnd keepalive). */
  keepalive(): void {
    for (const c of this.all) c.sendNoop()
  }

  private readonly closeHooks: Array<() => void> = []

  /** Runs `fn` when the endpoint closes (layers above end what they had in flight). */
  onClose(fn: () => void): void {
    this.closeHooks.push(fn)
  }

  async close(): Promise<void> {
    if (!this.closed) for (const fn of this.closeHooks) fn()
    this.closed = true
    const err = new TransportError('LC_RPC_CLOSED', 'endpoint closed')
    for (const p of this.pendingGets.values()) p.reject(err)
    for (const p of this.pendingAcks.values()) p.reject(err)
    this.pendingGets.clear()
    this.pendingAcks.clear()
    for (const c of this.all) c.close()
    if (this.server) await new Promise<void>(r => this.server!.close(() => r()))
  }
}
