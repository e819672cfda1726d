// Suite `striping`: the RAID0 layouts an MDT gives new files and the objects behind them
// (STRIPE-* requirements). Layouts are asked as lfs setstripe asks them (a lov_user_md in
// the create); each object the reply's lov_mds_md_v1 names must exist on the OST it names.
// Placement: bytes written to the objects at the offsets RAID0 gives read back from those
// objects, and each object's size is what the mapping implies.
import { getRoot, getattrLayout, lookup, mkdir, createFile, lovUserMd, type WireFid } from '../wire/mdt.js'
import { getattr, read, write, type ObjectRef } from '../wire/ost.js'
import { errno, type Obj, type TargetSession } from '../wire/session.js'
import { Failure, Unsupported, expectEqual, expectThat, type ConformanceTest, type TestContext } from '../core/test.js'

interface Layout { size: number; count: number; objects: Array<{ ost: number; ref: ObjectRef }> }

function layoutOf(md: Obj | undefined, where = 'the create reply'): Layout {
  if (!md) throw new Failure(`${where} has no layout`, 'a lov_mds_md_v1 in RMF_MDT_MD', 'none')
  return {
    size: Number(md.lmm_stripe_size), count: Number(md.lmm_stripe_count),
    objects: (md.lmm_objects as Obj[]).map(o => ({ ost: Number(o.l_ost_idx), ref: { id: o.l_ost_oi.oi.oi_id as bigint, seq: o.l_ost_oi.oi.oi_seq as bigint } })),
  }
}

/** OST sessions by index, 0 up to the first index no OSS serves. */
async function osts(ctx: TestContext): Promise<TargetSession[]> {
  const out: TargetSession[] = []
  for (;;) {
    try {
      out.push(await ctx.ost(out.length))
    } catch {
      return out
    }
  }
}

async function newFile(ctx: TestContext, lum?: { size: number; count: number; offset: number }): Promise<Layout & { fid: WireFid }> {
  const s = await ctx.mds()
  const root = await getRoot(s)
  const dir = await mkdir(s, root, `lc-${Math.floor(ctx.random() * 2 ** 48).toString(36)}`)
  expectEqual('mkdir status', dir.status, 0)
  const f = await createFile(s, dir.body!.mbo_fid1 as WireFid, 'f', lum ? lovUserMd(lum) : undefined)
  expectEqual('create status', f.status, 0)
  return { ...layoutOf(f.md), fid: f.body!.mbo_fid1 as WireFid }
}

async function objectsExist(all: TargetSession[], l: Layout): Promise<void> {
  for (const o of l.objects) {
    expectThat(`OST index ${o.ost} of an object`, o.ost < all.length, `< ${all.length}`, String(o.ost))
    expectEqual(`OST_GETATTR of object ${o.ref.id} on OST ${o.ost}`, (await getattr(all[o.ost], o.ref)).status, 0)
  }
  expectEqual('distinct OSTs', new Set(l.objects.map(o => o.ost)).size, l.objects.length)
}

export const stripingTests: ConformanceTest[] = [
  {
    id: 'striping.layout.default', tags: ['striping'], requirements: ['STRIPE-DEFAULT'],
    title: 'a file created without a layout gets a RAID0 layout whose objects exist',
    async run(ctx) {
      const all = await osts(ctx)
      if (!all.length) throw new Unsupported('no OST answered')
      const l = await newFile(ctx)
      expectThat('stripe count', l.count >= 1 && l.count === l.objects.length, 'at least 1, one object per stripe', `${l.count} stripes, ${l.objects.length} objects`)
      await objectsExist(all, l)
    },
  },
  {
    id: 'striping.layout.explicit', tags: ['striping'], requirements: ['STRIPE-EXPLICIT', 'STRIPE-OFFSET'],
    title: 'setstripe -S 128K -c 2 -i 1: the layout has that size and count, and its first object is on OST 1',
    async run(ctx) {
      const all = await osts(ctx)
      if (all.length < 2) throw new Unsupported(`needs 2 OSTs, the target has ${all.length}`)
      const l = await newFile(ctx, { size: 128 << 10, count: 2, offset: 1 })
      expectEqual('stripe size', l.size, 128 << 10)
      expectEqual('stripe count', l.count, 2)
      expectEqual('OST of the first object', l.objects[0]?.ost, 1)
      await objectsExist(all, l)
    },
  },
  {
    id: 'striping.layout.all-osts', tags: ['striping'], requirements: ['STRIPE-COUNT-ALL'],
    title: 'setstripe -c -1: one object on every OST',
    async run(ctx) {
      const all = await osts(ctx)
      if (!all.length) throw new Unsupported('no OST answered')
      const l = await newFile(ctx, { size: 1 << 20, count: -1, offset: -1 })
      expectEqual('stripe count', l.count, all.length)
      await objectsExist(all, l)
    },
  },
  {
    id: 'striping.layout.invalid', tags: ['striping', 'errors'], requirements: ['STRIPE-BAD-REQUEST'],
    title: 'setstripe -S 100000, or -i past the last OST, is refused -EINVAL and creates nothing',
    async run(ctx) {
      const all = await osts(ctx)
      if (!all.length) throw new Unsupported('no OST answered')
      const s = await ctx.mds()
      const dir = await mkdir(s, await getRoot(s), `lc-${Math.floor(ctx.random() * 2 ** 48).toString(36)}`)
      expectEqual('mkdir status', dir.status, 0)
      const at = dir.body!.mbo_fid1 as WireFid
      // The OST index past the last one that answered; 0xfffe stays clear of -1 (0xffff, "any").
      const cases: Array<[string, { size: number; count: number; offset: number }]> = [
        ['size 100000', { size: 100000, count: 1, offset: -1 }],
        [`offset ${Math.min(all.length + 7, 0xfffe)}`, { size: 1 << 20, count: 1, offset: Math.min(all.length + 7, 0xfffe) }],
      ]
      for (const [what, lum] of cases) {
        expectEqual(`create with ${what}: status`, (await createFile(s, at, 'f', lovUserMd(lum))).status, errno('EINVAL'))
        expectEqual(`after the refused create (${what}), the name`, (await lookup(s, at, 'f')).status, errno('ENOENT'))
      }
    },
  },
  {
    id: 'striping.raid0.placement', tags: ['striping', 'data'], requirements: ['STRIPE-RAID0-MAP'],
    title: 'bytes one client writes at RAID0 object offsets read back at the same file offsets through the layout another client gets, and object sizes follow the mapping',
    async run(ctx) {
      const all = await osts(ctx)
      if (all.length < 2) throw new Unsupported(`needs 2 OSTs, the target has ${all.length}`)
      const stripe = 64 << 10
      const l = await newFile(ctx, { size: stripe, count: Math.min(all.length, 4), offset: -1 })
      // A file of 2.5 rounds of stripes: file offset f is in stripe s = f / size, object s % count, at (s / count) * size + f % size.
      const fileSize = Math.floor(l.count * stripe * 2.5)
      const file = new Uint8Array(fileSize).map((_, i) => (i * 7 + (i >> 12) + 1) & 0xff)
      const objSize = new Array<number>(l.count).fill(0)
      for (let s = 0; s * stripe < fileSize; s++) {
        const o = s % l.count
        const at = Math.floor(s / l.count) * stripe
        const piece = file.subarray(s * stripe, Math.min(fileSize, (s + 1) * stripe))
        expectEqual(`OST_WRITE of stripe ${s}`, await write(all[l.objects[o].ost], l.objects[o].ref, at, piece), 0)
        objSize[o] = Math.max(objSize[o], at + piece.length)
      }
      for (const [o, obj] of l.objects.entries()) expectEqual(`size of object ${o}`, (await getattr(all[obj.ost], obj.ref)).size, BigInt(objSize[o]))
      // A second client opens the file: the layout it is given must map the file to the same bytes.
      const reader = await ctx.mds()
      const got = await getattrLayout(reader, l.fid)
      // What follows judges the layout this reply gave: a failure is about this exchange.
      ctx.about(reader)
      expectEqual('MDS_GETATTR status', got.status, 0)
      const l2 = layoutOf(got.md, 'the MDS_GETATTR reply')
      expectEqual('stripe size and count read back', [l2.size, l2.count], [l.size, l.count])
      const back = new Uint8Array(fileSize)
      for (const [o, obj] of l2.objects.entries()) {
        const r = await read(all[obj.ost], obj.ref, 0, objSize[o])
        expectEqual(`OST_READ of object ${o}: status`, r.status, 0)
        for (let at = 0; at < r.data.length; at += stripe) {
          const s = Math.floor(at / stripe) * l2.count + o
          if (s * stripe >= fileSize) break
          back.set(r.data.subarray(at, Math.min(r.data.length, at + stripe, at + fileSize - s * stripe)), s * stripe)
        }
      }
      const bad = back.findIndex((b, i) => b !== file[i])
      expectThat('the file read back through the second client\'s layout', bad < 0, `${fileSize} bytes as written`,
        `byte ${bad} (stripe ${Math.floor(bad / stripe)}) differs`)
      expectEqual('objects of the layout read back (OST index, object id)', l2.objects.map(x => [x.ost, x.ref.id]), l.objects.map(x => [x.ost, x.ref.id]))
    },
  },
]
