import assert from 'node:assert/strict';
import { reaches } from '../../src/objects/commit-ancestry.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';

/** A commit graph in memory: each commit's content names its parents (tree and identity fixed). */
function graph(): { add(name: string, parents: string[]): Oid; content(oid: Oid): Promise<Buffer | undefined>; drop(oid: Oid): void } {
  const byOid = new Map<Oid, Buffer>();
  const tree = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
  return {
    add(name, parents) {
      const text = `tree ${tree}\n${parents.map((p) => `parent ${p}\n`).join('')}author A <a@example.invalid> 1 +0000\ncommitter A <a@example.invalid> 1 +0000\n\n${name}\n`;
      const content = Buffer.from(text);
      const oid = hashObject('commit', content);
      byOid.set(oid, content);
      return oid;
    },
    content: (oid) => Promise.resolve(byOid.get(oid)),
    drop: (oid) => void byOid.delete(oid),
  };
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
