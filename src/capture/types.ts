// Shared types, constants and the one error class of the capture module.
// This module works on bytes only: nothing here imports from the rest of the project.

/** A TCP endpoint. `ip` is dotted IPv4 or RFC 5952 text for IPv6. */
export interface TcpEndpoint {
  readonly ip: string;
  readonly port: number;
}

/**
 * One TCP segment read from a capture.
 *
 * `payload` is a view into the capture bytes (no copy): it stays valid as long as the
 * caller keeps those bytes, and must not be written to.
 * `wireLen` is the payload length the IP header announces; it exceeds `payload.length`
 * when the capture cut the frame short (snaplen), and the reassembler reports the
 * difference as a gap instead of inventing bytes.
 */
export interface CapturedPacket {
  /** 1-based, counting every packet record of the file, as Wireshark numbers frames. */
  readonly frame: number;
  /** Microseconds since the Unix epoch (pcapng interface offsets applied). */
  readonly tsMicros: bigint;
  readonly src: TcpEndpoint;
  readonly dst: TcpEndpoint;
  /** Sequence and acknowledgement numbers, unsigned 32-bit. */
  readonly seq: number;
  readonly ack: number;
  /** TCP flag byte (FIN=0x01 ... CWR=0x80), see TCP_FLAGS. */
  readonly flags: number;
  readonly payload: Uint8Array;
  readonly wireLen: number;
}

/** TCP flag bits as they appear in byte 13 of the TCP header. */
export const TCP_FLAGS = Object.freeze({
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
});

/** Link-layer types (tcpdump.org LINKTYPE_* values) the reader decodes. */
export const LINKTYPE = Object.freeze({
  NULL: 0,
  ETHERNET: 1,
  RAW_LEGACY: 12,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
});

/**
 * Why a frame was not yielded as a TCP packet. Reported through the `onSkip` option
 * and counted in the reader's stats, so nothing disappears silently.
 */
export type SkipReason =
  | 'not-ip' // ARP, LLDP, 802.3 length frames ...
  | 'not-tcp' // UDP, ICMP, ESP ...
  | 'ip-fragment' // any IPv4/IPv6 fragment: fragments are not reassembled
  | 'short' // captured bytes end inside the link, IP or TCP header
  | 'malformed' // header fields contradict each other (IHL < 5, data offset < 5 ...)
  | 'unsupported-linktype' // only with { unsupportedLinkType: 'skip' }
  | 'not-a-packet'; // pcapng custom, systemd journal, Sysdig blocks: Wireshark numbers them

/**
 * Stable error codes. Offsets are absolute byte offsets into the capture file of the
 * record or field at fault; -1 where no file offset applies (writer arguments).
 */
export type CaptureErrorCode =
  | 'CAPTURE_BAD_MAGIC' // not a pcap/pcapng file, or a pcap variant we do not read
  | 'CAPTURE_TRUNCATED' // input ends inside a header, record or block
  | 'CAPTURE_BAD_BLOCK' // pcapng block structure is inconsistent
  | 'CAPTURE_BAD_RECORD' // classic pcap record is inconsistent (length over snaplen)
  | 'CAPTURE_UNSUPPORTED_VERSION' // pcap major != 2, pcapng major != 1
  | 'CAPTURE_UNSUPPORTED_LINKTYPE' // a link type listed in LINKTYPE is all we decode
  | 'CAPTURE_BAD_ARGUMENT' // writer: bad address, port, sequence number, size
  | 'CAPTURE_CLOSED'; // writer or flow used after close()

export class CaptureError extends Error {
  readonly code: CaptureErrorCode;
  readonly offset: number;

  constructor(code: CaptureErrorCode, message: string, offset: number) {
    super(offset >= 0 ? `${code} at byte ${offset}: ${message}` : `${code}: ${message}`);
    this.name = 'CaptureError';
    this.code = code;
    this.offset = offset;
  }
}

export function isCaptureError(e: unknown): e is CaptureError {
  return e instanceof CaptureError;
}
