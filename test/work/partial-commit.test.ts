/**
 * A partial repository (a branch kept `fetch: on-demand`) holds trees that name blobs never
 * fetched. A commit of the working layer keeps such a blob where it was, so its new trees name a
 * blob that is not here: they must go into a promisor pack, or git fsck --strict and git gc fail
 * once prune has taken the older trees that named it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import type { Oid } from '../../src/objects/oid.js';
import { markPartial } from '../../src/repo/partial.js';
import { prune } from '../../src/repo/prune.js';
import { Repository } from '../../src/repo/repository.js';
import { POLICY_DEFAULTS } from '../../src/swarm/policy.js';
import { systemClock } from '../../src/util/clock.js';
import { Workspace } from '../../src/work/workspace.js';
import { tempDirs } from '../support/tmp.js';

const main = parseBranchName('main');

describe('working layer in a partial repository', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('commits trees naming a blob never fetched into a promisor pack: after a prune keeping one generation, git fsck --strict and git gc pass', async () => {
    const base = tmp.make();
    const env = { ...process.env, GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@example.invalid', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@example.invalid' };
    const gitIn = (dir: string, args: string[], input?: string): string => execFileSync('git', ['--git-dir', dir, ...args], { encoding: 'utf8', env, input, stdio: 'pipe' }).trim();
    // Elsewhere: a commit of two files.
    const source = join(base, 'source.git');
    execFileSync('git', ['init', '--bare', '--quiet', source]);
    const blob = (text: string): string => gitIn(source, ['hash-object', '-w', '--stdin'], text);
    const absent = blob('held elsewhere only\n') as Oid;
    const tree = gitIn(source, ['mktree'], `100644 blob ${absent}\tfar.txt\n100644 blob ${blob('near\n')}\tnear.txt\n`);
    const c0 = gitIn(source, ['commit-tree', tree, '-m', 'v0']);
    // Here: its commit and trees only, in a promisor pack, as a node keeping the branch on demand holds them.
    const dir = join(base, 'repo');
    const repo = await Repository.init(dir);
    await markPartial(dir, systemClock);
    const listed = gitIn(source, ['rev-list', '--objects', '--filter=blob:none', c0]);
    const pack = gitIn(source, ['pack-objects', '--quiet', join(dir, 'objects', 'pack', 'pack')], `${listed}\n`);
    writeFileSync(join(dir, 'objects', 'pack', `pack-${pack}.promisor`), '');
    gitIn(dir, ['update-ref', 'refs/heads/main', c0]);
    await repo.objects.refresh();
    assert.equal(await repo.objects.has(absent), false);
    const ws = await Workspace.open(repo);
    try {
      await ws.fs(main).mkdir('new', 0o755);
      const made = await ws.commit(main, 'a directory more');
      assert.ok(made.commit !== undefined);
      assert.equal(gitIn(dir, ['rev-parse', `${made.commit}:far.txt`]), absent, 'the blob never fetched is kept where it was');
      await prune(repo, { policies: [{ ...POLICY_DEFAULTS, branches: 'main', history: 1 }], graceMs: 0, clock: systemClock, removeNow: true });
      assert.throws(() => gitIn(dir, ['cat-file', '-e', c0]), 'the older commit is gone');
      assert.ok(readdirSync(join(dir, 'objects', 'pack')).every((f) => !f.endsWith('.pack') || readdirSync(join(dir, 'objects', 'pack')).includes(f.replace(/\.pack$/, '.promisor'))), 'every pack here is a promisor pack');
      gitIn(dir, ['fsck', '--strict']);
      gitIn(dir, ['gc', '--quiet']);
      gitIn(dir, ['fsck', '--strict']);
    } finally {
      await ws.close();
      await repo.close();
    }
  });
});
