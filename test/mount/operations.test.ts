import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  constants,
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  statfsSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { git, gitfs, gitfsOk } from '../support/cli.js';
import { pseudoRandomBytes } from '../support/data.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';

/** stat as another process sees it (the kernel's attribute cache is shared, so this is the honest check). */
function statElsewhere(path: string): { mode: string; size: number; mtime: number } {
  const [mode, size, mtime] = execFileSync('stat', ['-c', '%a %s %Y', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split(' ');
  return { mode: mode as string, size: Number(size), mtime: Number(mtime) };
}

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
  return undefined;
}

/** Writes "NEW" at 8192 through `writer` and reads it back through `reader`, on a page it had not read. */
function seenThrough(writer: number, reader: number): void {
  writeSync(writer, Buffer.from('NEW'), 0, 3, 8192);
  const buf = Buffer.alloc(3);
  assert.equal(readSync(reader, buf, 0, 3, 8192), 3);
  assert.equal(buf.toString(), 'NEW');
}

describe('mount: file-system operations on a real FUSE mount', function () {
  const tmp = mountSuiteDirs();
  let repo: string;
  let mnt: string;
  let main: string;
  let chunked: Buffer;
  let mount: TestMount;

  before(async () => {
    const base = tmp.make();
    repo = join(base, 'repo');
    const src = join(base, 'src');
    mnt = join(base, 'mnt');
    mkdirSync(join(src, 'dir/sub'), { recursive: true });
    writeFileSync(join(src, 'hello.txt'), 'hello\n');
    writeFileSync(join(src, 'dir/sub/deep.txt'), 'deep\n');
    writeFileSync(join(src, 'tool.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    symlinkSync('hello.txt', join(src, 'link'));
    chunked = pseudoRandomBytes(5 << 20, 'mount chunked');
    writeFileSync(join(src, 'big.bin'), chunked);
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'fixture']);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'team/web', '--from', join(src, 'dir'), '-m', 'web']);
    mount = await TestMount.start(repo, mnt);
    main = join(mnt, 'main');
  });

  it('lists branches at the root (a branch with a slash nested) beside .history, .commits, .objects', () => {
    assert.deepEqual(readdirSync(mnt).sort(), ['.commits', '.history', '.objects', 'main', 'team']);
    assert.deepEqual(readdirSync(join(mnt, 'team')), ['web']);
    assert.deepEqual(readdirSync(join(mnt, 'team/web')), ['sub']);
    assert.deepEqual(readdirSync(main).sort(), ['big.bin', 'dir', 'hello.txt', 'link', 'tool.sh']);
  });

  it('reports committed sizes, modes and symlinks from trees', () => {
    assert.equal(statSync(join(main, 'big.bin')).size, chunked.length);
    assert.equal(statSync(join(main, 'tool.sh')).mode & 0o777, 0o755);
    assert.equal(statSync(join(main, 'hello.txt')).mode & 0o777, 0o644);
    assert.ok(lstatSync(join(main, 'link')).isSymbolicLink());
    assert.equal(readlinkSync(join(main, 'link')), 'hello.txt');
    assert.equal(readFileSync(join(main, 'link'), 'utf8'), 'hello\n');
  });

  it('reads a chunked file at random offsets, byte-exact', () => {
    const fd = openSync(join(main, 'big.bin'), 'r');
    try {
      for (const [pos, len] of [[0, 100], [4096 * 77 + 13, 70_000], [chunked.length - 5000, 5000], [chunked.length - 10, 100], [1 << 20, 1 << 20]] as const) {
        const buf = Buffer.alloc(len);
        const n = readSync(fd, buf, 0, len, pos);
        assert.equal(n, Math.min(len, chunked.length - pos));
        assert.ok(buf.subarray(0, n).equals(chunked.subarray(pos, pos + n)), `range ${pos}+${len}`);
      }
    } finally {
      closeSync(fd);
    }
    assert.ok(readFileSync(join(main, 'big.bin')).equals(chunked));
  });

  it('creates, overwrites, appends and truncates on open (O_TRUNC)', () => {
    const f = join(main, 'new.txt');
    writeFileSync(f, 'one\n');
    writeFileSync(f, 'two\n', { flag: 'a' });
    assert.equal(readFileSync(f, 'utf8'), 'one\ntwo\n');
    const fd = openSync(f, 'r+');
    writeSync(fd, 'ONE', 0, 'utf8');
    closeSync(fd);
    assert.equal(readFileSync(f, 'utf8'), 'ONE\ntwo\n');
    writeFileSync(f, 'x');
    assert.equal(readFileSync(f, 'utf8'), 'x');
    writeFileSync(join(main, 'hello.txt'), 'replaced\n');
    assert.equal(readFileSync(join(main, 'hello.txt'), 'utf8'), 'replaced\n');
    writeFileSync(join(main, 'hello.txt'), 'hello\n');
  });

  it('writes sparse files: a hole reads as zeros', () => {
    const f = join(main, 'sparse.bin');
    const fd = openSync(f, 'w');
    writeSync(fd, Buffer.from('end'), 0, 3, 3 << 20);
    closeSync(fd);
    assert.equal(statSync(f).size, (3 << 20) + 3);
    const data = readFileSync(f);
    assert.ok(data.subarray(0, 3 << 20).equals(Buffer.alloc(3 << 20)));
    assert.equal(data.subarray(3 << 20).toString(), 'end');
  });

  it('truncates up and down, committed files (copy-up) and new ones, and through a handle', () => {
    const f = join(main, 'dir/sub/deep.txt');
    truncateSync(f, 2);
    assert.equal(readFileSync(f, 'utf8'), 'de');
    truncateSync(f, 6);
    assert.ok(readFileSync(f).equals(Buffer.from('de\0\0\0\0')));
    assert.equal(statElsewhere(f).size, 6);
    const g = join(main, 'trunc.txt');
    writeFileSync(g, '0123456789');
    const fd = openSync(g, 'r+');
    ftruncateSync(fd, 4);
    closeSync(fd);
    assert.equal(readFileSync(g, 'utf8'), '0123');
    truncateSync(join(main, 'big.bin'), 1000);
    assert.ok(readFileSync(join(main, 'big.bin')).equals(chunked.subarray(0, 1000)));
  });

  it('renames a file, a directory, over an existing file and across directories', () => {
    writeFileSync(join(main, 'r1'), 'r1');
    renameSync(join(main, 'r1'), join(main, 'r2'));
    assert.ok(!existsSync(join(main, 'r1')));
    assert.equal(readFileSync(join(main, 'r2'), 'utf8'), 'r1');
    writeFileSync(join(main, 'r3'), 'r3');
    renameSync(join(main, 'r2'), join(main, 'r3'));
    assert.equal(readFileSync(join(main, 'r3'), 'utf8'), 'r1');
    mkdirSync(join(main, 'moved-into'));
    renameSync(join(main, 'r3'), join(main, 'moved-into/r4'));
    assert.equal(readFileSync(join(main, 'moved-into/r4'), 'utf8'), 'r1');
    renameSync(join(main, 'dir'), join(main, 'dir2'));
    assert.equal(readFileSync(join(main, 'dir2/sub/deep.txt')).length, 6);
    assert.ok(!existsSync(join(main, 'dir')));
    renameSync(join(main, 'dir2'), join(main, 'dir'));
    assert.equal(readdirSync(join(main, 'dir/sub')).join(), 'deep.txt');
  });

  it('refuses renames that would lose data or cross branches', () => {
    mkdirSync(join(main, 'full'));
    writeFileSync(join(main, 'full/x'), 'x');
    mkdirSync(join(main, 'other'));
    assert.equal(errnoOf(() => renameSync(join(main, 'other'), join(main, 'full'))), 'ENOTEMPTY');
    assert.equal(errnoOf(() => renameSync(join(main, 'full/x'), join(main, 'other'))), 'EISDIR');
    assert.equal(errnoOf(() => renameSync(join(main, 'full'), join(main, 'full/inside'))), 'EINVAL');
    assert.equal(errnoOf(() => renameSync(join(main, 'full/x'), join(mnt, 'team/web/x'))), 'EXDEV');
  });

  it('keeps an unlinked file readable and writable through its open handle', () => {
    const f = join(main, 'open-unlinked');
    writeFileSync(f, 'still here');
    const fd = openSync(f, 'r+');
    try {
      unlinkSync(f);
      assert.ok(!existsSync(f));
      assert.ok(!readdirSync(main).some((n) => n.startsWith('.fuse_hidden')));
      const buf = Buffer.alloc(10);
      assert.equal(readSync(fd, buf, 0, 10, 0), 10);
      assert.equal(buf.toString(), 'still here');
      writeSync(fd, Buffer.from('STILL'), 0, 5, 0);
      assert.equal(readSync(fd, buf, 0, 10, 0), 10);
      assert.equal(buf.toString(), 'STILL here');
    } finally {
      closeSync(fd);
    }
    // a committed file too
    const h = join(main, 'tool.sh');
    const fd2 = openSync(h, 'r');
    unlinkSync(h);
    const buf = Buffer.alloc(9);
    readSync(fd2, buf, 0, 9, 0);
    closeSync(fd2);
    assert.equal(buf.toString(), '#!/bin/sh');
  });

  it('hides a file unlinked while open by its path, whatever content each holder reads, until the last holder closes', async () => {
    // A branch of its own: these commits leave main's history as the other tests expect it.
    mkdirSync(join(mnt, 'hiding'));
    const dir = join(mnt, 'hiding', 'hide');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a'), 'written\n');
    writeFileSync(join(dir, 'b'), 'committed\n');
    // Open before the commit: the holder reads the written file, the path then names committed content.
    const early = openSync(join(dir, 'a'), 'r');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'hiding', '-m', 'hide fixture']);
    const first = openSync(join(dir, 'b'), 'r');
    const second = openSync(join(dir, 'b'), 'r');
    try {
      unlinkSync(join(dir, 'a'));
      unlinkSync(join(dir, 'b'));
      assert.deepEqual(readdirSync(dir), [], 'no .fuse_hidden name shows');
      const buf = Buffer.alloc(10);
      assert.equal(readSync(early, buf, 0, 8, 0), 8);
      assert.equal(buf.subarray(0, 8).toString(), 'written\n');
      // One holder of b closes; the other still reads it, and its attributes answer.
      closeSync(first);
      assert.equal(fstatSync(second).size, 10);
      assert.equal(readSync(second, buf, 0, 10, 0), 10, 'the other holder still reads');
      assert.equal(buf.toString(), 'committed\n');
    } finally {
      closeSync(early);
      closeSync(second);
    }
    rmdirSync(dir);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'hiding', '-m', 'hide gone']);
    assert.doesNotMatch(git(repo, ['ls-tree', '-r', '--name-only', 'hiding']), /fuse_hidden|^hide\//m);
  });

  it('a reader opened before a writer sees what the writer writes, on pages it had not read', async () => {
    mkdirSync(join(mnt, 'sharing'));
    const f = join(mnt, 'sharing', 'shared.bin');
    writeFileSync(f, Buffer.alloc(3 * 4096, 'o'));
    await gitfsOk(['commit', '--repo', repo, '--branch', 'sharing', '-m', 'shared fixture']);
    const reader = openSync(f, 'r');
    const writer = openSync(f, 'r+');
    try {
      seenThrough(writer, reader);
      truncateSync(f, 4096);
      assert.equal(fstatSync(reader).size, 4096);
    } finally {
      closeSync(writer);
      closeSync(reader);
    }
  });

  it('a reader of a written file, committed while it reads, sees what a writer opened after the commit writes', async () => {
    mkdirSync(join(mnt, 'sharing2'));
    const f = join(mnt, 'sharing2', 'written.bin');
    writeFileSync(f, Buffer.alloc(3 * 4096, 'a'));
    const reader = openSync(f, 'r');
    try {
      await gitfsOk(['commit', '--repo', repo, '--branch', 'sharing2', '-m', 'written, then committed']);
      const writer = openSync(f, 'r+');
      try {
        seenThrough(writer, reader);
        assert.equal(fstatSync(reader).size, 3 * 4096);
      } finally {
        closeSync(writer);
      }
    } finally {
      closeSync(reader);
    }
  });

  it('a committed file opened with O_TRUNC, or cut short, has only what stays copied up (it was copied whole first)', async () => {
    mkdirSync(join(mnt, 'trunc'));
    const whole = pseudoRandomBytes(16 << 20, 'cut short');
    writeFileSync(join(mnt, 'trunc', 'a.bin'), whole);
    writeFileSync(join(mnt, 'trunc', 'b.bin'), whole);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'trunc', '-m', 'two large files']);
    const written = (): number => Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${mount.child.pid}/io`, 'utf8'))?.[1]);
    const before = written();
    writeFileSync(join(mnt, 'trunc', 'a.bin'), 'x');
    // truncate(2) itself (Node's and coreutils' truncate open the file for writing first, which copies it up whole).
    execFileSync('python3', ['-c', 'import os, sys; os.truncate(sys.argv[1], 10)', join(mnt, 'trunc', 'b.bin')]);
    const copied = written() - before;
    assert.equal(readFileSync(join(mnt, 'trunc', 'a.bin'), 'utf8'), 'x');
    assert.deepEqual(readFileSync(join(mnt, 'trunc', 'b.bin')), whole.subarray(0, 10));
    assert.ok(copied < 1 << 20, `the mount wrote ${copied} bytes`);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'trunc', '-m', 'cut']);
    assert.equal(git(repo, ['show', 'trunc:a.bin']), 'x');
  });

  it('makes and removes directories; ENOTEMPTY, ENOTDIR, EEXIST', () => {
    mkdirSync(join(main, 'a/b/c'), { recursive: true });
    writeFileSync(join(main, 'a/b/c/f'), 'f');
    assert.equal(errnoOf(() => rmdirSync(join(main, 'a/b'))), 'ENOTEMPTY');
    assert.equal(errnoOf(() => rmdirSync(join(main, 'a/b/c/f'))), 'ENOTDIR');
    assert.equal(errnoOf(() => mkdirSync(join(main, 'a'))), 'EEXIST');
    unlinkSync(join(main, 'a/b/c/f'));
    rmdirSync(join(main, 'a/b/c'));
    rmdirSync(join(main, 'a/b'));
    assert.deepEqual(readdirSync(join(main, 'a')), []);
    assert.equal(errnoOf(() => rmdirSync(join(main, 'dir'))), 'ENOTEMPTY');
    assert.equal(errnoOf(() => unlinkSync(join(main, 'nope'))), 'ENOENT');
  });

  it('creates symlinks and reads them back', () => {
    symlinkSync('../hello.txt', join(main, 'a/up'));
    assert.equal(readlinkSync(join(main, 'a/up')), '../hello.txt');
    assert.equal(readFileSync(join(main, 'a/up'), 'utf8'), 'hello\n');
    assert.equal(lstatSync(join(main, 'a/up')).size, '../hello.txt'.length);
  });

  it('shows chmod, rename and size changes to another process at once', () => {
    const f = join(main, 'attrs.txt');
    writeFileSync(f, '12345');
    assert.equal(statElsewhere(f).mode, '644');
    chmodSync(f, 0o755);
    assert.equal(statElsewhere(f).mode, '755');
    chmodSync(join(main, 'hello.txt'), 0o755);
    assert.equal(statElsewhere(join(main, 'hello.txt')).mode, '755');
    chmodSync(join(main, 'hello.txt'), 0o644);
    writeFileSync(f, '123', { flag: 'a' });
    assert.equal(statElsewhere(f).size, 8);
    renameSync(f, join(main, 'attrs2.txt'));
    assert.equal(statElsewhere(join(main, 'attrs2.txt')).size, 8);
    assert.throws(() => statElsewhere(f));
  });

  it('sets times with utimensat, honouring UTIME_OMIT', () => {
    const f = join(main, 'times.txt');
    writeFileSync(f, 't');
    execFileSync('touch', ['-m', '-d', '@1000000000', f]);
    execFileSync('touch', ['-a', '-d', '@1200000000', f]);
    assert.equal(statElsewhere(f).mtime, 1000000000);
    assert.equal(Math.round(statSync(f).atimeMs / 1000), 1200000000);
    execFileSync('touch', ['-m', '-d', '@1100000000', join(main, 'dir')]);
    assert.equal(statElsewhere(join(main, 'dir')).mtime, 1100000000);
    execFileSync('touch', ['-d', '@1300000000', join(main, 'big.bin')]);
    assert.equal(statElsewhere(join(main, 'big.bin')).mtime, 1300000000);
  });

  it('updates the time of a directory when a name is added to it or removed from it', () => {
    const d = join(main, 'dir-times');
    mkdirSync(d);
    execFileSync('touch', ['-d', '@1000000000', d]);
    assert.equal(statElsewhere(d).mtime, 1000000000);
    writeFileSync(join(d, 'new'), 'x');
    const afterCreate = statElsewhere(d).mtime;
    assert.ok(afterCreate > 1000000000);
    execFileSync('touch', ['-d', '@1000000000', d]);
    unlinkSync(join(d, 'new'));
    assert.ok(statElsewhere(d).mtime > 1000000000);
  });

  it('fsyncs files and answers statfs', () => {
    const fd = openSync(join(main, 'synced'), 'w');
    writeSync(fd, 'durable');
    fsyncSync(fd);
    closeSync(fd);
    const s = statfsSync(main);
    assert.ok(s.blocks > 0 && s.bsize > 0);
  });

  it('answers access(2) as the modes and views say: X_OK only for executables, W_OK under the read-only views EROFS (everything was allowed)', async () => {
    // A branch of its own: the history of main is another test's.
    const branch = join(mnt, 'access');
    mkdirSync(branch);
    writeFileSync(join(branch, 'acc.txt'), 'a\n');
    writeFileSync(join(branch, 'acc.sh'), '#!/bin/sh\n');
    chmodSync(join(branch, 'acc.sh'), 0o755);
    accessSync(join(branch, 'acc.sh'), constants.X_OK);
    accessSync(join(branch, 'acc.txt'), constants.R_OK | constants.W_OK);
    assert.equal(errnoOf(() => accessSync(join(branch, 'acc.txt'), constants.X_OK)), 'EACCES');
    assert.equal(errnoOf(() => accessSync(join(branch, 'no-such-file'))), 'ENOENT');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'access', '-m', 'access']);
    const id = git(repo, ['rev-parse', 'access']).trim();
    const committed = join(mnt, '.commits', id);
    accessSync(join(committed, 'acc.txt'), constants.R_OK);
    accessSync(join(committed, 'acc.sh'), constants.X_OK);
    for (const p of [join(committed, 'acc.txt'), committed, join(mnt, '.history')]) assert.equal(errnoOf(() => accessSync(p, constants.W_OK)), 'EROFS', p);
    assert.equal(errnoOf(() => accessSync(join(committed, 'acc.txt'), constants.X_OK)), 'EACCES');
  });

  it('keeps the times utimensat sets on a written file to the ms, and a directory made with mode 0 has mode 0', () => {
    const f = join(main, 'timed.txt');
    writeFileSync(f, 't\n');
    const when = new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 123));
    // touch passes the time exactly (Node's utimes would pass a double of seconds, .122999906).
    execFileSync('touch', ['-d', '2020-01-02 03:04:05.123 UTC', f]);
    assert.equal(statSync(f).mtimeMs, when.getTime());
    assert.equal(statSync(f).atimeMs, when.getTime());
    unlinkSync(f);
    const d = join(main, 'closed-dir');
    mkdirSync(d, 0);
    assert.equal(statSync(d).mode & 0o7777, 0);
    rmdirSync(d);
  });

  it('a file held open in a directory removed with rm -rf keeps working through its descriptor (reads, writes, fsync) and its mapping (ENOENT and SIGBUS before)', () => {
    const dir = join(main, 'logs');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    const log = join(dir, 'sub', 'app.log');
    writeFileSync(log, 'first\n');
    const fd = openSync(log, 'r+');
    try {
      execFileSync('rm', ['-rf', dir]);
      assert.equal(existsSync(dir), false);
      assert.equal(writeSync(fd, 'second\n', 6), 7);
      const back = Buffer.alloc(13);
      assert.equal(readSync(fd, back, 0, 13, 0), 13);
      assert.equal(back.toString(), 'first\nsecond\n');
      fsyncSync(fd);
      // Its attributes asked with the handle (libfuse does after a truncate): they are the file's, not the root's (EIO for good after).
      ftruncateSync(fd, 6);
      const cut = Buffer.alloc(13);
      assert.equal(readSync(fd, cut, 0, 13, 0), 6);
      assert.equal(cut.subarray(0, 6).toString(), 'first\n');
      assert.equal(writeSync(fd, 'third\n', 6), 6);
      // fstat asks for the attributes without the handle, and libfuse 2 finds no path: ENOENT still (README).
    } finally {
      closeSync(fd);
    }
    // A mapping of a committed file, one page touched before the removal and another after.
    const mapped = join(main, 'mapped');
    mkdirSync(mapped);
    writeFileSync(join(mapped, 'data.bin'), pseudoRandomBytes(1 << 20, 'mapped'));
    const script = [
      'import mmap, os, subprocess, sys',
      'f = open(sys.argv[1], "rb")',
      'm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)',
      'first = m[0]',
      'subprocess.run(["rm", "-rf", sys.argv[2]], check=True)',
      'print(m[(1 << 20) - 1] == open(sys.argv[3], "rb").read()[-1])',
    ].join('\n');
    const reference = join(tmp.make(), 'data.bin');
    writeFileSync(reference, pseudoRandomBytes(1 << 20, 'mapped'));
    assert.equal(execFileSync('python3', ['-c', script, join(mapped, 'data.bin'), mapped, reference], { encoding: 'utf8' }).trim(), 'True');
  });

  it('refuses hard links and special files with EPERM', () => {
    assert.equal(errnoOf(() => linkSync(join(main, 'synced'), join(main, 'hard'))), 'EPERM');
    assert.throws(() => execFileSync('mkfifo', [join(main, 'fifo')], { stdio: 'pipe' }));
    assert.ok(!existsSync(join(main, 'fifo')));
  });

  it('refuses names git cannot store', () => {
    assert.equal(errnoOf(() => mkdirSync(join(main, '.git'))), 'EINVAL');
    assert.equal(errnoOf(() => writeFileSync(join(main, '.GIT'), 'x')), 'EINVAL');
  });

  it('refuses names over 255 bytes (ENAMETOOLONG), and names and link targets that are not UTF-8 (EINVAL: the binding decodes them, and two would become one)', () => {
    const raw = (name: Buffer): Buffer => Buffer.concat([Buffer.from(`${main}/`), name]);
    const longest = join(main, 'n'.repeat(255));
    writeFileSync(longest, 'x');
    try {
      assert.equal(errnoOf(() => writeFileSync(join(main, 'n'.repeat(256)), 'x')), 'ENAMETOOLONG');
      assert.equal(errnoOf(() => mkdirSync(join(main, 'é'.repeat(128)))), 'ENAMETOOLONG', '256 bytes in 128 characters');
      assert.equal(errnoOf(() => renameSync(longest, join(main, 'n'.repeat(256)))), 'ENAMETOOLONG');
      assert.equal(errnoOf(() => writeFileSync(raw(Buffer.from('caf\xe9.txt', 'latin1')), 'e-acute')), 'EINVAL');
      assert.equal(errnoOf(() => mkdirSync(raw(Buffer.from('caf\xe8', 'latin1')))), 'EINVAL');
      assert.equal(errnoOf(() => renameSync(longest, raw(Buffer.from([0x69, 0x6e, 0x76, 0xfd])))), 'EINVAL');
      assert.equal(errnoOf(() => symlinkSync(Buffer.from([0xff, 0xfe]), join(main, 'bad-target'))), 'EINVAL');
      assert.deepEqual(readdirSync(main).filter((n) => n.includes('\uFFFD') || n === 'bad-target'), []);
      // A branch made at the root takes the same names.
      assert.equal(errnoOf(() => mkdirSync(Buffer.concat([Buffer.from(`${mnt}/`), Buffer.from('caf\xe9', 'latin1')]))), 'EINVAL');
      assert.equal(errnoOf(() => mkdirSync(join(mnt, 'b'.repeat(256)))), 'ENAMETOOLONG');
      assert.deepEqual(readdirSync(mnt).filter((n) => n.includes('\uFFFD')), []);
    } finally {
      unlinkSync(longest);
    }
  });

  it('takes .gitmodules and .gitattributes only as git fsck would: no directory or link by those names, content checked at commit', async () => {
    const dir = join(mnt, 'special');
    mkdirSync(dir);
    // git reads these names as .gitmodules or .gitattributes, and refuses them as directories or (.gitmodules) as links.
    for (const name of ['.gitmodules', 'GITATT~1', '~1234567']) assert.equal(errnoOf(() => mkdirSync(join(dir, name))), 'EINVAL', name);
    assert.equal(errnoOf(() => symlinkSync('x', join(dir, '.GitModules.'))), 'EINVAL');
    mkdirSync(join(dir, 'other'));
    assert.equal(errnoOf(() => renameSync(join(dir, 'other'), join(dir, '.gitattributes'))), 'EINVAL');

    const hostile = '[submodule "lib"]\n\tpath = lib\n\turl = --upload-pack=touch /tmp/pwned\n';
    writeFileSync(join(dir, 'notes'), hostile);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'special', '-m', 'notes, under a name git reads as nothing special']);
    const made = git(repo, ['rev-parse', 'special']);
    const refusedCommit = async (what: string, path: string): Promise<void> => {
      const refused = await gitfs(['commit', '--repo', repo, '--branch', 'special', '-m', 'bad modules']);
      assert.equal(refused.code, 8, `${what}: ${refused.stderr}`);
      assert.match(refused.stderr, new RegExp(`^gitfs commit: ${path}: git would refuse it as \\.gitmodules: disallowed submodule url: --upload-pack.*\\[GITFS_FSCK_REFUSED\\]`), what);
      assert.equal(git(repo, ['rev-parse', 'special']), made, `${what}: the branch did not move`);
      assert.equal(readFileSync(join(dir, path), 'utf8'), hostile, `${what}: the file is kept as it is`);
    };
    renameSync(join(dir, 'notes'), join(dir, 'gitmod~1'));
    await refusedCommit('renamed from a committed file', 'gitmod~1');
    renameSync(join(dir, 'gitmod~1'), join(dir, 'notes'));
    writeFileSync(join(dir, '.gitmodules'), hostile);
    await refusedCommit('written', '.gitmodules');

    writeFileSync(join(dir, '.gitmodules'), '[submodule "lib"]\n\tpath = lib\n\turl = https://example.org/lib.git\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'special', '-m', 'modules']);
    assert.match(git(repo, ['show', 'special:.gitmodules']), /example\.org/);
    git(repo, ['fsck', '--strict']);
  });

  it('takes paths as long as the kernel allows', () => {
    let dir = main;
    const parts: string[] = [];
    while (dir.length < 3800) {
      const part = 'd'.repeat(200);
      parts.push(part);
      dir = join(dir, part);
    }
    mkdirSync(dir, { recursive: true });
    const leaf = join(dir, 'f'.repeat(Math.max(1, 4000 - dir.length)));
    writeFileSync(leaf, 'long');
    assert.equal(readFileSync(leaf, 'utf8'), 'long');
    execFileSync('rm', ['-r', join(main, parts[0] as string)]);
  });

  it('serves history read-only: .history/<branch>/<time>_<id>, .commits/<id>, .objects/<id>', async () => {
    const head = git(repo, ['rev-parse', 'main']).trim();
    const entries = readdirSync(join(mnt, '.history/main'));
    assert.equal(entries.length, 1);
    assert.match(entries[0] as string, new RegExp(`^\\d{8}T\\d{6}Z_${head.slice(0, 12)}$`));
    const old = join(mnt, '.history/main', entries[0] as string);
    assert.equal(readFileSync(join(old, 'hello.txt'), 'utf8'), 'hello\n');
    assert.ok(readFileSync(join(old, 'big.bin')).equals(chunked));
    assert.equal(errnoOf(() => writeFileSync(join(old, 'hello.txt'), 'no')), 'EROFS');
    assert.equal(errnoOf(() => mkdirSync(join(old, 'x'))), 'EROFS');
    assert.equal(errnoOf(() => unlinkSync(join(old, 'hello.txt'))), 'EROFS');
    assert.deepEqual(readdirSync(join(mnt, '.commits', head)).sort(), ['big.bin', 'dir', 'hello.txt', 'link', 'tool.sh']);
    assert.deepEqual(readdirSync(join(mnt, '.commits', head.slice(0, 10))).length, 5);
    assert.equal(readdirSync(join(mnt, '.history/team/web')).length, 1);
    const blob = git(repo, ['rev-parse', `${head}:hello.txt`]).trim();
    assert.equal(readFileSync(join(mnt, '.objects', blob), 'utf8'), 'hello\n');
    const bigTree = (await gitfsOk(['ls', '--repo', repo, '--json', `${head}`])).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { path: string; oid: string }).find((e) => e.path === 'big.bin');
    assert.ok(bigTree !== undefined);
    assert.equal(statSync(join(mnt, '.objects', bigTree.oid)).size, chunked.length);
    assert.ok(readFileSync(join(mnt, '.objects', bigTree.oid)).equals(chunked));
    assert.equal(errnoOf(() => statSync(join(mnt, '.commits/0000000000000000000000000000000000000000'))), 'ENOENT');
    // A large blob git wrote (one object, not chunked): a stat learns its type and size from its header, not by reading it.
    const large = pseudoRandomBytes(24 << 20, 'large blob by git');
    const largeOid = execFileSync('git', [`--git-dir=${repo}`, 'hash-object', '-w', '--stdin'], { input: large, encoding: 'utf8' }).trim();
    const read = (): number => Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${mount.child.pid}/io`, 'utf8'))?.[1]);
    const before = read();
    assert.equal(statElsewhere(join(mnt, '.objects', largeOid)).size, large.length);
    assert.ok(read() - before < 1 << 20, `the mount read ${read() - before} bytes to stat a 24 MiB blob`);
    assert.ok(readFileSync(join(mnt, '.objects', largeOid)).equals(large));
  });

  it('makes a branch with mkdir at the root, and removes it with rmdir while empty', async () => {
    mkdirSync(join(mnt, 'fresh'));
    assert.match(await gitfsOk(['branch', 'list', '--repo', repo]), /fresh/);
    writeFileSync(join(mnt, 'fresh/f'), 'f');
    assert.equal(errnoOf(() => rmdirSync(join(mnt, 'fresh'))), 'ENOTEMPTY');
    mkdirSync(join(mnt, 'gone'));
    rmdirSync(join(mnt, 'gone'));
    // Changes that cancel out leave no change: the branch is still empty.
    mkdirSync(join(mnt, 'undone'));
    mkdirSync(join(mnt, 'undone/x'));
    rmdirSync(join(mnt, 'undone/x'));
    writeFileSync(join(mnt, 'undone/f'), 'f');
    unlinkSync(join(mnt, 'undone/f'));
    rmdirSync(join(mnt, 'undone'));
    assert.doesNotMatch(await gitfsOk(['branch', 'list', '--repo', repo]), /undone/);
    mkdirSync(join(mnt, 'undone'));
    assert.deepEqual(readdirSync(join(mnt, 'undone')), [], 'made again, it starts empty');
    assert.doesNotMatch(await gitfsOk(['branch', 'list', '--repo', repo]), /gone/);
    assert.equal(errnoOf(() => writeFileSync(join(mnt, 'top-level-file'), 'x')), 'EPERM');
  });

  it("keeps a process's working directory at a branch's root across a commit of that branch (it lost it: getcwd ENOENT, git status failed there)", async () => {
    const branch = join(mnt, 'cwd-kept');
    mkdirSync(branch);
    writeFileSync(join(branch, 'f'), 'one\n');
    const go = join(tmp.make(), 'go');
    // Waits in the branch's root for the go file (bounded), then prints its working directory.
    const script = 'import os, sys, time\nprint("ready", flush=True)\nfor _ in range(1500):\n    if os.path.exists(sys.argv[1]): break\n    time.sleep(0.02)\ntry:\n    print(os.getcwd())\nexcept OSError as e:\n    print("getcwd failed:", e)\n';
    const child = spawn('python3', ['-c', script, go], { cwd: branch, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      for (let i = 0; i < 500 && !out.includes('ready'); i++) await sleep(10);
      assert.match(out, /ready/);
      writeFileSync(join(branch, 'f'), 'two\n');
      await gitfsOk(['commit', '--repo', repo, '--branch', 'cwd-kept', '-m', 'while a process works in the branch root']);
      // The mount forgets the branch again 100 ms and 1 s after the commit settles.
      await sleep(1500);
      writeFileSync(go, '');
      await exited;
      assert.equal(out.split('\n')[1], branch);
    } finally {
      child.kill();
    }
  });

  it('gitfs branch delete refuses a branch with uncommitted changes, as rmdir of its directory does (it deleted it, and the next commit called its own changes a conflict)', async () => {
    const branch = join(mnt, 'to-delete');
    mkdirSync(branch);
    writeFileSync(join(branch, 'kept'), 'committed\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'to-delete', '-m', 'one']);
    writeFileSync(join(branch, 'pending'), 'not committed\n');
    const refused = await gitfs(['branch', '--repo', repo, 'delete', 'to-delete']);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, /to-delete has 1 uncommitted changes .*\[GITFS_WORK_CONFLICT\]/);
    assert.match(await gitfsOk(['branch', 'list', '--repo', repo]), /to-delete/);
    await gitfsOk(['reset', '--repo', repo, '--branch', 'to-delete']);
    await gitfsOk(['branch', '--repo', repo, 'delete', 'to-delete']);
    assert.doesNotMatch(await gitfsOk(['branch', 'list', '--repo', repo]), /to-delete/);
  });
});
