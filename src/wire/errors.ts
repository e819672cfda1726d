// Typed errors of the wire layer. Every failure to decode or encode Lustre bytes
// becomes one of these, with a stable code, the byte offset where it happened and
// the field (dotted path under Lustre's member names) that could not be read.
// Codes are part of the public contract: tests and reports key on them, so a code
// is never renamed or reused. The catalogue below is the single list.

export const WIRE_ERROR_CODES = {
  LC_WIRE_TRUNCATED: 'input ends before the field does',
  LC_WIRE_BAD_MAGIC: 'magic number is neither the expected value nor its byte swap',
  LC_WIRE_BAD_BUFCOUNT: 'lustre_msg buffer count out of range',
  LC_WIRE_BUFFER_OVER_LIMIT: 'a declared length is larger than the limit',
  LC_WIRE_UNKNOWN_OPCODE: 'opcode has no request format in spec/rpc',
  LC_WIRE_UNKNOWN_MSG_TYPE: 'LNet, socklnd or PtlRPC message type not known',
  LC_WIRE_BAD_VERSION: 'protocol version not supported',
  LC_WIRE_BAD_LENGTH: 'a buffer length does not fit its field',
  LC_WIRE_BAD_VALUE: 'a value cannot be encoded in its field',
  LC_WIRE_BAD_NID: 'not a NID this codec speaks',
  LC_WIRE_SPEC: 'spec/ is inconsistent (a schema the codec cannot compile)',
} as const

export type WireErrorCode = keyof typeof WIRE_ERROR_CODES

export interface WireErrorDetails {
  /** byte offset, from the start of the unit being decoded, where the problem is */
  offset?: number
  /** dotted path of the field, under Lustre's names (lustre_msg_v2.lm_bufcount) */
  field?: string
  /** the value that was read or given, when there is one */
  value?: number | bigint | string
  /** the limit that was exceeded, when there is one */
  limit?: number
}

export class LustreWireError extends Error {
  readonly code: WireErrorCode
  readonly offset: number | undefined
  readonly field: string | undefined
  readonly value: number | bigint | string | undefined
  readonly limit: number | undefined

  constructor(code: WireErrorCode, message: string, details: WireErrorDetails = {}) {
    const where = [
      details.field !== undefined ? `field ${details.field}` : '',
      details.offset !== undefined ? `offset ${details.offset}` : '',
    ].filter(Boolean).join(', ')
    super(`${code}: ${message}${where ? ` (${where})` : ''}`)
    this.name = new.target.name
    this.code = code
    this.offset = details.offset
    this.field = details.field
    this.value = details.value
    this.limit = details.limit
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      offset: this.offset,
      field: this.field,
      value: typeof this.value === 'bigint' ? this.value.toString() : this.value,
      limit: this.limit,
    }
  }
}

export class TruncatedError extends LustreWireError {
  constructor(field: string, offset: number, needed: number, available: number) {
    super('LC_WIRE_TRUNCATED', `need ${needed} bytes, ${available} available`, { field, offset, limit: available })
  }
}

export class BadMagicError extends LustreWireError {
  constructor(field: string, offset: number, value: number) {
    super('LC_WIRE_BAD_MAGIC', `unexpected magic 0x${(value >>> 0).toString(16).padStart(8, '0')}`, { field, offset, value })
  }
}

export class BadBufcountError extends LustreWireError {
  constructor(offset: number, value: number, limit: number) {
    super('LC_WIRE_BAD_BUFCOUNT', `buffer count ${value} not in 1..${limit}`, { field: 'lustre_msg_v2.lm_bufcount', offset, value, limit })
  }
}

export class BufferOverLimitError extends LustreWireError {
  constructor(field: string, offset: number, value: number | bigint, limit: number) {
    super('LC_WIRE_BUFFER_OVER_LIMIT', `declared length ${value} exceeds limit ${limit}`, { field, offset, value, limit })
  }
}

export class UnknownOpcodeError extends LustreWireError {
  constructor(offset: number, value: number) {
    super('LC_WIRE_UNKNOWN_OPCODE', `opcode ${value} has no format`, { field: 'ptlrpc_body.pb_opc', offset, value })
  }
}

export class UnknownMessageTypeError extends LustreWireError {
  constructor(field: string, offset: number, value: number) {
    super('LC_WIRE_UNKNOWN_MSG_TYPE', `message type ${value} (0x${(value >>> 0).toString(16)}) not known`, { field, offset, value })
  }
}

export class BadVersionError extends LustreWireError {
  constructor(field: string, offset: number, value: number) {
    super('LC_WIRE_BAD_VERSION', `version ${value} not supported`, { field, offset, value })
  }
}

export class BadLengthError extends LustreWireError {
  constructor(field: string, offset: number, value: number, message: string) {
    super('LC_WIRE_BAD_LENGTH', message, { field, offset, value })
  }
}

export class BadValueError extends LustreWireError {
  constructor(field: string, value: unknown, message: string) {
    super('LC_WIRE_BAD_VALUE', message, {
      field,
      value: typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string' ? value : String(value),
    })
  }
}

export class BadNidError extends LustreWireError {
  constructor(value: string, message: string) {
    super('LC_WIRE_BAD_NID', message, { field: 'nid', value })
  }
}

export class SpecError extends LustreWireError {
  constructor(field: string, message: string) {
    super('LC_WIRE_SPEC', message, { field })
  }
}

/** True for errors the wire layer raises on purpose; anything else is a bug. */
export function isWireError(e: unknown): e is LustreWireError {
  return e instanceof LustreWireError
}
