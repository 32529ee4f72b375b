/**
 * A submodule (gitlink) in a mounted branch: an empty read-only directory, as git checkout leaves
 * a submodule not initialised. Nothing can be written into it or change it (EROFS) but its
 * removal; a commit of other changes keeps it as git wrote it.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitfsOk } from '../support/cli.js';
import { gitText } from '../support/git-env.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';
import { pushSubmodule } from '../support/submodule.js';

describe('mount: a submodule (gitlink) git pushed into a branch', function () {
  this.timeout(120_000);
  const tmp = mountSuiteDirs();

  it('shows an empty read-only directory, refuses writes into it (EROFS), keeps it through a commit and removes it with rmdir', async () => {
    const { base, repo, mnt } = tmp.place();
    const sub = await pushSubmodule(base, repo);
    const m = await TestMount.start(repo, mnt);
    const lib = join(mnt, 'main/lib');
    const st = statSync(lib);
    assert.ok(st.isDirectory());
    assert.equal(st.mode & 0o777, 0o555);
    assert.deepEqual(readdirSync(lib), []);
    assert.deepEqual(readdirSync(join(mnt, 'main')).sort(), ['.gitmodules', 'a.txt', 'docs', 'lib']);
    assert.deepEqual(readdirSync(join(mnt, `.commits/${gitText(['rev-parse', 'main'], { gitDir: repo })}/lib`)), []);
    assert.throws(() => writeFileSync(join(lib, 'x'), 'x'), { code: 'EROFS' });
    assert.throws(() => mkdirSync(join(lib, 'd')), { code: 'EROFS' });
    assert.throws(() => renameSync(join(mnt, 'main/a.txt'), join(lib, 'a.txt')), { code: 'EROFS' });
    assert.throws(() => renameSync(lib, join(mnt, 'main/lib2')), { code: 'EROFS' });
    assert.throws(() => chmodSync(lib, 0o755), { code: 'EROFS' });
    assert.throws(() => readFileSync(lib), { code: 'EISDIR' });

    writeFileSync(join(mnt, 'main/a.txt'), 'changed\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', 'a change beside the submodule']);
    assert.equal(gitText(['ls-tree', 'main', 'lib'], { gitDir: repo }), `160000 commit ${sub}\tlib`);
    assert.equal(gitText(['show', 'main:a.txt'], { gitDir: repo }), 'changed');

    rmdirSync(lib);
    assert.match(await gitfsOk(['status', '--repo', repo]), /D lib/);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', 'the submodule removed']);
    assert.equal(gitText(['ls-tree', 'main', 'lib'], { gitDir: repo }), '');
    await m.stop();
    gitText(['fsck', '--strict'], { gitDir: repo });
  });
});
