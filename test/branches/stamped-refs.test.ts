/**
 * StampedRefs against the real git CLI: refs listed again only when their stamp changed, when the
 * last listing was racy, or when the relist time passed. A file system timestamp tick shared by
 * two updates is made by hand (utimes puts the directory's time back), so each case is certain.
 */
import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StampedRefs } from '../../src/branches/stamped-refs.js';
import { gitText } from '../support/git-env.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';
import { CountingRefs, IDENTITY, realClock } from './helpers.js';

describe('branches/stamped-refs: listed again only when the refs may have changed', function () {
  this.timeout(30_000);
  let gitDir: string;
  let commits: string[];
  let refs: CountingRefs;
  let now: number;
  let stamped: StampedRefs;
  const headsDir = (): string => join(gitDir, 'refs', 'heads');
  const main = async (): Promise<string | undefined> => (await stamped.list()).find((r) => r.name === 'main')?.oid;
  /** Sets refs/heads's times to `ms` (the past: a change long ago; or one it had, to hide a change). */
  const dirTime = (ms: number): void => utimesSync(headsDir(), ms / 1000, ms / 1000);

  beforeEach(() => {
    gitDir = join(tempDir('stamped'), 'repo.git');
    gitText(['init', '-q', '--bare', '-b', 'main', gitDir]);
    const tree = gitText(['mktree'], { gitDir, input: '' });
    commits = ['one', 'two', 'three'].map((m) => gitText(['commit-tree', tree, '-m', m], { gitDir }));
    gitText(['update-ref', 'refs/heads/main', commits[0] as string], { gitDir });
    refs = new CountingRefs({ gitDir, clock: realClock }, { identity: IDENTITY });
    now = 0;
    stamped = new StampedRefs({ gitDir, refs, now: () => now }, 60_000);
  });
  afterEach(cleanupTempDirs);

  it('lists once while nothing changes, and again at an update (its directory changed)', async () => {
    dirTime(Date.now() - 3_600_000);
    assert.equal(await main(), commits[0]);
    assert.equal(await main(), commits[0]);
    assert.equal(refs.lists, 1, 'a stat, not a listing, the second time');
    gitText(['update-ref', 'refs/heads/main', commits[1] as string], { gitDir });
    assert.equal(await main(), commits[1]);
    assert.equal(refs.lists, 2);
  });

  it('does not trust a listing made within a second of a change: a second update in the same timestamp tick still shows', async () => {
    gitText(['update-ref', 'refs/heads/main', commits[1] as string], { gitDir });
    // A whole second, which utimes sets exactly (its ns would not survive a double): the next one, so
    // the listing begins less than a second after it whenever it runs (a time ahead counts as racy too).
    const tick = Math.ceil(Date.now() / 1000) * 1000;
    dirTime(tick);
    assert.equal(await main(), commits[1]);
    gitText(['update-ref', 'refs/heads/main', commits[2] as string], { gitDir });
    dirTime(tick);
    assert.equal(await main(), commits[2], 'the racy listing was looked at again');
  });

  it('trusts a listing made long after the last change: an update hidden in its tick shows only at the relist time', async () => {
    const old = Date.now() - 3_600_000;
    dirTime(old);
    assert.equal(await main(), commits[0]);
    gitText(['update-ref', 'refs/heads/main', commits[1] as string], { gitDir });
    dirTime(old);
    assert.equal(await main(), commits[0], 'the stamp says nothing changed');
    now += 60_000;
    assert.equal(await main(), commits[1], 'listed again at the relist time');
  });

  it('trusts a listing of times the file system set ahead (its clock set back since) once it has seen the same stamp for a second', async () => {
    dirTime(Date.now() + 3_600_000);
    assert.equal(await main(), commits[0]);
    assert.equal(await main(), commits[0]);
    assert.equal(refs.lists, 2, 'racy by the times: listed again at the next look');
    now += 1000;
    assert.equal(await main(), commits[0]);
    assert.equal(refs.lists, 3, 'listed again: the stamp was first seen less than a second before');
    now += 1000;
    assert.equal(await main(), commits[0]);
    assert.equal(await main(), commits[0]);
    assert.equal(refs.lists, 3, 'trusted: stats only, however far ahead the times are');
    gitText(['update-ref', 'refs/heads/main', commits[1] as string], { gitDir });
    assert.equal(await main(), commits[1], 'a change moves the stamp');
  });

  it('lists at every look again once the clock comes within a second of times set ahead: a change hidden in their tick shows', async () => {
    const ahead = Math.ceil(Date.now() / 1000) * 1000 + 3000;
    dirTime(ahead);
    assert.equal(await main(), commits[0]);
    now += 1000;
    assert.equal(await main(), commits[0]);
    const trusted = refs.lists;
    assert.equal(await main(), commits[0]);
    assert.equal(refs.lists, trusted, 'trusted while the times lie ahead');
    await sleep(ahead - 500 - Date.now());
    gitText(['update-ref', 'refs/heads/main', commits[1] as string], { gitDir });
    dirTime(ahead);
    assert.equal(await main(), commits[1], 'the clock within a second of the times: listed again');
  });

  it('sees a ref file rewritten in place (no directory changes) by the relist time', async () => {
    dirTime(Date.now() - 3_600_000);
    assert.equal(await main(), commits[0]);
    writeFileSync(join(headsDir(), 'main'), `${commits[1]}\n`);
    assert.equal(await main(), commits[0]);
    now += 59_999;
    assert.equal(await main(), commits[0]);
    now += 1;
    assert.equal(await main(), commits[1]);
  });

  it('sees git pack the refs and delete one (packed-refs is stamped too)', async () => {
    gitText(['update-ref', 'refs/heads/other', commits[1] as string], { gitDir });
    await sleep(5);
    gitText(['pack-refs', '--all'], { gitDir });
    assert.deepEqual((await stamped.list()).map((r) => r.name), ['main', 'other']);
    gitText(['update-ref', '-d', 'refs/heads/other'], { gitDir });
    assert.deepEqual((await stamped.list()).map((r) => r.name), ['main']);
  });
});
