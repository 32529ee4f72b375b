import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { git, gitfsOk } from '../support/cli.js';
import { pseudoRandomBytes } from '../support/data.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';

/** Bytes of `path` the kernel's page cache holds, as fincore (util-linux) sees them: fincore opens the file itself. */
function cachedBytes(path: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' }).trim());
}

/** Reads `path` until it holds `want`; every read must be one of `allowed` whole. */
async function until(path: string, want: Buffer, allowed: readonly Buffer[]): Promise<void> {
  let seen = readFileSync(path);
  for (let i = 0; i < 300 && !seen.equals(want); i++) {
    assert.ok(allowed.some((a) => a.equals(seen)), `read ${seen.length} bytes that are none of the versions`);
    await sleep(10);
    seen = readFileSync(path);
  }
  assert.ok(seen.equals(want), 'the new content shows');
}

describe('mount: the kernel keeps the pages of committed content across opens', function () {
  const tmp = mountSuiteDirs();
  const SIZE = 1 << 20; // chunked (above the 256 KiB threshold)

  async function fixture(files: Record<string, Buffer>): Promise<{ repo: string; src: string; mnt: string }> {
    const base = tmp.make();
    const repo = join(base, 'repo');
    const src = join(base, 'src');
    mkdirSync(src, { recursive: true });
    for (const [name, data] of Object.entries(files)) writeFileSync(join(src, name), data);
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'base']);
    return { repo, src, mnt: join(base, 'mnt') };
  }

  it('keeps them while the content is the same, and never serves them once git moved the branch to other bytes of the same size', async () => {
    const a = pseudoRandomBytes(SIZE, 'a');
    const { repo, src, mnt } = await fixture({ 'a.bin': a, 'small.txt': Buffer.from('small\n') });
    await TestMount.start(repo, mnt);
    const path = join(mnt, 'main/a.bin');
    assert.ok(readFileSync(path).equals(a));
    assert.equal(cachedBytes(path), SIZE, 'a second open keeps what the first read');
    assert.equal(readFileSync(join(mnt, 'main/small.txt'), 'utf8'), 'small\n');
    assert.equal(cachedBytes(join(mnt, 'main/small.txt')), 4096);
    // The same size and path, other bytes, moved in by git (which tells no mount), in a commit of
    // the same time: the file's attributes stay the same, so nothing but gitfs tells the kernel.
    const first = git(repo, ['rev-parse', 'main']).trim();
    const b = pseudoRandomBytes(SIZE, 'b');
    writeFileSync(join(src, 'a.bin'), b);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'next', '--from', src]);
    const when = git(repo, ['log', '-1', '--format=%cI', first]).trim();
    const same = execFileSync('git', [`--git-dir=${repo}`, 'commit-tree', '-m', 'same time', 'next^{tree}'], {
      encoding: 'utf8',
      env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when },
    }).trim();
    const mtime = statSync(path).mtimeMs;
    git(repo, ['update-ref', 'refs/heads/main', same]);
    await until(path, b, [a, b]);
    assert.ok(readFileSync(path).equals(b));
    assert.equal(statSync(path).mtimeMs, mtime, 'the file looks the same to the kernel');
    // And back: the pages now hold b, so the first open drops them.
    git(repo, ['update-ref', 'refs/heads/main', first]);
    await until(path, a, [a, b]);
    assert.ok(readFileSync(path).equals(a));
  });

  it('follows renames through the mount: a path that now names another file shows that file', async () => {
    const a = pseudoRandomBytes(SIZE, 'ra');
    const b = pseudoRandomBytes(SIZE, 'rb');
    const { repo, mnt } = await fixture({ 'a.bin': a, 'b.bin': b });
    await TestMount.start(repo, mnt);
    const pa = join(mnt, 'main/a.bin');
    const pb = join(mnt, 'main/b.bin');
    for (let i = 0; i < 2; i++) {
      assert.ok(readFileSync(pa).equals(a));
      assert.ok(readFileSync(pb).equals(b));
    }
    assert.equal(cachedBytes(pa), SIZE);
    renameSync(pb, pa);
    assert.ok(readFileSync(pa).equals(b), 'a.bin is the old b.bin');
    renameSync(pa, pb);
    await gitfsOk(['reset', '--repo', repo, '--branch', 'main']);
    await until(pa, a, [a]);
    assert.ok(readFileSync(pb).equals(b));
  });

  it('drops them, and moves a handle held open onto the new content, when a commit elsewhere changes the file', async () => {
    const a = pseudoRandomBytes(SIZE, 'ha');
    const { repo, src, mnt } = await fixture({ 'a.bin': a });
    await TestMount.start(repo, mnt);
    const path = join(mnt, 'main/a.bin');
    const fd = openSync(path, 'r');
    try {
      const held = Buffer.alloc(SIZE);
      const readHeld = (): Buffer => {
        for (let at = 0; at < SIZE; ) at += readSync(fd, held, at, SIZE - at, at);
        return held;
      };
      assert.ok(readHeld().equals(a));
      assert.equal(cachedBytes(path), SIZE, 'the held handle filled the pages with a');
      const b = pseudoRandomBytes(SIZE, 'hb');
      writeFileSync(join(src, 'a.bin'), b);
      await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
      await until(path, b, [a, b]);
      // The kernel keeps one node per path: the held handle now reads b, as a file rewritten in
      // place, and no page of a is left to any open.
      assert.ok(readHeld().equals(b), 'the held handle reads the new content');
      for (let i = 0; i < 3; i++) assert.ok(readFileSync(path).equals(b), `open ${i} reads the branch's content`);
    } finally {
      closeSync(fd);
    }
  });
});
