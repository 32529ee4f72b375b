import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { unstorableName } from '../../src/objects/storable-name.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

describe('names gitfs will not write (storable-name.ts)', () => {
  after(cleanupTempDirs);

  it(".git as other platforms read it (NTFS: trailing dots and spaces, streams, git~1; HFS+: invisible code points), and a symbolic link named .gitmodules", () => {
    for (const name of ['.git', '.GIT', '.git.', '.git ', '.Git. .', '.git::$INDEX_ALLOCATION', 'git~1', 'GIT~1', 'git~1.', '.g\u200cit', '\ufeff.GIT', '.gi\u200dt'])
      assert.notEqual(unstorableName(name), undefined, JSON.stringify(name));
    for (const name of ['.gitmodules', '.GITMODULES.', 'gitmod~1', '.gitmod\u200cules']) {
      assert.equal(unstorableName(name), undefined, `${JSON.stringify(name)} is a fine file name`);
      assert.notEqual(unstorableName(name, true), undefined, `${JSON.stringify(name)} as a symbolic link`);
    }
    for (const name of ['.gitignore', '.github', 'git', 'git~2', 'xgit~1', '.git~1', '.gitx', 'a.git', '.git.d', 'git~10']) assert.equal(unstorableName(name, true), undefined, JSON.stringify(name));
  });

  it('a commit skips them, says so, and git fsck --strict accepts the result', async () => {
    const dir = tempDir('storable-name');
    const src = join(dir, 'src');
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'kept.txt'), 'kept\n');
    writeFileSync(join(src, 'GIT~1'), 'x');
    writeFileSync(join(src, 'd', '.git.'), 'x');
    writeFileSync(join(src, '.g\u200cit'), 'x');
    symlinkSync('kept.txt', join(src, '.gitmodules'));
    const repo = await Repository.init(join(dir, 'repo'));
    try {
      const r = await commitDirectory(repo, parseBranchName('main'), src, { message: 'aliases' });
      assert.deepEqual(
        r.report.skipped.map((s) => [s.path, s.reason]).sort(),
        [['.gitmodules', 'name not storable'], ['.g\u200cit', 'name not storable'], ['GIT~1', 'name not storable'], ['d/.git.', 'name not storable']],
      );
    } finally {
      await repo.close();
    }
    execFileSync('git', [`--git-dir=${join(dir, 'repo')}`, 'fsck', '--strict'], { stdio: 'pipe' });
  });
});
