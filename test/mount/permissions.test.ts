import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitfsOk } from '../support/cli.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';

/** Runs a shell command as the unprivileged user `nobody`; true when it succeeds. */
function asNobody(command: string): boolean {
  return spawnSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', command], { stdio: 'ignore' }).status === 0;
}

describe('mount: who may use it', function () {
  const tmp = mountSuiteDirs();

  it('is the mounting user only by default; --allow-other lets others in, with the modes enforced', async () => {
    const { base, repo, src, mnt } = tmp.place();
    chmodSync(base, 0o755);
    writeFileSync(join(src, 'readable.txt'), 'for everyone\n');
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    const own = await TestMount.start(repo, mnt);
    assert.ok(!asNobody(`ls '${mnt}/main'`), 'another user is kept out by default');
    await own.stop();
    await TestMount.start(repo, mnt, ['--allow-other']);
    assert.ok(asNobody(`cat '${mnt}/main/readable.txt'`), 'another user reads a 0644 file');
    assert.ok(!asNobody(`echo no >> '${mnt}/main/readable.txt'`), 'but cannot write a file of the mounting user');
    assert.ok(!asNobody(`touch '${mnt}/main/new-file'`), 'nor create one in its directory');
  });
});
