/**
 * The branch head moving under the working layer (a fetch, another process's commit), with heads
 * published by hand as the mount publishes them: a clean layer goes over to the new head even
 * when a copy-up was under way, and a layer that lets go of its pinned commit says so, so the
 * mount can make the kernel forget what it showed of that commit.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseBranchName, type BranchName } from '../../src/branches/ref-name.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import type { Oid } from '../../src/objects/oid.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import type { BranchHeads } from '../../src/work/branch-heads.js';
import { Workspace } from '../../src/work/workspace.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

const main = parseBranchName('main');

/** Heads that change only when `publish` is called, telling the workspace as the mount's do. */
class HandHeads implements BranchHeads {
  map = new Map<BranchName, Oid>();
  readonly unpinnedCalls: BranchName[] = [];
  private readonly listeners: Array<(branches: readonly BranchName[]) => void> = [];
  current(): Promise<ReadonlyMap<BranchName, Oid>> {
    return Promise.resolve(this.map);
  }
  moved(): Promise<void> {
    return Promise.resolve();
  }
  onChange(listener: (branches: readonly BranchName[]) => void): void {
    this.listeners.push(listener);
  }
  unpinned(branch: BranchName): void {
    this.unpinnedCalls.push(branch);
  }
  publish(branch: BranchName, oid: Oid): void {
    this.map = new Map([...this.map, [branch, oid]]);
    for (const l of this.listeners) l([branch]);
  }
}

describe('working layer: the branch head moves under it', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  /** Two commits of main: b.txt "old" then "new", a large file alike in both. */
  async function twoHeads(): Promise<{ repo: Repository; h0: Oid; h1: Oid }> {
    const base = tmp.make();
    const big = pseudoRandomBytes(16 << 20, 'big');
    for (const [v, text] of [['v0', 'old\n'], ['v1', 'new\n']] as const) {
      mkdirSync(join(base, v));
      writeFileSync(join(base, v, 'a.bin'), big);
      writeFileSync(join(base, v, 'b.txt'), text);
    }
    const repo = await Repository.init(join(base, 'repo'));
    const h0 = (await commitDirectory(repo, main, join(base, 'v0'), { message: 'v0' })).commit;
    const h1 = (await commitDirectory(repo, main, join(base, 'v1'), { message: 'v1' })).commit;
    assert.ok(h0 !== undefined && h1 !== undefined);
    return { repo, h0, h1 };
  }

  it('a copy-up under way when the head moves is made again over the new head, not pinned to the old one', async () => {
    const { repo, h0, h1 } = await twoHeads();
    const heads = new HandHeads();
    heads.map.set(main, h0);
    const ws = await Workspace.open(repo, heads);
    try {
      const copy = ws.fs(main).writable('a.bin');
      setImmediate(() => heads.publish(main, h1));
      const id = await copy;
      assert.equal(ws.store.layer(main).base, h1, 'the layer is pinned to the head it shows now');
      const { view } = await ws.view(main);
      const b = await view.resolve('b.txt');
      assert.ok(b?.node.kind === 'file' && b.node.git !== undefined);
      assert.equal((await repo.objects.read(b.node.git.oid)).content.toString(), 'new\n');
      assert.equal((await readFile(ws.store.dataPath(id))).length, 16 << 20);
    } finally {
      await ws.close();
      await repo.close();
    }
  });

  it('a layer whose last change is undone follows the head again, and says so (the mount forgets the old commit)', async () => {
    const { repo, h0, h1 } = await twoHeads();
    const heads = new HandHeads();
    heads.map.set(main, h0);
    const ws = await Workspace.open(repo, heads);
    try {
      await ws.fs(main).create('tmp', 0o644);
      assert.equal(ws.store.layer(main).base, h0);
      heads.publish(main, h1);
      assert.deepEqual(heads.unpinnedCalls, []);
      await ws.fs(main).unlink('tmp');
      assert.equal(ws.store.layer(main).base, undefined, 'it follows the head again');
      assert.deepEqual(heads.unpinnedCalls, [main]);
    } finally {
      await ws.close();
      await repo.close();
    }
  });

  it('a branch deleted under its uncommitted changes (git branch -D) is not made again from them alone: WORK_CONFLICT, and once it is back the commit goes on it', async () => {
    const { repo, h1 } = await twoHeads();
    const ws = await Workspace.open(repo);
    try {
      await ws.fs(main).create('d.txt', 0o644);
      await repo.refs.delete(main, h1);
      await assert.rejects(ws.commit(main, 'after the delete'), (e: unknown) => isGitfsError(e, ErrorCodes.WORK_CONFLICT) && /was deleted since/.test((e as Error).message));
      assert.equal(await repo.refs.resolve(main), undefined, 'no branch was made');
      await repo.refs.update(main, { expected: null, next: h1, message: 'back' });
      const r = await ws.commit(main, 'on the branch again');
      assert.equal(r.parent, h1);
      const { view } = await ws.view(main);
      assert.ok((await view.resolve('b.txt')) !== undefined && (await view.resolve('d.txt')) !== undefined);
    } finally {
      await ws.close();
      await repo.close();
    }
  });
});
