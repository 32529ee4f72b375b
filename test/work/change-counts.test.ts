/**
 * `gitfs status`, `gitfs commit` and `gitfs reset` count a working layer's changes alike: the
 * paths added, modified or deleted, a directory only when it is new or gone (the layer also holds
 * entries for directories whose times changed, which none of them counts).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import { Workspace } from '../../src/work/workspace.js';
import { tempDirs } from '../support/tmp.js';

const main = parseBranchName('main');

describe('working layer: status, commit and reset count changes alike', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('a rename into new directories is four changes to all three, not the layer entries of the directories whose times changed', async () => {
    const base = tmp.make();
    const src = join(base, 'src');
    mkdirSync(join(src, 'old'), { recursive: true });
    writeFileSync(join(src, 'old', 'a.txt'), 'a\n');
    const repo = await Repository.init(join(base, 'repo'));
    await commitDirectory(repo, main, src, { message: 'v0' });
    const ws = await Workspace.open(repo);
    try {
      await ws.fs(main).mkdir('n', 0o755);
      await ws.fs(main).mkdir('n/m', 0o755);
      await ws.fs(main).rename('old/a.txt', 'n/a.txt');
      const changes = (await ws.status(main))[0]?.changes ?? [];
      assert.deepEqual(changes.map((c) => `${c.kind} ${c.path}`), ['added n', 'added n/a.txt', 'added n/m', 'deleted old/a.txt']);
      assert.equal((await ws.commit(main, 'moved')).changed, changes.length);
      await ws.fs(main).mkdir('o', 0o755);
      assert.equal((await ws.status(main))[0]?.changes.length, 1);
      assert.equal(await ws.reset(main), 1);
    } finally {
      await ws.close();
      await repo.close();
    }
  });
});
