/**
 * Empty directories, which gitfs stores (a `~gitfs~keep` marker): a branch made by mkdir at the
 * mount's root starts from one stored that way, so a file created and removed again leaves
 * nothing to commit; and one added to the branch meanwhile is a change that overlaps a file the
 * layer made at the same path (the commit is refused, nothing lost). Real repository, real git.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { diffTrees } from '../../src/files/diff.js';
import { readCommit } from '../../src/files/tree-reader.js';
import type { Oid } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { Workspace } from '../../src/work/workspace.js';
import { tempDirs } from '../support/tmp.js';

const main = parseBranchName('main');

describe('working layer: empty directories', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('holds an empty directory as commits store one: a file created and removed leaves nothing to commit', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const ws = await Workspace.open(repo);
    try {
      await ws.createEmptyBranch(main);
      const first = await repo.refs.resolve(main);
      const fs = ws.fs(main);
      await fs.create('a.txt', 0o644);
      await fs.unlink('a.txt');
      const r = await ws.commit(main, 'nothing');
      assert.equal(r.commit, undefined, 'no commit for no change');
      assert.equal(await repo.refs.resolve(main), first);
      assert.equal(execFileSync('git', [`--git-dir=${repo.gitDir}`, 'ls-tree', '--name-only', 'main'], { encoding: 'utf8' }), '~gitfs~keep\n');
      execFileSync('git', [`--git-dir=${repo.gitDir}`, 'fsck', '--strict'], { stdio: 'pipe' });
    } finally {
      await ws.close();
      await repo.close();
    }
  });

  it('an empty directory added to the branch meanwhile is a change: a file the layer made at its path is a conflict', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const ws = await Workspace.open(repo);
    const git = (args: string[], input?: string): string => execFileSync('git', [`--git-dir=${repo.gitDir}`, ...args], { encoding: 'utf8', ...(input === undefined ? {} : { input }) }).trim();
    try {
      await ws.createEmptyBranch(main);
      await ws.fs(main).create('x.txt', 0o644);
      const base = (await ws.commit(main, 'base')).commit as Oid;
      await ws.fs(main).create('e', 0o644);
      // Another writer adds an empty directory e (as gitfs stores one) on top of the base.
      const keep = git(['hash-object', '-w', '--stdin'], '');
      const empty = git(['mktree'], `100644 blob ${keep}\t~gitfs~keep\n`);
      const tree = git(['mktree'], `${git(['ls-tree', 'main'])}\n040000 tree ${empty}\te\n`);
      const moved = git(['commit-tree', tree, '-p', base, '-m', 'empty dir e']);
      git(['update-ref', 'refs/heads/main', moved, base]);
      const changes = [];
      for await (const c of diffTrees(repo.objects, (await readCommit(repo.objects, base)).tree, tree as Oid)) changes.push([c.kind, c.path]);
      assert.deepEqual(changes, [['added', 'e']]);
      await assert.rejects(ws.commit(main, 'mine'), (e: unknown) => isGitfsError(e, ErrorCodes.WORK_CONFLICT) && (e.data['paths'] as string[]).includes('e'));
      assert.equal(await repo.refs.resolve(main), moved, 'the branch keeps the other writer\'s commit');
      assert.equal(git(['ls-tree', '--name-only', 'main:e']), '~gitfs~keep');
    } finally {
      await ws.close();
      await repo.close();
    }
  });
});
