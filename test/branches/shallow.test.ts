import assert from 'node:assert/strict';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { historyHere, keptShallow, readShallow, updateShallow, type ShallowSource } from '../../src/branches/shallow.js';
import type { Oid } from '../../src/objects/oid.js';
import { tempDirs } from '../support/tmp.js';

const id = (c: string): Oid => c.repeat(40) as Oid;

/** A repository of the commits `parents` names (each with its parents), `durable` of them here durably. */
function source(parents: Record<string, readonly string[]>, durable: readonly string[]): ShallowSource {
  const here = new Set(durable.map(id));
  return {
    here: async (oid) => here.has(oid),
    parents: async (commit) => {
      const key = Object.keys(parents).find((k) => id(k) === commit);
      if (key === undefined) throw new Error(`no commit ${commit}`);
      return (parents[key] ?? []).map(id);
    },
  };
}

describe("git's shallow file (shallow.ts keptShallow)", () => {
  const tmp = tempDirs();
  after(() => tmp.cleanup());
  // History a <- b <- c <- d <- e (each the parent of the next).
  const chain = { a: [], b: ['a'], c: ['b'], d: ['c'], e: ['d'] };

  it('historyHere: the commits so deep from a head are here and none is cut short before that depth', async () => {
    const all = source(chain, ['a', 'b', 'c', 'd', 'e']);
    assert.equal(await historyHere(id('e'), 0, new Set(), all), true, 'all of it, nothing cut short');
    // Fetched with history 3 from e: c is the boundary.
    const cut = new Set([id('c')]);
    assert.equal(await historyHere(id('e'), 2, cut, all), true);
    assert.equal(await historyHere(id('e'), 3, cut, all), true, 'the boundary at the depth asked: its parents are not needed');
    assert.equal(await historyHere(id('e'), 4, cut, all), false, 'cut short at depth 3');
    assert.equal(await historyHere(id('e'), 0, cut, all), false);
    assert.equal(await historyHere(id('e'), 4, new Set(), source(chain, ['c', 'd', 'e'])), false, 'b is not here');
    // A merge: both parents are walked, each at its first depth.
    const merged = { ...chain, f: ['e', 'x'], x: ['a'] };
    assert.equal(await historyHere(id('f'), 0, new Set(), source(merged, ['a', 'b', 'c', 'd', 'e', 'f'])), false, 'x is not here');
    assert.equal(await historyHere(id('f'), 0, new Set(), source(merged, ['a', 'b', 'c', 'd', 'e', 'f', 'x'])), true);
  });

  it('keeps the oldest of boundaries fetched one after another: git walks back to it through whole commits', async () => {
    // A node following with history 2 fetched (c, b), then (d, c), then (e, d): boundaries b, c, d.
    const kept = await keptShallow(new Set([id('b'), id('c'), id('d')]), new Set([id('e'), id('d')]), source(chain, ['a', 'b', 'c', 'd', 'e']));
    assert.deepEqual([...kept], [id('b')]);
  });

  it('keeps a boundary whose parent is here but came with no closure checked whole (its tree may be missing)', async () => {
    // Fetched (d, c), boundary c; b is here too, left by an interrupted walk (commits come before trees).
    const kept = await keptShallow(new Set([id('c')]), new Set([id('d'), id('c')]), source(chain, ['b', 'c', 'd']));
    assert.deepEqual([...kept], [id('c')]);
  });

  it('drops a boundary whose parents are in the closure just checked, and one that is not here durably', async () => {
    // A full fetch of e brought a..e whole: the old boundary c goes. x is not here (its pack never finished).
    const all = new Set(['a', 'b', 'c', 'd', 'e'].map(id));
    const kept = await keptShallow(new Set([id('c'), id('x')]), all, source({ ...chain, x: ['a'] }, ['a', 'b', 'c', 'd', 'e']));
    assert.deepEqual([...kept], []);
  });

  it('updates under shallow.lock: two at once lose no entry, and one waits for a lock git holds', async () => {
    const gitDir = tmp.make();
    const keepAll = async (candidates: ReadonlySet<Oid>): Promise<ReadonlySet<Oid>> => {
      await sleep(50); // a decision that takes a while, as keptShallow reading commits does
      return candidates;
    };
    await Promise.all([updateShallow(gitDir, [id('a')], keepAll), updateShallow(gitDir, [id('b')], keepAll)]);
    assert.deepEqual([...(await readShallow(gitDir))].sort(), [id('a'), id('b')]);
    // git holds the lock for a moment (git fetch --deepen): the update waits, then goes on.
    writeFileSync(join(gitDir, 'shallow.lock'), '');
    setTimeout(() => unlinkSync(join(gitDir, 'shallow.lock')), 300);
    await updateShallow(gitDir, [id('c')], keepAll);
    assert.deepEqual([...(await readShallow(gitDir))].sort(), [id('a'), id('b'), id('c')]);
    assert.equal(readFileSync(join(gitDir, 'shallow'), 'utf8'), `${id('a')}\n${id('b')}\n${id('c')}\n`);
  });
});
