/**
 * The working layers' store read back damaged (a bad disk, a hand edit): an entry whose data name
 * leads out of the data directory, or that is no entry at all, is not taken, and a base that is no
 * commit id is none. Nothing outside the data directory is read or removed, and no ref names junk.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { readGitfsRef } from '../../src/branches/gitfs-refs.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import { Workspace } from '../../src/work/workspace.js';
import { tempDirs } from '../support/tmp.js';

const main = parseBranchName('main');

describe('working layers read back damaged', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('takes no entry whose data name leads out of the data directory, nor one that is no entry, nor a base that is no commit id (the work ref gives it): nothing outside is removed, no ref names junk', async () => {
    const base = tmp.make();
    const src = join(base, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'a.txt'), 'a\n');
    const repo = await Repository.init(join(base, 'repo'));
    const c = (await commitDirectory(repo, main, src, { message: 'v0' })).commit;
    let ws = await Workspace.open(repo);
    await ws.fs(main).mkdir('kept', 0o755);
    await ws.close();
    const victim = join(base, 'victim');
    writeFileSync(victim, 'not the working layer\'s\n');
    const db = new Level<string, unknown>(join(repo.gitDir, 'gitfs', 'work', 'meta'), { valueEncoding: 'json' });
    await db.put('e\0main\0evil', { t: 'file', data: '../../../../victim' });
    await db.put('e\0main\0junk', 'no entry');
    await db.put('b\0other', { base: '../../HEAD' });
    await db.put('b\0main', { base: 'junk' });
    await db.close();
    ws = await Workspace.open(repo);
    try {
      const changed = (await ws.status(main)).flatMap((x) => x.changes.map((ch) => ch.path)).sort();
      assert.deepEqual(changed, ['kept'], 'only the whole entry is taken');
      assert.equal((await ws.status(main))[0]?.base, c, "a damaged base is the work ref's");
      assert.equal(await readGitfsRef(repo.gitDir, 'work', parseBranchName('other')), undefined, 'no ref names the damaged base');
      const r = await ws.commit(main, 'the good change');
      assert.equal(r.parent, c);
    } finally {
      await ws.close();
      await repo.close();
    }
    assert.equal(existsSync(victim), true, 'the file outside the data directory is still there');
  });
});
