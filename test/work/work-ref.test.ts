/**
 * The commit a branch's uncommitted changes were made over is kept by a ref,
 * refs/gitfs/work/<branch>: git gc keeps it (and the files the changes moved or kept) even after
 * git deleted the branch; the ref goes once the changes are committed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import { Workspace } from '../../src/work/workspace.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

const main = parseBranchName('main');

describe('working layer: the commit its changes were made over is kept by a ref', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('git gc --prune=now after git deleted the branch keeps it; the ref goes with the commit of the changes', async () => {
    const base = tmp.make();
    const src = join(base, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'unique.bin'), pseudoRandomBytes(300_000, 'unique'));
    const dir = join(base, 'repo');
    const repo = await Repository.init(dir);
    const git = (...args: string[]): string => execFileSync('git', ['--git-dir', dir, ...args], { encoding: 'utf8', stdio: 'pipe' }).trim();
    const c = (await commitDirectory(repo, main, src, { message: 'v0' })).commit;
    assert.ok(c !== undefined);
    const ws = await Workspace.open(repo);
    try {
      await ws.fs(main).rename('unique.bin', 'moved.bin');
      assert.equal(git('rev-parse', 'refs/gitfs/work/main'), c);
      // git deletes the branch; everything is three weeks old; gc prunes all it finds unreachable.
      git('update-ref', '-d', 'refs/heads/main');
      git('reflog', 'expire', '--expire=now', '--all');
      const old = new Date(Date.now() - 21 * 24 * 3600 * 1000);
      for (const f of readdirSync(join(dir, 'objects', 'pack'))) utimesSync(join(dir, 'objects', 'pack', f), old, old);
      git('gc', '--quiet', '--prune=now');
      git('fsck', '--strict');
      // Every object of the commit is still here (the chunked file the changes moved among them).
      assert.ok(git('rev-list', '--objects', c).split('\n').length > 3);
      git('cat-file', '--batch-check', '--batch-all-objects');
      for (const line of git('rev-list', '--objects', c).split('\n')) git('cat-file', '-e', line.split(' ')[0] as string);
      git('update-ref', 'refs/heads/main', c);
      await repo.objects.refresh();
      const r = await ws.commit(main, 'moved');
      assert.equal(r.parent, c);
      assert.throws(() => git('rev-parse', '--verify', '--quiet', 'refs/gitfs/work/main'), 'the ref goes with the commit of the changes');
      assert.match(git('ls-tree', '--name-only', 'main'), /^moved\.bin~gitfs~c300000$/, 'the chunked file, moved');
    } finally {
      await ws.close();
      await repo.close();
    }
  });
});
