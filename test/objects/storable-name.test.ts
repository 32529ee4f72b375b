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
      assert.notEqual(unstorableName(name, 'symlink'), undefined, `${JSON.stringify(name)} as a symbolic link`);
    }
    for (const name of ['.gitignore', '.github', 'git', 'git~2', 'xgit~1', '.git~1', '.gitx', 'a.git', '.git.d', 'git~10']) assert.equal(unstorableName(name, 'symlink'), undefined, JSON.stringify(name));
  });

  it('a commit skips them (and a .gitmodules git would refuse), says so, and git fsck --strict accepts the result', async () => {
    const dir = tempDir('storable-name');
    const src = join(dir, 'src');
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'kept.txt'), 'kept\n');
    writeFileSync(join(src, 'GIT~1'), 'x');
    writeFileSync(join(src, 'd', '.git.'), 'x');
    writeFileSync(join(src, '.g\u200cit'), 'x');
    symlinkSync('kept.txt', join(src, '.gitmodules'));
    // What git fsck reads as .gitmodules or .gitattributes: a directory, content it refuses, and a file large enough to be chunked.
    mkdirSync(join(src, 'GITMOD~1'));
    writeFileSync(join(src, 'GITMOD~1', 'x'), 'x');
    writeFileSync(join(src, 'd', '.gitmodules'), '[submodule "x"]\n\tpath = x\n\turl = ../../:evil\n');
    // Chunked, its tree would be named `.gitmodules:x~gitfs~c…`, which git reads as .gitmodules (an NTFS stream).
    writeFileSync(join(src, 'd', '.gitmodules:x'), Buffer.alloc(300 * 1024, 'x'));
    const attributes = Buffer.from('*.img binary\n'.repeat(40_000));
    writeFileSync(join(src, 'd', '.GITATTRIBUTES'), attributes);
    const repo = await Repository.init(join(dir, 'repo'));
    assert.ok(attributes.length > repo.format.chunkThreshold, 'large enough to be chunked under another name');
    try {
      const r = await commitDirectory(repo, parseBranchName('main'), src, { message: 'aliases' });
      assert.deepEqual(r.report.skipped.map((s) => [s.path, s.reason, s.detail]).sort(), [
        ['.gitmodules', 'name not storable', 'a symbolic link git reads as .gitmodules'],
        ['.g\u200cit', 'name not storable', 'name ".g\u200cit" is .git on another platform'],
        ['GITMOD~1', 'name not storable', 'a directory git reads as .gitmodules'],
        ['GIT~1', 'name not storable', 'name "GIT~1" is .git on another platform'],
        ['d/.git.', 'name not storable', 'name ".git." is .git on another platform'],
        ['d/.gitmodules', 'refused by git fsck', 'disallowed submodule url: ../../:evil'],
        ['d/.gitmodules:x', 'refused by git fsck', 'a directory git reads as .gitmodules'],
      ]);
    } finally {
      await repo.close();
    }
    const gitDir = `--git-dir=${join(dir, 'repo')}`;
    execFileSync('git', [gitDir, 'fsck', '--strict'], { stdio: 'pipe' });
    // Chunked, it is a tree under a name git takes for no special file.
    assert.match(execFileSync('git', [gitDir, 'ls-tree', 'main:d'], { encoding: 'utf8' }), new RegExp(`^040000 tree [0-9a-f]{40}\t\\.GITATTRIBUTES~gitfs~c${attributes.length}$`, 'm'));
  });

  it('a strict commit refuses a .gitmodules git fsck would refuse with GITFS_FSCK_REFUSED (its own code, not a file type), and the branch does not move', async () => {
    const dir = tempDir('storable-strict');
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, '.gitmodules'), '[submodule "x"]\n\tpath = x\n\turl = --upload-pack=touch /tmp/pwned\n');
    const repo = await Repository.init(join(dir, 'repo'));
    try {
      await assert.rejects(commitDirectory(repo, parseBranchName('main'), src, { message: 'strict', strict: true }), (e: Error & { code?: string }) => e.code === 'GITFS_FSCK_REFUSED' && /\.gitmodules/.test(e.message));
      assert.equal(await repo.refs.resolve(parseBranchName('main')), undefined);
    } finally {
      await repo.close();
    }
  });
});
