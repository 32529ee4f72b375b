/**
 * Prune beside writers, with the real `gitfs` CLI and git: a writer's objects stay while it
 * holds, however long ago it began (src/repo/write-holds.ts), and go once it lets go or is
 * killed; a pack touched after it was judged, or that alone holds what a ref names now, stays;
 * files a killed prune left set aside come back (src/repo/set-aside.ts); one prune at a time
 * (src/repo/prune-lock.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import type { Oid } from '../../src/objects/oid.js';
import { prune, removeDoomedPacks } from '../../src/repo/prune.js';
import { withPruneLock } from '../../src/repo/prune-lock.js';
import { Repository } from '../../src/repo/repository.js';
import { holdWrites } from '../../src/repo/write-holds.js';
import { systemClock } from '../../src/util/clock.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { git, gitfs, gitfsOk, GITFS_BIN } from '../support/cli.js';
import { waitFor } from '../support/cluster-nodes.js';
import { pseudoRandomBytes } from '../support/data.js';
import { ageObjects, presentObjects } from '../support/object-files.js';
import { tempDirs } from '../support/tmp.js';

const DAY_MS = 86_400_000;
const daysAgo = (days: number): { now(): number } => ({ now: () => Date.now() - days * DAY_MS });

function fsckClean(gitDir: string): void {
  execFileSync('git', [`--git-dir=${gitDir}`, 'fsck', '--strict', '--no-dangling'], { stdio: 'pipe' });
}

/** Records in gitfs/holds/ (whole ones, not being written). */
function holdRecords(gitDir: string): string[] {
  const dir = join(gitDir, 'gitfs', 'holds');
  return existsSync(dir) ? readdirSync(dir).filter((n) => !n.endsWith('.tmp')) : [];
}

async function pruneJson(gitDir: string, grace = '1d'): Promise<{ removedObjects: number; youngObjects: number; removedPacks: string[] }> {
  return JSON.parse(await gitfsOk(['prune', '--repo', gitDir, '--grace', grace, '--json'])) as { removedObjects: number; youngObjects: number; removedPacks: string[] };
}

/** A node process running `script` (an ES module body) with `lib` the compiled src/ directory; resolves once it printed a line. */
async function child(script: string): Promise<{ proc: ChildProcess; line: string }> {
  const lib = new URL('../../src/', import.meta.url).href;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', `const lib = ${JSON.stringify(lib)};\n${script}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('the child process to start', 20_000, () => (out.includes('\n') || proc.exitCode !== null ? true : undefined));
  return { proc, line: out.trim() };
}

async function kill9(proc: ChildProcess): Promise<void> {
  const exited = proc.exitCode !== null ? Promise.resolve() : once(proc, 'exit');
  proc.kill('SIGKILL');
  await exited;
}

describe('repo: prune beside writers', function () {
  this.timeout(300_000);
  const tmp = tempDirs();
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });
  after(() => tmp.cleanup());

  async function newRepo(): Promise<string> {
    const gitDir = join(tmp.make(), 'repo');
    await gitfsOk(['init', '--repo', gitDir]);
    return gitDir;
  }

  /** Writes `n` blobs of 100 KB of their own into one pack, as a writer whose ref has not moved yet; their ids. */
  async function writeBlobs(gitDir: string, n: number, seed: string): Promise<Oid[]> {
    const repo = await Repository.open(gitDir);
    try {
      const writer = await repo.newPackWriter();
      const oids: Oid[] = [];
      for (let i = 0; i < n; i++) oids.push(await writer.write('blob', pseudoRandomBytes(100_000, `${seed} ${i}`)));
      await writer.finish();
      return oids;
    } finally {
      await repo.close();
    }
  }

  it('keeps what a writer wrote while it holds, however long ago it began, and removes it once the writer lets go', async () => {
    const gitDir = await newRepo();
    // A writer that began three days ago (a commit of a large tree), its first packs two days old.
    const hold = await holdWrites(gitDir, daysAgo(3));
    const blobs = await writeBlobs(gitDir, 3, 'held');
    ageObjects(gitDir, 2 * DAY_MS);
    assert.equal(holdRecords(gitDir).length, 1);
    const held = await pruneJson(gitDir);
    assert.equal(presentObjects(gitDir, blobs), 3, 'a held writer lost its objects');
    assert.equal(held.removedObjects, 0);
    assert.ok(held.youngObjects >= 3, `youngObjects ${held.youngObjects}`);
    await hold.release();
    assert.deepEqual(holdRecords(gitDir), []);
    const letGo = await pruneJson(gitDir);
    assert.equal(presentObjects(gitDir, blobs), 0, 'no ref names them: they go once nothing holds');
    assert.ok(letGo.removedObjects >= 3);
    fsckClean(gitDir);
  });

  it('takes a hold killed with its process for stale: the next prune removes it and what it held', async () => {
    const gitDir = await newRepo();
    // A real process holds, as one that began three days ago, then is killed -9.
    const c = await child(`
      const { holdWrites } = await import(lib + 'repo/write-holds.js');
      await holdWrites(${JSON.stringify(gitDir)}, { now: () => Date.now() - 3 * ${DAY_MS} });
      console.log('held');
      setInterval(() => {}, 1000);`);
    children.push(c.proc);
    assert.equal(c.line, 'held');
    const blobs = await writeBlobs(gitDir, 2, 'stale');
    ageObjects(gitDir, 2 * DAY_MS);
    assert.equal((await pruneJson(gitDir)).removedObjects, 0, 'a live holder keeps them');
    assert.equal(presentObjects(gitDir, blobs), 2);
    await kill9(c.proc);
    assert.equal(holdRecords(gitDir).length, 1, 'the killed holder left its record');
    await pruneJson(gitDir);
    assert.deepEqual(holdRecords(gitDir), [], 'the stale record is removed');
    assert.equal(presentObjects(gitDir, blobs), 0);
    fsckClean(gitDir);
  });

  it('gitfs commit holds while it writes; killed mid-commit, its hold is stale and the next prune clears both', async () => {
    const gitDir = await newRepo();
    const src = join(tmp.make(), 'src');
    mkdirSync(src);
    // 2 GiB of holes: seconds of chunking and hashing, no disk.
    execFileSync('truncate', ['-s', '2G', join(src, 'disk.img')]);
    const commit = spawn(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'commit', '--repo', gitDir, '--branch', 'main', '--from', src, '-m', 'image'], { stdio: 'ignore' });
    children.push(commit);
    await waitFor('the commit to take its hold', 60_000, () => (holdRecords(gitDir).length > 0 || commit.exitCode !== null ? true : undefined), { everyMs: 5 });
    await kill9(commit);
    assert.equal(holdRecords(gitDir).length, 1, 'the commit held while it wrote');
    await pruneJson(gitDir, '0');
    assert.deepEqual(holdRecords(gitDir), []);
    fsckClean(gitDir);
  });

  it('leaves a pack touched after it was judged, and one that alone holds what a ref names now; removes it once neither holds', async () => {
    const gitDir = await newRepo();
    const tree = join(tmp.make(), 'tree');
    mkdirSync(tree);
    const file = join(tree, 'f');
    execFileSync('sh', ['-c', `head -c 300000 /dev/urandom > ${file}`]);
    const first = JSON.parse(await gitfsOk(['commit', '--repo', gitDir, '--branch', 'side', '--from', tree, '-m', 'doomed', '--json'])) as { commit: Oid };
    await gitfsOk(['branch', '--repo', gitDir, 'delete', 'side']);
    git(gitDir, ['reflog', 'expire', '--expire=now', '--all']);
    ageObjects(gitDir, 2 * DAY_MS);
    const repo = await Repository.open(gitDir);
    try {
      const judged = () => prune(repo, { policies: [], graceMs: DAY_MS, clock: systemClock });
      let pruned = await judged();
      assert.equal(pruned.doomed.length, 1, 'the pack of the deleted branch is judged to go');
      const doomed = pruned.doomed[0] as { readonly name: string };
      const packPath = join(gitDir, 'objects', 'pack', `${doomed.name}.pack`);
      // A writer dedups against it after the judgement: it freshens the pack, which stays.
      const now = new Date();
      utimesSync(packPath, now, now);
      assert.deepEqual(await removeDoomedPacks(repo, pruned.doomed), []);
      assert.equal(presentObjects(gitDir, [first.commit]), 1);
      // Judged again, then a branch is made on its commit before the removal (git update-ref freshens nothing).
      ageObjects(gitDir, 2 * DAY_MS);
      pruned = await judged();
      assert.equal(pruned.doomed.length, 1);
      git(gitDir, ['update-ref', 'refs/heads/back', first.commit]);
      assert.deepEqual(await removeDoomedPacks(repo, pruned.doomed), [], 'a ref names what only that pack holds');
      fsckClean(gitDir);
      git(gitDir, ['update-ref', '-d', 'refs/heads/back']);
      assert.deepEqual(await removeDoomedPacks(repo, pruned.doomed), [doomed.name]);
      assert.equal(presentObjects(gitDir, [first.commit]), 0);
      assert.deepEqual(readdirSync(join(gitDir, 'gitfs', 'pruning')), [], 'nothing is left set aside');
      fsckClean(gitDir);
    } finally {
      await repo.close();
    }
  });

  it('puts back what a prune killed mid-removal left set aside, before it judges anything', async () => {
    const gitDir = await newRepo();
    const tree = join(tmp.make(), 'tree');
    mkdirSync(tree);
    execFileSync('sh', ['-c', `head -c 300000 /dev/urandom > ${join(tree, 'f')}`]);
    await gitfsOk(['commit', '--repo', gitDir, '--branch', 'main', '--from', tree, '-m', 'kept']);
    // A prune killed between setting a pack aside and putting it back (it had been touched): the branch names what is aside.
    const packDir = join(gitDir, 'objects', 'pack');
    const aside = join(gitDir, 'gitfs', 'pruning');
    mkdirSync(aside, { recursive: true });
    for (const name of readdirSync(packDir).filter((n) => /\.(idx|pack)$/.test(n))) renameSync(join(packDir, name), join(aside, encodeURIComponent(`objects/pack/${name}`)));
    assert.throws(() => fsckClean(gitDir), 'git misses what is set aside');
    const pruned = await pruneJson(gitDir, '0');
    assert.equal(pruned.removedObjects, 0, 'what the branch names is kept, not judged missing');
    assert.deepEqual(readdirSync(aside), []);
    fsckClean(gitDir);
  });

  it('runs one prune at a time: another is refused while one runs, a lock left by a killed one is taken over', async () => {
    const gitDir = await newRepo();
    await withPruneLock(gitDir, async () => {
      const r = await gitfs(['prune', '--repo', gitDir]);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /another prune runs here.*GITFS_PRUNE_REFUSED/);
    });
    assert.equal(existsSync(join(gitDir, 'gitfs', 'prune.lock')), false, 'the lock goes with its prune');
    // A process that took the lock, killed -9.
    const c = await child(`
      const { withPruneLock } = await import(lib + 'repo/prune-lock.js');
      withPruneLock(${JSON.stringify(gitDir)}, () => { console.log('locked'); return new Promise(() => {}); });
      setInterval(() => {}, 1000);`);
    children.push(c.proc);
    assert.equal(c.line, 'locked');
    assert.equal((await gitfs(['prune', '--repo', gitDir])).code, 5, 'refused while its holder lives');
    await kill9(c.proc);
    await gitfsOk(['prune', '--repo', gitDir]);
    assert.equal(existsSync(join(gitDir, 'gitfs', 'prune.lock')), false);
  });
});
