/**
 * Prune beside writers, with the real `gitfs` CLI and git: a writer's objects stay while it
 * holds, however long ago it began (src/repo/write-holds.ts), and go once it lets go or is
 * killed; a pack touched after it was judged, or that alone holds what a ref names now, stays;
 * files a killed prune left set aside come back (src/repo/set-aside.ts); one prune at a time
 * (src/repo/prune-lock.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import type { Oid } from '../../src/objects/oid.js';
import { prune, removeDoomedPacks } from '../../src/repo/prune.js';
import { withPruneLock } from '../../src/repo/prune-lock.js';
import { Repository } from '../../src/repo/repository.js';
import { prepareSetAside, removeUnlessTouched } from '../../src/repo/set-aside.js';
import { holdWrites } from '../../src/repo/write-holds.js';
import { systemClock } from '../../src/util/clock.js';
import { thisProcess } from '../../src/util/proc.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { CRASH_AT_VAR } from '../../src/util/crash-point.js';
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

  it('gitfs commit and gitfs rollout publish hold before they write (killed there, their holds are left, stale)', async () => {
    const gitDir = await newRepo();
    const src = join(tmp.make(), 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'index.html'), '<h1>1</h1>\n');
    const key = join(tmp.make(), 'release.key');
    await gitfsOk(['key', 'new', key]);
    const crashAt = { [CRASH_AT_VAR]: 'write-hold:held' };
    const commit = await gitfs(['commit', '--repo', gitDir, '--branch', 'main', '--from', src, '-m', 'x'], { env: crashAt });
    const publish = await gitfs(['rollout', 'publish', '--repo', gitDir, '--channel', 'site/prod', src, '--version', '1', '--sign', key], { env: crashAt });
    assert.deepEqual([commit.code, publish.code], [1, 1], 'both were killed at their hold');
    assert.equal(holdRecords(gitDir).length, 2);
    await pruneJson(gitDir);
    assert.deepEqual(holdRecords(gitDir), [], 'stale once their processes are gone');
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

  /** Commits a directory holding one file of 300 KB on `branch`; the commit. */
  async function commitFile(gitDir: string, branch: string, file: Buffer): Promise<Oid> {
    const tree = join(tmp.make(), 'tree');
    mkdirSync(tree);
    writeFileSync(join(tree, 'f'), file);
    return (JSON.parse(await gitfsOk(['commit', '--repo', gitDir, '--branch', branch, '--from', tree, '-m', branch, '--json'])) as { commit: Oid }).commit;
  }

  it('leaves a pack touched after it was judged, and packs holding what a ref made since reaches (its commit in one, its tree in another); removes them once neither holds', async () => {
    const gitDir = await newRepo();
    const file = pseudoRandomBytes(300_000, 'doomed');
    // Two commits of the same tree: the second's pack holds its commit alone, its tree and blob lie in the first's.
    const first = await commitFile(gitDir, 'side1', file);
    const second = await commitFile(gitDir, 'side2', file);
    for (const b of ['side1', 'side2']) await gitfsOk(['branch', '--repo', gitDir, 'delete', b]);
    git(gitDir, ['reflog', 'expire', '--expire=now', '--all']);
    ageObjects(gitDir, 2 * DAY_MS);
    const repo = await Repository.open(gitDir);
    try {
      const judged = () => prune(repo, { policies: [], graceMs: DAY_MS, clock: systemClock });
      let pruned = await judged();
      assert.equal(pruned.doomed.length, 2, 'the packs of the deleted branches are judged to go');
      const firstPack = pruned.doomed.find((p) => p.dead > 1)?.name;
      assert.ok(firstPack !== undefined);
      // A writer dedups against the first after the judgement: it freshens the pack, which stays.
      const now = new Date();
      utimesSync(join(gitDir, 'objects', 'pack', `${firstPack}.pack`), now, now);
      assert.deepEqual(await removeDoomedPacks(repo, pruned.doomed, []), pruned.doomed.filter((p) => p.name !== firstPack).map((p) => p.name));
      assert.equal(presentObjects(gitDir, [first]), 1);
      fsckClean(gitDir);
      // A third commit of the same tree; judged again, then a branch is made on it (the way back a ref conflict names), which needs the first pack's tree.
      const third = await commitFile(gitDir, 'side2', file);
      await gitfsOk(['branch', '--repo', gitDir, 'delete', 'side2']);
      git(gitDir, ['reflog', 'expire', '--expire=now', '--all']);
      ageObjects(gitDir, 2 * DAY_MS);
      pruned = await judged();
      assert.equal(pruned.doomed.length, 2);
      await gitfsOk(['branch', '--repo', gitDir, 'create', 'keep', third]);
      assert.deepEqual(await removeDoomedPacks(repo, pruned.doomed, []), [], 'what the new branch reaches stays, in whichever pack it lies');
      fsckClean(gitDir);
      await gitfsOk(['branch', '--repo', gitDir, 'delete', 'keep']);
      git(gitDir, ['reflog', 'expire', '--expire=now', '--all']);
      assert.deepEqual((await removeDoomedPacks(repo, pruned.doomed, [])).sort(), pruned.doomed.map((p) => p.name).sort());
      assert.equal(presentObjects(gitDir, [first, second, third]), 0);
      assert.deepEqual(readdirSync(join(gitDir, 'gitfs', 'pruning')), [], 'nothing is left set aside');
      fsckClean(gitDir);
    } finally {
      await repo.close();
    }
  });

  it('checks a file for a touch only once it is set aside: a touch after that fails (the writer looks again), one before keeps the file', async () => {
    const gitDir = await newRepo();
    const path = join(gitDir, 'objects', 'ab', 'c'.repeat(38));
    mkdirSync(dirname(path));
    writeFileSync(path, 'x');
    await prepareSetAside(gitDir);
    let touch: unknown;
    const removed = await removeUnlessTouched(gitDir, [path], path, () => {
      // A writer freshens the file while prune checks it.
      try {
        utimesSync(path, new Date(), new Date());
      } catch (e) {
        touch = e;
      }
      return true;
    });
    assert.equal(removed, true);
    assert.equal((touch as NodeJS.ErrnoException | undefined)?.code, 'ENOENT', 'the touch of a file being checked must fail, or the writer would go on without it');
    writeFileSync(path, 'y');
    assert.equal(await removeUnlessTouched(gitDir, [path], path, () => false), false);
    assert.equal(existsSync(path), true, 'a touched file is put back');
    assert.deepEqual(readdirSync(join(gitDir, 'gitfs', 'pruning')), []);
  });

  it('puts back what a prune killed mid-removal left set aside (any pack name, a lone index; a lone pack was going), at the next prune and in gitfs fsck', async () => {
    const gitDir = await newRepo();
    await commitFile(gitDir, 'main', pseudoRandomBytes(300_000, 'kept'));
    const packDir = join(gitDir, 'objects', 'pack');
    const aside = join(gitDir, 'gitfs', 'pruning');
    mkdirSync(aside, { recursive: true });
    const setAside = (name: string, as = name): void => renameSync(join(packDir, name), join(aside, encodeURIComponent(`objects/pack/${as}`)));
    const [pack] = readdirSync(packDir).filter((n) => n.endsWith('.pack')) as [string];
    const base = pack.slice(0, -'.pack'.length);
    // A prune killed between setting the branch's pack aside and putting it back (it had been touched); named as git maintenance names its packs.
    setAside(`${base}.idx`, `loose-${'a'.repeat(40)}.idx`);
    setAside(pack, `loose-${'a'.repeat(40)}.pack`);
    // And a pack whose index was removed already, and a lone index whose pack stayed.
    writeFileSync(join(aside, encodeURIComponent(`objects/pack/pack-${'b'.repeat(40)}.pack`)), 'going');
    assert.throws(() => fsckClean(gitDir), 'git misses what is set aside');
    const out = await gitfsOk(['fsck', '--repo', gitDir]);
    assert.match(out, /put back 2 object files a killed prune had set aside/);
    assert.match(out, / 0 problems$/m);
    assert.deepEqual(readdirSync(aside), [], 'the lone pack goes');
    fsckClean(gitDir);
    // At the next prune: the index set aside alone (its pack in place) comes back before anything is judged.
    const idx = readdirSync(packDir).find((n) => n.endsWith('.idx')) as string;
    setAside(idx);
    const pruned = await pruneJson(gitDir, '0');
    assert.equal(pruned.removedObjects, 0, 'what the branch names is kept, not judged missing');
    assert.deepEqual(readdirSync(aside), []);
    fsckClean(gitDir);
  });

  it('counts a hold of a process it cannot look up (another pid namespace) for a week, and removes a record left half made', async () => {
    const gitDir = await newRepo();
    const holds = join(gitDir, 'gitfs', 'holds');
    mkdirSync(holds, { recursive: true });
    const blobs = await writeBlobs(gitDir, 2, 'elsewhere');
    ageObjects(gitDir, 2 * DAY_MS);
    const record = (since: number): string => `${JSON.stringify({ since, ...thisProcess(), pid: 999_999, pidNs: 'pid:[1]' })}\n`;
    writeFileSync(join(holds, '999999-container'), record(Date.now() - 3 * DAY_MS));
    writeFileSync(join(holds, '999998-torn.tmp'), '{"since":');
    utimesSync(join(holds, '999998-torn.tmp'), new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    assert.equal((await pruneJson(gitDir)).removedObjects, 0, 'a writer in a container holds');
    assert.deepEqual(readdirSync(holds), ['999999-container'], 'the half-made record is removed, the container\'s stays');
    writeFileSync(join(holds, '999999-container'), record(Date.now() - 8 * DAY_MS));
    await pruneJson(gitDir);
    assert.equal(presentObjects(gitDir, blobs), 0, 'a week on, it no longer holds');
    assert.deepEqual(readdirSync(holds), []);
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
    // Files a taker writes beside the lock, left by one killed before removing it, and by one alive (this one).
    const leftBy = (pid: number): string => `${JSON.stringify({ ...thisProcess(), pid, nonce: 'x' })}\n`;
    const lock = join(gitDir, 'gitfs', 'prune.lock');
    writeFileSync(`${lock}.0123456789ab`, leftBy(999_999));
    writeFileSync(`${lock}.ba9876543210`, leftBy(process.pid));
    // Empty: one a taker has made and not yet written (young), and one a taker killed then left (old).
    writeFileSync(`${lock}.aaaaaaaaaaaa`, '');
    writeFileSync(`${lock}.bbbbbbbbbbbb`, '');
    const old = new Date(Date.now() - 120_000);
    utimesSync(`${lock}.bbbbbbbbbbbb`, old, old);
    await gitfsOk(['prune', '--repo', gitDir]);
    assert.equal(existsSync(lock), false);
    assert.deepEqual(
      readdirSync(dirname(lock)).filter((f) => f.startsWith('prune.lock')).sort(),
      ['prune.lock.aaaaaaaaaaaa', 'prune.lock.ba9876543210'],
      "the killed takers' files are removed; the live one's, and one not yet written, are not",
    );
  });

  it('never lets two prunes hold the lock when several meet one a killed prune left, nor when one was killed taking it over; takeover files of four killed ones ask for a hand', async () => {
    const gitDir = await newRepo();
    const lock = join(gitDir, 'gitfs', 'prune.lock');
    const dead = (): string => `${JSON.stringify({ ...thisProcess(), pid: 999_999, nonce: String(Math.random()) })}\n`;
    const log = join(gitDir, 'lock-log');
    const go = join(gitDir, 'go');
    mkdirSync(dirname(lock), { recursive: true });
    for (let round = 0; round < 6; round++) {
      const stale = dead();
      writeFileSync(lock, stale);
      // From the fourth round, a prune was killed taking it over too (its takeover file is left).
      if (round >= 3) writeFileSync(`${lock}.takeover.${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`, dead());
      writeFileSync(log, '');
      // Six processes wait for one moment, then each takes the lock, holds it 300 ms, and says so.
      const racers = await Promise.all(
        Array.from({ length: 6 }, () =>
          child(`
            const { withPruneLock } = await import(lib + 'repo/prune-lock.js');
            const { appendFileSync, existsSync } = await import('node:fs');
            console.log('ready');
            while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 1));
            await withPruneLock(${JSON.stringify(gitDir)}, async () => {
              appendFileSync(${JSON.stringify(log)}, 'in\\n');
              await new Promise((r) => setTimeout(r, 300));
              appendFileSync(${JSON.stringify(log)}, 'out\\n');
            }).catch((e) => { if (e.code !== 'GITFS_PRUNE_REFUSED') throw e; });`),
        ),
      );
      children.push(...racers.map((r) => r.proc));
      writeFileSync(go, '');
      await Promise.all(racers.map(async (r) => (r.proc.exitCode === null ? once(r.proc, 'exit') : undefined)));
      const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
      assert.ok(lines.length >= 2, 'one took it');
      for (let i = 0; i < lines.length; i++) assert.equal(lines[i], i % 2 === 0 ? 'in' : 'out', `round ${round}: two held the lock at once: ${lines.join(' ')}`);
      assert.deepEqual(racers.map((r) => r.proc.exitCode), [0, 0, 0, 0, 0, 0]);
      assert.deepEqual(readdirSync(dirname(lock)).filter((f) => f.startsWith('prune.lock')), [], 'no lock, no takeover file left');
      rmSync(go);
    }
    // Takeover files of four killed prunes, one under the other: a hand is asked for, nothing removed.
    const stale = dead();
    writeFileSync(lock, stale);
    let takeover = `${lock}.takeover.${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`;
    for (let depth = 0; depth < 4; depth++) {
      const record = dead();
      writeFileSync(takeover, record);
      takeover = `${takeover}.${createHash('sha256').update(record).digest('hex').slice(0, 16)}`;
    }
    const r = await gitfs(['prune', '--repo', gitDir]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /takeover files of 4 killed processes.*by hand/);
    assert.equal(readFileSync(lock, 'utf8'), stale);
  });
});
