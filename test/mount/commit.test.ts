import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { git, gitfs, gitfsOk } from '../support/cli.js';
import { clearMountAt, mountSuiteDirs, TestMount } from '../support/mount.js';

/**
 * Reads `path` until it reads `text` (within 3 s); `old`: the one other content it may read
 * meanwhile. Asynchronously: a mount that hung fails the test at its timeout, not the test process.
 */
async function readsSoon(path: string, text: string, old?: string): Promise<void> {
  let seen = '';
  for (let i = 0; i < 300 && seen !== text; i++) {
    seen = await readFile(path, 'utf8');
    if (old !== undefined) assert.ok(seen === old || seen === text, `read ${JSON.stringify(seen)}: neither the old nor the new file`);
    if (seen !== text) await sleep(10);
  }
  assert.equal(seen, text);
}

describe('mount: status, commit and reset of the working layer', function () {
  const tmp = mountSuiteDirs();

  async function fixture(): Promise<{ repo: string; src: string; mnt: string }> {
    const base = tmp.make();
    const repo = join(base, 'repo');
    const src = join(base, 'src');
    mkdirSync(join(src, 'docs'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'a\n');
    writeFileSync(join(src, 'b.txt'), 'b\n');
    writeFileSync(join(src, 'docs/readme'), 'readme\n');
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'base']);
    return { repo, src, mnt: join(base, 'mnt') };
  }

  it('commits changes made through the mount, mounted (control socket) and not', async () => {
    const { repo, mnt } = await fixture();
    const m = await TestMount.start(repo, mnt);
    writeFileSync(join(mnt, 'main/a.txt'), 'A\n');
    unlinkSync(join(mnt, 'main/b.txt'));
    mkdirSync(join(mnt, 'main/new'));
    writeFileSync(join(mnt, 'main/new/c.txt'), 'c\n');
    renameSync(join(mnt, 'main/docs'), join(mnt, 'main/manual'));
    const status = await gitfsOk(['status', '--repo', repo]);
    assert.match(status, /M a\.txt/);
    assert.match(status, /D b\.txt/);
    assert.match(status, /A new\/c\.txt/);
    assert.match(status, /D docs/);
    assert.match(status, /A manual/);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', 'through the mount']);
    assert.match(await gitfsOk(['status', '--repo', repo]), /no uncommitted changes/);
    assert.deepEqual(git(repo, ['ls-tree', '-r', '--name-only', 'main']).trim().split('\n'), ['a.txt', 'manual/readme', 'new/c.txt']);
    assert.equal(git(repo, ['show', 'main:a.txt']), 'A\n');
    assert.equal(git(repo, ['log', '--format=%s', 'main']).trim(), 'through the mount\nbase');
    assert.equal(readdirSync(join(mnt, '.history/main')).length, 2);
    assert.equal(readFileSync(join(mnt, 'main/a.txt'), 'utf8'), 'A\n');
    // unmounted: the same commands open the working layer directly
    await gitfsOk(['umount', mnt]);
    assert.equal(await m.exit(), 0);
    const m2 = await TestMount.start(repo, mnt);
    writeFileSync(join(mnt, 'main/later.txt'), 'later\n');
    await m2.stop('SIGTERM');
    assert.equal(m2.exitStatus, 0, m2.log);
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `), 'SIGTERM unmounts');
    assert.match(await gitfsOk(['status', '--repo', repo]), /A later\.txt/);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', 'unmounted']);
    assert.equal(git(repo, ['show', 'main:later.txt']), 'later\n');
    execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict'], { stdio: 'pipe' });
  });

  it('shows a commit made by another process on a clean branch without a remount', async () => {
    const { repo, src, mnt } = await fixture();
    await TestMount.start(repo, mnt);
    assert.equal(readFileSync(join(mnt, 'main/a.txt'), 'utf8'), 'a\n');
    writeFileSync(join(src, 'a.txt'), 'from elsewhere\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'elsewhere']);
    assert.equal(readFileSync(join(mnt, 'main/a.txt'), 'utf8'), 'from elsewhere\n');
    assert.equal(readdirSync(join(mnt, '.history/main')).length, 2);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'side', '--from', src]);
    assert.ok(readdirSync(mnt).includes('side'));
  });

  it('shows branches moved or deleted by git itself within a moment, and never a torn file', async () => {
    const { repo, src, mnt } = await fixture();
    await TestMount.start(repo, mnt);
    // The kernel now holds a.txt's name and size (2 bytes).
    assert.equal(statSync(join(mnt, 'main/a.txt')).size, 2);
    const longer = 'a much longer text, moved in by git update-ref\n';
    writeFileSync(join(src, 'a.txt'), longer);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'next', '--from', src]);
    git(repo, ['update-ref', 'refs/heads/main', 'refs/heads/next']); // git tells no mount
    const moved = Date.now();
    await readsSoon(join(mnt, 'main/a.txt'), longer, 'a\n');
    assert.ok(Date.now() - moved < 3000, `seen after ${Date.now() - moved} ms`);
    assert.equal(statSync(join(mnt, 'main/a.txt')).size, longer.length);
    git(repo, ['update-ref', '-d', 'refs/heads/next']);
    for (let i = 0; i < 300 && existsSync(join(mnt, 'next')); i++) await sleep(10);
    assert.ok(!existsSync(join(mnt, 'next')), 'a branch git deleted is gone from the mount');
    assert.ok(!existsSync(join(mnt, '.history/next')));
  });

  it('serves every read whole while git moves the branch again and again, reads racing each move', async () => {
    const { repo, mnt } = await fixture();
    await TestMount.start(repo, mnt);
    const path = join(mnt, 'main/a.txt');
    const plumb = (args: string[], input: string): string => execFileSync('git', [`--git-dir=${repo}`, ...args], { input, encoding: 'utf8' }).trim();
    // Another process opens and reads the file all the while, holding it across moves.
    const reader = spawn('sh', ['-c', `for i in $(seq 100000); do cat '${path}' > /dev/null; done`], { stdio: 'ignore', detached: true });
    try {
      let before = readFileSync(path, 'utf8');
      for (let round = 0; round < 32; round++) {
        assert.equal(statSync(path).size, before.length); // the kernel now holds the size
        // The sizes alternate: a size kept from the other version would cut or pad the content.
        const next = round % 2 === 0 ? `round ${round}: a much longer text than the one before it\n` : `r${round}\n`;
        const tree = plumb(['mktree'], `100644 blob ${plumb(['hash-object', '-w', '--stdin'], next)}\ta.txt\n`);
        git(repo, ['update-ref', 'refs/heads/main', plumb(['commit-tree', tree, '-m', `round ${round}`], '')]);
        let seen = before;
        const deadline = Date.now() + 3000;
        while (seen !== next && Date.now() < deadline) {
          seen = readFileSync(path, 'utf8');
          assert.ok(seen === before || seen === next, `round ${round}: read ${JSON.stringify(seen)}, neither the old nor the new file`);
          if (seen !== next) await sleep(round % 3 === 0 ? 1 : 5);
        }
        assert.equal(seen, next, `round ${round}: the new file did not show within 3 s`);
        before = next;
      }
    } finally {
      process.kill(-(reader.pid as number), 'SIGKILL'); // the loop and its cat of the moment
    }
  });

  it('moves a file held open along when git moves its branch, so that its old size never comes back', async () => {
    const { repo, src, mnt } = await fixture();
    await TestMount.start(repo, mnt);
    const path = join(mnt, 'main/a.txt');
    const fd = openSync(path, 'r');
    try {
      assert.equal(statSync(path).size, 2);
      const longer = 'longer content, while another process holds the old one open\n';
      writeFileSync(join(src, 'a.txt'), longer);
      await gitfsOk(['commit', '--repo', repo, '--branch', 'next', '--from', src]);
      git(repo, ['update-ref', 'refs/heads/main', 'refs/heads/next']);
      await readsSoon(path, longer, 'a\n');
      assert.equal(statSync(path).size, longer.length);
      // The kernel keeps one node per path: the handle opened before now reads the new file, as
      // one rewritten in place. Its pages dropped first, it asks the mount: had it read its old 2
      // bytes, the kernel would have taken that short read as the file's size and cut new opens.
      execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
      const buf = Buffer.alloc(200);
      assert.equal(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString(), longer);
      assert.equal(readFileSync(path, 'utf8'), longer);
      assert.equal(statSync(path).size, longer.length);
    } finally {
      closeSync(fd);
    }
  });

  it('looks at itself off libuv\'s thread pool: with one pool thread, which answering needs, a commit through the mount and a move by git of a branch with a file held open both settle', async function () {
    this.timeout(120_000);
    const { repo, src, mnt } = await fixture();
    await TestMount.start(repo, mnt, [], { UV_THREADPOOL_SIZE: '1' });
    const path = join(mnt, 'main/a.txt');
    // Every access to the mount asynchronous: were the mount to hang, the test's timeout would fire.
    const held = await open(path, 'r');
    try {
      for (let round = 0; round < 3; round++) {
        await writeFile(join(mnt, 'main/b.txt'), `through the mount ${round}\n`);
        await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', `mount ${round}`]);
        const text = `moved by git ${round}\n`;
        writeFileSync(join(src, 'a.txt'), text);
        await gitfsOk(['commit', '--repo', repo, '--branch', 'next', '--from', src]);
        git(repo, ['update-ref', 'refs/heads/main', 'refs/heads/next']);
        await readsSoon(path, text);
        const { buffer, bytesRead } = await held.read(Buffer.alloc(200), 0, 200, 0);
        assert.equal(buffer.subarray(0, bytesRead).toString(), text, 'the handle held open follows');
      }
    } finally {
      await held.close();
    }
  });

  it('carries changes onto a branch that moved, and refuses overlapping ones naming the paths', async () => {
    const { repo, src, mnt } = await fixture();
    await TestMount.start(repo, mnt);
    writeFileSync(join(mnt, 'main/a.txt'), 'mine\n');
    writeFileSync(join(mnt, 'main/mine.txt'), 'mine\n');
    // another writer changes b.txt: no overlap, both survive
    writeFileSync(join(src, 'b.txt'), 'theirs\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'theirs']);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', 'mine']);
    assert.equal(git(repo, ['show', 'main:a.txt']), 'mine\n');
    assert.equal(git(repo, ['show', 'main:b.txt']), 'theirs\n');
    assert.equal(git(repo, ['show', 'main:mine.txt']), 'mine\n');
    assert.equal(git(repo, ['log', '--format=%s', 'main']).trim(), 'mine\ntheirs\nbase');
    // now both change a.txt: refused, nothing lost
    writeFileSync(join(mnt, 'main/a.txt'), 'mine again\n');
    const theirs = git(repo, ['rev-parse', 'main']).trim();
    rmSync(join(src, 'docs'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'theirs again\n');
    writeFileSync(join(src, 'mine.txt'), 'mine\n');
    writeFileSync(join(src, 'b.txt'), 'theirs\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'theirs again']);
    const r = await gitfs(['commit', '--repo', repo, '--branch', 'main', '-m', 'conflict']);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /GITFS_WORK_CONFLICT/);
    assert.match(r.stderr, /a\.txt/);
    assert.notEqual(git(repo, ['rev-parse', 'main']).trim(), theirs);
    assert.equal(git(repo, ['log', '-1', '--format=%s', 'main']).trim(), 'theirs again');
    assert.equal(readFileSync(join(mnt, 'main/a.txt'), 'utf8'), 'mine again\n');
    assert.match(await gitfsOk(['status', '--repo', repo]), /M a\.txt/);
    // reset discards; the view then follows the branch again
    await gitfsOk(['reset', '--repo', repo, '--branch', 'main']);
    assert.equal(readFileSync(join(mnt, 'main/a.txt'), 'utf8'), 'theirs again\n');
    assert.ok(!existsSync(join(mnt, 'main/docs')));
    assert.match(await gitfsOk(['status', '--repo', repo]), /no uncommitted changes/);
  });

  it('refuses to unmount while in use, like umount(8), and unmounts once free', async () => {
    const { repo, mnt } = await fixture();
    const m = await TestMount.start(repo, mnt);
    const user = spawn('sleep', ['30'], { cwd: join(mnt, 'main'), stdio: 'ignore' });
    try {
      const busy = await gitfs(['umount', mnt]);
      assert.equal(busy.code, 7, busy.stderr);
      assert.match(busy.stderr, /GITFS_MOUNT_FAILED/);
      assert.equal(readFileSync(join(mnt, 'main/a.txt'), 'utf8'), 'a\n');
    } finally {
      user.kill('SIGKILL');
      await new Promise((r) => user.on('exit', r));
    }
    await gitfsOk(['umount', mnt]);
    assert.equal(await m.exit(), 0);
    // an unmount from outside (fusermount -u) ends the mount process too
    const again = await TestMount.start(repo, mnt);
    execFileSync('fusermount', ['-u', mnt]);
    assert.equal(await again.exit(), 0);
  });

  it('refuses a second mount of the same repository and clears a stale mount point', async () => {
    const { repo, mnt } = await fixture();
    const m = await TestMount.start(repo, mnt);
    const other = `${mnt}-2`;
    // Refused, these return at once; were they not, they would mount and stay: bounded, and cleared after the suite.
    clearMountAt(other);
    clearMountAt(join(repo, 'mnt'));
    const r = await gitfs(['mount', '--repo', repo, other], { timeoutMs: 30_000 });
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /GITFS_MOUNT_FAILED/);
    const inside = await gitfs(['mount', '--repo', repo, join(repo, 'mnt')], { timeoutMs: 30_000 });
    assert.equal(inside.code, 2, inside.stderr);
    assert.match(inside.stderr, /must not contain each other/);
    await m.kill();
    assert.throws(() => readdirSync(mnt), /ENOTCONN/);
    const again = await TestMount.start(repo, mnt);
    assert.match(again.log, /cleared a stale mount/);
    assert.ok(readdirSync(mnt).includes('main'));
  });
});
