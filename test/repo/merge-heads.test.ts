/**
 * Merging two heads written apart: every change of both sides lands, a file both changed stays
 * twice (the older side's version set aside by name), the commit is the same whichever side
 * merges, and git reads the result (`git fsck --strict`, `git merge-base`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { BranchName } from '../../src/branches/ref-name.js';
import { freeName } from '../../src/files/merge-trees.js';
import { listDirectory, lookupPath, readCommit, rootEntry } from '../../src/files/tree-reader.js';
import { encodeCommit } from '../../src/objects/commit.js';
import { mergeBase } from '../../src/objects/commit-ancestry.js';
import type { Oid } from '../../src/objects/oid.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { MERGE_BASE_LIMIT, planMerge, writeMerge, type MergePlan } from '../../src/repo/merge-heads.js';
import { Repository } from '../../src/repo/repository.js';
import { gossip } from '../support/hand-over.js';
import { tempDirs } from '../support/tmp.js';

describe('repo/merge-heads', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());
  let seconds = 1_700_000_000;
  const clock = { now: () => seconds * 1000 };

  /** Writes `files` (path → content; the paths in `executable` mode 0755) as the whole of `dir`. */
  function tree(dir: string, files: Record<string, string | Buffer>, executable: readonly string[]): string {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), content, { mode: executable.includes(path) ? 0o755 : 0o644 });
    }
    return dir;
  }

  async function commit(repo: Repository, branch: string, dir: string, files: Record<string, string | Buffer>, executable: readonly string[] = []): Promise<Oid> {
    seconds += 10;
    const made = await commitDirectory(repo, branch as BranchName, tree(dir, files, executable), { message: branch });
    assert.ok(made.commit);
    return made.commit;
  }

  const git = (repo: Repository, ...args: string[]): string => execFileSync('git', ['--git-dir', repo.gitDir, ...args], { encoding: 'utf8' }).trim();
  const blobId = (text: string): string => execFileSync('git', ['hash-object', '--stdin'], { input: text, encoding: 'utf8' }).trim();
  const move = (repo: Repository, branch: string, expected: Oid | null, next: Oid): Promise<void> => repo.refs.update(branch as BranchName, { expected, next, message: 'test' }).then(() => undefined);

  /** The merge of x and y as planned, or, `asBefore`, of the two heads as they are: as a gitfs before joins wrote it (nodes of two versions meet in a rolling upgrade). */
  async function mergeOf(repo: Repository, x: Oid, y: Oid, asBefore = false): Promise<Oid> {
    const plan = await planMerge(repo, x, y);
    assert.ok(typeof plan === 'object' && !('keep' in plan), `not merged: ${JSON.stringify(plan)}`);
    return (await writeMerge(repo, asBefore ? { ...plan, join: undefined } : plan)).commit;
  }

  /**
   * The merge of two heads as they are, whatever their own commits hold: what a gitfs before `Kept`
   * wrote for two merges of the same writes (nodes of two versions meet in a rolling upgrade).
   */
  async function mergedAnyway(repo: Repository, x: Oid, y: Oid): Promise<Oid> {
    const [cx, cy] = [await readCommit(repo.objects, x), await readCommit(repo.objects, y)];
    const xNewer = cx.committer.timestamp > cy.committer.timestamp || (cx.committer.timestamp === cy.committer.timestamp && x > y);
    const [newer, older] = xNewer ? [{ oid: x, c: cx }, { oid: y, c: cy }] : [{ oid: y, c: cy }, { oid: x, c: cx }];
    const found = await mergeBase(async (oid) => ((await repo.objects.has(oid)) ? (await repo.objects.read(oid)).content : undefined), x, y, MERGE_BASE_LIMIT);
    if (typeof found === 'string') assert.fail(`no base: ${found}`);
    const { base } = found;
    const trees = { newer: newer.c.tree, older: older.c.tree, base: (await readCommit(repo.objects, base)).tree };
    return (await writeMerge(repo, { newer: newer.oid, older: older.oid, base, trees, newerTime: newer.c.committer.timestamp, join: undefined })).commit;
  }

  /** git's plumbing on `repo`: `gitIn` runs git (dated `at`, in seconds), `tree` writes a tree of entries (name → text, or [mode, text]), `commitOf` a commit. */
  function plumbing(repo: Repository): { gitIn: (args: string[], input?: string, at?: number) => string; tree: (entries: Record<string, string | [string, string]>) => string; commitOf: (tree: string, parents: string[], at: number) => Oid } {
    const env = { ...process.env, GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@example.invalid', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@example.invalid' };
    const gitIn = (args: string[], input?: string, at?: number): string =>
      execFileSync('git', ['--git-dir', repo.gitDir, ...args], { input, encoding: 'utf8', env: at === undefined ? env : { ...env, GIT_COMMITTER_DATE: `@${at} +0000`, GIT_AUTHOR_DATE: `@${at} +0000` } }).trim();
    const blob = (text: string): string => gitIn(['hash-object', '-w', '--stdin'], text);
    const tree = (entries: Record<string, string | [string, string]>): string =>
      gitIn(['mktree'], Object.entries(entries).map(([name, v]) => (typeof v === 'string' ? `100644 blob ${blob(v)}\t${name}` : `${v[0]} blob ${blob(v[1])}\t${name}`)).join('\n') + '\n');
    const commitOf = (t: string, parents: string[], at: number): Oid => gitIn(['commit-tree', t, ...parents.flatMap((p) => ['-p', p]), '-m', 'c'], undefined, at) as Oid;
    return { gitIn, tree, commitOf };
  }

  /** Three writers within one second on branches a, b and c from one base: f.txt their letter, and a file of their own each. */
  async function threeInOneSecond(repo: Repository, src: string): Promise<[Oid, Oid, Oid]> {
    const base = await commit(repo, 'a', src, { 'f.txt': '0' });
    for (const branch of ['b', 'c']) await move(repo, branch, null, base);
    const heads: Oid[] = [];
    for (const [i, w] of ['a', 'b', 'c'].entries()) {
      if (i > 0) seconds -= 10;
      heads.push(await commit(repo, w, src, { 'f.txt': w.toUpperCase(), [`${w}.txt`]: w }));
    }
    return heads as [Oid, Oid, Oid];
  }

  /** The merges of three heads that three nodes make, each merging two first, then the third (`asBefore`: mergeOf). */
  async function inThreeOrders(repo: Repository, a: Oid, b: Oid, c: Oid, asBefore = false): Promise<[Oid, Oid, Oid]> {
    const m = (x: Oid, y: Oid): Promise<Oid> => mergeOf(repo, x, y, asBefore);
    return [await m(await m(a, b), c), await m(await m(a, c), b), await m(await m(b, c), a)];
  }

  it('keeps every change of both sides; a file both changed (a chunked one too) stays twice, the newer version under its name; the commit is the same from either side; git fsck --strict passes', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const src = tmp.make();
    const big0 = randomBytes(300 * 1024);
    const base = {
      'same.txt': 's',
      'newer-edits.txt': 'e0',
      'older-edits.txt': 'f0',
      'both.txt': 'b0',
      'older-removes.txt': 'r',
      'edit-vs-remove.txt': 'x0',
      'dir/keep.txt': 'k',
      'big.bin': big0,
    };
    const b = await commit(repo, 'older', src, base);
    await repo.refs.update('newer' as BranchName, { expected: null, next: b, message: 'branch' });
    const bigO = Buffer.concat([big0.subarray(0, 200_000), randomBytes(1000), big0.subarray(200_000)]);
    const bigN = Buffer.concat([randomBytes(1000), big0]);
    const { ['older-removes.txt']: _r, ...olderBase } = base;
    const older = await commit(repo, 'older', src, { ...olderBase, 'older-edits.txt': 'f1', 'both.txt': 'bO', 'edit-vs-remove.txt': 'x1', 'dir/o.txt': 'o', 'big.bin': bigO, 'clash/inside.txt': 'i' });
    const { ['edit-vs-remove.txt']: _x, ...newerBase } = base;
    const newer = await commit(repo, 'newer', src, { ...newerBase, 'newer-edits.txt': 'e1', 'both.txt': 'bN', 'dir/n.txt': 'n', 'big.bin': bigN, clash: 'a file', 'new-only.txt': 'new' });

    const plan = await planMerge(repo, older, newer);
    assert.equal(typeof plan, 'object', `not merged: ${String(plan)}`);
    const p = plan as MergePlan;
    assert.equal(p.newer, newer);
    assert.equal(p.older, older);
    assert.equal(p.base, b);
    assert.equal(git(repo, 'merge-base', older, newer), b, 'git finds the same base');
    const merged = await writeMerge(repo, p);
    const again = await writeMerge(repo, (await planMerge(repo, newer, older)) as MergePlan);
    assert.equal(again.commit, merged.commit, 'the other side writes the very same commit');

    const c = await readCommit(repo.objects, merged.commit);
    assert.deepEqual(c.parents, [newer, older]);
    assert.equal(c.committer.timestamp, seconds + 1, 'dated a second after the newer head');
    // A version set aside is named by its own id (the first 12 hex digits).
    const idOf = async (commitId: Oid, path: string): Promise<string> => (await lookupPath(repo.objects, rootEntry((await readCommit(repo.objects, commitId)).tree), path)).oid.slice(0, 12);
    const [bigId, bothId, clashId] = [await idOf(older, 'big.bin'), await idOf(older, 'both.txt'), await idOf(newer, 'clash')];
    const root = rootEntry(c.tree);
    const text = async (path: string): Promise<string> => git(repo, 'cat-file', 'blob', (await lookupPath(repo.objects, root, path)).oid);
    const names = (await listDirectory(repo.objects, c.tree)).map((e) => e.name).sort();
    assert.deepEqual(names, ['big.bin', `big.conflict-${bigId}.bin`, 'both.txt', `both.conflict-${bothId}.txt`, 'clash', `clash.conflict-${clashId}`, 'dir', 'edit-vs-remove.txt', 'new-only.txt', 'newer-edits.txt', 'older-edits.txt', 'same.txt'].sort());
    assert.equal(await text('both.txt'), 'bN');
    assert.equal(await text(`both.conflict-${bothId}.txt`), 'bO');
    assert.equal(await text('newer-edits.txt'), 'e1');
    assert.equal(await text('older-edits.txt'), 'f1');
    assert.equal(await text('edit-vs-remove.txt'), 'x1', 'an edit outlives a removal');
    assert.equal(await text(`clash.conflict-${clashId}`), 'a file', 'a directory keeps the name against a file');
    assert.equal(await text('clash/inside.txt'), 'i');
    assert.deepEqual((await listDirectory(repo.objects, (await lookupPath(repo.objects, root, 'dir')).oid)).map((e) => e.name).sort(), ['keep.txt', 'n.txt', 'o.txt']);
    const bigOf = async (commitId: Oid, path: string): Promise<{ oid: Oid; size: number | undefined; chunked: boolean }> => {
      const e = await lookupPath(repo.objects, rootEntry((await readCommit(repo.objects, commitId)).tree), path);
      return { oid: e.oid, size: e.size, chunked: e.chunked };
    };
    assert.deepEqual(await bigOf(merged.commit, 'big.bin'), await bigOf(newer, 'big.bin'));
    assert.deepEqual(await bigOf(merged.commit, `big.conflict-${bigId}.bin`), await bigOf(older, 'big.bin'), 'the older chunked file set aside whole');
    assert.deepEqual(merged.setAside, [
      { path: 'big.bin', as: `big.conflict-${bigId}.bin` },
      { path: 'both.txt', as: `both.conflict-${bothId}.txt` },
      { path: 'clash', as: `clash.conflict-${clashId}` },
    ]);
    assert.match(c.message, new RegExp(`both.txt -> both.conflict-${bothId}.txt`));
    await repo.refs.update('newer' as BranchName, { expected: newer, next: merged.commit, message: 'merged' });
    git(repo, 'fsck', '--strict');
    assert.equal(git(repo, 'rev-list', '--count', 'newer'), '4');
    await repo.close();
  });

  it('three writers apart: merged in any order, one commit, every version kept once under the same name (its own id); one that two wrote alike is set aside once', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const src = tmp.make();
    const base = await commit(repo, 'a', src, { 'f.txt': '0', 'd/g.txt': 'g0', 'keep.txt': 'k' });
    for (const branch of ['b', 'c', 'd']) await move(repo, branch, null, base);
    // A writer before them all who wrote what B will.
    const D = await commit(repo, 'd', src, { 'f.txt': 'B', 'd/g.txt': 'g0', 'keep.txt': 'k' });
    // f.txt changed by all three; d/g.txt by a and c; each adds a file of its own.
    const A = await commit(repo, 'a', src, { 'f.txt': 'A', 'd/g.txt': 'gA', 'keep.txt': 'k', 'a.txt': 'a' });
    const B = await commit(repo, 'b', src, { 'f.txt': 'B', 'd/g.txt': 'g0', 'keep.txt': 'k', 'b.txt': 'b' });
    const C = await commit(repo, 'c', src, { 'f.txt': 'C', 'd/g.txt': 'gC', 'keep.txt': 'k', 'c.txt': 'c' });
    const files = (commitId: Oid): string[] => git(repo, 'ls-tree', '-r', '--format=%(path)=%(objectname)', commitId).split('\n');
    const treeOf = async (commitId: Oid): Promise<Oid> => (await readCommit(repo.objects, commitId)).tree;
    // As three nodes would: each merged two first, then the third.
    const orders = await inThreeOrders(repo, A, B, C);
    const [fA, fB, gA] = ['A', 'B', 'gA'].map(blobId) as [string, string, string];
    assert.deepEqual(files(orders[0] as Oid), [
      'a.txt', 'b.txt', 'c.txt', 'd/g.conflict-' + gA.slice(0, 12) + '.txt', 'd/g.txt', 'f.conflict-' + fA.slice(0, 12) + '.txt', 'f.conflict-' + fB.slice(0, 12) + '.txt', 'f.txt', 'keep.txt',
    ].sort().map((path) => `${path}=${git(repo, 'rev-parse', `${orders[0] as Oid}:${path}`)}`), 'the newest (C) keeps the names; A and B beside, each once');
    assert.equal(git(repo, 'cat-file', 'blob', `${orders[0] as Oid}:f.txt`), 'C');
    assert.equal(new Set(orders).size, 1, 'every order writes the same commit');
    // Merged two heads at a time, as a gitfs before joins did: the same tree in every order still.
    for (const other of await inThreeOrders(repo, A, B, C, true)) assert.equal(await treeOf(other), await treeOf(orders[0] as Oid), 'every order makes the same tree');

    // D's f.txt is B's: merged with B and C, it is beside already under its name, and kept once.
    const plan = (await planMerge(repo, await mergeOf(repo, B, C), D)) as MergePlan;
    assert.equal(plan.older, D);
    const withD = await writeMerge(repo, plan);
    const fNames = files(withD.commit).map((l) => l.split('=')[0]).filter((path) => path?.startsWith('f.'));
    assert.deepEqual(fNames, [`f.conflict-${fB.slice(0, 12)}.txt`, 'f.txt']);
    assert.deepEqual(withD.setAside, [{ path: 'f.txt', as: `f.conflict-${fB.slice(0, 12)}.txt` }]);
    git(repo, 'fsck', '--strict');
    await repo.close();
  });

  it('three writers within one second: joined in any order, one commit; merged two heads at a time (a gitfs before joins), other orders leave the name to other versions, every order keeps the same one of those, and merged together all the same they agree, each version once', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const src = tmp.make();
    const [A, B, C] = await threeInOneSecond(repo, src);
    const treeOf = async (commitId: Oid): Promise<Oid> => (await readCommit(repo.objects, commitId)).tree;
    const joined = await inThreeOrders(repo, A, B, C);
    assert.equal(new Set(joined).size, 1, 'joined in any order: one commit');
    // Two heads at a time, a merge is dated a second after its newer head, so it is newer than the
    // third: the greater id of its pair keeps the name.
    const [ab, ac, bc] = await inThreeOrders(repo, A, B, C, true);
    assert.equal(new Set(await Promise.all([ab, ac, bc].map(treeOf))).size, 2, 'two of the orders leave the name to another version');
    const keep = async (x: Oid, y: Oid): Promise<Oid> => {
      const plan = await planMerge(repo, x, y);
      assert.ok(typeof plan === 'object' && 'keep' in plan, `merges of the same writes are kept, not merged: ${JSON.stringify(plan)}`);
      return plan.keep;
    };
    const kept = await keep(await keep(ab, ac), bc);
    assert.equal(await keep(await keep(bc, ab), ac), kept, 'kept alike in any order');
    // Merged all the same (a gitfs before Kept), in any order, they agree.
    const agreed = await treeOf(await mergedAnyway(repo, await mergedAnyway(repo, ab, ac), bc));
    assert.equal(await treeOf(await mergedAnyway(repo, await mergedAnyway(repo, bc, ab), ac)), agreed, 'merged together in any order, they agree');
    for (const tree of [agreed, await treeOf(kept), await treeOf(joined[0])]) {
      const listing = git(repo, 'ls-tree', '-r', '--format=%(path) %(objectname)', tree).split('\n').map((l) => l.split(' ') as [string, string]);
      const versions = listing.filter(([path]) => path.startsWith('f.')).map(([, oid]) => oid);
      assert.deepEqual([...versions].sort(), ['A', 'B', 'C'].map(blobId).sort(), 'f.txt and two copies beside: each version once');
      assert.deepEqual(listing.map(([path]) => path).filter((path) => !path.startsWith('f.')), ['a.txt', 'b.txt', 'c.txt']);
    }
    git(repo, 'fsck', '--strict');
    await repo.close();
  });

  it('eight writers within one second, their heads handed between eight nodes at random (seeded), each node merging what it is handed: all end at one head, each version once', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const src = tmp.make();
    const base = await commit(repo, 'w0', src, { 'f.txt': '0', 'd/g.txt': 'g' });
    const writers = 8;
    const heads: Oid[] = [];
    for (let i = 0; i < writers; i++) {
      if (i > 0) {
        await move(repo, `w${i}`, null, base);
        seconds -= 10;
      }
      heads.push(await commit(repo, `w${i}`, src, { 'f.txt': `v${i}`, 'd/g.txt': i % 2 === 1 ? `g${i}` : 'g', [`own${i}.txt`]: `${i}` }));
    }
    const { nodes, merged } = await gossip(repo, heads, 7, 2000);
    assert.equal(new Set(nodes).size, 1, `still apart after 2000 hand-overs (${merged} merges)`);
    const listing = git(repo, 'ls-tree', '-r', '--format=%(path) %(objectname)', nodes[0] as Oid).split('\n').map((l) => l.split(' ') as [string, string]);
    const versionsOf = (prefix: string): string[] => listing.filter(([path]) => path.startsWith(prefix)).map(([, oid]) => oid).sort();
    assert.deepEqual(versionsOf('f.'), heads.map((_, i) => blobId(`v${i}`)).sort(), 'every writer\'s f.txt, each once');
    assert.deepEqual(versionsOf('d/g.'), [1, 3, 5, 7].map((i) => blobId(`g${i}`)).sort(), 'every version of d/g.txt, each once');
    assert.equal(versionsOf('own').length, writers);
    git(repo, 'fsck', '--strict');
    await repo.close();
  });

  it('joins the writes either head holds (a later write of a writer holds its earlier one), so that the join of the newest writes is an ancestor of the join of all, and is built on; merges the two heads as they are where a write has no commit in common with those before it, or the writes come to one', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const src = tmp.make();
    const base = await commit(repo, 'x', src, { 'f.txt': '0' });
    for (const branch of ['y', 'z']) await move(repo, branch, null, base);
    // Ten seconds apart: x, then y, then z.
    const [x, y, z] = [await commit(repo, 'x', src, { 'f.txt': 'x', 'x.txt': 'x' }), await commit(repo, 'y', src, { 'f.txt': 'y', 'y.txt': 'y' }), await commit(repo, 'z', src, { 'f.txt': 'z', 'z.txt': 'z' })];
    const all = await mergeOf(repo, await mergeOf(repo, x, y), z);
    assert.equal(await mergeOf(repo, z, await mergeOf(repo, y, x)), all, 'the same writes joined in another order: the same commit');
    const isAncestor = (a: Oid, b: Oid): boolean => {
      try {
        git(repo, 'merge-base', '--is-ancestor', a, b);
        return true;
      } catch {
        return false;
      }
    };
    assert.ok(isAncestor(await mergeOf(repo, z, y), all), 'the join of the two newest is on the way to the join of all');
    const xz = await mergeOf(repo, x, z);
    assert.ok(!isAncestor(xz, all));
    assert.deepEqual(await planMerge(repo, xz, all), { keep: all }, 'the join of x and z, met, is kept for the join of all');
    // y written on: y2 holds y, which counts no more.
    const y2 = await commit(repo, 'y', src, { 'f.txt': 'y2', 'y.txt': 'y' });
    const joined = await writeMerge(repo, (await planMerge(repo, all, y2)) as MergePlan);
    assert.deepEqual([joined.joined, joined.merges], [3, 2], 'x, z and y2 joined in two merges');
    assert.equal(joined.commit, await mergeOf(repo, await mergeOf(repo, x, y2), z));
    // A write older than x: the join of all holds the three newest already, and one merge more makes the join of four.
    const { tree, commitOf } = plumbing(repo);
    const early = commitOf(tree({ 'f.txt': 'e', 'e.txt': 'e' }), [base], Number(git(repo, 'log', '-1', '--format=%ct', x)) - 5);
    const four = await writeMerge(repo, (await planMerge(repo, all, early)) as MergePlan);
    assert.deepEqual([four.joined, four.merges], [4, 1]);
    assert.equal(four.commit, await mergeOf(repo, await mergeOf(repo, early, x), await mergeOf(repo, y, z)), 'the same commit from other heads');
    git(repo, 'fsck', '--strict');

    // Two histories: x2 on one, z2 on the other, and y2 a merge of both written by a user (a write).
    const t = seconds + 100;
    const [r1, r2] = [commitOf(tree({ 'a.txt': '1' }), [], t), commitOf(tree({ 'b.txt': '2' }), [], t)];
    const userMerge = commitOf(tree({ 'a.txt': '1', 'b.txt': '2', 'u.txt': 'u' }), [r1, r2], t + 1);
    const x2 = commitOf(tree({ 'a.txt': 'x' }), [r1], t + 2);
    const z2 = commitOf(tree({ 'b.txt': 'z' }), [r2], t + 5);
    const side = await mergeOf(repo, x2, userMerge);
    const plan = (await planMerge(repo, side, z2)) as MergePlan;
    assert.deepEqual([plan.join?.writes, plan.newer, plan.older, plan.base], [[z2, x2, userMerge], z2, side, r2]);
    // Newest first, z2 then x2: no commit in common.
    const pair = await writeMerge(repo, plan);
    assert.deepEqual([pair.joined, pair.merges], [undefined, 1]);
    assert.equal(git(repo, 'rev-list', '--parents', '-n', '1', pair.commit), `${pair.commit} ${z2} ${side}`);

    // A user's merge of w and r, on a clock far behind, against gitfs's merge of them: the walk
    // takes commits both hold for the user's own, so neither is kept; its writes come to the
    // user's merge alone, and the two heads are merged as they are.
    const r0 = commitOf(tree({ 'f.txt': '0' }), [], t);
    let lineTip = r0;
    for (let i = 0; i < 5; i++) lineTip = commitOf(tree({ 'f.txt': `q${i}` }), [lineTip], t + 100 + i);
    const w = commitOf(tree({ 'f.txt': 'w', 'w.txt': 'w' }), [lineTip], t + 200);
    const r = commitOf(tree({ 'f.txt': 'q4', 'r.txt': 'r' }), [r0], t + 150);
    const ours = await mergeOf(repo, w, r);
    const users = commitOf(tree({ 'f.txt': 'w', 'w.txt': 'w', 'r.txt': 'r', 'u.txt': 'u' }), [w, r], t + 10);
    const skewed = (await planMerge(repo, users, ours)) as MergePlan;
    assert.equal(skewed.join, undefined, 'no join of one write');
    const both = await writeMerge(repo, skewed);
    assert.equal(both.merges, 1);
    assert.deepEqual(git(repo, 'rev-list', '--parents', '-n', '1', both.commit).split(' ').slice(1).sort(), [ours, users].sort());
    git(repo, 'fsck', '--strict');
    await repo.close();
  });

  it('builds on a head\'s chain only where each merge is one a join writes (dated a second after its first parent, naming both), and keeps a head that joins all the writes already, where a clock that ran behind hid it', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const { gitIn, tree, commitOf } = plumbing(repo);
    const ls = (c: Oid): string => gitIn(['ls-tree', '--name-only', c]).split('\n').join(',');
    const t = seconds + 1000;
    const base = commitOf(tree({ 'f.txt': '0' }), [], t);
    const [w0, w1, w2] = [commitOf(tree({ 'f.txt': '0', 'a.txt': 'a' }), [base], t + 30), commitOf(tree({ 'f.txt': '0', 'b.txt': 'b' }), [base], t + 20), commitOf(tree({ 'f.txt': '0', 'c.txt': 'c' }), [base], t + 10)];
    // Titled as gitfs titles a merge of w0 and w1, but not one a join writes (dated otherwise, or
    // its message otherwise), and its tree lacks w0's a.txt: joined again from the writes, not built on.
    const fresh = await mergeOf(repo, w0, await mergeOf(repo, w1, w2));
    const gitfsAt = (at: number): NodeJS.ProcessEnv => ({ ...process.env, GIT_AUTHOR_NAME: 'gitfs merge', GIT_AUTHOR_EMAIL: 'merge@gitfs.invalid', GIT_COMMITTER_NAME: 'gitfs merge', GIT_COMMITTER_EMAIL: 'merge@gitfs.invalid', GIT_AUTHOR_DATE: `@${at} +0000`, GIT_COMMITTER_DATE: `@${at} +0000` });
    const title = `Merge ${w1.slice(0, 12)} into ${w0.slice(0, 12)}\n\nThe branch was written apart from `;
    for (const [at, message] of [[t + 999, `${title}${base}:\n  ${w0} (newer: its versions keep their names)\n  ${w1}\n`], [t + 31, `${title}elsewhere`]] as const) {
      const foreign = execFileSync('git', ['--git-dir', repo.gitDir, 'commit-tree', tree({ 'f.txt': '0', 'b.txt': 'b' }), '-p', w0, '-p', w1, '-m', message], { env: gitfsAt(at), encoding: 'utf8' }).trim() as Oid;
      const fromForeign = await writeMerge(repo, (await planMerge(repo, foreign, w2)) as MergePlan);
      assert.deepEqual([fromForeign.merges, ls(fromForeign.commit)], [2, 'a.txt,b.txt,c.txt,f.txt'], `dated ${at - t}`);
      assert.equal(fromForeign.commit, fresh, 'the join of w0, w1 and w2, as every node writes it');
    }

    // x and y (each a second commit of its writer) joined; z written on their join on a clock far
    // behind; two nodes join the rest in other orders. One of them holds the join of all three
    // writes left (x and y are z's ancestors); the walk, misled by the clock, finds writes of
    // both's own, so it keeps neither; the join is kept.
    const line = (file: string, at: number): Oid => commitOf(tree({ 'f.txt': '0', [file]: 'last' }), [commitOf(tree({ 'f.txt': '0', [file]: 'first' }), [base], at - 1)], at);
    const xy = await mergeOf(repo, line('x.txt', t + 30), line('y.txt', t + 25));
    const [v0, v1] = [commitOf(tree({ 'f.txt': '0', 'a.txt': 'a' }), [base], t + 13), commitOf(tree({ 'f.txt': '0', 'b.txt': 'b' }), [base], t + 12)];
    const z = commitOf(tree({ 'f.txt': '0', 'x.txt': 'last', 'y.txt': 'last', 'z.txt': 'z' }), [xy], t + 5);
    const all = await mergeOf(repo, await mergeOf(repo, v0, v1), z);
    const other = await mergeOf(repo, await mergeOf(repo, xy, v0), v1);
    assert.deepEqual(await planMerge(repo, other, all), { keep: all });
    assert.deepEqual(await planMerge(repo, all, other), { keep: all });
    git(repo, 'fsck', '--strict');
    await repo.close();
  });

  it('names a version set aside by its id and kind (a link, an executable); keeps a copy a side holds on purpose; takes again a name the merge let go', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const { gitIn, tree, commitOf } = plumbing(repo);
    const merged = async (baseTree: Record<string, string | [string, string]>, newerTree: Record<string, string | [string, string]>, olderTree: Record<string, string | [string, string]>): Promise<string[]> => {
      const b = commitOf(tree(baseTree), [], seconds);
      const older = commitOf(tree(olderTree), [b], seconds + 1);
      const newer = commitOf(tree(newerTree), [b], seconds + 2);
      const plan = (await planMerge(repo, newer, older)) as MergePlan;
      assert.equal(plan.newer, newer);
      const { commit: m } = await writeMerge(repo, plan);
      return gitIn(['ls-tree', '-r', '--format=%(objectmode) %(path)=%(objectname)', m]).split('\n');
    };
    const id = (text: string): string => blobId(text).slice(0, 12);

    // The same bytes as a link, as an executable and as a file are three versions, named apart.
    const x = id('X');
    assert.deepEqual(await merged({ 'f.txt': '0' }, { 'f.txt': 'Z' }, { 'f.txt': ['120000', 'X'] }), [`120000 f.conflict-${x}-link.txt=${blobId('X')}`, `100644 f.txt=${blobId('Z')}`]);
    assert.deepEqual(await merged({ 'f.txt': '0' }, { 'f.txt': 'Z' }, { 'f.txt': ['100755', 'X'] }), [`100755 f.conflict-${x}-exec.txt=${blobId('X')}`, `100644 f.txt=${blobId('Z')}`]);
    assert.deepEqual(await merged({ 'f.txt': '0' }, { 'f.txt': 'Z' }, { 'f.txt': 'X' }), [`100644 f.conflict-${x}.txt=${blobId('X')}`, `100644 f.txt=${blobId('Z')}`]);

    // A conflict settled by copying the copy over the name, the copy kept: no merge drops it.
    const settled = { 'f.txt': 'A', [`f.conflict-${id('A')}.txt`]: 'A' };
    assert.deepEqual(
      (await merged(settled, { ...settled, 'p.txt': 'p' }, { ...settled, 'q.txt': 'q' })).map((l) => l.split('=')[0]),
      [`100644 f.conflict-${id('A')}.txt`, '100644 f.txt', '100644 p.txt', '100644 q.txt'],
    );

    // Kept on purpose on one side only, the other side's change elsewhere: it stays.
    const byOne = { 'f.txt': 'A', [`f.conflict-${id('A')}.txt`]: 'A' };
    const names = (lines: string[]): string[] => lines.map((l) => l.split('=')[0] as string);
    assert.deepEqual(names(await merged({ 'f.txt': '0' }, byOne, { 'f.txt': '0', 'q.txt': 'q' })), [`100644 f.conflict-${id('A')}.txt`, '100644 f.txt', '100644 q.txt']);
    assert.deepEqual(names(await merged({ 'f.txt': '0', 'q.txt': 'q' }, { 'f.txt': '0' }, byOne)), [`100644 f.conflict-${id('A')}.txt`, '100644 f.txt']);
    // A copy under that name holding something else (edited on one side while the name changed on the other) stays.
    const copyA = `f.conflict-${id('A')}.txt`;
    assert.deepEqual(await merged({ 'f.txt': '0', [copyA]: 'E0' }, { 'f.txt': 'A', [copyA]: 'E0' }, { 'f.txt': '0', [copyA]: 'E1' }), [`100644 ${copyA}=${blobId('E1')}`, `100644 f.txt=${blobId('A')}`]);

    // The older side moved B to the name and let its copy go; set aside again, B takes that name, once.
    const copyB = `f.conflict-${id('B')}.txt`;
    assert.deepEqual(await merged({ 'f.txt': 'A', [copyB]: 'B' }, { 'f.txt': 'C', [copyB]: 'B' }, { 'f.txt': 'B' }), [`100644 ${copyB}=${blobId('B')}`, `100644 f.txt=${blobId('C')}`]);
    gitIn(['fsck', '--strict']);
    await repo.close();
  });

  it('keeps, with no merge more, one of two heads whose own commits are merges gitfs wrote (the same writes, merged in other orders or by another version): both nodes choose the same', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const src = tmp.make();
    const [A, B, C] = await threeInOneSecond(repo, src);
    const chosen = async (x: Oid, y: Oid): Promise<Oid | undefined> => {
      const kept = async (p: Oid, q: Oid): Promise<Oid | undefined> => {
        const plan = await planMerge(repo, p, q);
        return typeof plan === 'object' && 'keep' in plan ? plan.keep : undefined;
      };
      const keep = await kept(x, y);
      assert.equal(await kept(y, x), keep, 'the same from either side');
      return keep;
    };
    const timeOf = async (c: Oid): Promise<number> => (await readCommit(repo.objects, c)).committer.timestamp;
    const newer = async (x: Oid, y: Oid): Promise<Oid> => ((await timeOf(x)) > (await timeOf(y)) || ((await timeOf(x)) === (await timeOf(y)) && x > y) ? x : y);

    // The three writes merged in two orders (two heads at a time): the newer of the two, then the greater id.
    const [ab, ac] = await inThreeOrders(repo, A, B, C, true);
    assert.equal(await chosen(ab, ac), await newer(ab, ac));
    // Writes of their own on both sides: merged.
    const [mAB, mAC] = [await mergeOf(repo, A, B), await mergeOf(repo, A, C)];
    assert.equal(await chosen(mAB, mAC), undefined);
    // A merge of A and B that another version of gitfs wrote (another tree): the same writes.
    const env = { ...process.env, GIT_AUTHOR_NAME: 'gitfs merge', GIT_AUTHOR_EMAIL: 'merge@gitfs.invalid', GIT_COMMITTER_NAME: 'gitfs merge', GIT_COMMITTER_EMAIL: 'merge@gitfs.invalid', GIT_AUTHOR_DATE: `@${seconds + 1} +0000`, GIT_COMMITTER_DATE: `@${seconds + 1} +0000` };
    const otherTree = git(repo, 'rev-parse', `${B}^{tree}`);
    const gitfsMessage = `Merge ${A.slice(0, 12)} into ${B.slice(0, 12)}\n\nThe branch was written apart from somewhere:\n  (another version)\n`;
    const byOther = execFileSync('git', ['--git-dir', repo.gitDir, 'commit-tree', otherTree, '-p', B, '-p', A, '-m', gitfsMessage], { env, encoding: 'utf8' }).trim() as Oid;
    assert.equal(await chosen(mAB, byOther), await newer(mAB, byOther));
    // The same, but its message written by hand (a merge settled by a user as gitfs): a write of its own, kept.
    const byHand = execFileSync('git', ['--git-dir', repo.gitDir, 'commit-tree', otherTree, '-p', B, '-p', A, '-m', 'settled by hand'], { env, encoding: 'utf8' }).trim() as Oid;
    assert.equal(await chosen(mAB, byHand), byHand);
    // A commit written on one of them holds more than merges: it is kept, from either side.
    await move(repo, 'a', A, mAB);
    const onTop = await commit(repo, 'a', src, { 'f.txt': 'B', 'more.txt': 'm' });
    assert.equal(await chosen(onTop, byOther), onTop);
    // Written as gitfs writes a merge, but with one parent: no merge, a write of its own.
    const single = execFileSync('git', ['--git-dir', repo.gitDir, 'commit-tree', otherTree, '-p', A, '-m', 'not a merge'], { env, encoding: 'utf8' }).trim() as Oid;
    assert.equal(await chosen(single, byOther), undefined, 'a commit with one parent is a write of its own');
    await repo.close();
  });

  it('merges nothing where a side is signed (a release; its history cut here too), claims a time that cannot be followed, or the heads share no commit here; keeps the head that holds the other', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const src = tmp.make();
    const a = await commit(repo, 'a', src, { 'f.txt': 'a' });
    const b = await commit(repo, 'b', src, { 'f.txt': 'b' });
    assert.equal(await planMerge(repo, a, b), 'no-common-commit');
    const aOn = await commit(repo, 'a', src, { 'f.txt': 'a2' });
    const parent = await readCommit(repo.objects, a);
    const writer = await repo.newPackWriter();
    const signedChild = await writer.write('commit', encodeCommit({ ...parent, parents: [a], message: 'release\n', extraHeaders: [['gpgsig', '-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----']] }));
    await writer.finish();
    assert.equal(await planMerge(repo, aOn, signedChild), 'signed');
    assert.equal(await planMerge(repo, signedChild, aOn), 'signed');
    // A head claiming the last second a number holds: its merge could not be dated after it.
    const w2 = await repo.newPackWriter();
    const far = { ...parent.committer, timestamp: Number.MAX_SAFE_INTEGER };
    const farChild = await w2.write('commit', encodeCommit({ ...parent, parents: [a], author: far, committer: far, message: 'far\n' }));
    await w2.finish();
    assert.equal(await planMerge(repo, aOn, farChild), 'bad-time');
    // A release whose history is cut here (a channel keeping `history: K`) is refused as signed, as whole.
    const gone = 'cd'.repeat(20) as Oid;
    const w3 = await repo.newPackWriter();
    const signedCut = await w3.write('commit', encodeCommit({ ...parent, parents: [gone], message: 'release on a cut line\n', extraHeaders: [['gpgsig', '-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----']] }));
    const localCut = await w3.write('commit', encodeCommit({ ...parent, parents: [gone], message: 'local on a cut line\n' }));
    await w3.finish();
    assert.equal(await planMerge(repo, localCut, signedCut), 'signed');
    assert.equal(await planMerge(repo, localCut, farChild), 'bad-time');
    // One head holding the other: the one holding more is kept, from either side.
    assert.deepEqual(await planMerge(repo, a, aOn), { keep: aOn });
    assert.deepEqual(await planMerge(repo, aOn, a), { keep: aOn });
    await repo.close();
  });

  it('merges a content change with a mode change, and a directory one side removed with the other side\'s edits in it: what the other left alone goes', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const src = tmp.make();
    const b = await commit(repo, 'older', src, { 'run.sh': 'echo 0\n', 'd/one.txt': '1', 'd/two.txt': '2', 'e/a.txt': 'a', 'e/b.txt': 'b', 'f/x.txt': 'x' });
    await repo.refs.update('newer' as BranchName, { expected: null, next: b, message: 'branch' });
    // Older: edits run.sh and d/one.txt, removes e/b.txt and f/x.txt. Newer: makes run.sh executable, removes d/ and e/a.txt.
    const older = await commit(repo, 'older', src, { 'run.sh': 'echo 1\n', 'd/one.txt': '1!', 'd/two.txt': '2', 'e/a.txt': 'a', 'f/y.txt': 'y' });
    const newer = await commit(repo, 'newer', src, { 'run.sh': 'echo 0\n', 'e/b.txt': 'b', 'f/x.txt': 'x' }, ['run.sh']);
    const merged = await writeMerge(repo, (await planMerge(repo, older, newer)) as MergePlan);
    assert.deepEqual(merged.setAside, []);
    assert.deepEqual(git(repo, 'ls-tree', '-r', '--format=%(objectmode) %(path)', merged.commit).split('\n'), ['100644 d/one.txt', '100644 e/~gitfs~keep', '100644 f/y.txt', '100755 run.sh']);
    assert.equal(git(repo, 'cat-file', 'blob', `${merged.commit}:run.sh`), 'echo 1');
    assert.equal(git(repo, 'cat-file', 'blob', `${merged.commit}:d/one.txt`), '1!');
    // e/: each side removed one file of two, so it stays, empty (the marker above).
    await repo.close();
  });

  it('takes git\'s merge base where an earlier merge lies between (an edit made since it is no conflict), and none that is not here', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'), { clock });
    const src = tmp.make();
    // B, then Q (adds q.txt) on one line; N edits q.txt from Q, O adds o.txt from B; M merges them.
    const B = await commit(repo, 'q', src, { 'r.txt': 'r' });
    await move(repo, 'o', null, B);
    const Q = await commit(repo, 'q', src, { 'r.txt': 'r', 'q.txt': '1' });
    await move(repo, 'n', null, Q);
    const N = await commit(repo, 'n', src, { 'r.txt': 'r', 'q.txt': '2' });
    const O = await commit(repo, 'o', src, { 'r.txt': 'r', 'o.txt': 'o' });
    const M = (await writeMerge(repo, (await planMerge(repo, N, O)) as MergePlan)).commit;
    // X after M adds x.txt; Y after Q adds y.txt: their base is Q (M's parent N descends from Q), not B.
    await move(repo, 'o', O, M);
    const X = await commit(repo, 'o', src, { 'r.txt': 'r', 'q.txt': '2', 'o.txt': 'o', 'x.txt': 'x' });
    const Y = await commit(repo, 'q', src, { 'r.txt': 'r', 'q.txt': '1', 'y.txt': 'y' });
    const plan = (await planMerge(repo, X, Y)) as MergePlan;
    assert.equal(plan.base, Q);
    assert.equal(git(repo, 'merge-base', X, Y), Q);
    const merged = await writeMerge(repo, plan);
    assert.deepEqual(merged.setAside, [], 'q.txt was edited on one side only since the base');
    assert.equal(git(repo, 'cat-file', 'blob', `${merged.commit}:q.txt`), '2');
    assert.equal(git(repo, 'ls-tree', '--name-only', merged.commit), ['o.txt', 'q.txt', 'r.txt', 'x.txt', 'y.txt'].join('\n'));

    // Two heads whose common parent is not here (history cut, or pruned): nothing to merge against,
    // for all this node can tell (one might even hold the other).
    const at = { name: 'n', email: 'n@example.invalid', timestamp: seconds, tzOffsetMinutes: 0 };
    const gone = 'ab'.repeat(20) as Oid;
    const writer = await repo.newPackWriter();
    const orphan = async (tree: Oid, message: string): Promise<Oid> => writer.write('commit', encodeCommit({ tree, parents: [gone], author: at, committer: at, extraHeaders: [], message }));
    const [left, right] = [await orphan((await readCommit(repo.objects, X)).tree, 'left\n'), await orphan((await readCommit(repo.objects, Y)).tree, 'right\n')];
    await writer.finish();
    assert.equal(await planMerge(repo, left, right), 'history-cut');
    await repo.close();
  });

  it('names a set-aside copy within 255 bytes, its extension kept, and never as a name taken', () => {
    assert.equal(freeName('report.txt', 'abc', new Set()), 'report.conflict-abc.txt');
    assert.equal(freeName('.bashrc', 'abc', new Set()), '.bashrc.conflict-abc');
    const hash = createHash('sha1').update('Makefile').digest('hex').slice(0, 8);
    assert.equal(freeName('Makefile', 'abc', new Set(['Makefile.conflict-abc'])), `Makefile.conflict-abc-${hash}`);
    assert.equal(freeName('Makefile', 'abc', new Set(['Makefile.conflict-abc', `Makefile.conflict-abc-${hash}`])), `Makefile.conflict-abc-${hash}-2`);
    // Long names alike up to where they are cut stay apart by their hash, each found at once.
    const longs = Array.from({ length: 3000 }, (_, i) => `${'x'.repeat(300)}-${i}`);
    let looks = 0;
    const taken = new (class extends Set<string> {
      override has(name: string): boolean {
        looks++;
        return super.has(name);
      }
    })();
    for (const n of longs) taken.add(freeName(n, 'abcdef012345', taken));
    assert.equal(taken.size, longs.length);
    assert.ok(looks <= 2 * longs.length, `${looks} names looked up for ${longs.length} copies`);
    const long = `${'é'.repeat(120)}.txt`;
    const named = freeName(long, 'abcdef012345', new Set());
    assert.ok(Buffer.byteLength(named) <= 255, `${Buffer.byteLength(named)} bytes`);
    assert.ok(named.endsWith('.conflict-abcdef012345.txt'));
  });
});
