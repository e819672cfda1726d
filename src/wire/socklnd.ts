// socklnd's wire units for IPv4 peers (KSOCK_PROTO_V3): the acceptor connect
// request, the hello, and messages (ksock_msg_hdr, then for KSOCK_MSG_LNET an
// _lnet_hdr_nid4 and its payload). Layouts come from spec/wire; this file only
// says which unit comes when and which byte order applies:
//  - connreq, hello and ksock_msg_hdr are in the sender's byte order, told by magic;
//  - the LNet header is always little-endian.
import { BadMagicError, BadVersionError, BufferOverLimitError, UnknownMessageTypeError } from './errors.js'
import { decodeAt, encodeAt, reader, type Reader } from './struct-codec.js'
import { loadSpec, structOf, constantOf } from './spec.js'
import { checkLnetHdr } from './lnet-unit.js'

export const swab32 = (v: number): number =>
  (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0

/** Numbers the framing needs, read once from spec/constants. */
export const K = (() => {
  const spec = loadSpec()
  const c = (n: string): number => Number(constantOf(spec, n))
  return {
    ACCEPTOR_MAGIC: c('LNET_PROTO_ACCEPTOR_MAGIC'),
    ACCEPTOR_VERSION: c('LNET_PROTO_ACCEPTOR_VERSION'),
    TCP_MAGIC: c('LNET_PROTO_TCP_MAGIC'),
    // Hellos of KSOCK_PROTO_V2 and later carry LNET_PROTO_MAGIC; LNET_PROTO_TCP_MAGIC marks a V1 hello.
    HELLO_MAGIC: c('LNET_PROTO_MAGIC'),
    PROTO_V2: c('KSOCK_PROTO_V2'),
    PROTO_V3: c('KSOCK_PROTO_V3'),
    MSG_NOOP: c('KSOCK_MSG_NOOP'),
    MSG_LNET: c('KSOCK_MSG_LNET'),
    LNET_MSG_ACK: c('LNET_MSG_ACK'),
    LNET_MSG_PUT: c('LNET_MSG_PUT'),
    LNET_MSG_GET: c('LNET_MSG_GET'),
    LNET_MSG_REPLY: c('LNET_MSG_REPLY'),
    LNET_MSG_HELLO: c('LNET_MSG_HELLO'),
    LNET_MTU: c('LNET_MTU'),
  }
})()

export const CONNREQ_SIZE = 16
export const HELLO_V3_SIZE = 56
export const KSOCK_HDR_SIZE = 24
export const LNET_HDR_SIZE = 72
/** socklnd never advertises more interface addresses than this (LNET_INTERFACES_NUM). */
export const MAX_HELLO_IPS = 16

export type Obj = Record<string, unknown>

const spec = loadSpec()
const L = {
  connreq: structOf(spec, 'lnet_acceptor_connreq'),
  hello: structOf(spec, 'ksock_hello_msg_nid4'),
  ksock: structOf(spec, 'ksock_msg_hdr'),
  lnet: structOf(spec, '_lnet_hdr_nid4'),
}

/** Byte order of a unit whose first u32 is `magic`: true = little-endian, undefined = neither. */
export function orderOf(first: number, magic: number): boolean | undefined {
  if (first === magic) return true
  if (first === swab32(magic)) return false
  return undefined
}

export function decodeConnreq(b: Uint8Array, base = 0): { le: boolean; value: Obj } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const le = orderOf(dv.getUint32(0, true), K.ACCEPTOR_MAGIC)
  if (le === undefined) throw new BadMagicError('lnet_acceptor_connreq.acr_magic', base, dv.getUint32(0, true))
  const value = decodeAt(reader(b, le), L.connreq, 0, b.length).value
  if (value.acr_version !== K.ACCEPTOR_VERSION) throw new BadVersionError('lnet_acceptor_connreq.acr_version', base + 4, value.acr_version as number)
  return { le, value }
}

/** First 8 bytes of a hello: its byte order and how long the whole hello is. */
export function helloLength(b: Uint8Array, base = 0): { le: boolean; length: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const first = dv.getUint32(0, true)
  // A V1 hello (a whole LNet header behind LNET_PROTO_TCP_MAGIC) is not spoken: refuse it by name.
  if (orderOf(first, K.TCP_MAGIC) !== undefined) throw new BadVersionError('ksock_hello_msg_nid4.kshm_magic', base, 1)
  const le = orderOf(first, K.HELLO_MAGIC)
  if (le === undefined) throw new BadMagicError('ksock_hello_msg_nid4.kshm_magic', base, first)
  const version = dv.getUint32(4, le)
  if (version !== K.PROTO_V3 && version !== K.PROTO_V2) throw new BadVersionError('ksock_hello_msg_nid4.kshm_version', base + 4, version)
  if (b.length < HELLO_V3_SIZE) return { le, length: HELLO_V3_SIZE }
  const nips = dv.getUint32(52, le)
  if (nips > MAX_HELLO_IPS) throw new BufferOverLimitError('ksock_hello_msg_nid4.kshm_nips', base + 52, nips, MAX_HELLO_IPS)
  return { le, length: HELLO_V3_SIZE + 4 * nips }
}

export function decodeHello(b: Uint8Array, le: boolean): Obj {
  return decodeAt(reader(b, le), L.hello, 0, b.length).value
}

/** ksock_msg_hdr type and, for KSOCK_MSG_LNET, the whole frame length. */
export function ksockType(b: Uint8Array, le: boolean, base = 0): number {
  const t = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, le)
  if (t !== K.MSG_NOOP && t !== K.MSG_LNET) throw new UnknownMessageTypeError('ksock_msg_hdr.ksh_type', base, t)
  return t
}

export function decodeKsockHdr(b: Uint8Array, le: boolean): Obj {
  return decodeKsockHdrAt(reader(b, le), 0)
}

/** The ksock header at `off` of a reader already in the sender's byte order. */
export function decodeKsockHdrAt(r: Reader, off: number): Obj {
  return decodeAt(r, L.ksock, off, off + KSOCK_HDR_SIZE).value
}

/** The LNet header (always little-endian); checks type and payload length before any allocation. */
export function decodeLnetHdr(b: Uint8Array, base: number, maxPayload: number): Obj {
  return decodeLnetHdrAt(reader(b, true), 0, base, maxPayload)
}

/** The same, reading at `off` of a little-endian reader; `base` is the header's stream offset, for errors. */
export function decodeLnetHdrAt(r: Reader, off: number, base: number, maxPayload: number): Obj {
  checkLnetHdr(r.dv, off, base, maxPayload)
  return decodeAt(r, L.lnet, off, off + LNET_HDR_SIZE, '_lnet_hdr_nid4').value
}

// ---- encoding -------------------------------------------------------------

export function encodeConnreq(nid: bigint, le = true): Uint8Array {
  const out = new Uint8Array(CONNREQ_SIZE)
  encodeAt(reader(out, le), L.connreq, 0, { acr_magic: K.ACCEPTOR_MAGIC, acr_version: K.ACCEPTOR_VERSION, acr_nid: nid })
  return out
}

export interface HelloFields {
  srcNid: bigint
  dstNid: bigint
  srcPid: number
  dstPid: number
  srcIncarnation: bigint
  dstIncarnation: bigint
  ctype: number
}

export function encodeHello(h: HelloFields, le = true): Uint8Array {
  const out = new Uint8Array(HELLO_V3_SIZE)
  encodeAt(reader(out, le), L.hello, 0, {
    kshm_magic: K.HELLO_MAGIC, kshm_version: K.PROTO_V3,
    kshm_src_nid: h.srcNid, kshm_dst_nid: h.dstNid, kshm_src_pid: h.srcPid, kshm_dst_pid: h.dstPid,
    kshm_src_incarnation: h.srcIncarnation, kshm_dst_incarnation: h.dstIncarnation,
    kshm_ctype: h.ctype, kshm_nips: 0, kshm_ips: [],
  })
  return out
}

export function encodeNoop(le = true): Uint8Array {
  const out = new Uint8Array(KSOCK_HDR_SIZE)
  encodeAt(reader(out, le), L.ksock, 0, { ksh_type: K.MSG_NOOP, ksh_csum: 0, ksh_zc_cookies: [0n, 0n] })
  return out
}

/** One KSOCK_MSG_LNET frame: ksock header, LNet header (payload_length is set from the payload), payload. */
export function encodeLnetFrame(hdr: Obj, payload: Uint8Array | undefined, le = true): Uint8Array {
  const pl = payload?.length ?? 0
  const out = new Uint8Array(KSOCK_HDR_SIZE + LNET_HDR_SIZE + pl)
  writeLnetHeaders(out, hdr, pl, le)
  if (payload) out.set(payload, KSOCK_HDR_SIZE + LNET_HDR_SIZE)
  return out
}

/** The two headers of a KSOCK_MSG_LNET frame alone, for a sender that writes the payload after them uncopied. */
export function encodeLnetHeaders(hdr: Obj, payloadLength: number, le = true): Uint8Array {
  const out = new Uint8Array(KSOCK_HDR_SIZE + LNET_HDR_SIZE)
  writeLnetHeaders(out, hdr, payloadLength, le)
  return out
}

function writeLnetHeaders(out: Uint8Array, hdr: Obj, payloadLength: number, le: boolean): void {
  encodeAt(reader(out, le), L.ksock, 0, { ksh_type: K.MSG_LNET, ksh_csum: 0, ksh_zc_cookies: [0n, 0n] })
  // The LNet header is little-endian whatever the socket's order.
  encodeAt(reader(out.subarray(KSOCK_HDR_SIZE), true), L.lnet, 0, { ...hdr, payload_length: payloadLength })
}
