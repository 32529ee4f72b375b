import assert from 'node:assert/strict';
import { independent, mergeBase, reaches } from '../../src/objects/commit-ancestry.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';

/** A commit graph in memory: each commit's content names its parents (tree and identity fixed). */
function graph(): { add(name: string, parents: string[], time?: number): Oid; content(oid: Oid): Promise<Buffer | undefined>; drop(oid: Oid): void; reads: number } {
  const byOid = new Map<Oid, Buffer>();
  const tree = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
  // Each commit a second after the one made before it, unless told (a clock that ran behind).
  let clock = 1_000;
  const g = {
    reads: 0,
    add(name: string, parents: string[], time = ++clock): Oid {
      const text = `tree ${tree}\n${parents.map((p) => `parent ${p}\n`).join('')}author A <a@example.invalid> ${time} +0000\ncommitter A <a@example.invalid> ${time} +0000\n\n${name}\n`;
      const content = Buffer.from(text);
      const oid = hashObject('commit', content);
      byOid.set(oid, content);
      return oid;
    },
    content: (oid: Oid): Promise<Buffer | undefined> => {
      g.reads++;
      return Promise.resolve(byOid.get(oid));
    },
    drop: (oid: Oid): void => void byOid.delete(oid),
  };
  return g;
}

describe('objects/commit-ancestry: reaches', () => {
  it('follows every parent (merges too), stops at commits not here, and looks no further than its limit', async () => {
    const g = graph();
    const root = g.add('root', []);
    const a = g.add('a', [root]);
    const b = g.add('b', [root]);
    const merge = g.add('merge', [a, b]);
    const side = g.add('side', [root]);
    assert.equal(await reaches(g.content, merge, merge, 10), true);
    assert.equal(await reaches(g.content, merge, b, 10), true);
    assert.equal(await reaches(g.content, merge, root, 10), true);
    assert.equal(await reaches(g.content, merge, side, 10), false);
    assert.equal(await reaches(g.content, a, merge, 10), false);
    // A long line: the limit counts commits looked at.
    let tip = root;
    for (let i = 0; i < 50; i++) tip = g.add(`line ${i}`, [tip]);
    assert.equal(await reaches(g.content, tip, root, 51), true);
    assert.equal(await reaches(g.content, tip, root, 50), false);
    // A shallow history: a parent not here ends its line.
    g.drop(a);
    assert.equal(await reaches(g.content, merge, root, 10), true, 'through b');
    g.drop(b);
    assert.equal(await reaches(g.content, merge, root, 10), false);
  });
});

describe('objects/commit-ancestry: mergeBase', () => {
  const line = (g: ReturnType<typeof graph>, from: Oid, n: number, label: string): Oid[] => {
    const out: Oid[] = [];
    let tip = from;
    for (let i = 0; i < n; i++) out.push((tip = g.add(`${label} ${i}`, [tip])));
    return out;
  };

  it('finds the fork point of two lines as git does, reading little of a long shared history below it', async () => {
    const g = graph();
    const shared = line(g, g.add('root', []), 500, 'shared');
    const fork = shared.at(-1) as Oid;
    const a = line(g, fork, 2, 'a').at(-1) as Oid;
    const b = line(g, fork, 5, 'b').at(-1) as Oid;
    assert.deepEqual(await mergeBase(g.content, a, b, 20), { base: fork });
    assert.ok(g.reads < 20, `${g.reads} commits read`);
    assert.deepEqual(await mergeBase(g.content, b, a, 20), { base: fork });
    // A fork deeper than the limit: cut, not a wrong base.
    assert.equal(await mergeBase(g.content, line(g, fork, 30, 'long').at(-1) as Oid, a, 20), 'cut');
    // An earlier merge between: the base is the newest commit both hold, not the first met.
    const merged = g.add('merge', [a, b]);
    const next = g.add('after the merge', [merged]);
    const other = g.add('b again', [b]);
    assert.deepEqual(await mergeBase(g.content, next, other, 100), { base: b });
    // A common commit whose clock ran ahead, met first, that lies below another common one: not the base.
    const ahead = g.add('clock ahead', [fork], 9_999_999);
    const d = g.add('d', [ahead]);
    const [l, r] = [g.add('l', [d, ahead]), g.add('r', [d, ahead])];
    assert.deepEqual(await mergeBase(g.content, l, r, 100), { base: d });
  });

  it('settles a criss-cross (two bases) by painting down from each, reading little of a long history, with a line cut far below', async () => {
    const g = graph();
    const root = g.add('root', []);
    const tip = line(g, root, 60, 'shared').at(-1) as Oid;
    const [x, y] = [g.add('x', [tip]), g.add('y', [tip])];
    const [mx, my] = [g.add('merge x y', [x, y]), g.add('merge y x', [y, x])];
    const [a, b] = [g.add('a', [mx]), g.add('b', [my])];
    g.drop(root);
    // git merge-base --all: x and y; the later of the two (y, made after x).
    const before = g.reads;
    assert.deepEqual(await mergeBase(g.content, a, b, 20), { base: y });
    assert.ok(g.reads - before < 40, `${g.reads - before} commits read`);
    assert.deepEqual(await mergeBase(g.content, b, a, 20), { base: y });
  });

  it('is none for unrelated whole histories, and cut where a line above the fork point is not here (it may hide that one head holds the other)', async () => {
    const g = graph();
    assert.equal(await mergeBase(g.content, g.add('one', []), g.add('two', []), 10), 'none');
    const root = g.add('root', []);
    const [h1, h2, h3] = line(g, root, 3, 'h') as [Oid, Oid, Oid];
    const x = g.add('x', [root]);
    const m = g.add('m', [h3, x]);
    assert.deepEqual(await mergeBase(g.content, m, h1, 10), { base: h1 }, 'whole: h1 is m\'s ancestor');
    g.drop(h2);
    assert.equal(await mergeBase(g.content, m, h1, 10), 'cut', 'h2 gone, h1 could pass for a fork from root');
    // A line cut below the fork point (a shallow history) is no matter.
    const [c1, c2] = line(g, g.add('deep', []), 2, 'c') as [Oid, Oid];
    const [l, r] = [g.add('l', [c2]), g.add('r', [c2])];
    g.drop(c1);
    assert.deepEqual(await mergeBase(g.content, l, r, 10), { base: c2 });
  });
});

describe('objects/commit-ancestry: independent', () => {
  it('keeps, of several commits, those no other reaches (git merge-base --independent), in their order, each once; through merges, and a clock that ran behind; cut where a walk is', async () => {
    const g = graph();
    const root = g.add('root', []);
    const [a, b] = [g.add('a', [root]), g.add('b', [root])];
    const a2 = g.add('a2', [a]);
    const m = g.add('m', [a, b]);
    // Made after b, with a time long before it: the paint must not stop short of b.
    const late = g.add('late', [b], 10);
    const c = g.add('c', [root]);
    assert.deepEqual(await independent(g.content, [a, a2, b, c], 100), [a2, b, c]);
    assert.deepEqual(await independent(g.content, [m, a, b, c, m], 100), [m, c], 'a merge holds both its parents');
    assert.deepEqual(await independent(g.content, [b, late, a2], 100), [late, a2], 'a later commit with an earlier time still holds its parent');
    assert.deepEqual(await independent(g.content, [c], 100), [c]);
    g.drop(a);
    assert.equal(await independent(g.content, [a2, b, c], 100), 'cut', 'a gone: a2 could hold anything below it');
  });
});
