// Reply rewriters for the deliberately wrong servers the certifier's self-test runs
// (conformance/mutants.ts). Each takes a well-formed lustre_msg_v2 reply and breaks
// one rule of it; a correct server never calls them. They work on bytes, after the
// reply was encoded, because the faults they model are faults of packing.
import { frameMessage, round8 } from '../../src/wire/index.js'

/** lustre_msg_v2's fixed header (lm_bufcount .. lm_padding_3); lm_buflens follow it. */
const HEADER = 32

/** The reply without its last buffer: lm_bufcount one less, that length gone, the rest as it was. */
export function dropLastBuffer(bytes: Uint8Array): Uint8Array {
  const { offsets, lengths } = frameMessage(bytes)
  if (lengths.length < 2) return bytes // the body alone: nothing to drop that keeps a reply
  return pack(bytes, offsets.slice(0, -1), lengths.slice(0, -1), round8)
}

/**
 * The reply with nothing padded to 8 (WIRE-MSG-PAD8 broken): buffers follow the header and
 * each other with no gap. Unchanged when the header (32 + 4 * lm_bufcount: an even count)
 * and every buffer length are multiples of 8 already.
 */
export function unpadBuffers(bytes: Uint8Array): Uint8Array {
  const { offsets, lengths } = frameMessage(bytes)
  return pack(bytes, offsets, lengths, n => n)
}

function pack(bytes: Uint8Array, offsets: number[], lengths: number[], align: (n: number) => number): Uint8Array {
  const le = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true) === 0x0bd00bd3
  const head = align(HEADER + 4 * lengths.length)
  const out = new Uint8Array(head + lengths.reduce((a, n) => a + align(n), 0))
  out.set(bytes.subarray(0, HEADER))
  const dv = new DataView(out.buffer)
  dv.setUint32(0, lengths.length, le)
  let at = head
  for (const [i, n] of lengths.entries()) {
    dv.setUint32(HEADER + 4 * i, n, le)
    out.set(bytes.subarray(offsets[i], offsets[i] + n), at)
    at += align(n)
  }
  return out
}

/** lov_mds_md_v1's header, then one lov_ost_data_v1 (24 bytes) per stripe. */
const LOV_MD_HEADER = 32
const LOV_OST_DATA = 24

/**
 * A RAID0 lov_mds_md_v1 (the only layout the reference makes; a v3 or composite layout would
 * need its own header size) whose object list is shifted by one stripe: stripe i names the object of
 * stripe i + 1 (the last, the first). A client mapping file offsets through it reads and
 * writes every stripe in the wrong object (STRIPE-RAID0-MAP broken). One stripe: unchanged.
 */
export function shiftStripes(lmm: Uint8Array): Uint8Array {
  const n = Math.floor((lmm.length - LOV_MD_HEADER) / LOV_OST_DATA)
  if (n < 2) return lmm
  const out = lmm.slice()
  for (let i = 0; i < n; i++) {
    const from = LOV_MD_HEADER + LOV_OST_DATA * ((i + 1) % n)
    out.set(lmm.subarray(from, from + LOV_OST_DATA), LOV_MD_HEADER + LOV_OST_DATA * i)
  }
  return out
}
