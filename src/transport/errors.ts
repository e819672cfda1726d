// Typed errors of the transport layer (LNet over TCP, PtlRPC). Codes are stable;
// the wire error that caused one, if any, rides along as `cause`.
export const TRANSPORT_ERROR_CODES = {
  LC_LNET_SOCKET: 'the TCP socket failed',
  LC_LNET_HANDSHAKE_TIMEOUT: 'the peer did not complete the socklnd handshake in time',
  LC_LNET_PROTOCOL: 'the peer broke the socklnd or LNet protocol',
  LC_LNET_WRONG_NID: 'a connect request named a NID this endpoint does not own',
  LC_LNET_NOT_CONNECTED: 'no usable connection to the peer',
  LC_LNET_CONFIG: 'the endpoint was configured wrongly',
  LC_LNET_TOO_MANY_CONNECTIONS: 'the connection limit was reached',
  LC_LNET_NO_MATCH: 'an LNet message matched no portal or memory descriptor',
  LC_RPC_TIMEOUT: 'no reply came in time',
  LC_RPC_BAD_REPLY: 'the reply could not be decoded or does not answer the request',
  LC_RPC_CLOSED: 'the endpoint was closed while the RPC was in flight',
  LC_RPC_BULK: 'a bulk transfer failed',
} as const

export type TransportErrorCode = keyof typeof TRANSPORT_ERROR_CODES

export class TransportError extends Error {
  readonly code: TransportErrorCode
  override readonly cause: unknown
  /** the RPC's xid, when the error belongs to one (a reply that did not decode) */
  readonly xid?: bigint
  constructor(code: TransportErrorCode, message: string, cause?: unknown, xid?: bigint) {
    super(`${code}: ${message}`)
    this.name = 'TransportError'
    this.code = code
    this.cause = cause
    if (xid !== undefined) this.xid = xid
  }
}
