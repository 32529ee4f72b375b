import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git, gitfs, gitfsOk } from '../support/cli.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('a full disk during a commit (a real 8 MiB tmpfs)', function () {
  const tmp = tempDirs();
  let mnt: string | undefined;
  after(() => {
    try {
      if (mnt !== undefined) execFileSync('umount', [mnt]);
    } finally {
      tmp.cleanup();
    }
  });

  it('fails with GITFS_IO, leaves the branch and the repository as they were', async () => {
    const dir = tmp.make();
    const at = join(dir, 'mnt');
    mkdirSync(at);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', at]);
    mnt = at;
    const repo = join(mnt, 'repo');
    const src = tmp.make();
    writeFileSync(join(src, 'small'), 'fits\n');
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    const before = git(repo, ['rev-parse', 'main']).trim();
    writeFileSync(join(src, 'big.bin'), pseudoRandomBytes(24 << 20, 'too big'));
    const r = await gitfs(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /GITFS_IO/);
    assert.match(r.stderr, /ENOSPC|no space/i);
    assert.equal(git(repo, ['rev-parse', 'main']).trim(), before);
    assert.deepEqual(readdirSync(join(repo, 'objects/pack')).filter((f) => f.startsWith('tmp_')), []);
    execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict'], { stdio: 'pipe' });
    assert.equal((await gitfs(['cat', '--repo', repo, 'main:small'])).stdout, 'fits\n');
  });
});
