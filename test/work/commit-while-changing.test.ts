import assert from 'node:assert/strict';
import { open, readFile, writeFile as writeFileAt } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseBranchName, type BranchName } from '../../src/branches/ref-name.js';
import { fileContent } from '../../src/files/file-content.js';
import { lookupPath, readCommit, rootEntry } from '../../src/files/tree-reader.js';
import type { Oid } from '../../src/objects/oid.js';
import type { BranchHeads } from '../../src/work/branch-heads.js';
import { Repository } from '../../src/repo/repository.js';
import { Workspace } from '../../src/work/workspace.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

const main = parseBranchName('main');

/** Writes `data` to the file the layer now names at `path` (as a write through the mount would). */
async function writeFile(ws: Workspace, path: string, data: Buffer): Promise<void> {
  const id = await ws.fs(main).create(path, 0o644);
  const fh = await open(ws.store.dataPath(id), 'r+');
  await fh.write(data, 0, data.length, 0);
  await fh.close();
}

async function names(ws: Workspace, dir: string): Promise<string[]> {
  const { view } = await ws.view(main);
  const found = await view.resolve(dir);
  assert.ok(found !== undefined, `${dir} exists`);
  return (await view.list(dir, found.node)).map((e) => e.name);
}

describe('working layer: changes made while a commit runs', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('are neither lost nor undone by the commit, and the next commit takes them', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const ws = await Workspace.open(repo);
    try {
      await ws.fs(main).mkdir('n', 0o755);
      await writeFile(ws, 'n/f', Buffer.from('f\n'));
      await writeFile(ws, 'gone', Buffer.from('to be deleted during the commit\n'));
      await writeFile(ws, 'moved', Buffer.from('to be renamed during the commit\n'));
      // a large file keeps the commit busy long enough for the changes below to land during it
      await writeFile(ws, 'big.bin', pseudoRandomBytes(24 << 20, 'slow commit'));
      let running = true;
      const commit = ws.commit(main, 'first').finally(() => {
        running = false;
      });
      // the commit takes its snapshot before its first await; a timer fires only after that
      await sleep(0);
      await ws.fs(main).unlink('gone');
      await ws.fs(main).rename('moved', 'renamed');
      await ws.fs(main).utimens('n', 2 ** 53, 1_000_000);
      await writeFile(ws, 'late', Buffer.from('written during the commit\n'));
      assert.ok(running, 'the changes landed while the commit ran');
      const first = await commit;
      assert.ok(first.commit !== undefined);
      const firstTree = await ws.trees.get((await ws.commitInfo(first.commit)).tree);
      assert.ok(firstTree.has('gone') && firstTree.has('moved') && !firstTree.has('late'), 'the commit holds the layer as it was when it began');
      const top = await names(ws, '');
      assert.ok(!top.includes('gone'), 'a file deleted during the commit stays deleted');
      assert.ok(!top.includes('moved') && top.includes('renamed'), 'a rename during the commit stays');
      assert.ok(top.includes('late'), 'a file written during the commit is kept');
      assert.deepEqual(await names(ws, 'n'), ['f'], 'a directory touched during the commit keeps its files');
      const second = await ws.commit(main, 'second');
      assert.ok(second.commit !== undefined);
      assert.deepEqual(await names(ws, ''), ['big.bin', 'late', 'n', 'renamed']);
      assert.deepEqual((await ws.status(main))[0]?.changes, []);
    } finally {
      await ws.close();
      await repo.close();
    }
  });

  it('finishes a commit that landed before a crash instead of reporting a conflict with itself', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const ws = await Workspace.open(repo);
    try {
      await ws.fs(main).mkdir('d', 0o755);
      await ws.fs(main).symlink('target', 'd/l');
      await ws.commit(main, 'base');
      await ws.fs(main).symlink('other', 'l2');
      const layer = ws.store.layer(main);
      const before = [...layer.entries()];
      const base = layer.base ?? null;
      const landed = await ws.commit(main, 'landed');
      assert.ok(landed.commit !== undefined);
      // the state a crash between moving the branch and recording the new base leaves behind
      await layer.change(before, [], base, { base });
      const again = await ws.commit(main, 'again');
      assert.equal(again.commit, undefined);
      assert.equal(await repo.refs.resolve(main), landed.commit);
      assert.equal(layer.size, 0);
      assert.deepEqual(await names(ws, ''), ['d', 'l2']);
    } finally {
      await ws.close();
      await repo.close();
    }
  });
  it('lays a layer whose commit landed before a crash over that commit when the layers open: an unlink of a file the commit added deletes it', async () => {
    const dir = tmp.make();
    const repo = await Repository.init(join(dir, 'repo'));
    let ws = await Workspace.open(repo);
    try {
      await ws.fs(main).symlink('target', 'l');
      await ws.commit(main, 'base');
      await ws.fs(main).symlink('other', 'x');
      const layer = ws.store.layer(main);
      const before = [...layer.entries()];
      const base = layer.base ?? null;
      const landed = await ws.commit(main, 'adds x');
      assert.ok(landed.commit !== undefined);
      // What a crash between moving the branch and settling leaves, then a restart.
      await layer.change(before, [], base, { base });
      await ws.close();
      ws = await Workspace.open(repo);
      assert.equal(ws.store.layer(main).base, landed.commit, 'laid over the commit that landed');
      await ws.fs(main).unlink('x');
      assert.deepEqual(await names(ws, ''), ['l']);
      const next = await ws.commit(main, 'removes x');
      assert.ok(next.commit !== undefined);
      assert.equal(next.parent, landed.commit);
      const root = rootEntry((await readCommit(repo.objects, next.commit)).tree);
      await assert.rejects(lookupPath(repo.objects, root, 'x'), /not found|no such/i, 'x is gone from the commit');
    } finally {
      await ws.close();
      await repo.close();
    }
  });

  it('a reflog line for a commit whose ref move never happened (killed between the two) is not taken for a landed commit', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const ws = await Workspace.open(repo);
    try {
      await writeFile(ws, 'f', Buffer.from('one\n'));
      const base = (await ws.commit(main, 'base')).commit;
      assert.ok(base !== undefined);
      // A symbolic link: its entry holds its target (a file's data would have gone with the commit's settling).
      await ws.fs(main).symlink('f', 'g');
      const layer = ws.store.layer(main);
      const before = [...layer.entries()];
      const phantom = (await ws.commit(main, 'phantom')).commit;
      assert.ok(phantom !== undefined);
      // What a kill between the reflog's line and the ref's rename leaves: the line, the commit
      // (durable before either), the branch still at the base, and the layer as it was.
      await writeFileAt(join(repo.gitDir, 'refs', 'heads', 'main'), `${base}\n`);
      await layer.change(before, [], base, { base });
      const again = await ws.commit(main, 'again');
      assert.ok(again.commit !== undefined, 'the changes are committed again');
      assert.equal(again.parent, base);
      assert.equal(await repo.refs.resolve(main), again.commit);
      assert.deepEqual(await names(ws, ''), ['f', 'g']);
      assert.equal(layer.size, 0);
    } finally {
      await ws.close();
      await repo.close();
    }
  });

  it('an edit on a branch moved back to where a mount commit began is committed, not taken for that old commit (a conflict)', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const ws = await Workspace.open(repo);
    try {
      await writeFile(ws, 'f', Buffer.from('one\n'));
      const b0 = (await ws.commit(main, 'one')).commit;
      await writeFile(ws, 'g', Buffer.from('two\n'));
      const c1 = (await ws.commit(main, 'two')).commit;
      assert.ok(b0 !== undefined && c1 !== undefined);
      // Undone from outside (git branch -f, a push -f): the branch is back at b0.
      await repo.refs.update(main, { expected: c1, next: b0, message: 'reset: moving to b0' });
      await writeFile(ws, 'g', Buffer.from('three\n'));
      const again = await ws.commit(main, 'three');
      assert.ok(again.commit !== undefined);
      assert.equal(again.parent, b0);
      assert.equal(await repo.refs.resolve(main), again.commit);
    } finally {
      await ws.close();
      await repo.close();
    }
  });

  it('shows the new head before the layer lets go of the old one: a file opened for writing just after a commit starts from the commit, not from the head before it', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    // Heads published by hand: the mount's kind, which changes only when told. `window` runs when
    // the commit says the branch moved, before the published heads show it (a reader in between).
    let window: (() => Promise<void>) | undefined;
    let map = new Map<BranchName, Oid>();
    const heads: BranchHeads = {
      current: () => Promise.resolve(map),
      moved: async (branch) => {
        const w = window;
        window = undefined;
        await w?.();
        const oid = await repo.refs.resolve(branch);
        map = new Map(map);
        if (oid !== undefined) map.set(branch, oid);
      },
      onChange: () => undefined,
      unpinned: () => undefined,
    };
    const ws = await Workspace.open(repo, heads);
    try {
      await ws.createEmptyBranch(main);
      await writeFile(ws, 'f.txt', Buffer.from('v1\n'));
      await ws.commit(main, 'v1');
      const edit = await ws.fs(main).writable('f.txt');
      await (await open(ws.store.dataPath(edit), 'w')).close();
      await writeFileAt(ws.store.dataPath(edit), 'v2\n');
      window = async () => {
        const id = await ws.fs(main).writable('f.txt');
        const before = await readFile(ws.store.dataPath(id), 'utf8');
        await writeFileAt(ws.store.dataPath(id), `${before}appended\n`);
      };
      const v2 = await ws.commit(main, 'v2');
      assert.equal(window, undefined, 'the commit told of the move');
      const v3 = await ws.commit(main, 'appended');
      assert.equal(v3.parent, v2.commit);
      const entry = await lookupPath(repo.objects, rootEntry((await readCommit(repo.objects, v3.commit as Oid)).tree), 'f.txt');
      let text = '';
      for await (const b of fileContent(repo.objects, entry)) text += b.toString();
      assert.equal(text, 'v2\nappended\n');
    } finally {
      await ws.close();
      await repo.close();
    }
  });

  it('a change whose view was read while a commit settled is made again on a fresh view, never laid over the old base (which would undo the commit)', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const ws = await Workspace.open(repo);
    try {
      await ws.createEmptyBranch(main);
      await writeFile(ws, 'f.txt', Buffer.from('old\n'));
      await ws.commit(main, 'old');
      const edit = await ws.fs(main).writable('f.txt');
      await writeFileAt(ws.store.dataPath(edit), 'new\n');
      // The next commit read (the view of a create below) waits until let go: the commit settles meanwhile.
      const commitInfo = ws.commitInfo.bind(ws);
      let reached!: () => void;
      const atGate = new Promise<void>((r) => (reached = r));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let armed = true;
      ws.commitInfo = async (oid) => {
        if (armed) {
          armed = false;
          reached();
          await gate;
        }
        return commitInfo(oid);
      };
      const create = ws.fs(main).create('g.txt', 0o644).then(
        () => 'created',
        (e: unknown) => `refused: ${(e as Error).message}`,
      );
      await atGate;
      const landed = await ws.commit(main, 'new');
      release();
      const outcome = await create;
      assert.equal(outcome, 'created', 'refused on the stale view, made again on a fresh one');
      const { view } = await ws.view(main);
      assert.equal(view.base, landed.commit, `the branch's view lies over the commit (${outcome})`);
      const next = await ws.commit(main, 'after');
      const entry = await lookupPath(repo.objects, rootEntry((await readCommit(repo.objects, (next.commit ?? landed.commit) as Oid)).tree), 'f.txt');
      let text = '';
      for await (const b of fileContent(repo.objects, entry)) text += b.toString();
      assert.equal(text, 'new\n', `the commit's edit stands (${outcome})`);
    } finally {
      await ws.close();
      await repo.close();
    }
  });
});
