import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { MALLOC_ENV, NODE_FLAGS } from '../../src/cli/node-flags.js';
import { GITFS_BIN, gitfsOk } from '../support/cli.js';
import { mountSuiteDirs } from '../support/mount.js';

const run = promisify(execFile);

function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === path);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('gitfs mount --background, run as the installed command', function () {
  const tmp = mountSuiteDirs();

  it('bin/gitfs runs with the V8 flags and malloc settings every gitfs process takes, and so does the mount it starts', async () => {
    const settings = Object.entries(MALLOC_ENV).map(([k, v]) => `${k}=${v}`);
    assert.equal(readFileSync(GITFS_BIN, 'utf8').split('\n')[0], `#!/usr/bin/env -S ${settings.join(' ')} node ${NODE_FLAGS.join(' ')}`);
    const base = tmp.make();
    const repo = join(base, 'repo');
    const src = join(base, 'src');
    const mnt = join(base, 'mnt');
    mkdirSync(src);
    writeFileSync(join(src, 'a.txt'), 'a\n');
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    let pid: number | undefined;
    try {
      // Executed as a program: its first line chooses the interpreter and flags.
      // Bounded: a background child that kept our stdout open would hold it for ever (the finally's unmount ends that child).
      const { stdout } = await run(GITFS_BIN, ['mount', '--repo', repo, '--background', mnt], { timeout: 60_000, killSignal: 'SIGKILL' });
      pid = Number(/\(pid (\d+)/.exec(stdout)?.[1]);
      assert.ok(pid > 0, stdout);
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      for (const flag of NODE_FLAGS) assert.ok(args.includes(flag), `mount process runs with ${flag}: ${args.join(' ')}`);
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      for (const setting of settings) assert.ok(environ.includes(setting), `mount process runs with ${setting}`);
      assert.deepEqual(readdirSync(join(mnt, 'main')), ['a.txt']);
      await run(GITFS_BIN, ['umount', mnt], { timeout: 60_000, killSignal: 'SIGKILL' });
      assert.ok(!isMounted(mnt));
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
      assert.ok(!alive(pid), 'the mount process exits after gitfs umount');
    } finally {
      if (isMounted(mnt)) execFileSync('fusermount', ['-uz', mnt], { stdio: 'ignore' });
      if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('a mount that does not come up is reported by its own refusal, not by lines of earlier runs (the log is appended to)', async () => {
    const base = tmp.make();
    const repo = join(base, 'repo');
    await gitfsOk(['init', '--repo', repo]);
    const notDir = join(base, 'a-file');
    writeFileSync(notDir, 'x');
    const attempt = async (): Promise<string> => {
      const r = await run(GITFS_BIN, ['mount', '--repo', repo, '--background', notDir], { timeout: 60_000, killSignal: 'SIGKILL' }).then(
        () => assert.fail('the mount came up on a file'),
        (e: { stderr: string }) => e.stderr,
      );
      return r;
    };
    const first = await attempt();
    // The mount's own refusal, said once, with its code, as the mount in the foreground says it.
    assert.match(first, /^gitfs mount: \S+ is not a directory \[GITFS_BAD_ARGUMENT\]\n$/);
    const second = await attempt();
    assert.equal(second.match(/is not a directory/g)?.length, 1, second);
  });

  it('a mount that fails takes away the mount point directories it made, and only those', async () => {
    const base = tmp.make();
    const repo = join(base, 'repo');
    await gitfsOk(['init', '--repo', repo]);
    // Inside the repository: refused after the mount point was made.
    const inside = join(repo, 'gitfs', 'made', 'mnt');
    const stderr = await run(GITFS_BIN, ['mount', '--repo', repo, '--background', inside], { timeout: 60_000, killSignal: 'SIGKILL' }).then(
      () => assert.fail('the mount came up inside its repository'),
      (e: { stderr: string }) => e.stderr,
    );
    assert.match(stderr, /must not contain each other/);
    assert.ok(!existsSync(join(repo, 'gitfs', 'made')), 'the directories the mount made are gone');
    assert.ok(existsSync(join(repo, 'gitfs')), 'the directory that was there stays');
  });
});
