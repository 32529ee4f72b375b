/**
 * RefWatcher against the real git CLI: with polling and relisting set far beyond the test's
 * waits, only its inotify watches can notice a change in time. Updates by git, a branch in a new
 * namespace directory, packed refs and deletions each show within a moment; files in the
 * repository's own directory other than packed-refs do not make it list.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BranchRef, RefStore } from '../../src/branches/ref-store.js';
import { RefWatcher } from '../../src/branches/ref-watcher.js';
import { silentLogger } from '../../src/util/log.js';
import { gitText } from '../support/git-env.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';
import { CountingRefs, IDENTITY, realClock } from './helpers.js';

const FAR = 3_600_000;

describe('branches/ref-watcher: changes by any process, noticed by inotify', function () {
  this.timeout(60_000);
  let gitDir: string;
  let watcher: RefWatcher | undefined;
  const seen: Array<readonly BranchRef[]> = [];
  let commits: string[] = [];
  let refs: CountingRefs;

  beforeEach(async () => {
    gitDir = path.join(tempDir('watch'), 'repo.git');
    gitText(['init', '-q', '--bare', '-b', 'main', gitDir]);
    const tree = gitText(['mktree'], { gitDir, input: '' });
    commits = ['one', 'two'].map((m) => gitText(['commit-tree', tree, '-m', m], { gitDir }));
    gitText(['update-ref', 'refs/heads/main', commits[0] as string], { gitDir });
    seen.length = 0;
    refs = new CountingRefs({ gitDir, clock: realClock }, { identity: IDENTITY });
    watcher = new RefWatcher({ gitDir, refs, log: silentLogger, now: () => Date.now() }, { pollMs: FAR, relistMs: FAR, watchedRelistMs: FAR }, (r) => seen.push(r));
    assert.deepEqual((await watcher.start()).map((r) => r.name), ['main']);
  });

  afterEach(async () => {
    await watcher?.stop();
    cleanupTempDirs();
  });

  /** The listing that shows `want` (name → commit index; absent: gone), within 2 s. */
  async function shows(want: Record<string, number | undefined>): Promise<void> {
    const matches = (refs: readonly BranchRef[]): boolean =>
      Object.entries(want).every(([name, i]) => refs.find((r) => r.name === name)?.oid === (i === undefined ? undefined : commits[i]));
    for (let i = 0; i < 200 && !seen.some(matches); i++) await sleep(10);
    assert.ok(seen.some(matches), `no listing showed ${JSON.stringify(want)}: ${JSON.stringify(seen.map((r) => r.map((x) => `${x.name} ${x.oid.slice(0, 7)}`)))}`);
  }

  it('sees git move a branch, make one in a new namespace directory, pack them and delete one', async () => {
    gitText(['update-ref', 'refs/heads/main', commits[1] as string], { gitDir });
    await shows({ main: 1 });
    gitText(['update-ref', 'refs/heads/images/disk', commits[0] as string], { gitDir });
    await shows({ main: 1, 'images/disk': 0 });
    // A branch in the namespace made a moment ago: its directory is watched now too.
    gitText(['update-ref', 'refs/heads/images/iso', commits[1] as string], { gitDir });
    await shows({ 'images/iso': 1 });
    gitText(['pack-refs', '--all'], { gitDir });
    assert.ok(!fs.existsSync(path.join(gitDir, 'refs/heads/main')), 'the loose ref is gone');
    // Packed, a ref moves by rewriting packed-refs alone (git removes no loose file for it).
    gitText(['update-ref', '--no-deref', 'refs/heads/main', commits[0] as string], { gitDir });
    await shows({ main: 0, 'images/iso': 1 });
    gitText(['update-ref', '-d', 'refs/heads/images/disk'], { gitDir });
    await shows({ 'images/disk': undefined, 'images/iso': 1 });
  });

  it('sees a branch in a new namespace directory at once, however its listing and git\'s rename of the ref interleave', async () => {
    // The directory's event lists at once, often before git renames the ref into it, and its
    // watch comes after that listing: unless the new directory is looked at again, the ref waits
    // for the next stamp (10 s).
    for (let i = 0; i < 40; i++) {
      gitText(['update-ref', `refs/heads/ns${i}/x`, commits[i % 2] as string], { gitDir });
      await shows({ [`ns${i}/x`]: i % 2 });
    }
  });

  it('sees a ref renamed into a new namespace directory after that directory\'s listing and before its watch (it waited for the next stamp, 10 s)', async () => {
    // The rename lands just after the listing the directory's creation set off: no event of the new
    // watch tells of it, so only listing a directory once more after watching it shows the ref.
    await watcher?.stop();
    const dir = path.join(gitDir, 'refs', 'heads', 'late');
    let armed = true;
    class RenamingRefs extends CountingRefs {
      override async listing(): Promise<Awaited<ReturnType<RefStore['listing']>>> {
        const listed = await super.listing();
        if (armed && fs.existsSync(path.join(dir, 'x.lock'))) {
          armed = false;
          fs.renameSync(path.join(dir, 'x.lock'), path.join(dir, 'x'));
        }
        return listed;
      }
    }
    const renaming = new RenamingRefs({ gitDir, clock: realClock }, { identity: IDENTITY });
    watcher = new RefWatcher({ gitDir, refs: renaming, log: silentLogger, now: () => Date.now() }, { pollMs: FAR, relistMs: FAR, watchedRelistMs: FAR }, (r) => seen.push(r));
    await watcher.start();
    await sleep(1100);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'x.lock'), `${commits[0] as string}\n`);
    await shows({ 'late/x': 0 });
    assert.equal(armed, false, 'the rename came after a listing');
  });

  it('lists again for a ref change, not for other files of the repository', async () => {
    const before = refs.lists;
    fs.writeFileSync(path.join(gitDir, 'description'), 'touched\n');
    fs.writeFileSync(path.join(gitDir, 'FETCH_HEAD'), '');
    await sleep(300);
    assert.equal(refs.lists, before, 'no listing for description or FETCH_HEAD');
    gitText(['update-ref', 'refs/heads/main', commits[1] as string], { gitDir });
    await shows({ main: 1 });
    assert.ok(refs.lists > before);
  });
});
