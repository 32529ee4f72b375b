/**
 * A blob above gitfs's read limit (256 MiB), as git writes one: a clone adds a large file and
 * pushes it back (gitfs itself would chunk it). cat, export, fsck, stats and the mount read it by
 * streaming, holding a few MiB of it at a time.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitfs, gitfsBytes, gitfsOk } from '../support/cli.js';
import { gitText } from '../support/git-env.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';
import { DEFAULT_MAX_OBJECT_BYTES } from '../../src/objects/object-store.js';

/** 272 MB of numbered lines: above the limit, and any byte out of place shows. */
const LINES = 17_000_000;
const SIZE = LINES * 16;

async function sha1OfFile(path: string): Promise<string> {
  const hash = createHash('sha1');
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(piece as Buffer);
  return hash.digest('hex');
}

/** The bytes [at, at + length) of the numbered lines. */
function expectedRange(at: number, length: number): Buffer {
  const first = Math.floor(at / 16);
  const lines: string[] = [];
  for (let n = first; n * 16 < at + length; n++) lines.push(`${String(n + 1).padStart(15, '0')}\n`);
  return Buffer.from(lines.join('')).subarray(at - first * 16, at - first * 16 + length);
}

/** The peak resident memory of process `pid`, in bytes. */
function peakMemory(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

describe('a blob git wrote above the read limit: cat, export, fsck, stats and the mount', function () {
  this.timeout(300_000);
  const tmp = mountSuiteDirs();
  let repo: string;
  let base: string;
  let mnt: string;
  let sha1: string;

  before(async () => {
    ({ base, repo, mnt } = tmp.place());
    writeFileSync(join(base, 'src', 'a.txt'), 'a\n');
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', join(base, 'src'), '-m', 'base']);
    const clone = join(base, 'clone');
    gitText(['clone', '-q', repo, clone]);
    execFileSync('sh', ['-c', `seq -f %015.0f 1 ${LINES} > big.txt`], { cwd: clone });
    gitText(['-c', 'core.looseCompression=1', 'add', 'big.txt'], { cwd: clone });
    gitText(['commit', '-q', '-m', 'a large file, as git stores it'], { cwd: clone });
    gitText(['push', '-q', 'origin', 'main'], { cwd: clone });
    sha1 = await sha1OfFile(join(clone, 'big.txt'));
    assert.ok(SIZE > DEFAULT_MAX_OBJECT_BYTES);
    assert.equal(gitText(['cat-file', '-s', 'main:big.txt'], { gitDir: repo }), String(SIZE));
  });

  it('cat streams it whole or a range of it; export writes it; ls, stats and fsck read it', async () => {
    const whole = await gitfsBytes(['cat', '--repo', repo, 'main:big.txt']);
    assert.equal(whole.code, 0, whole.stderr);
    assert.equal(createHash('sha1').update(whole.stdout).digest('hex'), sha1);
    const at = SIZE - 100_003;
    const range = await gitfsBytes(['cat', '--repo', repo, 'main:big.txt', '--offset', String(at), '--length', '70000']);
    assert.ok(range.stdout.equals(expectedRange(at, 70_000)), range.stderr);
    const out = join(base, 'out');
    await gitfsOk(['export', '--repo', repo, 'main', out]);
    assert.equal(await sha1OfFile(join(out, 'big.txt')), sha1);
    assert.match(await gitfsOk(['ls', '--repo', repo, 'main']), new RegExp(`^-rw-r--r-- +${SIZE} [0-9a-f]{12}  big\\.txt$`, 'm'));
    assert.match(await gitfsOk(['stats', '--repo', repo]), /^commits: +2$/m);
    const fsck = await gitfs(['fsck', '--repo', repo]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    assert.match(fsck.stdout, /: 0 problems/);
  });

  it('the mount reads it forward, back and at random, in bounded memory, and a rename of it commits', async () => {
    const m = await TestMount.start(repo, mnt);
    const path = join(mnt, 'main/big.txt');
    assert.equal(await sha1OfFile(path), sha1);
    const fd = openSync(path, 'r');
    try {
      for (const at of [SIZE - 5000, 12_345, 200_000_000, 7]) {
        const buf = Buffer.alloc(4096);
        assert.equal(readSync(fd, buf, 0, buf.length, at), Math.min(4096, SIZE - at));
        assert.ok(buf.subarray(0, Math.min(4096, SIZE - at)).equals(expectedRange(at, Math.min(4096, SIZE - at))), `bytes at ${at}`);
      }
    } finally {
      closeSync(fd);
    }
    const peak = peakMemory(m.child.pid as number);
    assert.ok(peak < 200 << 20, `the mount peaked at ${peak >> 20} MiB`);
    renameSync(path, join(mnt, 'main/moved.txt'));
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', 'moved']);
    assert.equal(gitText(['rev-parse', 'main:moved.txt'], { gitDir: repo }), gitText(['rev-parse', 'main~1:big.txt'], { gitDir: repo }));
    await m.stop();
  });
});
