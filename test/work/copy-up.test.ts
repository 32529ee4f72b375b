/** Copy-up (branch-fs.ts): a copy that fails leaves no data file behind. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { encodeCommit } from '../../src/objects/commit.js';
import { hashObject } from '../../src/objects/oid.js';
import { encodeTree, TreeModes } from '../../src/objects/tree.js';
import { Repository } from '../../src/repo/repository.js';
import { FsError } from '../../src/work/fs-error.js';
import { Workspace } from '../../src/work/workspace.js';
import { tempDirs } from '../support/tmp.js';

const main = parseBranchName('main');

describe('working layer: copy-up', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('a copy that fails (its object is not here, as on a node that fetches on demand) leaves no data file, however often it is tried', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const missing = hashObject('blob', Buffer.from('never stored\n'));
    const writer = await repo.newPackWriter();
    const tree = await writer.write('tree', encodeTree([{ mode: TreeModes.FILE, name: 'f', oid: missing }]));
    const sig = { name: 'T', email: 't@example.com', timestamp: 1_700_000_000, tzOffsetMinutes: 0 };
    const commit = await writer.write('commit', encodeCommit({ tree, parents: [], author: sig, committer: sig, extraHeaders: [], message: 'f missing\n' }));
    await writer.finish();
    await repo.refs.update(main, { expected: null, next: commit, message: 'test' });
    const ws = await Workspace.open(repo);
    try {
      for (let i = 0; i < 3; i++) await assert.rejects(ws.fs(main).writable('f'), (e: unknown) => !(e instanceof FsError));
      assert.deepEqual(readdirSync(ws.store.dataDir), []);
    } finally {
      await ws.close();
      await repo.close();
    }
  });
});
