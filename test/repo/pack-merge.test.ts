/**
 * Small packs merged into one (a node in service gathers one or more a commit and a fetch):
 * every object still there, git fsck clean, a promisor mark kept, git's .keep and cruft packs
 * and large packs left alone, nothing done below the threshold; temporary pack files killed
 * writers left are removed after a day.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import type { Oid } from '../../src/objects/oid.js';
import { DEFAULT_OBJECTS_PER_PACK } from '../../src/objects/pack-writer.js';
import { encodeTree, TreeModes } from '../../src/objects/tree.js';
import { writeCommit } from '../../src/repo/commit-directory.js';
import { DEAD_WRITER_TEMPORARY_MS, geometricSplit, mergeSmallPacks, removePacks, removeStaleTemporaries, STALE_TEMPORARY_MS } from '../../src/repo/pack-merge.js';
import { thisProcess } from '../../src/util/proc.js';
import { Repository } from '../../src/repo/repository.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

const packsIn = (gitDir: string, ext: string): string[] => readdirSync(join(gitDir, 'objects', 'pack')).filter((f) => f.endsWith(`.${ext}`));

describe('repo: small packs merged', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  /** `n` commits on main, one pack each: a file of random bytes (stored) and a text (deflated). */
  async function manyPacks(n: number): Promise<{ repo: Repository; blobs: Oid[] }> {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const blobs: Oid[] = [];
    let parent: Oid | undefined;
    for (let i = 0; i < n; i++) {
      const w = await repo.newPackWriter();
      const bin = await w.write('blob', pseudoRandomBytes(20_000, `pack ${i}`));
      const text = await w.write('blob', Buffer.from(`text ${i}\n`.repeat(200)));
      blobs.push(bin, text);
      const tree = await w.write('tree', encodeTree([{ mode: TreeModes.FILE, name: 'bin', oid: bin }, { mode: TreeModes.FILE, name: 'text', oid: text }]));
      const commit = await writeCommit(repo, w, tree, parent === undefined ? [] : [parent], `commit ${i}`);
      await w.finish();
      await repo.refs.update(parseBranchName('main'), { expected: parent ?? null, next: commit, message: `commit ${i}` });
      parent = commit;
    }
    return { repo, blobs };
  }

  it('merges them once there are minPacks, keeps every object readable and git fsck clean, and keeps .keep packs', async () => {
    const { repo, blobs } = await manyPacks(12);
    const git = (...args: string[]): string => execFileSync('git', ['--git-dir', repo.gitDir, ...args], { encoding: 'utf8' });
    try {
      const kept = (packsIn(repo.gitDir, 'pack')[0] as string).replace(/\.pack$/, '');
      writeFileSync(join(repo.gitDir, 'objects', 'pack', `${kept}.keep`), '');
      assert.deepEqual(await mergeSmallPacks(repo, { minPacks: 12 }), { merged: [], objects: 0, unmergeable: [] }, '11 small packs: too few');
      const merged = await mergeSmallPacks(repo, { minPacks: 11 });
      assert.equal(merged.merged.length, 11);
      assert.equal(merged.objects, 11 * 4);
      assert.equal(packsIn(repo.gitDir, 'pack').length, 13, 'the merged packs stay until removed (a git fsck may have listed them)');
      git('fsck', '--strict', '--no-dangling');
      assert.deepEqual(await mergeSmallPacks(repo, { minPacks: 2 }, new Set(merged.merged)), { merged: [], objects: 0, unmergeable: [] }, 'merged already, left out');
      await removePacks(repo, merged.merged);
      assert.deepEqual(packsIn(repo.gitDir, 'pack').length, 2);
      assert.ok(packsIn(repo.gitDir, 'pack').includes(`${kept}.pack`), 'the .keep pack stays');
      for (const b of blobs) assert.ok(await repo.objects.has(b));
      assert.equal((await repo.objects.read(blobs[1] as Oid)).content.toString(), 'text 0\n'.repeat(200));
      git('fsck', '--strict', '--no-dangling');
      assert.equal(git('rev-list', '--count', 'main').trim(), '12');
    } finally {
      await repo.close();
    }
  });

  it('chooses what to merge as git repack --geometric=2 does: each pack left holds at least twice all smaller ones', () => {
    assert.equal(geometricSplit([10, 10, 10, 10]), 4);
    assert.equal(geometricSplit([1, 2, 4, 8, 16]), 0, 'a progression already');
    assert.equal(geometricSplit([1, 1, 4, 8, 16]), 2);
    assert.equal(geometricSplit([1, 1, 1, 1, 5, 100]), 5, 'the merged 4 make 5 too small beside them');
    assert.equal(geometricSplit([5, 1000]), 0);
    assert.equal(geometricSplit([]), 0);
    assert.equal(geometricSplit([7]), 0);
  });

  it('merges promisor packs among themselves only, and leaves a pack twice the rest alone', async () => {
    const { repo } = await manyPacks(4);
    try {
      const packs = packsIn(repo.gitDir, 'pack').map((f) => f.replace(/\.pack$/, ''));
      for (const p of packs.slice(0, 2)) writeFileSync(join(repo.gitDir, 'objects', 'pack', `${p}.promisor`), '');
      const merged = await mergeSmallPacks(repo, { minPacks: 2 });
      assert.equal(merged.merged.length, 4);
      await removePacks(repo, merged.merged);
      assert.equal(packsIn(repo.gitDir, 'pack').length, 2, 'one pack of each kind');
      assert.equal(packsIn(repo.gitDir, 'promisor').length, 1);
      assert.ok(packsIn(repo.gitDir, 'pack').includes(`${packsIn(repo.gitDir, 'promisor')[0]?.replace(/\.promisor$/, '')}.pack`));
      // One more small pack beside the merged plain one, 4 times its size: a progression, nothing to merge.
      const w = await repo.newPackWriter();
      await w.write('blob', Buffer.from('small\n'));
      await w.finish();
      assert.deepEqual(await mergeSmallPacks(repo, { minPacks: 2 }), { merged: [], objects: 0, unmergeable: [] }, 'the large pack stays');
    } finally {
      await repo.close();
    }
  });

  it('merges no full pack (it would come out full again, every time), nothing where git keeps a multi-pack-index, and a second merge does nothing', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const git = (...args: string[]): string => execFileSync('git', ['--git-dir', repo.gitDir, ...args], { encoding: 'utf8' });
    try {
      for (let p = 0; p < 2; p++) {
        const w = await repo.newPackWriter();
        for (let i = 0; i < DEFAULT_OBJECTS_PER_PACK; i++) await w.write('blob', Buffer.from(`${p} ${i}\n`));
        await w.finish();
      }
      assert.deepEqual(await mergeSmallPacks(repo, { minPacks: 2 }), { merged: [], objects: 0, unmergeable: [] }, 'two full packs');
      for (let p = 0; p < 3; p++) {
        const w = await repo.newPackWriter();
        await w.write('blob', Buffer.from(`small ${p}\n`));
        await w.finish();
      }
      git('multi-pack-index', 'write');
      assert.deepEqual(await mergeSmallPacks(repo, { minPacks: 2 }), { merged: [], objects: 0, unmergeable: [] }, 'a multi-pack-index');
      rmSync(join(repo.gitDir, 'objects', 'pack', 'multi-pack-index'));
      await removePacks(repo, (await mergeSmallPacks(repo, { minPacks: 2 })).merged);
      assert.deepEqual(await mergeSmallPacks(repo, { minPacks: 2 }), { merged: [], objects: 0, unmergeable: [] }, 'merged already');
      assert.equal(packsIn(repo.gitDir, 'pack').length, 3);
      git('fsck', '--strict', '--no-dangling');
    } finally {
      await repo.close();
    }
  });

  it('removes the temporary pack files killed writers left (unwritten for a day, or 10 minutes when their name says their writer is gone), not a live writer\'s, and nothing else', async () => {
    const { repo } = await manyPacks(2);
    const git = (...args: string[]): string => execFileSync('git', ['--git-dir', repo.gitDir, ...args], { encoding: 'utf8' });
    try {
      const packDir = join(repo.gitDir, 'objects', 'pack');
      const now = Date.now();
      const left = ['tmp_pack_gitfs_0123456789abcdef', 'tmp_idx_gitfs_0123456789abcdef', 'tmp_pack_XyZ123'];
      for (const name of left) {
        writeFileSync(join(packDir, name), Buffer.alloc(1000));
        utimesSync(join(packDir, name), new Date(now - STALE_TEMPORARY_MS - 1000), new Date(now - STALE_TEMPORARY_MS - 1000));
      }
      writeFileSync(join(packDir, 'tmp_pack_gitfs_fedcba9876543210'), Buffer.alloc(10));
      // Named with their writer: a dead one's goes after 10 minutes unwritten; a live one's (this process) stays; so does a dead one's written just now.
      const self = thisProcess();
      const dead = `tmp_pack_gitfs_${self.pid}_${Number(self.startTicks) + 1}_00aa11bb22cc33dd`;
      const live = `tmp_pack_gitfs_${self.pid}_${self.startTicks}_44ee55ff66007788`;
      const fresh = `tmp_idx_gitfs_${self.pid}_${Number(self.startTicks) + 1}_99aa88bb77cc66dd`;
      for (const name of [dead, live, fresh]) writeFileSync(join(packDir, name), Buffer.alloc(100));
      for (const name of [dead, live]) utimesSync(join(packDir, name), new Date(now - DEAD_WRITER_TEMPORARY_MS - 1000), new Date(now - DEAD_WRITER_TEMPORARY_MS - 1000));
      const before = readdirSync(packDir).filter((f) => !f.startsWith('tmp_')).sort();
      assert.deepEqual(await removeStaleTemporaries(repo, now), { files: 4, bytes: 3100 });
      const after = readdirSync(packDir);
      for (const name of [...left, dead]) assert.ok(!after.includes(name), `${name} left`);
      assert.ok(after.includes('tmp_pack_gitfs_fedcba9876543210'), "a live writer's file was removed");
      assert.ok(after.includes(live), "a live writer's named file was removed");
      assert.ok(after.includes(fresh), "a file just written was removed");
      assert.deepEqual(after.filter((f) => !f.startsWith('tmp_')).sort(), before);
      assert.deepEqual(await removeStaleTemporaries(repo, now), { files: 0, bytes: 0 });
      git('fsck', '--strict', '--no-dangling');
    } finally {
      await repo.close();
    }
  });

  it('names a pack that holds an object above the read limit (git wrote it) as unmergeable, writes nothing for it, and merges the rest once it is excluded', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const git = (args: string[], input?: string | Buffer): string => execFileSync('git', ['--git-dir', repo.gitDir, ...args], { encoding: 'utf8', input, maxBuffer: 1 << 20 }).trim();
    try {
      for (let p = 0; p < 3; p++) {
        const w = await repo.newPackWriter();
        await w.write('blob', pseudoRandomBytes(1 << 20, `large pack ${p}`));
        await w.finish();
      }
      // 300 MB of zeros: a pack of ~300 KB, the smallest here, holding a blob above the 256 MiB limit.
      const big = execFileSync('sh', ['-c', `head -c 300000000 /dev/zero | git --git-dir '${repo.gitDir}' hash-object -w --stdin`], { encoding: 'utf8' }).trim();
      const packed = git(['pack-objects', join(repo.gitDir, 'objects', 'pack', 'pack')], `${big}\n`);
      rmSync(join(repo.gitDir, 'objects', big.slice(0, 2), big.slice(2)));
      const before = packsIn(repo.gitDir, 'pack').sort();
      const first = await mergeSmallPacks(repo, { minPacks: 2 });
      assert.deepEqual(first, { merged: [], objects: 0, unmergeable: [`pack-${packed}`] });
      assert.deepEqual(packsIn(repo.gitDir, 'pack').sort(), before, 'nothing written');
      const second = await mergeSmallPacks(repo, { minPacks: 2 }, new Set(first.unmergeable));
      assert.equal(second.merged.length, 3);
      await removePacks(repo, second.merged);
      git(['fsck', '--strict', '--no-dangling']);
      assert.equal(git(['cat-file', '-s', big]), '300000000');
    } finally {
      await repo.close();
    }
  });
});

