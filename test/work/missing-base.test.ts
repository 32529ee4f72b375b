/**
 * The working layer over a base commit whose trees cannot be read (absent, as after a lost pack,
 * or corrupt): status and commit report that, never a changed path as added or in conflict.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { encodeCommit } from '../../src/objects/commit.js';
import { encodeTree, TreeModes } from '../../src/objects/tree.js';
import { Repository } from '../../src/repo/repository.js';
import { Workspace } from '../../src/work/workspace.js';
import { tempDirs } from '../support/tmp.js';

const main = parseBranchName('main');

describe('working layer: a base whose trees cannot be read', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('status and commit fail with OBJECT_NOT_FOUND (status listed the new file as added) and the branch stays', async () => {
    const dir = join(tmp.make(), 'repo');
    let repo = await Repository.init(dir);
    // The subtree in a pack of its own, so that it alone can be lost.
    const first = await repo.newPackWriter();
    const blob = await first.write('blob', Buffer.from('a\n'));
    const sub = await first.write('tree', encodeTree([{ mode: TreeModes.FILE, name: 'a.txt', oid: blob }]));
    const names = (await first.finish())?.names ?? [];
    assert.equal(names.length, 1);
    const second = await repo.newPackWriter();
    const root = await second.write('tree', encodeTree([{ mode: TreeModes.TREE, name: 'sub', oid: sub }]));
    const sig = { name: 'T', email: 't@example.com', timestamp: 1_700_000_000, tzOffsetMinutes: 0 };
    const commit = await second.write('commit', encodeCommit({ tree: root, parents: [], author: sig, committer: sig, extraHeaders: [], message: 'sub\n' }));
    await second.finish();
    await repo.refs.update(main, { expected: null, next: commit, message: 'test' });
    let ws = await Workspace.open(repo);
    await ws.fs(main).create('sub/new.txt', 0o644);
    await ws.close();
    await repo.close();
    for (const name of names) for (const ext of ['idx', 'pack']) rmSync(join(dir, 'objects', 'pack', `${name}.${ext}`));

    repo = await Repository.open(dir);
    ws = await Workspace.open(repo);
    try {
      await assert.rejects(ws.status(main), (e: unknown) => isGitfsError(e, ErrorCodes.OBJECT_NOT_FOUND));
      await assert.rejects(ws.commit(main, 'm'), (e: unknown) => isGitfsError(e, ErrorCodes.OBJECT_NOT_FOUND));
      assert.equal(await repo.refs.resolve(main), commit, 'the branch stays where it was');
    } finally {
      await ws.close();
      await repo.close();
    }
  });
});
