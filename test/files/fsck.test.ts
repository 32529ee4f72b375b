/**
 * fsck (src/files/fsck.ts) over a history where one object every commit needs is missing: it
 * names the paths that need it, within bounds, and walks each commit once, whatever the branches
 * and merges reaching it (walked again for each, a history of fork-and-merge steps took time
 * doubling with each step).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fsck } from '../../src/files/fsck.js';
import type { Oid } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { tempDirs } from '../support/tmp.js';

describe('files/fsck: a missing object every commit needs', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('is one problem naming at most 20 paths, found through 40 fork-and-merge steps and 5 branches in a walk that does not double with each step', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    try {
      const env = { ...process.env, GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@example.invalid', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@example.invalid' };
      const git = (args: string[], input?: string): string => execFileSync('git', ['--git-dir', repo.gitDir, ...args], { encoding: 'utf8', env, input }).trim();
      const missing = 'ab'.repeat(20);
      const kept = git(['hash-object', '-w', '--stdin'], 'kept\n');
      // Every commit's tree holds the missing blob, under a directory every tree shares.
      const shared = git(['mktree', '--missing'], `100644 blob ${missing}\tlost.bin\n`);
      const treeWith = (i: number): string => git(['mktree'], `040000 tree ${shared}\tdata\n100644 blob ${kept}\tn${i}\n`);
      let head = git(['commit-tree', treeWith(0), '-m', 'root']);
      for (let i = 1; i <= 40; i++) {
        const left = git(['commit-tree', treeWith(2 * i), '-p', head, '-m', `left ${i}`]);
        const right = git(['commit-tree', treeWith(2 * i + 1), '-p', head, '-m', `right ${i}`]);
        head = git(['commit-tree', treeWith(0), '-p', left, '-p', right, '-m', `merge ${i}`]);
      }
      await repo.objects.refresh();
      const roots = Array.from({ length: 5 }, (_, i) => ({ name: `b${i}`, oid: head as Oid }));
      const report = await fsck(repo.objects, roots);
      assert.equal(report.commits, 121);
      assert.deepEqual(report.problems.map((p) => [p.oid, p.code]), [[missing, 'GITFS_OBJECT_NOT_FOUND']]);
      const needers = report.problems[0]?.neededBy ?? [];
      assert.equal(needers.length, 20, 'as many paths as are listed');
      assert.ok(needers.every((w) => /^b0@[0-9a-f]{12}:data\/lost\.bin$/.test(w)), needers.join(' '));
      assert.equal(new Set(needers).size, needers.length, 'each path once');
    } finally {
      await repo.close();
    }
  });
});
