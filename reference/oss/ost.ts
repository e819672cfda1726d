// One OST as a Target of reference/common's TargetHost: its UUID, what it answers at
// connect (ofd_parse_connect_data), its handlers by opcode (the OST part of ofd's
// tgt_handler table), and the grant it has promised each export (tgt_grant_connect).
import type { Export, Target, TargetHandler, TargetRequest } from '../common/index.js'
import type { ReplySpec } from '../../src/transport/index.js'
import { E } from '../common/index.js'
import { C, OstError, MAX_OBJECT_BYTES, MAX_BRW_BYTES, type Obj } from './obdo.js'
import { ObjectStore } from './store.js'
import { createHdl, destroyHdl, getattrHdl, setattrHdl, punchHdl, syncHdl, statfsHdl } from './handlers.js'
import { readHdl, writeHdl } from './brw.js'
import { encodeStruct, makeStruct } from '../../src/wire/index.js'
import type { LdlmService } from '../ldlm/index.js'

/**
 * The OBD_CONNECT_* this OST implements, and so the most a connect reply grants
 * (ofd_parse_connect_data masks with OST_CONNECT_SUPPORTED; this is our own, smaller mask).
 */
export const OST_SUPPORTED_FLAGS =
  C('OBD_CONNECT_VERSION') | C('OBD_CONNECT_INDEX') | C('OBD_CONNECT_BRW_SIZE') | C('OBD_CONNECT_GRANT') |
  C('OBD_CONNECT_FID') | C('OBD_CONNECT_FULL20') | C('OBD_CONNECT_BULK_MBITS') | C('OBD_CONNECT_MAXBYTES')

/** 2.17.57.0, the Lustre version spec/ was read from, as ocd_version packs it (LUSTRE_VERSION_CODE). */
export const OSS_VERSION = 0x02113900
/** brw size for a client that asks for none (ONE_MB_BRW_SIZE). */
const DEFAULT_BRW_BYTES = 1 << 20
/** Most grant one export is given at connect. */
export const MAX_CONNECT_GRANT = 64n << 20n

/** What one export may still write from grant: `target` is what it was promised, `granted` what it holds. */
export interface GrantState {
  target: bigint
  granted: bigint
}

export interface OstContext {
  readonly index: number
  readonly uuid: string
  readonly store: ObjectStore
  /** grant held by each export, by export handle */
  readonly grants: Map<bigint, GrantState>
  log(line: string): void
}

type OstHandler = (ost: OstContext, r: TargetRequest) => Promise<ReplySpec>

/** `lustre-OST0003_UUID` for index 3 (reference/README.md). */
export function ostUuid(fsname: string, index: number): string {
  return `${fsname}-OST${index.toString(16).padStart(4, '0')}_UUID`
}

export class Ost implements Target, OstContext {
  readonly uuid: string
  readonly connectOpcode = 'OST_CONNECT'
  readonly disconnectOpcode = 'OST_DISCONNECT'
  readonly supportedFlags = OST_SUPPORTED_FLAGS
  readonly handlers: ReadonlyMap<string, TargetHandler>
  readonly grants = new Map<bigint, GrantState>()
  readonly store: ObjectStore
  private readonly inflight = new Set<Promise<unknown>>()

  constructor(readonly index: number, fsname: string, root: string, private readonly logLine: (line: string) => void) {
    this.uuid = ostUuid(fsname, index)
    this.store = new ObjectStore(root)
    const table: Array<[string, OstHandler]> = [
      ['OST_CREATE', createHdl], ['OST_DESTROY', destroyHdl], ['OST_GETATTR', getattrHdl],
      ['OST_SETATTR', setattrHdl], ['OST_PUNCH', punchHdl], ['OST_SYNC', syncHdl],
      ['OST_STATFS', statfsHdl], ['OST_READ', readHdl], ['OST_WRITE', writeHdl],
    ]
    this.handlers = new Map([
      ...table.map(([opcode, h]): [string, TargetHandler] => [opcode, (r: TargetRequest) => this.run(opcode, h, r)]),
      ['LDLM_ENQUEUE', r => this.lockService().enqueue(r)],
      ['LDLM_CANCEL', r => this.lockService().cancel(r)],
    ])
  }

  private ldlm: LdlmService | undefined

  /** The OST's lock namespace, attached once the server has its PtlRPC endpoint. */
  attachLdlm(s: LdlmService): void {
    this.ldlm = s
  }

  closeLdlm(): void {
    this.ldlm?.close()
  }

  private lockService(): LdlmService {
    if (!this.ldlm) throw new Error(`${this.uuid}: no lock service attached`)
    return this.ldlm
  }

  /**
   * The ost_lvb of a lock's object (ofd_lvbo_init / ofd_lvbo_fill): size, times and blocks;
   * the resource names the object as ostid_build_res_name does for sequence 0 (id, 0, 0, 0).
   * A missing object throws -ENOENT, which the enqueue answers.
   */
  async lvb(name: readonly bigint[]): Promise<Uint8Array> {
    const a = await this.store.stat(name[0])
    return encodeStruct('ost_lvb', makeStruct('ost_lvb', {
      lvb_size: a.size, lvb_blocks: a.blocks, lvb_mtime: a.mtime, lvb_atime: a.atime, lvb_ctime: a.ctime,
    }))
  }

  log(line: string): void {
    this.logLine(`${this.uuid}: ${line}`)
  }

  /**
   * Every handler runs here: a refusal (OstError) becomes its errno, anything else is
   * logged and answered -EIO, so that no request can take the server down. Running
   * handlers are counted, so that close() can wait for them before files go away.
   */
  private run(opcode: string, h: OstHandler, r: TargetRequest): Promise<ReplySpec> {
    const p = h(this, r).catch((e: unknown): ReplySpec => {
      // An operation's errno is a reply with the format's buffers (tgt_handle_request0); a
      // request that cannot be unpacked, or a handler that broke, goes by ptlrpc_error().
      if (e instanceof OstError) {
        this.log(`${opcode}: ${e.message}`)
        return { status: e.status, ...(e.status === E.EPROTO ? { error: true } : {}) }
      }
      this.log(`${opcode} failed: ${(e as Error).stack ?? String(e)}`)
      return { status: E.EIO, error: true }
    })
    this.inflight.add(p)
    void p.finally(() => this.inflight.delete(p))
    return p
  }

  /** Resolves when every handler started so far has answered. */
  async idle(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight])
  }

  /**
   * Connect reply members (ofd_parse_connect_data): ocd_index = this OST's index, and -EBADF
   * when the client asked OBD_CONNECT_INDEX with another index;
   * ocd_brw_size = what the client asked, at most 4 MiB (1 MiB when it asked 0; Lustre
   * refuses 0 as corruption); ocd_grant = at most 64 MiB; ocd_maxbytes; ocd_version =
   * the server's. Members of features not granted are zeroed rather than echoed.
   */
  connectData(ocd: Obj, flags: bigint): Obj | number {
    const out: Obj = { ocd_version: OSS_VERSION, ocd_connect_flags2: 0n, ocd_cksum_types: 0 }
    if (flags & C('OBD_CONNECT_INDEX')) {
      // A client that says which index it means must mean this one (a misconfigured client otherwise).
      if (Number(ocd.ocd_index ?? 0) !== this.index) return E.EBADF
      out.ocd_index = this.index
    }
    if (flags & C('OBD_CONNECT_BRW_SIZE')) {
      const asked = Number(ocd.ocd_brw_size ?? 0)
      out.ocd_brw_size = asked > 0 ? Math.min(asked, MAX_BRW_BYTES) : DEFAULT_BRW_BYTES
    }
    if (flags & C('OBD_CONNECT_GRANT')) {
      const asked = BigInt(Number(ocd.ocd_grant ?? 0))
      out.ocd_grant = Number(asked < MAX_CONNECT_GRANT ? asked : MAX_CONNECT_GRANT)
    } else out.ocd_grant = 0
    if (flags & C('OBD_CONNECT_MAXBYTES')) out.ocd_maxbytes = BigInt(MAX_OBJECT_BYTES)
    return out
  }

  /** The export holds the grant just answered in ocd_grant (a reconnect starts it afresh). */
  onConnect(exp: Export): void {
    const g = BigInt(Number(exp.ocd.ocd_grant ?? 0))
    this.grants.set(exp.handle, { target: g, granted: g })
  }

  onDisconnect(exp: Export): void {
    this.ldlm?.dropExport(exp)
    this.grants.delete(exp.handle)
  }
}
