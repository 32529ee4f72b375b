import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git, gitfs, gitfsOk } from '../support/cli.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('two processes committing to one branch at once', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('one wins, the other gets GITFS_REF_CONFLICT with its commit kept; the repository stays valid', async () => {
    const repo = join(tmp.make(), 'repo');
    await gitfsOk(['init', '--repo', repo]);
    const sources = ['a', 'b'].map((name) => {
      const dir = tmp.make();
      writeFileSync(join(dir, 'data.bin'), pseudoRandomBytes(4 << 20, name));
      writeFileSync(join(dir, 'who'), `${name}\n`);
      return dir;
    });
    let wins = 0;
    let conflicts = 0;
    // at least 4 rounds, and more (at most 20) until the two commits have raced at least once:
    // on a loaded machine the two processes may run one after the other for a while
    for (let round = 0; round < 20 && (round < 4 || conflicts === 0); round++) {
      for (const [i, dir] of sources.entries()) writeFileSync(join(dir, 'round'), `${round} ${i}\n`);
      const results = await Promise.all(sources.map((dir) => gitfs(['commit', '--repo', repo, '--branch', 'shared', '--from', dir, '-m', `round ${round}`])));
      for (const r of results) {
        if (r.code === 0) wins++;
        else {
          assert.equal(r.code, 5, r.stderr);
          assert.match(r.stderr, /GITFS_REF_CONFLICT/);
          const kept = /kept as commit ([0-9a-f]{40})/.exec(r.stderr)?.[1];
          assert.ok(kept !== undefined, r.stderr);
          assert.equal(git(repo, ['cat-file', '-t', kept]).trim(), 'commit');
          conflicts++;
        }
      }
      assert.ok(results.some((r) => r.code === 0), `round ${round}: nobody won`);
    }
    assert.ok(conflicts > 0, 'the race never happened');
    assert.equal(Number(git(repo, ['rev-list', '--count', 'shared']).trim()), wins);
    assert.equal(git(repo, ['reflog', 'show', 'shared']).trim().split('\n').length, wins);
    execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict'], { stdio: 'pipe' });
  });
});
