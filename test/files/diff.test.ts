/** Tree comparison (diff.ts): what changed, in path order, at any depth of directories. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { diffTrees, type Change } from '../../src/files/diff.js';
import { writeEmptyDirTree } from '../../src/objects/entry-names.js';
import type { Oid } from '../../src/objects/oid.js';
import { encodeTree, TreeModes, type TreeEntry } from '../../src/objects/tree.js';
import { Repository } from '../../src/repo/repository.js';
import { tempDirs } from '../support/tmp.js';

async function collect(changes: AsyncIterable<Change>): Promise<string[]> {
  const out: string[] = [];
  for await (const c of changes) out.push(`${c.kind} ${c.path}`);
  return out;
}

describe('files/diff', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('names changes in path order: a directory added or deleted whole is its files, an empty one itself; a type change between the two sides of it', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    try {
      const w = await repo.newPackWriter();
      const blob = (text: string): Promise<Oid> => w.write('blob', Buffer.from(text));
      const tree = (entries: TreeEntry[]): Promise<Oid> => w.write('tree', encodeTree(entries));
      const empty = await writeEmptyDirTree(w);
      const gone = await tree([{ mode: TreeModes.FILE, name: 'g', oid: await blob('g') }]);
      const before = await tree([
        { mode: TreeModes.FILE, name: 'a', oid: await blob('a') },
        { mode: TreeModes.TREE, name: 'd', oid: gone },
        { mode: TreeModes.TREE, name: 'e', oid: empty },
        { mode: TreeModes.FILE, name: 'm', oid: await blob('m') },
        { mode: TreeModes.FILE, name: 't', oid: await blob('t') },
      ]);
      const after = await tree([
        { mode: TreeModes.EXECUTABLE, name: 'a', oid: await blob('a') },
        { mode: TreeModes.TREE, name: 'm', oid: await tree([{ mode: TreeModes.FILE, name: 'in', oid: await blob('in') }]) },
        { mode: TreeModes.TREE, name: 'n', oid: empty },
        { mode: TreeModes.FILE, name: 't', oid: await blob('t2') },
      ]);
      await w.finish();
      assert.deepEqual(await collect(diffTrees(repo.objects, before, after)), ['mode-changed a', 'deleted d/g', 'deleted e', 'type-changed m', 'added m/in', 'added n', 'modified t']);
      assert.deepEqual(await collect(diffTrees(repo.objects, after, before)), ['mode-changed a', 'added d/g', 'added e', 'deleted m/in', 'type-changed m', 'deleted n', 'modified t']);
      assert.deepEqual(await collect(diffTrees(repo.objects, before, before)), []);
    } finally {
      await repo.close();
    }
  });

  it('compares directories 3 000 deep (nested generators overflowed the stack at ~1 500)', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    try {
      const w = await repo.newPackWriter();
      const deep = async (leaf: string): Promise<Oid> => {
        let oid = await w.write('tree', encodeTree([{ mode: TreeModes.FILE, name: 'f', oid: await w.write('blob', Buffer.from(leaf)) }]));
        for (let i = 0; i < 3000; i++) oid = await w.write('tree', encodeTree([{ mode: TreeModes.TREE, name: 'd', oid }]));
        return oid;
      };
      const one = await deep('one');
      const two = await deep('two');
      await w.finish();
      const path = `${'d/'.repeat(3000)}f`;
      assert.deepEqual(await collect(diffTrees(repo.objects, one, two)), [`modified ${path}`]);
      assert.deepEqual(await collect(diffTrees(repo.objects, undefined, one)), [`added ${path}`]);
      assert.deepEqual(await collect(diffTrees(repo.objects, one, undefined)), [`deleted ${path}`]);
    } finally {
      await repo.close();
    }
  });
});
