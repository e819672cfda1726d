// Public entry point of the wire layer (the codec). It reads spec/ and bytes;
// it never opens a socket, so transport and tools can both stand on it.
export * from './errors.js'
export { loadSpec, constantOf, structOf, packageRoot } from './spec.js'
export type { Spec, ConstantGroup, RpcFieldDef, RpcFormat, RpcOpcode, RpcSlot } from './spec.js'
export type { StructLayout, FieldLayout, XType, ScalarType } from './layout.js'
export { decodeAt, encodeAt, encodedSize, reader } from './struct-codec.js'
export type { Reader } from './struct-codec.js'
export { decodeStruct, encodeStruct } from './struct.js'
export {
  decodeMessage, decodeMessageIn, frameMessage, round8,
  LUSTRE_MSG_MAGIC_V2, LUSTRE_MSG_MAGIC_V2_SWABBED, MAX_BUFCOUNT,
} from './lustre-msg.js'
export { encodeMessage, encodeFormatted, reencode } from './lustre-msg-encode.js'
export type { LustreMessage, MessageKind, DecodeOptions } from './lustre-msg.js'
export type { EncodeMessageInput } from './lustre-msg-encode.js'
export type { DecodedBuffer, EncodeBuffer } from './buffer-codec.js'
export * from './nid.js'
export {
  K as SOCKLND_CONSTANTS, CONNREQ_SIZE, HELLO_V3_SIZE, KSOCK_HDR_SIZE, LNET_HDR_SIZE, MAX_HELLO_IPS,
  encodeConnreq, encodeHello, encodeNoop, encodeLnetFrame, encodeLnetHeaders, swab32,
} from './socklnd.js'
export type { HelloFields } from './socklnd.js'
export { FrameDecoder } from './frame-decoder.js'
export type { LnetFrame, StreamStart, FrameDecoderOptions } from './frame-decoder.js'
export { LnetUnit, LNET_UNIT_OFFSETS } from './lnet-unit.js'
export { describeValue, constantName, flagNames } from './names.js'
export { zeroValue, makeStruct } from './values.js'
