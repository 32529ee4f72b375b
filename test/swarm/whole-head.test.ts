import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import type { Oid } from '../../src/objects/oid.js';
import { systemClock } from '../../src/util/clock.js';
import { jsonLogger, type Logger } from '../../src/util/log.js';
import { coversBase, WholeHeads, type Whole } from '../../src/swarm/whole-head.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

describe('what a base holds whole (whole-head.ts)', () => {
  const commit = 'ab'.repeat(20) as Oid;

  it('covers a fetch whose history, less the new head, it holds; with blobs only if it holds them', () => {
    const all = { commit, history: 0, blobs: true };
    for (const history of [0, 1, 2, 30]) assert.equal(coversBase(all, history, true), true, `all history covers ${history}`);
    const three = { commit, history: 3, blobs: true };
    assert.equal(coversBase(three, 1, true), true, 'the new head alone needs nothing of the base but its tree');
    assert.equal(coversBase(three, 4, true), true, 'history 4 from the new head is 3 from the base');
    assert.equal(coversBase(three, 5, true), false);
    assert.equal(coversBase(three, 0, true), false, 'all history is more than 3');
    const meta = { commit, history: 0, blobs: false };
    assert.equal(coversBase(meta, 0, false), true, 'commits and trees for a fetch of commits and trees');
    assert.equal(coversBase(meta, 1, true), false, 'not for a fetch with blobs');
  });
});

describe('the record of whole heads (whole-head.ts, gitfs/whole-heads.json)', () => {
  after(cleanupTempDirs);
  const branch = parseBranchName('site/a');
  const logged = (): { logger: Logger; lines: string[] } => {
    const lines: string[] = [];
    return { logger: jsonLogger((l) => void lines.push(l), systemClock), lines };
  };

  it('outlives its process: what is set is read back by the next, every entry after a burst of sets', async () => {
    const path = join(tempDir('whole-heads'), 'gitfs', 'whole-heads.json');
    const first = new WholeHeads(path, logged().logger);
    assert.equal(await first.get(branch), undefined, 'no file: no entry');
    const wholes = Array.from({ length: 50 }, (_, i) => ({ commit: i.toString(16).padStart(40, '0') as Oid, history: i % 3, blobs: i % 2 === 0 }));
    await Promise.all(wholes.map((w, i) => first.set(parseBranchName(`b/${i}`), w)));
    const second = new WholeHeads(path, logged().logger);
    for (const [i, w] of wholes.entries()) assert.deepEqual(await second.get(parseBranchName(`b/${i}`)), w);
    const [b0, b1] = [parseBranchName('b/0'), parseBranchName('b/1')];
    second.drop(b0, (await second.get(b0)) as Whole);
    // An entry set anew since it was read is not dropped by what was read.
    const stale = (await second.get(b1)) as Whole;
    const fresh = { commit: 'cd'.repeat(20) as Oid, history: 1, blobs: true };
    await second.set(b1, fresh);
    second.drop(b1, stale);
    await second.set(branch, { commit: 'ab'.repeat(20) as Oid, history: 0, blobs: true });
    const third = new WholeHeads(path, logged().logger);
    assert.equal(await third.get(b0), undefined, 'a dropped entry is gone from the file');
    assert.deepEqual(await third.get(b1), fresh);
    assert.deepEqual(await third.get(branch), { commit: 'ab'.repeat(20), history: 0, blobs: true });
    // The branches deleted since leave it.
    third.retain(new Set([branch]));
    await third.set(branch, { commit: 'ab'.repeat(20) as Oid, history: 0, blobs: true });
    const fourth = new WholeHeads(path, logged().logger);
    assert.equal(await fourth.get(b1), undefined, 'a deleted branch is gone from the file');
    assert.deepEqual(await fourth.get(branch), { commit: 'ab'.repeat(20), history: 0, blobs: true });
  });

  it('a record that does not read is none, said in the log; entries that are not whole heads are left out', async () => {
    const dir = tempDir('whole-heads');
    const path = join(dir, 'whole-heads.json');
    writeFileSync(path, '{"site/a": {"commit": "ab');
    const { logger, lines } = logged();
    assert.equal(await new WholeHeads(path, logger).get(branch), undefined);
    assert.match(lines.join(''), /whole-heads-unreadable/);
    // Damaged, it is written anew with the next entry.
    const damaged = new WholeHeads(path, logger);
    await damaged.set(branch, { commit: 'ef'.repeat(20) as Oid, history: 0, blobs: true });
    assert.deepEqual(await new WholeHeads(path, logger).get(branch), { commit: 'ef'.repeat(20), history: 0, blobs: true });
    // A path there that cannot be read (here a directory: root reads any file) is not written over.
    const odd = join(dir, 'odd.json');
    mkdirSync(odd);
    const shut = logged();
    await new WholeHeads(odd, shut.logger).set(branch, { commit: 'ef'.repeat(20) as Oid, history: 0, blobs: true });
    assert.match(shut.lines.join(''), /whole-heads-unreadable/);
    assert.doesNotMatch(shut.lines.join(''), /whole-heads-write-failed/, 'no write was tried');
    const good = { commit: 'cd'.repeat(20), history: 2, blobs: false };
    writeFileSync(path, JSON.stringify({ 'site/a': good, 'site/b': { ...good, commit: 'xyz' }, 'site/c': { ...good, history: -1 }, 'site/d': { ...good, blobs: 'yes' }, '../e': good, 'site/f': null }));
    const mixed = new WholeHeads(path, logged().logger);
    assert.deepEqual(await mixed.get(branch), good);
    for (const name of ['site/b', 'site/c', 'site/d', 'site/f']) assert.equal(await mixed.get(parseBranchName(name)), undefined, name);
  });
});
