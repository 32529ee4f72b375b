import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nodeSpans } from '../../src/objects/chunk-tree.js';
import { OID_BYTES, oidFromBytes, type Oid } from '../../src/objects/oid.js';
import { chunkNodeEntries, isChunkNode, parseRawChunkNode, type RawChunkNode } from '../../src/objects/raw-chunk-node.js';
import { isGitfsError } from '../../src/errors.js';
import { decodeTree, encodeTree, TreeModes, type TreeEntry } from '../../src/objects/tree.js';

/** A node's entries the raw way, as the general parser would give them. */
function spansOf(node: RawChunkNode): Array<{ oid: Oid; isTree: boolean; start: number; size: number }> {
  return Array.from(node.starts, (start, i) => ({
    oid: oidFromBytes(node.content, node.idAt[i] as number),
    isTree: node.trees[i] === 1,
    start,
    size: node.sizes[i] as number,
  }));
}

function entry(mode: string, name: string, id: number): Buffer {
  const oid = Buffer.alloc(OID_BYTES, id);
  return Buffer.concat([Buffer.from(`${mode} ${name}\0`, 'latin1'), oid]);
}

const name = (offset: number): string => offset.toString(16).padStart(16, '0');

describe('chunk-tree nodes parsed without strings (raw-chunk-node.ts)', () => {
  it('agrees with decodeTree and nodeSpans on every well-formed node', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 1 << 30 }), { maxLength: 40 }), fc.array(fc.boolean(), { minLength: 41, maxLength: 41 }), fc.integer({ min: 1, max: 1000 }), (offsets, trees, tail) => {
        const starts = [0, ...offsets.sort((a, b) => a - b)];
        const size = (starts[starts.length - 1] as number) + tail;
        const content = Buffer.concat(starts.map((s, i) => entry(trees[i] === true ? '40000' : '100644', name(s), i)));
        const raw = parseRawChunkNode(content, size);
        assert.ok(raw !== undefined);
        assert.deepEqual(spansOf(raw), nodeSpans(decodeTree(content), size, 'f'.repeat(40) as Oid));
      }),
    );
  });

  it('tells a chunk node by its shape alone (the swarm stores those uncompressed)', () => {
    assert.ok(isChunkNode(Buffer.concat([entry('100644', name(0), 1), entry('40000', name(8192), 2)])));
    assert.ok(!isChunkNode(Buffer.concat([entry('100644', 'README', 1), entry('40000', 'src', 2)])));
    assert.ok(!isChunkNode(Buffer.concat([entry('100644', name(8192), 1)])), 'a node starts at offset 0');
    assert.ok(!isChunkNode(Buffer.alloc(0)), 'the empty tree is no node of a file');
  });

  it('decodeTree reads a chunk node (its fast path) exactly as encodeTree wrote it, and other shapes the general way', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 1 << 30 }), { maxLength: 40 }), fc.array(fc.boolean(), { minLength: 41, maxLength: 41 }), (offsets, trees) => {
        const entries: TreeEntry[] = [0, ...offsets.sort((a, b) => a - b)].map((s, i) => ({
          mode: trees[i] === true ? TreeModes.TREE : TreeModes.FILE,
          name: name(s),
          oid: oidFromBytes(Buffer.alloc(OID_BYTES, i)),
        }));
        const content = encodeTree(entries);
        assert.ok(chunkNodeEntries(content) !== undefined, 'read by the fast path');
        assert.deepEqual(decodeTree(content), entries);
      }),
    );
    // Not a chunk node's shape: read, or refused, the general way.
    const upper = Buffer.concat([entry('100644', name(0), 1), entry('100644', name(0xab).toUpperCase(), 2)]);
    assert.deepEqual(decodeTree(upper).map((e) => e.name), [name(0), name(0xab).toUpperCase()]);
    const unsorted = Buffer.concat([entry('100644', name(0), 1), entry('100644', name(50), 2), entry('100644', name(40), 3)]);
    assert.throws(() => decodeTree(unsorted), (e: unknown) => isGitfsError(e, 'GITFS_HOSTILE_OBJECT') && /not sorted/.test((e as Error).message));
    const repeated = Buffer.concat([entry('100644', name(0), 1), entry('40000', name(0), 2)]);
    assert.throws(() => decodeTree(repeated), (e: unknown) => isGitfsError(e, 'GITFS_HOSTILE_OBJECT'));
  });

  it('reads an empty node only for an empty file', () => {
    assert.equal(parseRawChunkNode(Buffer.alloc(0), 0)?.starts.length, 0);
    assert.equal(parseRawChunkNode(Buffer.alloc(0), 5), undefined);
  });

  it('refuses what the general parser refuses, so that the general way names it', () => {
    const good = (): Buffer[] => [entry('100644', name(0), 1), entry('100644', name(40), 2)];
    const cases: Record<string, [Buffer, number]> = {
      'first offset not 0': [Buffer.concat([entry('100644', name(1), 1)]), 10],
      'offsets not increasing': [Buffer.concat([entry('100644', name(0), 1), entry('100644', name(50), 2), entry('100644', name(40), 3)]), 100],
      'a repeated offset': [Buffer.concat([entry('100644', name(0), 1), entry('100644', name(0), 2)]), 100],
      'an offset at the node size': [Buffer.concat([...good(), entry('100644', name(100), 3)]), 100],
      'uppercase hex': [Buffer.concat([entry('100644', name(0), 1), entry('100644', name(0xab).toUpperCase(), 2)]), 1000],
      'a short name': [Buffer.concat([entry('100644', name(0), 1), entry('100644', 'ab', 2)]), 1000],
      'an executable chunk': [Buffer.concat([entry('100755', name(0), 1)]), 10],
      'a symlink entry': [Buffer.concat([entry('120000', name(0), 1)]), 10],
      'a truncated id': [Buffer.concat(good()).subarray(0, -1), 100],
      'no NUL after the name': [Buffer.from(`100644 ${name(0)}x${'a'.repeat(20)}`, 'latin1'), 10],
    };
    for (const [why, [content, size]] of Object.entries(cases)) assert.equal(parseRawChunkNode(content, size), undefined, why);
    assert.ok(parseRawChunkNode(Buffer.concat(good()), 100) !== undefined);
  });
});
