/**
 * gitfs as an ordinary user (uid/gid 65534, "nobody"): init, commit (packs are created writable,
 * opened twice, then made read-only), log, cat, fsck, and the real git reading the result. The
 * suite runs as root (CI does); it spawns the CLI with the other uid.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { GITFS_BIN } from '../support/cli.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

const NOBODY = 65534;

describe('gitfs run by an ordinary user', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('commits and reads back, packs read-only, git fsck --strict clean', () => {
    assert.equal(process.getuid?.(), 0, 'the suite runs as root, to spawn as another user');
    const base = tmp.make();
    chownSync(base, NOBODY, NOBODY);
    const src = join(base, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'small.txt'), 'small\n');
    writeFileSync(join(src, 'big.bin'), pseudoRandomBytes(1 << 20, 'non-root'));
    for (const p of [src, join(src, 'small.txt'), join(src, 'big.bin')]) chownSync(p, NOBODY, NOBODY);
    const repo = join(base, 'repo');
    const as = (cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(cmd, args, { uid: NOBODY, gid: NOBODY, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: base, GITFS_AUTHOR_NAME: 'Nobody', GITFS_AUTHOR_EMAIL: 'nobody@example.invalid' }, timeout: 30_000 });
    const gitfs = (args: string[]): string => {
      const r = as(process.execPath, [...NODE_FLAGS, GITFS_BIN, ...args]);
      assert.equal(r.status, 0, `gitfs ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    gitfs(['init', '--repo', repo]);
    gitfs(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'as nobody']);
    assert.equal(gitfs(['cat', '--repo', repo, 'main:small.txt']), 'small\n');
    assert.match(gitfs(['log', '--repo', repo, '--oneline']), /as nobody/);
    gitfs(['fsck', '--repo', repo]);
    const packs = spawnSync('find', [join(repo, 'objects/pack'), '-name', '*.pack'], { encoding: 'utf8' }).stdout.trim().split('\n');
    assert.ok(packs.length > 0 && packs[0] !== '');
    for (const p of packs) {
      assert.equal(statSync(p).mode & 0o777, 0o444, p);
      assert.equal(statSync(p).uid, NOBODY, p);
    }
    const fsck = as('git', ['--git-dir', repo, 'fsck', '--strict']);
    assert.equal(fsck.status, 0, fsck.stderr);
  });
});
