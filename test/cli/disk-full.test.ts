import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { errnoOf } from '../../src/mount/fuse-adapter.js';
import { Repository } from '../../src/repo/repository.js';
import { Workspace } from '../../src/work/workspace.js';
import { git, gitfs, gitfsOk } from '../support/cli.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('a full disk during a commit (a real 8 MiB tmpfs)', function () {
  const tmp = tempDirs();
  const mounts: string[] = [];
  after(() => {
    try {
      for (const m of mounts) execFileSync('umount', [m]);
    } finally {
      tmp.cleanup();
    }
  });

  /** A fresh 8 MiB tmpfs. */
  function tmpfs(): string {
    const at = join(tmp.make(), 'mnt');
    mkdirSync(at);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', at]);
    mounts.push(at);
    return at;
  }

  /** Fills the tmpfs with `filler`. */
  function fill(filler: string): void {
    try {
      execFileSync('sh', ['-c', `head -c ${16 << 20} /dev/zero > ${filler}`], { stdio: 'pipe' });
    } catch {
      // The disk filled up: what the test wants.
    }
  }

  /** A repository on a fresh tmpfs whose branch main holds one small file, committed from `src`. */
  async function smallRepo(): Promise<{ mnt: string; repo: string; src: string }> {
    const mnt = tmpfs();
    const repo = join(mnt, 'repo');
    const src = tmp.make();
    writeFileSync(join(src, 'small'), 'fits\n');
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    return { mnt, repo, src };
  }

  it('fails with GITFS_IO, leaves the branch and the repository as they were', async () => {
    const { repo, src } = await smallRepo();
    const before = git(repo, ['rev-parse', 'main']).trim();
    writeFileSync(join(src, 'big.bin'), pseudoRandomBytes(24 << 20, 'too big'));
    const r = await gitfs(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /GITFS_IO/);
    assert.match(r.stderr, /ENOSPC|no space/i);
    assert.equal(git(repo, ['rev-parse', 'main']).trim(), before);
    assert.deepEqual(readdirSync(join(repo, 'objects/pack')).filter((f) => f.startsWith('tmp_')), []);
    execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict'], { stdio: 'pipe' });
    assert.equal((await gitfs(['cat', '--repo', repo, 'main:small'])).stdout, 'fits\n');
  });

  it('a change the full disk refuses is told as ENOSPC (the mount answers with it), and nothing is committed until the layers are opened again', async () => {
    const { mnt, repo } = await smallRepo();
    const r0 = await Repository.open(repo);
    const ws = await Workspace.open(r0);
    const main = parseBranchName('main');
    const head = git(repo, ['rev-parse', 'main']).trim();
    try {
      await ws.fs(main).mkdir('kept', 0o755);
      fill(join(mnt, 'filler'));
      // The store's log has room left in its last page: changes fit until that is full.
      let refused: unknown;
      for (let i = 0; i < 10_000 && refused === undefined; i++) refused = await ws.fs(main).mkdir(`refused-${i}`, 0o755).then(() => undefined, (e: unknown) => e);
      assert.ok(isGitfsError(refused, ErrorCodes.IO), String(refused));
      assert.equal(refused.data['errno'], 'ENOSPC');
      assert.equal(errnoOf(refused, () => undefined, 'mkdir', '/main/refused'), -28);
      await assert.rejects(ws.commit(main, 'would hold the refused change'), (e: unknown) => isGitfsError(e, ErrorCodes.IO) && /a restart of the mount/.test(e.message));
      assert.equal(git(repo, ['rev-parse', 'main']).trim(), head);
    } finally {
      rmSync(join(mnt, 'filler'), { force: true });
      await ws.close().catch(() => undefined);
      await r0.close();
    }
  });

  it('working layers that cannot open on the full disk (LevelDB writes as it opens) say so and lose nothing: once there is room, reset discards the changes', async () => {
    const { mnt, repo } = await smallRepo();
    const r0 = await Repository.open(repo);
    const ws = await Workspace.open(r0);
    await ws.fs(parseBranchName('main')).mkdir('made', 0o755);
    await ws.close();
    await r0.close();
    const filler = join(mnt, 'filler');
    fill(filler);
    const full = await gitfs(['status', '--repo', repo]);
    assert.equal(full.code, 7, full.stderr);
    assert.match(full.stderr, /No space left on device\); the disk is full, .* free some space and run again \(the uncommitted changes are kept\) \[GITFS_IO\]/);
    rmSync(filler);
    assert.match(await gitfsOk(['status', '--repo', repo]), /made/);
    assert.match(await gitfsOk(['reset', '--repo', repo, '--branch', 'main']), /^main: discarded/);
  });
});
