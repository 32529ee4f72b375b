import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git, gitfs, gitfsBytes, gitfsOk } from '../support/cli.js';
import { makeFixtureTree } from '../support/fixture-tree.js';
import { tempDirs } from '../support/tmp.js';

/** `diff -r` (contents, types, symlink targets) plus a comparison of permission bits. */
function assertSameTree(a: string, b: string): void {
  execFileSync('diff', ['-r', '--no-dereference', a, b]);
  const modes = (dir: string): string => execFileSync('find', ['.', '-mindepth', '1', '-printf', '%y %m %p\n'], { cwd: dir, encoding: 'utf8' }).split('\n').sort().join('\n');
  assert.equal(modes(b), modes(a));
}

describe('gitfs commit / export (real CLI, real git)', function () {
  const tmp = tempDirs();
  let repo: string;
  let src: string;
  after(() => tmp.cleanup());

  before(async () => {
    repo = join(tmp.make(), 'repo');
    src = tmp.make();
    makeFixtureTree(src);
    await gitfsOk(['init', '--repo', repo]);
  });

  it('init records the format and chunking parameters in the git config', () => {
    const config = readFileSync(join(repo, 'config'), 'utf8');
    assert.match(config, /formatVersion = 1/);
    assert.match(config, /algorithm = gear32-fastcdc-v1/);
    assert.match(config, /avgSize = 8192/);
    assert.equal(git(repo, ['config', 'gitfs.chunking.threshold']).trim(), '262144');
  });

  it('init refuses an existing repository', async () => {
    const r = await gitfs(['init', '--repo', repo]);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /GITFS_REPOSITORY_EXISTS/);
  });

  it('init and export into a directory that cannot be made (under /proc) fail at once with their codes (Node\'s recursive mkdir spun there for ever)', async () => {
    const started = Date.now();
    const init = await gitfs(['init', '--repo', '/proc/gitfs-no-repo']);
    assert.equal(init.code, 7, init.stderr);
    assert.match(init.stderr, /cannot create \/proc\/gitfs-no-repo: ENOENT.*\[GITFS_IO\]/);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'proc-target', '--from', src, '-m', 'for an export']);
    const out = await gitfs(['export', '--repo', repo, 'proc-target', '/proc/gitfs-no-dir/sub']);
    assert.equal(out.code, 7, out.stderr);
    assert.match(out.stderr, /\[GITFS_EXPORT_TARGET\]/);
    assert.ok(Date.now() - started < 30_000);
  });

  it('init finishes an init that was killed before it wrote the config (open and init both refused what it left), and refuses a directory with anything else in it', async () => {
    const left = join(tmp.make(), 'left');
    for (const d of ['objects/pack', 'objects/info', 'refs/heads', 'refs/tags', 'logs/refs/heads', 'info']) mkdirSync(join(left, d), { recursive: true });
    writeFileSync(join(left, 'description'), 'gitfs repository\n');
    writeFileSync(join(left, 'HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(left, 'config.tmp-0123456789ab'), '[core');
    await gitfsOk(['init', '--repo', left]);
    assert.deepEqual(readdirSync(left).filter((n) => n.includes('.tmp-')), []);
    execFileSync('git', ['--git-dir', left, 'fsck', '--strict'], { stdio: 'pipe' });
    // A repository that lost its config (a pack, a branch) is not an interrupted init: refused, not made over.
    const lost = join(tmp.make(), 'lost');
    await gitfsOk(['init', '--repo', lost]);
    await gitfsOk(['commit', '--repo', lost, '--branch', 'main', '--from', src, '-m', 'kept']);
    rmSync(join(lost, 'config'));
    const relost = await gitfs(['init', '--repo', lost]);
    assert.equal(relost.code, 5, relost.stderr);
    assert.match(relost.stderr, /GITFS_REPOSITORY_EXISTS/);
    const other = join(tmp.make(), 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(other, 'notes.txt'), 'mine\n');
    const r = await gitfs(['init', '--repo', other]);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /GITFS_REPOSITORY_EXISTS/);
  });

  it('commits a tree and exports it byte for byte with modes and symlinks', async () => {
    const out = await gitfsOk(['commit', '--repo', repo, '--branch', 'site/main', '--from', src, '-m', 'first']);
    assert.match(out, /\[site\/main [0-9a-f]{12}\] first/);
    const dest = join(tmp.make(), 'out');
    await gitfsOk(['export', '--repo', repo, 'site/main', dest]);
    assertSameTree(src, dest);
  });

  it('stores large files as chunk trees whose parent entry carries size and mode', async () => {
    const lines = (await gitfsOk(['ls', '--repo', repo, 'site/main:images'])).trim().split('\n');
    const disk = lines.find((l) => l.endsWith(' disk.img'));
    const tools = lines.find((l) => l.endsWith(' tools.bin'));
    assert.match(disk ?? '', /^-rw-r--r-- +3145728 [0-9a-f]{12}\* disk\.img$/);
    assert.match(tools ?? '', /^-rwxr-xr-x +600000 [0-9a-f]{12}\* tools\.bin$/);
    const raw = git(repo, ['ls-tree', 'site/main:images']);
    assert.match(raw, /^040000 tree [0-9a-f]{40}\tdisk\.img~gitfs~c3145728$/m);
    assert.match(raw, /^040000 tree [0-9a-f]{40}\ttools\.bin~gitfs~x600000$/m);
  });

  it('init --chunk-size records bigger chunks, and a file is cut at them', async () => {
    const big = join(tmp.make(), 'repo');
    const out = await gitfsOk(['init', '--repo', big, '--chunk-size', '64K']);
    assert.match(out, /cut at 16\.0 KiB\/64\.0 KiB\/512 KiB \(min\/avg\/max\)/);
    assert.deepEqual(
      ['minsize', 'avgsize', 'maxsize'].map((k) => git(big, ['config', `gitfs.chunking.${k}`]).trim()),
      ['16384', '65536', '524288'],
    );
    await gitfsOk(['commit', '--repo', big, '--branch', 'site/main', '--from', src, '-m', 'first']);
    /** The sizes of the chunks of images/disk.img, in file order, as git lists them. */
    const chunkSizes = (r: string): number[] =>
      git(r, ['ls-tree', '-r', '-l', 'site/main:images/disk.img~gitfs~c3145728'])
        .trim()
        .split('\n')
        .map((l) => Number(l.split(/\s+/)[3]));
    const sizes = chunkSizes(big);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 3 << 20);
    assert.ok(sizes.slice(0, -1).every((n) => n >= 16384 && n <= 524288), `chunk sizes ${sizes.join(' ')}`);
    assert.ok(chunkSizes(repo).length >= 4 * sizes.length, `${chunkSizes(repo).length} default chunks against ${sizes.length}`);
  });

  it('init --chunk-size refuses a size that is not a power of two in range, and creates nothing', async () => {
    for (const size of ['3000', '2K', '512K', '64X', '-1']) {
      const dir = join(tmp.make(), 'repo');
      const r = await gitfs(['init', '--repo', dir, '--chunk-size', size]);
      assert.equal(r.code, 2, `${size}: ${r.stderr}`);
      assert.match(r.stderr, /GITFS_BAD_ARGUMENT/);
      assert.equal(existsSync(dir), false);
    }
  });

  it('cat streams whole files and byte ranges of chunked files', async () => {
    const whole = await gitfsBytes(['cat', '--repo', repo, 'site/main:images/disk.img']);
    assert.equal(whole.code, 0, whole.stderr);
    assert.ok(whole.stdout.equals(readFileSync(join(src, 'images/disk.img'))));
    const part = await gitfsBytes(['cat', '--repo', repo, 'site/main:images/disk.img', '--offset', '1000000', '--length', '70000']);
    assert.ok(part.stdout.equals(readFileSync(join(src, 'images/disk.img')).subarray(1_000_000, 1_070_000)));
    const small = await gitfsBytes(['cat', '--repo', repo, 'site/main:README']);
    assert.equal(small.stdout.toString(), 'hello gitfs\n');
  });

  it('git fsck --strict is clean and git log shows the commits', () => {
    execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict', '--no-dangling'], { stdio: 'pipe' });
    const fsckOut = execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(fsckOut.trim(), '');
    assert.match(git(repo, ['log', '--format=%an %s', 'site/main']), /^Test Author first$/m);
  });

  it('reports what git cannot store, and stores hard links as copies', async () => {
    const src2 = tmp.make();
    makeFixtureTree(src2, { unstorable: true });
    const r = await gitfs(['commit', '--repo', repo, '--branch', 'odd', '--from', src2]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /not stored: etc\/a-fifo \(fifo\)/);
    assert.match(r.stderr, /hard link stored as a copy: README(\.hardlink)? \(same file as README(\.hardlink)?\)/);
    const strict = await gitfs(['commit', '--repo', repo, '--branch', 'odd', '--from', src2, '--strict']);
    assert.equal(strict.code, 8);
    assert.match(strict.stderr, /GITFS_UNSUPPORTED_FILE_TYPE/);
  });

  it('a second version shares storage, and log, diff, show and revisions see both', async () => {
    writeFileSync(join(src, 'README'), 'hello again\n');
    const big = readFileSync(join(src, 'images/disk.img'));
    big.write('an edit in the middle', 1_500_000);
    writeFileSync(join(src, 'images/disk.img'), big);
    unlinkSync(join(src, 'etc/link-dangling'));
    writeFileSync(join(src, 'new-file'), 'new\n');
    const r = JSON.parse(await gitfsOk(['commit', '--repo', repo, '--branch', 'site/main', '--from', src, '-m', 'second', '--json'])) as {
      commit: string;
      stats: { objectsWritten: number; bytesWritten: number };
    };
    assert.ok(r.stats.bytesWritten < 200_000, `second version wrote ${r.stats.bytesWritten} bytes`);
    assert.equal((await gitfsOk(['diff', '--repo', repo, 'site/main~1', 'site/main'])).trim().split('\n').sort().join('\n'), 'A\tnew-file\nD\tetc/link-dangling\nM\tREADME\nM\timages/disk.img');
    assert.match(await gitfsOk(['show', '--repo', repo, r.commit.slice(0, 8)]), /second[\s\S]*M\timages\/disk\.img/);
    const log = await gitfsOk(['log', '--repo', repo, 'site/main', '--oneline']);
    assert.match(log, /second\n.*first\n$/);
    assert.equal((await gitfsBytes(['cat', '--repo', repo, 'site/main@{1}:README'])).stdout.toString(), 'hello gitfs\n');
    assert.equal((await gitfsBytes(['cat', '--repo', repo, 'site/main@{now}:README'])).stdout.toString(), 'hello again\n');
    assert.equal((await gitfsBytes(['cat', '--repo', repo, `site/main@{@${Math.floor(Date.now() / 1000) + 5}}:README`])).stdout.toString(), 'hello again\n');
    const before = await gitfs(['log', '--repo', repo, 'site/main@{2000-01-01}']);
    assert.equal(before.code, 4);
    assert.match(before.stderr, /GITFS_UNKNOWN_REVISION/);
  });

  it('stats reports logical bytes against stored bytes, and the distinct commits of the branches (one two branches share counted once)', async () => {
    await gitfsOk(['branch', '--repo', repo, 'create', 'stats-copy']);
    const s = JSON.parse(await gitfsOk(['stats', '--repo', repo, '--json'])) as { logicalBytes: number; storedBytes: number; dedupRatio: number; commits: number };
    await gitfsOk(['branch', '--repo', repo, 'delete', 'stats-copy']);
    assert.ok(s.commits >= 3);
    assert.equal(s.commits, Number(git(repo, ['rev-list', '--branches', '--count']).trim()));
    assert.ok(s.logicalBytes > 3 * 3_700_000, `logical ${s.logicalBytes}`);
    assert.ok(s.dedupRatio > 2, `dedup ratio ${s.dedupRatio}`);
  });

  it('git clone works, and after git gc --prune=now every commit still exports byte for byte', async () => {
    const clone = join(tmp.make(), 'clone');
    execFileSync('git', ['clone', '-q', '--mirror', repo, clone], { stdio: 'pipe' });
    execFileSync('git', ['clone', '-q', repo, join(tmp.make(), 'worktree')], { stdio: 'pipe' });
    const firstOut = join(tmp.make(), 'first');
    const secondOut = join(tmp.make(), 'second');
    await gitfsOk(['export', '--repo', repo, 'site/main~1', firstOut]);
    await gitfsOk(['export', '--repo', repo, 'site/main', secondOut]);
    execFileSync('git', [`--git-dir=${repo}`, 'gc', '--aggressive', '--prune=now', '-q'], { stdio: 'pipe' });
    for (const [rev, expected] of [['site/main~1', firstOut], ['site/main', secondOut]] as const) {
      const again = join(tmp.make(), 'again');
      await gitfsOk(['export', '--repo', repo, rev, again]);
      assertSameTree(expected, again);
    }
    assert.equal((await gitfsOk(['fsck', '--repo', repo])).trim().split('\n').pop()?.endsWith(': 0 problems'), true);
    rmSync(clone, { recursive: true, force: true });
  });
});
