/**
 * The command line as an operator meets it: help per command, a failing standard output, and a
 * mistyped branch name.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { GITFS_BIN, gitfs, gitfsOk } from '../support/cli.js';
import { tempDirs } from '../support/tmp.js';

describe('gitfs command line: help, output errors, unknown branches', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('`gitfs CMD --help` and `gitfs help CMD` print that command\'s usage and exit 0', async () => {
    for (const args of [['commit', '--help'], ['log', '-h'], ['help', 'commit']]) {
      const r = await gitfs(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: gitfs ${args.includes('log') ? 'log' : 'commit'} `, 'm'), args.join(' '));
    }
  });

  it('`gitfs help UNKNOWN` names the unknown command (not `help`) and prints the command list on standard error, exit 2', async () => {
    for (const args of [['help', 'comit'], ['comit', '--help'], ['comit']]) {
      const r = await gitfs(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^gitfs: unknown command "comit" \[GITFS_BAD_ARGUMENT\]\n\nusage: gitfs <command> /, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
  });

  it('standard output on a full device (/dev/full) is GITFS_IO, exit 7, one line, no stack', async () => {
    const repo = join(tmp.make(), 'repo');
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', tmp.make(), '--allow-empty', '-m', 'empty']);
    const full = spawnSync('sh', ['-c', `"${process.execPath}" ${NODE_FLAGS.join(' ')} "${GITFS_BIN}" log --repo "${repo}" main >/dev/full`], { encoding: 'utf8' });
    assert.equal(full.status, 7, full.stderr);
    assert.match(full.stderr, /^gitfs log: .*ENOSPC.*\[GITFS_IO\]\n$/);
  });

  it('commit, reset and status of a branch that does not exist (a typo) fail with GITFS_UNKNOWN_BRANCH, exit 4', async () => {
    const repo = join(tmp.make(), 'repo');
    await gitfsOk(['init', '--repo', repo]);
    for (const args of [['commit', '--branch', 'mian'], ['reset', '--branch', 'mian'], ['status', '--branch', 'mian']]) {
      const r = await gitfs([...args, '--repo', repo]);
      assert.equal(r.code, 4, `${args[0]}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /no branch mian \[GITFS_UNKNOWN_BRANCH\]/);
    }
  });

  it('a git repository gitfs did not make: init and the other commands both say how to bring it in (they sent the operator round in a loop)', async () => {
    const plain = join(tmp.make(), 'plain.git');
    spawnSync('git', ['init', '-q', '--bare', plain]);
    const init = await gitfs(['init', '--repo', plain]);
    assert.equal(init.code, 5, init.stderr);
    assert.match(init.stderr, /gitfs commit --from.*\[GITFS_REPOSITORY_EXISTS\]/);
    const log = await gitfs(['log', '--repo', plain]);
    assert.equal(log.code, 3, log.stderr);
    assert.match(log.stderr, /a git repository gitfs did not make .*gitfs commit --from.*\[GITFS_NOT_A_REPOSITORY\]/);
  });
});
