import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { ChunkTreeBuilder, chunkLevel, MAX_CHUNK_TREE_DEPTH } from '../../src/objects/chunk-tree.js';
import { ChunkedFileReader } from '../../src/objects/chunked-file-reader.js';
import { Chunker } from '../../src/objects/chunker.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { decodeTree, encodeTree, TreeModes, type TreeMode } from '../../src/objects/tree.js';
import { Repository } from '../../src/repo/repository.js';
import { DEFAULT_FORMAT } from '../../src/repo/repo-format.js';
import { isGitfsError } from '../../src/errors.js';
import { pseudoRandomBytes } from '../support/data.js';
import { MemoryStore } from '../support/memory-store.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

const chunker = new Chunker(DEFAULT_FORMAT.chunker);

async function store(data: Buffer, mem: MemoryStore, tree = DEFAULT_FORMAT.tree): Promise<{ oid: Oid; size: number }> {
  const builder = new ChunkTreeBuilder(mem, tree);
  let at = 0;
  for (const n of chunker.cutAll(data)) {
    const chunk = data.subarray(at, at + n);
    const oid = await mem.writeHashed(hashObject('blob', chunk), 'blob', chunk);
    builder.add(oid, n);
    at += n;
  }
  return builder.finish();
}

describe('chunk tree', () => {
  after(cleanupTempDirs);
  it('chunkLevel counts trailing zero bits of the id in fanout steps', () => {
    assert.equal(chunkLevel('0123456789abcdef0123456789abcdef01234561' as Oid, 4), 0);
    assert.equal(chunkLevel('0123456789abcdef0123456789abcdef01234510' as Oid, 4), 1);
    assert.equal(chunkLevel('0123456789abcdef0123456789abcdef01234500' as Oid, 4), 2);
    assert.equal(chunkLevel('0123456789abcdef0123456789abcdef01234580' as Oid, 4), 1);
    assert.equal(chunkLevel('0123456789abcdef0123456789abcdef01234580' as Oid, 3), 2);
  });

  it('golden root id for a pinned input (pins cut points, levels, fanout and names)', async () => {
    const mem = new MemoryStore();
    const { oid, size } = await store(pseudoRandomBytes(4 << 20, 'gitfs golden tree v1'), mem);
    assert.equal(size, 4 << 20);
    assert.equal(oid, GOLDEN_ROOT);
  });

  it('reads back every byte range exactly', async () => {
    const data = pseudoRandomBytes(3 << 20, 'ranges');
    const mem = new MemoryStore();
    const { oid, size } = await store(data, mem, { fanoutBits: 2, maxFanout: 8 });
    const reader = new ChunkedFileReader(mem, oid, size);
    assert.ok((await reader.read(0, size)).equals(data));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: size }), fc.integer({ min: 0, max: 300_000 }), async (offset, length) => {
        assert.ok((await reader.read(offset, length)).equals(data.subarray(offset, offset + length)));
      }),
      { numRuns: 60 },
    );
  });

  it('a small range reads only the chunks it covers plus one path of tree nodes', async () => {
    const data = pseudoRandomBytes(8 << 20, 'sparse read');
    const mem = new MemoryStore();
    const { oid, size } = await store(data, mem);
    mem.reads = 0;
    await new ChunkedFileReader(mem, oid, size).read(5_000_000, 100);
    assert.ok(mem.reads <= 8, `${mem.reads} objects read for 100 bytes`);
  });

  it('one edit rewrites O(log n) objects', async () => {
    const data = pseudoRandomBytes(16 << 20, 'edit');
    const mem = new MemoryStore();
    await store(data, mem);
    const before = new Set(mem.objects.keys());
    const edited = Buffer.from(data);
    edited[9_000_000] = (edited[9_000_000] as number) ^ 0xff;
    await store(edited, mem);
    const added = [...mem.objects.keys()].filter((k) => !before.has(k)).length;
    assert.ok(added <= 8, `${added} new objects for a one-byte edit of 16 MiB`);
  });

  it('caps node width on uniform data', async () => {
    const mem = new MemoryStore();
    const { oid, size } = await store(Buffer.alloc(40 << 20), mem);
    for (const o of mem.objects.values()) if (o.type === 'tree') assert.ok(decodeTree(o.content).length <= DEFAULT_FORMAT.tree.maxFanout);
    assert.ok((await new ChunkedFileReader(mem, oid, size).read(size - 10, 10)).equals(Buffer.alloc(10)));
    assert.ok(mem.objects.size < 10, `${mem.objects.size} objects for 40 MiB of zeros`);
  });

  it('refuses a chunk tree whose sizes disagree with its parent', async () => {
    const data = pseudoRandomBytes(1 << 20, 'lies');
    const mem = new MemoryStore();
    const { oid, size } = await store(data, mem);
    await assert.rejects(new ChunkedFileReader(mem, oid, size + 1).read(0, size + 1), (e: unknown) => isGitfsError(e, 'GITFS_HOSTILE_OBJECT'));
  });

  it(`refuses a tree deeper than ${MAX_CHUNK_TREE_DEPTH} levels (a chain of one-entry nodes; deep enough, it overflowed the stack) and reads one at that depth`, async () => {
    const mem = new MemoryStore();
    const put = (type: 'blob' | 'tree', content: Buffer): Promise<Oid> => mem.writeHashed(hashObject(type, content), type, content);
    const chain = async (levels: number): Promise<Oid> => {
      let oid = await put('blob', Buffer.alloc(100, 7));
      let mode: TreeMode = TreeModes.FILE;
      for (let i = 0; i < levels; i++) {
        oid = await put('tree', encodeTree([{ mode, name: '0'.repeat(16), oid }]));
        mode = TreeModes.TREE;
      }
      return oid;
    };
    const ok = new ChunkedFileReader(mem, await chain(MAX_CHUNK_TREE_DEPTH + 1), 100);
    assert.deepEqual(await ok.read(0, 100), Buffer.alloc(100, 7));
    const deep = new ChunkedFileReader(mem, await chain(MAX_CHUNK_TREE_DEPTH + 2), 100);
    await assert.rejects(deep.read(0, 100), (e: unknown) => isGitfsError(e, 'GITFS_HOSTILE_OBJECT'));
    await assert.rejects(async () => {
      for await (const _ of deep.stream()) void _;
    }, (e: unknown) => isGitfsError(e, 'GITFS_HOSTILE_OBJECT'));
  });

  it('refuses a node named twice with two spans (its last chunk as long as the first span, not the second): no short or unfilled read', async () => {
    const mem = new MemoryStore();
    const name = (offset: number): string => offset.toString(16).padStart(16, '0');
    const put = (type: 'blob' | 'tree', content: Buffer): Promise<Oid> => mem.writeHashed(hashObject(type, content), type, content);
    const c1 = await put('blob', pseudoRandomBytes(2000, 'c1'));
    const c2 = await put('blob', pseudoRandomBytes(2000, 'c2'));
    const x = await put('tree', encodeTree([{ mode: TreeModes.FILE, name: name(0), oid: c1 }]));
    // X at 0 spans 2 000 bytes, as it holds; X again at 2 000 is given 3 000.
    const root = await put('tree', encodeTree([{ mode: TreeModes.TREE, name: name(0), oid: x }, { mode: TreeModes.TREE, name: name(2000), oid: x }, { mode: TreeModes.FILE, name: name(5000), oid: c2 }]));
    await assert.rejects(new ChunkedFileReader(mem, root, 7000).read(0, 7000), (e: unknown) => isGitfsError(e, 'GITFS_HOSTILE_OBJECT'));
    // The same through packs, as the mount reads: the fast path gives up (undefined) rather than bytes it never filled.
    const repo = await Repository.init(join(tempDir('chunk-tree'), 'repo'));
    try {
      const writer = await repo.newPackWriter();
      for (const [oid, o] of mem.objects) await writer.writeHashed(oid as Oid, o.type, o.content);
      await writer.finish();
      assert.equal(await repo.objects.readChunkedRange(root, 7000, 0, 7000), undefined);
    } finally {
      await repo.close();
    }
  });
});

const GOLDEN_ROOT = 'eb4b957ef662704a4cc94a4f54d91faaffdebcb7';
