import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import type { GitObject } from '../../src/objects/object-store.js';
import { decodeCommit, encodeCommit } from '../../src/objects/commit.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import { encodeTree, TreeModes, type TreeEntry } from '../../src/objects/tree.js';
import { PIECE_OBJECTS, pieceOids, walkClosure, type ObjectSource } from '../../src/swarm/closure.js';
import { TreeCache } from '../../src/swarm/tree-cache.js';
import type { TreeLinks } from '../../src/swarm/tree-links.js';
import { suiteDirs } from '../support/tmp.js';

describe('swarm/closure', () => {
  const dirs = suiteDirs();
  let repo: Repository;
  const heads: Oid[] = [];
  const main = parseBranchName('main');

  before(async () => {
    const { repo: path, src } = dirs.place();
    repo = await Repository.init(path);
    writeFileSync(join(src, 'a.txt'), 'a\n');
    mkdirSync(join(src, 'd'));
    writeFileSync(join(src, 'd', 'b.txt'), 'b\n');
    writeFileSync(join(src, 'big.img'), randomBytes(3 << 20));
    heads.push((await commitDirectory(repo, main, src, { message: 'one' })).commit as Oid);
    writeFileSync(join(src, 'a.txt'), 'a, again\n');
    heads.push((await commitDirectory(repo, main, src, { message: 'two' })).commit as Oid);
    writeFileSync(join(src, 'c.txt'), 'c\n');
    heads.push((await commitDirectory(repo, main, src, { message: 'three' })).commit as Oid);
  });
  after(() => repo.close());

  it('lists every blob once, in the same order every time, cut into pieces of 128', async () => {
    const head = heads[2] as Oid;
    const a = await walkClosure(repo.objects, head, 0);
    const b = await walkClosure(repo.objects, head, 0);
    assert.deepEqual(a, b);
    assert.equal(new Set(a.blobs).size, a.blobs.length);
    assert.deepEqual(a.commits, [heads[2], heads[1], heads[0]]);
    assert.deepEqual(a.boundary, []);
    // 3 MiB of random data in chunks of 2-64 KiB (about 10 KiB on average: ~300): hundreds of chunk blobs, several pieces.
    assert.ok(a.blobs.length > 200 && a.pieces >= 2, `${a.blobs.length} blobs`);
    assert.equal(a.pieces, Math.ceil(a.blobs.length / PIECE_OBJECTS));
    assert.deepEqual(Array.from({ length: a.pieces }, (_, i) => pieceOids(a, i)).flat(), a.blobs);
    for (const oid of a.blobs) assert.equal((await repo.objects.read(oid)).type, 'blob');
    for (const oid of a.trees) assert.equal((await repo.objects.read(oid)).type, 'tree');
  });

  it('stops at the history limit and names the boundary commits', async () => {
    const one = await walkClosure(repo.objects, heads[2] as Oid, 1);
    assert.deepEqual(one.commits, [heads[2]]);
    assert.deepEqual(one.boundary, [heads[2]]);
    const two = await walkClosure(repo.objects, heads[2] as Oid, 2);
    assert.deepEqual(two.commits, [heads[2], heads[1]]);
    assert.deepEqual(two.boundary, [heads[1]]);
    const all = await walkClosure(repo.objects, heads[2] as Oid, 0);
    // The first commit's a.txt is only in the full history.
    assert.ok(all.blobs.length > two.blobs.length);
    assert.deepEqual(all.blobs.slice(0, one.blobs.length), [...one.blobs]);
  });

  it('asks for missing commits and trees once per level (the level named with them), and never for blobs', async () => {
    const head = heads[2] as Oid;
    const full = await walkClosure(repo.objects, head, 0);
    const present = new Set<Oid>();
    const asked: Oid[][] = [];
    const source: ObjectSource = {
      absent: async (oids) => oids.filter((oid) => !present.has(oid)),
      read: async (oid): Promise<GitObject> => {
        assert.ok(present.has(oid), `read of ${oid} before it was fetched`);
        return repo.objects.read(oid);
      },
    };
    const levels: { kind: string; objects: number; fetched: number }[] = [];
    const fetched = await walkClosure(source, head, 0, {
      fetchMeta: async (oids, level) => {
        assert.ok(oids.every((o) => level.includes(o)), 'what is asked for is of the level named');
        asked.push([...oids]);
        for (const o of oids) present.add(o);
      },
      onLevel: (level) => levels.push(level),
    });
    assert.deepEqual(fetched, full);
    const metadata = new Set([...full.commits, ...full.trees]);
    assert.equal(asked.flat().length, metadata.size, 'each commit and tree asked for once');
    for (const o of asked.flat()) assert.ok(metadata.has(o));
    assert.equal(asked.length, levels.length, `one call per level: ${asked.length} calls for ${levels.length} levels`);
    assert.ok(asked.length < metadata.size, `batched: ${asked.length} calls for ${metadata.size} objects`);
    assert.equal(levels.reduce((n, l) => n + l.fetched, 0), metadata.size, 'each level tells what it fetched');
    assert.deepEqual(levels.map((l) => l.objects), levels.map((l) => l.fetched));
    assert.equal(levels[0]?.kind, 'commits');
  });

  it('with a tree cache, reads each tree once over many walks, and lists the same closure', async () => {
    const reads: Oid[] = [];
    const source: ObjectSource = {
      absent: (oids) => repo.objects.absent(oids),
      read: (oid) => {
        reads.push(oid);
        return repo.objects.read(oid);
      },
    };
    const cache = new TreeCache();
    const first = await walkClosure(source, heads[1] as Oid, 0, { trees: cache });
    assert.deepEqual(first, await walkClosure(repo.objects, heads[1] as Oid, 0));
    const treesRead = (): number => reads.filter((o) => first.trees.includes(o)).length;
    assert.equal(treesRead(), first.trees.length);
    reads.length = 0;
    assert.deepEqual(await walkClosure(source, heads[1] as Oid, 0, { trees: cache }), first);
    assert.equal(treesRead(), 0, 'a second walk reads no tree');
    // A later commit: only the trees it does not share are read.
    reads.length = 0;
    const later = await walkClosure(source, heads[2] as Oid, 0, { trees: cache });
    assert.deepEqual(later, await walkClosure(repo.objects, heads[2] as Oid, 0));
    assert.deepEqual(new Set(reads.filter((o) => later.trees.includes(o))), new Set(later.trees.filter((t) => !first.trees.includes(t))));
  });

  it('gives the event loop a turn while it decodes a wide level of trees held in memory', async () => {
    // A commit whose root holds 1 000 subtrees of one blob each, every object in memory: each read
    // resolves at once, so without turns the walk would run to its end holding off all I/O.
    const objects = new Map<Oid, GitObject>();
    const put = (type: GitObject['type'], content: Buffer): Oid => {
      const oid = hashObject(type, content);
      objects.set(oid, { type, content });
      return oid;
    };
    const subtrees: TreeEntry[] = Array.from({ length: 1000 }, (_, i) => {
      const blob = put('blob', Buffer.from(`${i}\n`));
      return { mode: TreeModes.TREE, name: `d${String(i).padStart(4, '0')}`, oid: put('tree', encodeTree([{ mode: TreeModes.FILE, name: 'f', oid: blob }])) };
    });
    const template = decodeCommit((await repo.objects.read(heads[0] as Oid)).content);
    const commit = put('commit', encodeCommit({ ...template, tree: put('tree', encodeTree(subtrees)), parents: [] }));
    const source: ObjectSource = {
      absent: async (oids) => oids.filter((oid) => !objects.has(oid)),
      read: async (oid) => objects.get(oid) as GitObject,
    };
    let turns = 0;
    let walking = true;
    const count = (): void => {
      turns++;
      if (walking) setImmediate(count);
    };
    setImmediate(count);
    const closure = await walkClosure(source, commit, 0);
    walking = false;
    assert.equal(closure.blobs.length, 1000);
    assert.equal(closure.trees.length, 1001);
    // 1 000 trees decoded in slices of 256, and one turn before the blob order.
    assert.ok(turns >= 4, `the event loop turned ${turns} times during the walk`);
  });

  it('walks trees as deep as git allows (4 096), a blob at each level, in depth-first entry order', async () => {
    const objects = new Map<Oid, GitObject>();
    const put = (type: GitObject['type'], content: Buffer): Oid => {
      const oid = hashObject(type, content);
      objects.set(oid, { type, content });
      return oid;
    };
    // Level i holds its own blob `a` and the next level `d` (a < d: the blob comes first).
    const DEPTH = 4096;
    const levelBlobs: Oid[] = [];
    let inner: Oid | undefined;
    for (let i = DEPTH - 1; i >= 0; i--) {
      const blob = put('blob', Buffer.from(`level ${i}\n`));
      levelBlobs.unshift(blob);
      const entries: TreeEntry[] = [{ mode: TreeModes.FILE, name: 'a', oid: blob }];
      if (inner !== undefined) entries.push({ mode: TreeModes.TREE, name: 'd', oid: inner });
      inner = put('tree', encodeTree(entries));
    }
    const template = decodeCommit((await repo.objects.read(heads[0] as Oid)).content);
    const commit = put('commit', encodeCommit({ ...template, tree: inner as Oid, parents: [] }));
    const source: ObjectSource = {
      absent: async (oids) => oids.filter((oid) => !objects.has(oid)),
      read: async (oid) => objects.get(oid) as GitObject,
    };
    const closure = await walkClosure(source, commit, 0);
    assert.equal(closure.trees.length, DEPTH);
    assert.deepEqual(closure.blobs, levelBlobs);
  });

  it('a tree cache keeps the most recently used trees within its budget of entries', () => {
    const tree = (n: number, size: number): TreeLinks => ({ oids: Array.from({ length: size }, (_, i) => (n * 100 + i).toString(16).padStart(40, '0') as Oid), kinds: new Uint8Array(size) });
    const id = (n: number): Oid => n.toString(16).padStart(40, 'f') as Oid;
    const cache = new TreeCache(10);
    cache.set(id(1), tree(1, 4));
    cache.set(id(2), tree(2, 4));
    assert.ok(cache.get(id(1)) !== undefined, 'used: now the most recent');
    cache.set(id(3), tree(3, 4));
    assert.equal(cache.get(id(2)), undefined, 'the least recently used went');
    assert.equal(cache.get(id(1))?.oids.length, 4);
    assert.equal(cache.get(id(3))?.oids.length, 4);
    cache.set(id(4), tree(4, 11));
    assert.equal(cache.get(id(4)), undefined, 'a tree over the whole budget is not kept');
    assert.equal(cache.size, 2);
  });

  it('with a base, lists what the commit adds to the base\'s tree: with the base\'s closure, the whole; no boundary where the base is the only parent', async () => {
    const [first, parent, head] = heads as [Oid, Oid, Oid];
    const step = await walkClosure(repo.objects, head, 1, { base: parent });
    assert.equal(step.base, parent);
    assert.deepEqual(step.commits, [head]);
    assert.deepEqual(step.boundary, []);
    // c.txt and the root tree naming it; a.txt, d/ and big.img's chunks are the parent's.
    assert.equal(step.blobs.length, 1);
    assert.deepEqual(step.trees, [decodeCommit((await repo.objects.read(head)).content).tree]);
    const whole = await walkClosure(repo.objects, head, 0);
    const parents = await walkClosure(repo.objects, parent, 0);
    assert.deepEqual(new Set([...parents.blobs, ...step.blobs]), new Set(whole.blobs));
    assert.deepEqual(new Set([...parents.trees, ...step.trees]), new Set(whole.trees));
    assert.deepEqual(await walkClosure(repo.objects, head, 1, { base: parent, trees: new TreeCache() }), step, 'the same list, through a cache');
    // A base further back leaves out less, and the commit's parent is outside: a boundary.
    const further = await walkClosure(repo.objects, head, 1, { base: first });
    assert.equal(further.blobs.length, 2, 'c.txt and the second a.txt');
    assert.deepEqual(further.boundary, [head]);
    // A base that is not here fails the walk before any tree is fetched (the commit's tree is missing here).
    const absent = hashObject('commit', randomBytes(32));
    const root = decodeCommit((await repo.objects.read(head)).content).tree;
    const source: ObjectSource = { absent: async (oids) => oids.filter((oid) => oid === root), read: (oid) => repo.objects.read(oid) };
    const asked: Oid[] = [];
    const walk = walkClosure(source, head, 1, { base: absent, fetchMeta: async (oids) => void asked.push(...oids) });
    await assert.rejects(walk, (e: unknown) => isGitfsError(e, ErrorCodes.OBJECT_NOT_FOUND));
    assert.deepEqual(asked, []);
  });

  it('with a base further back, the walk of commits stops at the base: it lists what the commits between add, as deep as the history asks', async () => {
    const [first, parent, head] = heads as [Oid, Oid, Oid];
    const [whole, firsts] = [await walkClosure(repo.objects, head, 0), await walkClosure(repo.objects, first, 0)];
    for (const history of [0, 2, 5]) {
      const line = await walkClosure(repo.objects, head, history, { base: first });
      assert.deepEqual(line.commits, [head, parent], `history ${history}`);
      assert.deepEqual(line.boundary, [], 'the base, whole here, is no boundary');
      // c.txt and the second a.txt, under the two new root trees.
      assert.equal(line.blobs.length, 2);
      assert.equal(line.trees.length, 2);
      assert.deepEqual(new Set([...firsts.blobs, ...line.blobs]), new Set(whole.blobs));
      assert.deepEqual(new Set([...firsts.trees, ...line.trees]), new Set(whole.trees));
    }
    // The parent as base, whatever the history: the commit alone.
    const step = await walkClosure(repo.objects, head, 1, { base: parent });
    for (const history of [0, 3]) assert.deepEqual({ ...(await walkClosure(repo.objects, head, history, { base: parent })), history: 1 }, step);
  });

  it('a tree cache lists a base once for the walks by it, at once or after, and again once another base was asked for or its listing failed', async () => {
    const cache = new TreeCache();
    let computed = 0;
    const listing = (ids: readonly string[]) => async (): Promise<ReadonlySet<Oid>> => (computed++, new Set(ids as Oid[]));
    const [a, b] = heads as [Oid, Oid];
    const together = await Promise.all([cache.reach(a, listing(['x'])), cache.reach(a, listing(['y']))]);
    assert.equal(together[0], together[1]);
    assert.deepEqual([...(await cache.reach(a, listing(['z'])))], ['x']);
    assert.equal(computed, 1);
    await cache.reach(b, listing(['w']));
    assert.deepEqual([...(await cache.reach(a, listing(['v'])))], ['v'], 'listed again after another base');
    await assert.rejects(cache.reach(b, async () => Promise.reject(new Error('not here'))));
    assert.deepEqual([...(await cache.reach(b, listing(['u'])))], ['u'], 'a failed listing is not kept');
    assert.equal(computed, 4);
  });

  it('without a fetcher, a missing tree is GITFS_OBJECT_NOT_FOUND', async () => {
    const head = heads[2] as Oid;
    const source: ObjectSource = { absent: async (oids) => oids.filter((oid) => oid !== head), read: (oid) => repo.objects.read(oid) };
    await assert.rejects(walkClosure(source, head, 0), (e: unknown) => isGitfsError(e, ErrorCodes.OBJECT_NOT_FOUND));
  });

  it('leaves a submodule (gitlink) alone: its commit, another repository\'s and absent here, is neither walked nor listed', async () => {
    const other = hashObject('commit', Buffer.from('a commit of another repository\n'));
    const blob = hashObject('blob', Buffer.from('x\n'));
    const objects = new Map<Oid, GitObject>([[blob, { type: 'blob', content: Buffer.from('x\n') }]]);
    const put = (type: 'tree' | 'commit', content: Buffer): Oid => {
      const oid = hashObject(type, content);
      objects.set(oid, { type, content });
      return oid;
    };
    const tree = put('tree', encodeTree([{ mode: TreeModes.GITLINK, name: 'lib', oid: other }, { mode: TreeModes.FILE, name: 'x', oid: blob }]));
    const who = { name: 'T', email: 't@example.com', timestamp: 1, tzOffsetMinutes: 0 };
    const commit = put('commit', encodeCommit({ tree, parents: [], author: who, committer: who, extraHeaders: [], message: 'with a submodule\n' }));
    const source: ObjectSource = {
      absent: async (oids) => oids.filter((oid) => !objects.has(oid)),
      read: async (oid) => objects.get(oid) ?? assert.fail(`${oid} read`),
    };
    const closure = await walkClosure(source, commit, 0);
    assert.deepEqual([closure.commits, closure.trees, closure.blobs], [[commit], [tree], [blob]]);
  });
});
