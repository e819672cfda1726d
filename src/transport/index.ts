// Public entry point of the transport layer: LNet over TCP (socklnd V3) and
// PtlRPC on top. It stands on the wire layer and knows no service.
export * from './errors.js'
export { SocklndConnection } from './socklnd-conn.js'
export type { ConnRecorder, ConnOptions, LocalId, PeerId } from './socklnd-conn.js'
export { LnetEndpoint, LNET_PID_LUSTRE } from './lnet.js'
export type { Peer, Incoming, MemoryDescriptor, LnetEndpointOptions, RecorderFactory } from './lnet.js'
export { PtlrpcEndpoint, BULK_MD_SIZE, XID_STEP } from './ptlrpc.js'
export type { CallOptions, CallResult, ServerRequest, ReplySpec, Handler, PtlrpcOptions } from './ptlrpc.js'
export { buildBody, replyBodyFor, errorReply, versionFor } from './ptlrpc-body.js'
