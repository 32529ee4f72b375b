/**
 * The release refs by git's rules, checked with git itself: read where `git pack-refs` moved
 * them, removed from packed-refs too, and no temporary file under refs/ (git takes any such file
 * for a ref: an empty one fails git fsck and git gc).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BranchName } from '../../src/branches/ref-name.js';
import type { Oid } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { readGitfsRef, gitfsRefName, gitfsRefPath, removeStaleTemporaries, setGitfsRef } from '../../src/branches/gitfs-refs.js';
import { systemClock } from '../../src/util/clock.js';
import { tempDirs } from '../support/tmp.js';

const CHANNEL = 'site/prod' as BranchName;

describe('rollout/release-refs', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  async function withCommits(): Promise<{ gitDir: string; a: Oid; b: Oid; git: (...args: string[]) => string }> {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    await repo.close();
    const env = { ...process.env, GIT_AUTHOR_NAME: 'A', GIT_AUTHOR_EMAIL: 'a@example.invalid', GIT_COMMITTER_NAME: 'A', GIT_COMMITTER_EMAIL: 'a@example.invalid' };
    const git = (...args: string[]): string => execFileSync('git', ['--git-dir', repo.gitDir, ...args], { env, encoding: 'utf8', input: '', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
    const tree = git('mktree');
    return { gitDir: repo.gitDir, a: git('commit-tree', tree, '-m', 'a') as Oid, b: git('commit-tree', tree, '-m', 'b') as Oid, git };
  }

  it('reads a ref git packed, and a removal takes it out of packed-refs too (it came back at its old value)', async () => {
    const { gitDir, a, b, git } = await withCommits();
    await setGitfsRef(gitDir, 'pending', CHANNEL, a, systemClock);
    git('pack-refs', '--all');
    assert.equal(existsSync(gitfsRefPath(gitDir, 'pending', CHANNEL)), false, 'git packed the ref');
    assert.equal(await readGitfsRef(gitDir, 'pending', CHANNEL), a);
    await setGitfsRef(gitDir, 'pending', CHANNEL, b, systemClock);
    assert.equal(await readGitfsRef(gitDir, 'pending', CHANNEL), b);
    await setGitfsRef(gitDir, 'pending', CHANNEL, null, systemClock);
    assert.equal(await readGitfsRef(gitDir, 'pending', CHANNEL), undefined);
    const seen = spawnSync('git', ['--git-dir', gitDir, 'rev-parse', '--verify', '-q', gitfsRefName('pending', CHANNEL)], { encoding: 'utf8' });
    assert.equal(seen.status, 1, `git still sees the ref: ${seen.stdout}`);
    assert.doesNotMatch(readFileSync(join(gitDir, 'packed-refs'), 'utf8'), /refs\/gitfs\/pending/);
    git('fsck', '--strict');
  });

  it('a removed ref `x/y` leaves no directory in the way of a ref `x` (it stopped every write of the working layer); one left by an earlier version is removed; a ref below is in the way', async () => {
    const { gitDir, a, b, git } = await withCommits();
    const [below, above] = ['site/prod/eu' as BranchName, 'site/prod' as BranchName];
    await setGitfsRef(gitDir, 'work', below, a, systemClock);
    await setGitfsRef(gitDir, 'work', below, null, systemClock);
    assert.deepEqual(readdirSync(join(gitDir, 'refs', 'gitfs', 'work')), [], 'the emptied directories go');
    assert.equal(existsSync(join(gitDir, 'refs', 'gitfs')), true, 'refs/gitfs/work itself stays');
    mkdirSync(join(gitfsRefPath(gitDir, 'work', above), 'eu', 'left'), { recursive: true });
    await setGitfsRef(gitDir, 'work', above, b, systemClock);
    assert.equal(await readGitfsRef(gitDir, 'work', above), b);
    assert.equal(git('rev-parse', gitfsRefName('work', above)), b);
    await setGitfsRef(gitDir, 'work', above, null, systemClock);
    await setGitfsRef(gitDir, 'work', below, a, systemClock);
    await assert.rejects(setGitfsRef(gitDir, 'work', above, b, systemClock), { code: 'GITFS_REF_CONFLICT' });
    assert.equal(await readGitfsRef(gitDir, 'work', below), a, 'the ref below is untouched');
    git('fsck', '--strict');
  });

  it('writes under <ref>.lock and leaves no other file under refs/; temporaries an earlier version left are removed, and git fsck and git gc pass again', async () => {
    const { gitDir, a, git } = await withCommits();
    await setGitfsRef(gitDir, 'blessed', CHANNEL, a, systemClock);
    const dir = dirname(gitfsRefPath(gitDir, 'blessed', CHANNEL));
    assert.deepEqual(readdirSync(dir), ['prod']);
    // What a kill -9 of the old write (a temporary beside the ref, then a rename) left: an empty one and a whole one.
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'prod.tmp-0123456789ab'), '');
    writeFileSync(join(dir, 'prod.tmp-ba9876543210'), `${a}\n`);
    writeFileSync(join(dir, 'prod.tmp-notours'), `${a}\n`);
    assert.notEqual(spawnSync('git', ['--git-dir', gitDir, 'fsck', '--strict']).status, 0, 'git fsck fails with an empty temporary under refs/');
    await removeStaleTemporaries(gitDir, 'blessed', CHANNEL);
    assert.deepEqual(readdirSync(dir).sort(), ['prod', 'prod.tmp-notours']);
    git('update-ref', '-d', 'refs/gitfs/blessed/site/prod.tmp-notours');
    git('fsck', '--strict');
    git('gc', '--quiet');
    assert.equal(await readGitfsRef(gitDir, 'blessed', CHANNEL), a);
  });
});
