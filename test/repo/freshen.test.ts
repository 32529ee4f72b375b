/**
 * An object a commit dedups against, found in an old pack of unreachable objects (a deleted
 * branch's), is freshened as git freshens one: a `git gc` that runs while the commit is written
 * keeps it, and the ref names a complete commit (checked with git fsck).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { encodeTree } from '../../src/objects/tree.js';
import { writeCommit } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { tempDirs } from '../support/tmp.js';

const DAY_MS = 24 * 3600 * 1000;

describe('repo: objects reused from old packs are freshened (git gc keeps them)', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  /**
   * An unreachable blob in a pack a month old (`before` may have git move it: a cruft pack), then
   * a commit naming it, with `git gc gcArgs` run between the dedup and the ref move: the commit
   * must be whole (git fsck) and the blob readable.
   */
  async function commitAcrossGc(content: Buffer, gcArgs: readonly string[], before?: (git: (...args: string[]) => string, packDir: string) => void): Promise<void> {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const git = (...args: string[]): string => execFileSync('git', ['--git-dir', repo.gitDir, ...args], { encoding: 'utf8', stdio: 'pipe' });
    try {
      const old = await repo.newPackWriter();
      const blob = await old.write('blob', content);
      await old.finish();
      const packDir = join(repo.gitDir, 'objects', 'pack');
      const monthAgo = new Date(Date.now() - 30 * DAY_MS);
      for (const f of readdirSync(packDir)) utimesSync(join(packDir, f), monthAgo, monthAgo);
      before?.(git, packDir);

      const writer = await repo.newPackWriter();
      assert.equal(await writer.write('blob', content), blob);
      const tree = await writer.write('tree', encodeTree([{ mode: '100644', name: 'p.txt', oid: blob }]));
      const commit = await writeCommit(repo, writer, tree, [], 'p.txt');
      git('gc', '--quiet', ...gcArgs);
      await writer.finish();
      await repo.refs.update(parseBranchName('main'), { expected: null, next: commit, message: 'commit: p.txt' });
      git('fsck', '--strict', '--no-dangling');
      assert.equal(git('cat-file', 'blob', blob), content.toString());
    } finally {
      await repo.close();
    }
  }

  it('a git gc between the dedup and the ref move leaves a complete commit', async () => {
    // git gc's defaults: unreachable objects in packs older than 2 weeks go.
    await commitAcrossGc(Buffer.from('precious content, first written by a branch since deleted\n'), []);
  });

  it('an object only in a cruft pack (git gc --cruft: its time is its own, in the .mtimes) is written again, and survives a cruft gc in that window', async () => {
    await commitAcrossGc(Buffer.from('an unreachable blob git moved into a cruft pack\n'), ['--cruft', '--prune=2.weeks.ago'], (git, packDir) => {
      git('gc', '--quiet', '--cruft', '--prune=1.year.ago');
      assert.ok(readdirSync(packDir).some((f) => f.endsWith('.mtimes')), 'git made a cruft pack');
    });
  });

  it('a file that holds reused objects and is gone before the writer finishes fails its finish (GITFS_IO): no ref may name what it held', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    try {
      const old = await repo.newPackWriter();
      const blob = await old.write('blob', Buffer.from('x\n'));
      await old.finish();
      const packDir = join(repo.gitDir, 'objects', 'pack');
      const writer = await repo.newPackWriter();
      const before = readdirSync(packDir);
      // The pack is looked up and its freshening starts here; the file goes first (a gc's repack -d).
      for (const f of before) execFileSync('mv', [join(packDir, f), join(repo.gitDir, f)]);
      assert.equal(await writer.write('blob', Buffer.from('x\n')), blob);
      await assert.rejects(writer.finish(), (e: Error & { code?: string }) => e.code === 'GITFS_IO' && /cannot be freshened/.test(e.message));
      assert.ok(statSync(join(repo.gitDir, before[0] as string)).isFile());
    } finally {
      await repo.close();
    }
  });

  it('a file that held reused objects and is gone because a repack moved them (git gc) has their new pack freshened, and the finish succeeds', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const git = (...args: string[]): string => execFileSync('git', ['--git-dir', repo.gitDir, ...args], { encoding: 'utf8', stdio: 'pipe' });
    try {
      const old = await repo.newPackWriter();
      const blob = await old.write('blob', Buffer.from('moved by a repack\n'));
      await old.finish();
      const packDir = join(repo.gitDir, 'objects', 'pack');
      const writer = await repo.newPackWriter();
      const before = readdirSync(packDir);
      // After the writer listed the packs, git moves the object into a new pack (kept: unreachable objects stay with -k).
      execFileSync('git', ['--git-dir', repo.gitDir, 'hash-object', '-w', '--stdin'], { input: 'another object, so the new pack is another\n' });
      git('repack', '-a', '-d', '-k', '-q');
      const after = readdirSync(packDir).filter((f) => f.endsWith('.pack'));
      assert.ok(!after.some((f) => before.includes(f)), 'the old pack is gone');
      const monthAgo = new Date(Date.now() - 30 * DAY_MS);
      for (const f of readdirSync(packDir)) utimesSync(join(packDir, f), monthAgo, monthAgo);
      assert.equal(await writer.write('blob', Buffer.from('moved by a repack\n')), blob);
      await writer.finish();
      for (const f of after) assert.ok(Date.now() - statSync(join(packDir, f)).mtimeMs < DAY_MS, `${f} was freshened`);
    } finally {
      await repo.close();
    }
  });
});
