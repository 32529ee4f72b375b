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

  it('reads a range of a chunked file touching only the chunks it covers', async () => {
    const { repo, mnt } = tmp.place();
    await gitfsOk(['init', '--repo', repo]);
    const blob = (text: string): string => gitIn(repo, ['hash-object', '-w', '--stdin'], text);
    const absent = 'cd'.repeat(20);
    // three chunks of 1 MiB (the kernel reads whole pages and ahead, so they must be large);
    // the middle one is not in the repository
    const MiB = 1 << 20;
    const chunks = gitIn(
      repo,
      ['mktree', '--missing'],
      `100644 blob ${blob('A'.repeat(MiB))}\t0000000000000000\n100644 blob ${absent}\t0000000000100000\n100644 blob ${blob('C'.repeat(MiB))}\t0000000000200000\n`,
    );
    const root = gitIn(repo, ['mktree', '--missing'], `040000 tree ${chunks}\tpartial.bin~gitfs~c${3 * MiB}\n`);
    gitIn(repo, ['update-ref', 'refs/heads/main', gitIn(repo, ['commit-tree', root, '-m', 'partly here'], '')]);
    await TestMount.start(repo, mnt);
    const fd = openSync(join(mnt, 'main/partial.bin'), 'r');
    try {
      const buf = Buffer.alloc(4);
      assert.equal(readSync(fd, buf, 0, 4, 2 * MiB + 1000), 4);
      assert.equal(buf.toString(), 'CCCC');
      assert.equal(readSync(fd, buf, 0, 4, 1000), 4);
      assert.equal(buf.toString(), 'AAAA');
      assert.throws(() => readSync(fd, buf, 0, 4, MiB + 1000), /EIO/);
    } finally {
      closeSync(fd);
    }
  });
});
