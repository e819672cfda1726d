// Requests of a capture still waiting for their reply, so that a reply is decoded
// with its request's format (a reply's buffers depend on it: RQF_LDLM_INTENT_OPEN
// and RQF_LDLM_ENQUEUE answer differently). Lustre matches a reply to its request
// by the requester's NID and pid and the xid (the PUT's match bits), and so do we.

/** Requests whose replies the capture never shows are forgotten past this many. */
export const MAX_PENDING = 100_000

interface Pending {
  nid: bigint
  pid: number
  format: string
  /** an older request with the same xid from another requester (xids are per client) */
  next: Pending | undefined
}

/**
 * One map keyed by xid, each entry a short chain of requesters: one lookup per message
 * (this is on the hot path of trace decoding) and no key built from several values.
 */
export class PendingRequests {
  private readonly byXid = new Map<bigint, Pending>()
  private count = 0

  constructor(private readonly limit = MAX_PENDING) {}

  get size(): number {
    return this.count
  }

  get(nid: bigint, pid: number, xid: bigint): string | undefined {
    for (let e = this.byXid.get(xid); e; e = e.next) if (e.pid === pid && e.nid === nid) return e.format
    return undefined
  }

  set(nid: bigint, pid: number, xid: bigint, format: string): void {
    const head = this.byXid.get(xid)
    for (let e = head; e; e = e.next) {
      if (e.pid === pid && e.nid === nid) {
        // A resent request (same xid) keeps its place and takes the latest format.
        e.format = format
        return
      }
    }
    this.byXid.set(xid, { nid, pid, format, next: head })
    if (++this.count > this.limit) this.forgetOldest()
  }

  delete(nid: bigint, pid: number, xid: bigint): void {
    let prev: Pending | undefined
    for (let e = this.byXid.get(xid); e; prev = e, e = e.next) {
      if (e.pid !== pid || e.nid !== nid) continue
      if (prev) prev.next = e.next
      else if (e.next) this.byXid.set(xid, e.next)
      else this.byXid.delete(xid)
      this.count--
      return
    }
  }

  /** Drops the oldest request of the xid first entered (a Map keeps insertion order). */
  private forgetOldest(): void {
    const first = this.byXid.entries().next()
    if (first.done) return
    const [xid, head] = first.value
    if (!head.next) this.byXid.delete(xid)
    else {
      let e = head
      while (e.next!.next) e = e.next!
      e.next = undefined
    }
    this.count--
  }
}
