// The client's pure parts: the RAID0 mapping (lov_stripe_offset), object sizes both ways
// (lov_size_to_stripe, lov_stripe_size), BRW planning, lov_user_md_v1 bytes, `lfs
// getstripe` text and directory page parsing. Property tests use the geometries the
// brief names: stripe sizes 64 KiB..4 MiB in 64 KiB steps, 1..8 stripes.
import t from 'tap'
import fc from 'fast-check'
import { constantOf, decodeStruct, encodeStruct, loadSpec } from '../../src/wire/index.js'
import {
  stripeMap, objectSizeFor, fileSizeFromObject, packLovUserMd, layoutFromMd, formatGetstripe, patternString,
  planBrw, runLimited, parseDirPages, ClientError, LU_PAGE_SIZE, MDS_DIR_END_OFF, type Layout,
} from '../../reference/client/index.js'
import { gatherBulk, scatterBulk } from '../../reference/client/lov.js'
import { parseSize } from '../../src/cli/client-cmd.js'

const spec = loadSpec()
const C = (n: string): number => Number(constantOf(spec, n))
const KiB = 1024
const MiB = 1024 * KiB

const geometry = fc.record({
  stripeSize: fc.integer({ min: 1, max: 64 }).map(k => k * 64 * KiB),
  stripeCount: fc.integer({ min: 1, max: 8 }),
})

t.test('stripeMap: worked example, 64 KiB x 4', async t => {
  const l = { stripeSize: 64 * KiB, stripeCount: 4 }
  t.same(stripeMap(60 * KiB, 8 * KiB, l), [
    { objIndex: 0, objOffset: 60 * KiB, fileOffset: 60 * KiB, length: 4 * KiB },
    { objIndex: 1, objOffset: 0, fileOffset: 64 * KiB, length: 4 * KiB },
  ])
  // stripe 5 is object 1's second stripe
  t.same(stripeMap(5 * 64 * KiB + 10, 1, l), [{ objIndex: 1, objOffset: 64 * KiB + 10, fileOffset: 5 * 64 * KiB + 10, length: 1 }])
  t.same(stripeMap(123, 0, l), [], 'an empty range has no pieces')
  t.throws(() => stripeMap(-1, 1, l), ClientError)
})

t.test('stripeMap: pieces cover the range exactly and sit where the formula says', async t => {
  fc.assert(fc.property(geometry, fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 16 * MiB }), (l, offset, length) => {
    const pieces = stripeMap(offset, length, l)
    let at = offset
    for (const p of pieces) {
      if (p.fileOffset !== at || p.length <= 0) return false
      const s = Math.floor(p.fileOffset / l.stripeSize)
      if (p.objIndex !== s % l.stripeCount) return false
      if (p.objOffset !== Math.floor(s / l.stripeCount) * l.stripeSize + (p.fileOffset % l.stripeSize)) return false
      // a piece never crosses a stripe boundary
      if (Math.floor((p.fileOffset + p.length - 1) / l.stripeSize) !== s) return false
      at += p.length
    }
    return at === offset + length
  }), { numRuns: 500 })
})

t.test('object sizes: lov_size_to_stripe and lov_stripe_size agree with the mapping', async t => {
  fc.assert(fc.property(geometry, fc.integer({ min: 0, max: 64 * MiB }), (l, size) => {
    // what each object holds of [0, size), from the mapping itself
    const ends = new Array(l.stripeCount).fill(0)
    for (const p of stripeMap(0, size, l)) ends[p.objIndex] = Math.max(ends[p.objIndex], p.objOffset + p.length)
    for (let i = 0; i < l.stripeCount; i++) if (objectSizeFor(size, i, l) !== ends[i]) return false
    // and the file size back from the object sizes
    const back = Math.max(0, ...ends.map((o, i) => fileSizeFromObject(o, i, l)))
    return back === size
  }), { numRuns: 300 })
  const l = { stripeSize: 64 * KiB, stripeCount: 4 }
  t.equal(fileSizeFromObject(64 * KiB, 2, l), 3 * 64 * KiB, 'a full first stripe of object 2 ends the file at stripe 3')
  t.equal(fileSizeFromObject(64 * KiB + 1, 0, l), 4 * 64 * KiB + 1, "one byte into object 0's second stripe")
  t.equal(objectSizeFor(4 * 64 * KiB + 1, 3, l), 64 * KiB)
})

t.test('planBrw: RPCs within brw windows; write then read through a model of the objects', async t => {
  fc.assert(fc.property(geometry, fc.integer({ min: 0, max: 8 * MiB }), fc.integer({ min: 1, max: 3 * MiB }),
    fc.constantFrom(64 * KiB, 256 * KiB, MiB, 4 * MiB), fc.integer(), (l, offset, length, brw, seed) => {
      const data = new Uint8Array(length).map((_, i) => (i * 131 + seed) & 0xff)
      const objects = Array.from({ length: l.stripeCount }, () => new Uint8Array(8 * MiB + 4 * MiB))
      const plans = planBrw(offset, length, l, brw)
      let total = 0
      for (const p of plans) {
        if (p.length > brw || p.niobufs.length === 0) return false
        const w = Math.floor(p.niobufs[0].offset / brw)
        const last = p.niobufs[p.niobufs.length - 1]
        if (Math.floor((last.offset + last.length - 1) / brw) !== w) return false
        const bulk = gatherBulk(p, data)
        let at = 0
        for (const n of p.niobufs) { objects[p.objIndex].set(bulk.subarray(at, at + n.length), n.offset); at += n.length }
        total += p.length
      }
      if (total !== length) return false
      // every byte landed where stripeMap puts it
      for (const piece of stripeMap(offset, length, l)) {
        const got = objects[piece.objIndex].subarray(piece.objOffset, piece.objOffset + piece.length)
        if (!Buffer.from(got).equals(Buffer.from(data.subarray(piece.fileOffset - offset, piece.fileOffset - offset + piece.length)))) return false
      }
      // and reading the same plans back gives the data
      const back = new Uint8Array(length)
      for (const p of plans) {
        const bulk = new Uint8Array(p.length)
        let at = 0
        for (const n of p.niobufs) { bulk.set(objects[p.objIndex].subarray(n.offset, n.offset + n.length), at); at += n.length }
        scatterBulk(p, bulk, back)
      }
      return Buffer.from(back).equals(Buffer.from(data))
    }), { numRuns: 60 })
})

t.test('planBrw: a 4 MiB write over 4 stripes of 64 KiB is one RPC of one niobuf per object', async t => {
  const plans = planBrw(0, 4 * MiB, { stripeSize: 64 * KiB, stripeCount: 4 }, MiB)
  t.equal(plans.length, 4)
  t.same(plans.map(p => p.objIndex), [0, 1, 2, 3], 'one RPC per object, objects interleaved')
  t.same(plans.map(p => p.niobufs), [0, 1, 2, 3].map(() => [{ offset: 0, length: MiB }]))
})

t.test('runLimited keeps at most `limit` tasks in flight and reports the first failure', async t => {
  let running = 0
  let peak = 0
  const tasks = Array.from({ length: 20 }, () => async () => {
    running++
    peak = Math.max(peak, running)
    await new Promise(r => setTimeout(r, 2))
    running--
  })
  await runLimited(tasks, 8)
  t.equal(peak, 8)
  await t.rejects(runLimited([async () => { throw new Error('boom') }, async () => {}], 2), /boom/)
})

t.test('lov_user_md_v1: the bytes lfs setstripe sends', async t => {
  const b = packLovUserMd({ stripeSize: 64 * KiB, stripeCount: 4 })
  t.equal(b.length, 32)
  t.equal(Buffer.from(b).toString('hex'),
    'd00bd10b' + '01000000' + '00'.repeat(16) + '00000100' + '0400' + 'ffff', 'magic, RAID0, no lmm_oi, 64 KiB, 4 stripes, offset -1')
  t.equal(Buffer.from(packLovUserMd({ stripeCount: -1, stripeOffset: 3 })).toString('hex').slice(48), '00000000ffff0300', 'default size, all OSTs, from OST 3')
  t.equal(Buffer.from(packLovUserMd({})).toString('hex').slice(48), '000000000000ffff', 'every default')
  t.throws(() => packLovUserMd({ stripeSize: 100000 }), { code: 'LC_CLIENT_ARG' }, 'not a multiple of 64 KiB')
  t.throws(() => packLovUserMd({ stripeCount: 2001 }), { code: 'LC_CLIENT_ARG' })
  t.throws(() => packLovUserMd({ stripeOffset: -2 }), { code: 'LC_CLIENT_ARG' })
  // a directory default comes back with the same bytes: offset where a file has its generation
  const dir = layoutFromMd(decodeStruct('lov_mds_md_v1', b), true)!
  t.same(dir, { stripeSize: 64 * KiB, stripeCount: 4, stripeOffset: -1, pattern: 1, objects: [], isDefault: true })
})

const fileLayout: Layout = {
  stripeSize: 65536, stripeCount: 2, stripeOffset: 1, pattern: C('LOV_PATTERN_RAID0'), layoutGen: 0,
  objects: [{ ostIndex: 1, objectId: 2n, seq: 0n }, { ostIndex: 2, objectId: 0x1234n, seq: 0n }],
}

t.test('layoutFromMd reads a lov_mds_md_v1 as the codec decodes RMF_MDT_MD', async t => {
  const lmm = decodeStruct('lov_mds_md_v1', encodeStruct('lov_mds_md_v1', {
    lmm_magic: C('LOV_MAGIC_V1'), lmm_pattern: 1, lmm_oi: { oi: { oi_id: 7n, oi_seq: 0x200000400n } }, lmm_stripe_size: 65536,
    lmm_stripe_count: 2, lmm_layout_gen: 0,
    lmm_objects: fileLayout.objects.map(o => ({ l_ost_oi: { oi: { oi_id: o.objectId, oi_seq: o.seq } }, l_ost_gen: 0, l_ost_idx: o.ostIndex })),
  }))
  t.same(layoutFromMd(lmm, false), fileLayout)
  t.equal(layoutFromMd(new Uint8Array(8), false), undefined, 'bytes of an unknown magic')
  t.equal(layoutFromMd(undefined, false), undefined)
})

t.test('formatGetstripe prints what lfs getstripe prints', async t => {
  t.equal(formatGetstripe('/mnt/lustre/f', fileLayout), [
    '/mnt/lustre/f',
    'lmm_stripe_count:  2',
    'lmm_stripe_size:   65536',
    'lmm_pattern:       raid0',
    'lmm_layout_gen:    0',
    'lmm_stripe_offset: 1',
    '\tobdidx\t\t objid\t\t objid\t\t group',
    '\t     1\t             2\t          0x2\t             0',
    '\t     2\t          4660\t       0x1234\t             0',
    '', '',
  ].join('\n'))
  t.equal(formatGetstripe('/d', { stripeSize: 1048576, stripeCount: -1, stripeOffset: -1, pattern: 1, objects: [], isDefault: true }),
    '/d\nstripe_count:  -1 stripe_size:   1048576 pattern:       raid0 stripe_offset: -1\n\n')
  t.equal(patternString(C('LOV_PATTERN_RAID0') | C('LOV_PATTERN_OVERSTRIPING')), 'raid0,overstriped')
  t.equal(patternString(C('LOV_PATTERN_RAID0') | C('LOV_PATTERN_F_RELEASED')), 'raid0,released')
})

/** A directory page as mdd_dir_page_build lays it out (lu_dirent_calc_size with LUDA_TYPE). */
function dirPage(hashStart: bigint, hashEnd: bigint, ents: Array<{ name: string; hash: bigint; mode: number }>, flags = 0): Uint8Array {
  const page = new Uint8Array(LU_PAGE_SIZE)
  page.set(encodeStruct('lu_dirpage', { ldp_hash_start: hashStart, ldp_hash_end: hashEnd, ldp_flags: flags, ldp_pad0: 0, ldp_entries: new Uint8Array(0) }))
  let off = 24
  ents.forEach((e, i) => {
    const name = Buffer.from(e.name)
    const reclen = ((((32 + name.length + 1 + 1) & ~1) + 2) + 7) & ~7
    const last = i === ents.length - 1
    page.set(encodeStruct('lu_dirent', {
      lde_fid: { f_seq: 0x200000400n, f_oid: i + 1, f_ver: 0 }, lde_hash: e.hash, lde_reclen: last ? 0 : reclen, lde_namelen: name.length,
      lde_attrs: C('LUDA_FID') | C('LUDA_TYPE'), lde_name: e.name,
    }), off)
    new DataView(page.buffer).setUint16((off + 32 + name.length + 2) & ~1, e.mode, true)
    off += reclen
  })
  return page
}

t.test('directory pages: entries, types, end marks, empty pages', async t => {
  const p1 = dirPage(0n, 0x500n, [{ name: '.', hash: 1n, mode: 0o040000 }, { name: 'file-a', hash: 0x100n, mode: 0o100000 }, { name: 'ln', hash: 0x500n, mode: 0o120000 }], C('LDF_COLLIDE'))
  const p2 = dirPage(0x500n, MDS_DIR_END_OFF, [{ name: 'subdir', hash: 0x900n, mode: 0o040000 }])
  const bulk = new Uint8Array(4 * LU_PAGE_SIZE)
  bulk.set(p1, 0)
  bulk.set(p2, LU_PAGE_SIZE)
  const pages = parseDirPages(bulk)
  t.equal(pages.length, 2, 'stops after the page that ends the directory')
  t.same(pages[0].entries.map(e => [e.name, e.type, e.hash]), [['.', 'dir', 1n], ['file-a', 'file', 0x100n], ['ln', 'symlink', 0x500n]])
  t.equal(pages[0].hashEnd, 0x500n)
  t.same(pages[1].entries.map(e => e.name), ['subdir'])
  t.same(pages[1].entries[0].fid, { seq: 0x200000400n, oid: 1, ver: 0 })
  const empty = parseDirPages(dirPage(0n, MDS_DIR_END_OFF, [], C('LDF_EMPTY')))
  t.same(empty.map(p => p.entries.length), [0], 'LDF_EMPTY: no entries')
  t.same(parseDirPages(new Uint8Array(LU_PAGE_SIZE)), [], 'a zero page is no page')
})

t.test('CLI sizes take lfs suffixes', async t => {
  t.equal(parseSize('64K'), 65536)
  t.equal(parseSize('4m'), 4 * MiB)
  t.equal(parseSize('1G'), 1024 * MiB)
  t.equal(parseSize('123'), 123)
  t.throws(() => parseSize('12Q'))
})
