// Suite `metadata`: namespace operations on the MDT and the errnos Lustre answers them with
// (MD-* requirements). Every test works in a directory of its own, named from its random
// source, under the root, so that tests do not see each other's names.
import { createFile, getRoot, lookup, mkdir, rename, unlink, S_IFDIR, S_IFREG, type WireFid } from '../wire/mdt.js'
import { errno, type TargetSession } from '../wire/session.js'
import { expectEqual, expectThat, type ConformanceTest, type TestContext } from '../core/test.js'

/** A fresh directory for the test, and the session it was made with. */
async function workdir(ctx: TestContext): Promise<{ s: TargetSession; dir: WireFid }> {
  const s = await ctx.mds()
  const root = await getRoot(s)
  const name = `lc-${Math.floor(ctx.random() * 2 ** 48).toString(36)}`
  const r = await mkdir(s, root, name)
  expectEqual(`mkdir /${name}`, r.status, 0)
  return { s, dir: r.body!.mbo_fid1 as WireFid }
}

export const metadataTests: ConformanceTest[] = [
  {
    id: 'metadata.mkdir.lookup', tags: ['metadata'], requirements: ['MD-MKDIR-LOOKUP'],
    title: 'a directory made by REINT_CREATE is found by MDS_GETATTR_NAME, with its FID and type',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      const made = await mkdir(s, dir, 'sub')
      expectEqual('mkdir status', made.status, 0)
      const found = await lookup(s, dir, 'sub')
      expectEqual('lookup status', found.status, 0)
      expectEqual('FID found', found.body?.mbo_fid1, made.body?.mbo_fid1)
      expectEqual('file type', Number(found.body?.mbo_mode) & 0o170000, S_IFDIR)
    },
  },
  {
    id: 'metadata.fid.client-sequence', tags: ['metadata', 'fid'], requirements: ['MD-FID-SEQUENCE'],
    title: 'a directory made with a FID from the client\'s own sequence (SEQ_QUERY) has that FID; another client gets another sequence',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      const made = await mkdir(s, dir, 'd')
      expectEqual('mkdir status', made.status, 0)
      const asked = s.lastFid!
      expectEqual('FID of the new directory', made.body?.mbo_fid1, asked)
      const other = await ctx.mds()
      const theirs = await other.newFid()
      expectThat('another client\'s sequence', theirs.f_seq !== asked.f_seq, `a sequence other than ${asked.f_seq}`, String(theirs.f_seq))
    },
  },
  {
    id: 'metadata.lookup.enoent', tags: ['metadata', 'errors'], requirements: ['MD-ENOENT'],
    title: 'looking up a name that is not there is answered -ENOENT',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      expectEqual('lookup status', (await lookup(s, dir, 'missing')).status, errno('ENOENT'))
      expectEqual('unlink status', (await unlink(s, dir, 'missing', false)).status, errno('ENOENT'))
    },
  },
  {
    id: 'metadata.create.eexist', tags: ['metadata', 'errors'], requirements: ['MD-EEXIST'],
    title: 'an exclusive create of a name that exists is answered -EEXIST',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      expectEqual('first create', (await createFile(s, dir, 'f')).status, 0)
      expectEqual('second create', (await createFile(s, dir, 'f')).status, errno('EEXIST'))
      expectEqual('mkdir over it', (await mkdir(s, dir, 'f')).status, errno('EEXIST'))
    },
  },
  {
    id: 'metadata.rmdir.enotempty', tags: ['metadata', 'errors'], requirements: ['MD-ENOTEMPTY'],
    title: 'removing a directory that holds a name is answered -ENOTEMPTY, and the directory stays',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      const d = await mkdir(s, dir, 'd')
      await createFile(s, d.body!.mbo_fid1 as WireFid, 'x')
      expectEqual('rmdir status', (await unlink(s, dir, 'd', true)).status, errno('ENOTEMPTY'))
      expectEqual('still there', (await lookup(s, dir, 'd')).status, 0)
    },
  },
  {
    id: 'metadata.rename.into-own-subtree', tags: ['metadata', 'errors'], requirements: ['MD-RENAME-SUBTREE'],
    title: 'renaming a directory into its own subtree is answered -EINVAL',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      const a = await mkdir(s, dir, 'a')
      const b = await mkdir(s, a.body!.mbo_fid1 as WireFid, 'b')
      expectEqual('rename a -> a/b/a', (await rename(s, dir, 'a', b.body!.mbo_fid1 as WireFid, 'a', S_IFDIR | 0o755)).status, errno('EINVAL'))
    },
  },
  {
    id: 'metadata.rename.over-existing', tags: ['metadata'], requirements: ['MD-RENAME-REPLACE'],
    title: 'renaming a file over another replaces it: the old name goes, the new name is the moved file',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      const x = await createFile(s, dir, 'x')
      await createFile(s, dir, 'y')
      expectEqual('rename x -> y', (await rename(s, dir, 'x', dir, 'y', 0o100644)).status, 0)
      expectEqual('x is gone', (await lookup(s, dir, 'x')).status, errno('ENOENT'))
      expectEqual('y is the moved file', (await lookup(s, dir, 'y')).body?.mbo_fid1, x.body?.mbo_fid1)
    },
  },
  {
    id: 'metadata.parent.enotdir', tags: ['metadata', 'errors'], requirements: ['MD-ENOTDIR'],
    title: 'a create, mkdir or lookup under a regular file is answered -ENOTDIR',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      // Executable, so that the lookup's permission check (MAY_EXEC on the parent) passes and the
      // answer is about the type: a 0644 file would be -EACCES first (mdd __mdd_lookup).
      const f = await createFile(s, dir, 'f', undefined, 0o755)
      expectEqual('create f', f.status, 0)
      const file = f.body!.mbo_fid1 as WireFid
      expectEqual('mkdir f/d', (await mkdir(s, file, 'd')).status, errno('ENOTDIR'))
      expectEqual('create f/x', (await createFile(s, file, 'x')).status, errno('ENOTDIR'))
      expectEqual('lookup f/x', (await lookup(s, file, 'x')).status, errno('ENOTDIR'))
    },
  },
  {
    id: 'metadata.rename.type-mismatch', tags: ['metadata', 'errors'], requirements: ['MD-RENAME-TYPE'],
    title: 'renaming a file over a directory is answered -EISDIR, a directory over a file -ENOTDIR; both names stay',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      const f = await createFile(s, dir, 'f')
      const d = await mkdir(s, dir, 'd')
      expectEqual('rename f -> d', (await rename(s, dir, 'f', dir, 'd', S_IFREG | 0o644)).status, errno('EISDIR'))
      expectEqual('rename d -> f', (await rename(s, dir, 'd', dir, 'f', S_IFDIR | 0o755)).status, errno('ENOTDIR'))
      expectEqual('f is still the file', (await lookup(s, dir, 'f')).body?.mbo_fid1, f.body?.mbo_fid1)
      expectEqual('d is still the directory', (await lookup(s, dir, 'd')).body?.mbo_fid1, d.body?.mbo_fid1)
    },
  },
  {
    id: 'metadata.rename.enoent', tags: ['metadata', 'errors'], requirements: ['MD-RENAME-ENOENT'],
    title: 'renaming a name that is not there is answered -ENOENT, and creates nothing',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      expectEqual('rename missing -> y', (await rename(s, dir, 'missing', dir, 'y', S_IFREG | 0o644)).status, errno('ENOENT'))
      expectEqual('y does not exist', (await lookup(s, dir, 'y')).status, errno('ENOENT'))
    },
  },
  {
    id: 'metadata.name.too-long', tags: ['metadata', 'errors'], requirements: ['MD-NAMETOOLONG'],
    title: 'a name longer than 255 bytes is answered -ENAMETOOLONG',
    async run(ctx) {
      const { s, dir } = await workdir(ctx)
      expectEqual('create with a 256-byte name', (await createFile(s, dir, 'n'.repeat(256))).status, errno('ENAMETOOLONG'))
    },
  },
]
