import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gitfsOk } from '../support/cli.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';

function gitIn(repo: string, args: string[], input?: string): string {
  return execFileSync('git', [`--git-dir=${repo}`, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] }).trim();
}

describe('mount: listings and attributes come from trees alone', function () {
  const tmp = mountSuiteDirs();

  it('lists and stats a chunked file whose chunks are absent; reading it fails with EIO, not a crash', async () => {
    const { repo, mnt } = tmp.place();
    await gitfsOk(['init', '--repo', repo]);
    const small = gitIn(repo, ['hash-object', '-w', '--stdin'], 'present\n');
    const absent = 'ab'.repeat(20);
    const sub = gitIn(repo, ['mktree', '--missing'], `040000 tree ${absent}\timage.iso~gitfs~c3000000000\n`);
    const root = gitIn(repo, ['mktree', '--missing'], `100644 blob ${small}\tsmall.txt\n040000 tree ${sub}\timages\n`);
    const commit = gitIn(repo, ['commit-tree', root, '-m', 'chunks elsewhere'], '');
    gitIn(repo, ['update-ref', 'refs/heads/main', commit]);
    const m = await TestMount.start(repo, mnt);
    const iso = join(mnt, 'main/images/image.iso');
    assert.deepEqual(readdirSync(join(mnt, 'main/images')), ['image.iso']);
    assert.equal(statSync(iso).size, 3_000_000_000);
    const listed = execFileSync('find', [join(mnt, 'main'), '-ls'], { encoding: 'utf8' });
    assert.match(listed, /3000000000/);
    assert.match(execFileSync('du', ['-sh', '--apparent-size', join(mnt, '.history/main')], { encoding: 'utf8' }), /^2\.8G/);
    const fd = openSync(iso, 'r');
    assert.throws(() => readSync(fd, Buffer.alloc(10), 0, 10, 1_000_000), /EIO/);
    closeSync(fd);
    for (let i = 0; i < 100 && !m.log.includes('GITFS_OBJECT_NOT_FOUND'); i++) await sleep(20);
    assert.match(m.log, /GITFS_OBJECT_NOT_FOUND/);
    assert.equal(statSync(join(mnt, 'main/small.txt')).size, 8);
  });
});
