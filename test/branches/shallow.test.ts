import assert from 'node:assert/strict';
import { keptShallow, type ShallowSource } from '../../src/branches/shallow.js';
import type { Oid } from '../../src/objects/oid.js';

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
  // History a <- b <- c <- d <- e (each the parent of the next).
  const chain = { a: [], b: ['a'], c: ['b'], d: ['c'], e: ['d'] };

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
});
