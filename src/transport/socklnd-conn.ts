// One socklnd TCP connection (KSOCK_PROTO_V3, IPv4): the handshake and then LNet
// frames in both directions. The connecting side sends the acceptor connect
// request and its hello, the accepting side answers with its own hello; after
// that both sides may send (a server sends callbacks on the client's connection).
//
// Garbage from the peer closes this connection only, with the typed reason.
import type { Socket } from 'node:net'
import { EventEmitter } from 'node:events'
import {
  FrameDecoder, encodeConnreq, encodeHello, encodeNoop, encodeLnetFrame, encodeLnetHeaders, isWireError,
  nidFromWire, SOCKLND_CONSTANTS as K, type LnetFrame,
} from '../wire/index.js'
import { TransportError } from './errors.js'

/** Payloads from this size up (bulk pages) are written after their headers, not copied into one frame. */
const LARGE_PAYLOAD = 16 * 1024

export type Obj = Record<string, unknown>

/** Receives a copy of every unit this connection sends or receives, for capture. */
export interface ConnRecorder {
  record(direction: 'sent' | 'received', bytes: Uint8Array): void
  close(): void
}

export interface LocalId {
  nid: bigint
  pid: number
  incarnation: bigint
}

export interface PeerId {
  nid: bigint
  pid: number
  incarnation: bigint
}

export interface ConnOptions {
  role: 'active' | 'passive'
  local: LocalId
  /** active side: the NID we are connecting to (goes in the connreq and hello) */
  peerNid?: bigint
  peerPid?: number
  /** passive side: NIDs this endpoint answers to */
  acceptNids?: bigint[]
  recorder?: ConnRecorder
  maxPayload?: number
  /** ms to finish the handshake */
  handshakeTimeout?: number
  log?: (msg: string) => void
}

/**
 * Events: 'ready' (peer: PeerId), 'frame' (LnetFrame of kind 'lnet'), 'close' (reason?: Error).
 */
export class SocklndConnection extends EventEmitter {
  readonly role: 'active' | 'passive'
  peer: PeerId | undefined
  private readonly decoder: FrameDecoder
  private readonly timer: NodeJS.Timeout | undefined
  private closed = false
  private ready = false
  private le = true

  constructor(readonly socket: Socket, private readonly opts: ConnOptions) {
    super()
    this.role = opts.role
    this.decoder = new FrameDecoder({ start: opts.role === 'active' ? 'hello' : 'connreq', maxPayload: opts.maxPayload, keepRaw: !!opts.recorder })
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (e: Error) => this.close(new TransportError('LC_LNET_SOCKET', e.message)))
    socket.on('close', () => this.close())
    if (opts.handshakeTimeout !== 0) {
      this.timer = setTimeout(() => {
        if (!this.ready) this.close(new TransportError('LC_LNET_HANDSHAKE_TIMEOUT', 'no hello from peer in time'))
      }, opts.handshakeTimeout ?? 10_000)
      this.timer.unref()
    }
    if (opts.role === 'active') {
      if (opts.peerNid === undefined) throw new TransportError('LC_LNET_CONFIG', 'an active connection needs the peer NID')
      this.write(encodeConnreq(opts.peerNid))
      this.write(encodeHello({
        // Lustre's active side leaves dst_pid and dst_incarnation zero (ksocknal_send_hello_v2).
        srcNid: opts.local.nid, dstNid: opts.peerNid, srcPid: opts.local.pid, dstPid: 0,
        srcIncarnation: opts.local.incarnation, dstIncarnation: 0n, ctype: 0 /* SOCKLND_CONN_ANY: one connection for everything */,
      }))
    }
  }

  get isReady(): boolean {
    return this.ready && !this.closed
  }

  private write(b: Uint8Array): void {
    if (this.closed) return
    this.opts.recorder?.record('sent', b)
    this.socket.write(b)
  }

  /** Sends one LNet message (header fields as in _lnet_hdr_nid4; payload_length is set here). */
  send(hdr: Obj, payload?: Uint8Array): void {
    if (!this.isReady) throw new TransportError('LC_LNET_NOT_CONNECTED', 'connection is not ready')
    if (this.opts.recorder || !payload || payload.length < LARGE_PAYLOAD) return this.write(encodeLnetFrame(hdr, payload, this.le))
    // A large payload (bulk) goes out after its headers without being copied into one frame;
    // the caller's buffer stays untouched until its RPC completes, after the bytes left.
    if (this.closed) return
    // Headers first, so that an encoding error leaves the socket as it was (never corked).
    const head = encodeLnetHeaders(hdr, payload.length, this.le)
    this.socket.cork()
    this.socket.write(head)
    this.socket.write(payload)
    this.socket.uncork()
  }

  sendNoop(): void {
    if (this.isReady) this.write(encodeNoop(this.le))
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return
    let frames: LnetFrame[]
    try {
      frames = this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    } catch (e) {
      if (isWireError(e)) {
        this.close(new TransportError('LC_LNET_PROTOCOL', `peer sent bad bytes: ${e.message}`, e))
        return
      }
      throw e
    }
    for (const f of frames) {
      if (this.closed) return
      if (f.raw) this.opts.recorder?.record('received', f.raw)
      try {
        this.onFrame(f)
      } catch (e) {
        // Whatever a peer's message makes go wrong here ends this connection, never the process.
        this.close(new TransportError('LC_LNET_PROTOCOL', `message from peer could not be handled: ${(e as Error).message}`, e))
        return
      }
    }
  }

  private onFrame(f: LnetFrame): void {
    switch (f.kind) {
      case 'connreq': {
        const nid = f.connreq.acr_nid as bigint
        const ok = this.opts.acceptNids
        if (ok && ok.length && !ok.includes(nid)) {
          this.close(new TransportError('LC_LNET_WRONG_NID', `connect request for ${nidFromWire(nid)}, which this endpoint is not`))
        }
        return
      }
      case 'hello': {
        const h = f.hello
        this.le = f.littleEndian
        if (h.kshm_version !== K.PROTO_V3) {
          this.close(new TransportError('LC_LNET_PROTOCOL', `hello version ${String(h.kshm_version)}; only V3 is spoken`))
          return
        }
        this.peer = { nid: h.kshm_src_nid as bigint, pid: h.kshm_src_pid as number, incarnation: h.kshm_src_incarnation as bigint }
        if (this.role === 'passive') {
          // The answer names the peer, echoes the dst_pid/dst_incarnation it was sent (Lustre reuses
          // the buffer), and inverts the connection type (ANY and CONTROL stay as they are).
          this.ready = true
          const ctype = h.kshm_ctype as number
          this.write(encodeHello({
            srcNid: this.opts.local.nid, dstNid: this.peer.nid, srcPid: this.opts.local.pid, dstPid: h.kshm_dst_pid as number,
            srcIncarnation: this.opts.local.incarnation, dstIncarnation: h.kshm_dst_incarnation as bigint, ctype: ctype === 2 ? 3 : ctype === 3 ? 2 : ctype,
          }, this.le))
        } else {
          this.ready = true
        }
        if (this.timer) clearTimeout(this.timer)
        this.emit('ready', this.peer)
        return
      }
      case 'noop':
        return
      case 'lnet':
        if (!this.ready) {
          this.close(new TransportError('LC_LNET_PROTOCOL', 'LNet message before the hello'))
          return
        }
        this.emit('frame', f)
        return
    }
  }

  close(reason?: Error): void {
    if (this.closed) return
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    if (reason) this.opts.log?.(`socklnd: closing connection to ${this.peer ? nidFromWire(this.peer.nid) : this.socket.remoteAddress}: ${reason.message}`)
    this.opts.recorder?.close()
    this.socket.destroy()
    this.emit('close', reason)
  }
}
