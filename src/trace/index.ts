// Public entry point of trace tools: decoding captures into Lustre messages.
export { decodeTrace, LNET_MSG_NAMES } from './decode-trace.js'
export type { TraceEvent, DecodeTraceOptions } from './decode-trace.js'
export { eventToJson, jsonValue } from './jsonl.js'
export { fieldGetter, fieldText } from './fields.js'
export type { FieldGetter } from './fields.js'
