/**
 * Submodules (gitlinks, tree mode 160000) that git writes into a gitfs repository: a clone adds
 * one with `git submodule add` and pushes back. The commit it names is another repository's:
 * gitfs lists it, never looks for it, and every command goes on around it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitfs, gitfsOk } from '../support/cli.js';
import { gitText } from '../support/git-env.js';
import { pushSubmodule } from '../support/submodule.js';
import { tempDirs } from '../support/tmp.js';

describe('gitfs and submodules (gitlinks) pushed by git', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('ls, log, diff, stats, fsck, cat and export list or skip the gitlink; none fails', async () => {
    const base = tmp.make();
    const repo = join(base, 'repo');
    const sub = await pushSubmodule(base, repo);
    assert.match(gitText(['ls-tree', 'main', 'lib'], { gitDir: repo }), new RegExp(`^160000 commit ${sub}\tlib$`));

    const ls = await gitfsOk(['ls', '--repo', repo, 'main']);
    assert.match(ls, new RegExp(`^m--------- +- ${sub.slice(0, 12)}  lib$`, 'm'));
    assert.match(ls, /^-rw-r--r-- +2 [0-9a-f]{12}  a\.txt$/m);
    const json = JSON.parse(await gitfsOk(['ls', '--repo', repo, '--json', 'main:lib'])) as Record<string, unknown>;
    assert.deepEqual(json, { path: 'lib', kind: 'gitlink', executable: false, chunked: false, size: null, oid: sub });
    assert.match(await gitfsOk(['log', '--repo', repo, 'main']), /add the submodule lib/);
    assert.deepEqual((await gitfsOk(['diff', '--repo', repo, 'main~1', 'main'])).trim().split('\n'), ['A\t.gitmodules', 'M\ta.txt', 'A\tlib']);
    assert.match(await gitfsOk(['stats', '--repo', repo]), /^commits: +2$/m);
    const fsck = await gitfs(['fsck', '--repo', repo]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    assert.match(fsck.stdout, /0 problems/);

    const cat = await gitfs(['cat', '--repo', repo, 'main:lib']);
    assert.equal(cat.code, 4, cat.stderr);
    assert.match(cat.stderr, /lib is a submodule .*\[GITFS_WRONG_OBJECT_TYPE\]/);
    assert.equal(await gitfsOk(['cat', '--repo', repo, 'main:a.txt']), 'A\n');

    // As git checkout leaves a submodule that was not initialised: an empty directory.
    const out = join(base, 'out');
    await gitfsOk(['export', '--repo', repo, 'main', out]);
    assert.deepEqual(readdirSync(out).sort(), ['.gitmodules', 'a.txt', 'docs', 'lib']);
    assert.ok(statSync(join(out, 'lib')).isDirectory());
    assert.deepEqual(readdirSync(join(out, 'lib')), []);
    const alone = join(base, 'alone');
    await gitfsOk(['export', '--repo', repo, 'main:lib', alone]);
    assert.deepEqual(readdirSync(alone), []);
  });

  it('commit --from an export keeps the submodule its empty directory stands for (as git add does); removed, it leaves the next commit; on a new branch it is the empty directory it is', async () => {
    const base = tmp.make();
    const repo = join(base, 'repo');
    const sub = await pushSubmodule(base, repo);
    const out = join(base, 'out');
    await gitfsOk(['export', '--repo', repo, 'main', out]);
    writeFileSync(join(out, 'a.txt'), 'changed beside the submodule\n');
    const r = JSON.parse(await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', out, '-m', 'edit', '--json'])) as { report: { submodules: number; emptyDirectories: number } };
    assert.equal(r.report.submodules, 1);
    assert.equal(r.report.emptyDirectories, 0);
    assert.match(gitText(['ls-tree', 'main', 'lib'], { gitDir: repo }), new RegExp(`^160000 commit ${sub}\tlib$`));
    assert.deepEqual((await gitfsOk(['diff', '--repo', repo, 'main~1', 'main'])).trim().split('\n'), ['M\ta.txt']);
    gitText(['fsck', '--strict'], { gitDir: repo });
    // A commit on a branch that never had it: an empty directory, nothing more.
    await gitfsOk(['commit', '--repo', repo, '--branch', 'fresh', '--from', out, '-m', 'fresh']);
    assert.match(gitText(['ls-tree', 'fresh', 'lib/'], { gitDir: repo }), /^100644 blob [0-9a-f]{40}\tlib\/~gitfs~keep$/);
    rmdirSync(join(out, 'lib'));
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', out, '-m', 'drop the submodule']);
    assert.equal(gitText(['ls-tree', 'main', 'lib'], { gitDir: repo }), '');
    gitText(['fsck', '--strict'], { gitDir: repo });
    // A replaced tree gitfs refuses to show (a name git wrote with gitfs's marker) only means no
    // submodule is known there: the snapshot that repairs the branch is committed all the same.
    const blob = gitText(['hash-object', '-w', '--stdin'], { gitDir: repo, input: 'odd\n' });
    const odd = gitText(['mktree'], { gitDir: repo, input: `${gitText(['ls-tree', 'main'], { gitDir: repo })}\n100644 blob ${blob}\tbad~gitfs~zz\n` });
    gitText(['update-ref', 'refs/heads/odd', gitText(['commit-tree', odd, '-m', 'odd'], { gitDir: repo })], { gitDir: repo });
    mkdirSync(join(out, 'empty'));
    const repaired = JSON.parse(await gitfsOk(['commit', '--repo', repo, '--branch', 'odd', '--from', out, '-m', 'repair', '--json'])) as { report: { directories: number; emptyDirectories: number } };
    assert.deepEqual([repaired.report.directories, repaired.report.emptyDirectories], [3, 1], 'the root, docs and the empty one');
    assert.equal(gitText(['ls-tree', '--name-only', 'odd', 'bad~gitfs~zz'], { gitDir: repo }), '');
  });
});
