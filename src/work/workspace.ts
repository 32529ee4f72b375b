/**
 * The working layers of a repository together with what they need: the branch heads they lie
 * over, a tree cache, and commit, status and reset. One process owns it (the mount, or a
 * command when no mount runs).
 *
 * A clean layer follows its branch as `BranchHeads` shows it (src/work/branch-heads.ts): a
 * command's live reading, or the mount's published one. The first change pins the layer to the
 * head of that moment.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import type { Oid } from '../objects/oid.js';
import { writeEmptyDirTree } from '../objects/entry-names.js';
import { branchNameProblem, type BranchName } from '../branches/ref-name.js';
import { readCommit } from '../files/tree-reader.js';
import { pointHeadIfDangling, writeCommit } from '../repo/commit-directory.js';
import type { Repository } from '../repo/repository.js';
import { BranchFs } from './branch-fs.js';
import { LiveHeads, type BranchHeads } from './branch-heads.js';
import { MergedView } from './merged-view.js';
import { TreeCache } from './tree-cache.js';
import { commitWork, rebaseLanded, type WorkCommitResult } from './work-commit.js';
import { workChanges, type WorkChange } from './work-status.js';
import { WorkStore } from './work-store.js';

/** Identity of a file's or directory's current version (inode, size, mtime in ns), or 'none'. */
export interface CommitInfo {
  readonly tree: Oid;
  /** Committer time, ms since the epoch. */
  readonly time: number;
  readonly parents: readonly Oid[];
}

export class Workspace {
  readonly trees: TreeCache;
  private readonly branchFs = new Map<BranchName, BranchFs>();
  private readonly commits = new Map<Oid, CommitInfo>();
  private readonly settling = new Map<BranchName, Promise<void>>();

  private constructor(
    readonly repo: Repository,
    readonly store: WorkStore,
    private readonly heads: BranchHeads,
  ) {
    this.trees = new TreeCache(repo.objects);
    // A clean layer shows the head: when it moves, views of the old one are stale. A layer that
    // goes back to following the head shows another commit than the one it was pinned to.
    // (Only layers in memory: one made later starts with no views.)
    heads.onChange((branches) => {
      for (const b of branches) store.existingLayer(b)?.headMoved();
    });
    store.onUnpinned = (branch) => heads.unpinned(branch);
  }

  static async open(repo: Repository, heads: BranchHeads = new LiveHeads({ gitDir: repo.gitDir, refs: repo.refs, now: () => repo.clock.now() })): Promise<Workspace> {
    const store = await WorkStore.open(repo.gitDir, repo.clock);
    try {
      await rebaseLanded(repo, store);
    } catch (e) {
      await store.close().catch(() => undefined);
      throw e;
    }
    return new Workspace(repo, store, heads);
  }

  /** Every branch head, as this workspace shows it. */
  branchHeads(): Promise<ReadonlyMap<BranchName, Oid>> {
    return this.heads.current();
  }

  async commitInfo(oid: Oid): Promise<CommitInfo> {
    let info = this.commits.get(oid);
    if (info === undefined) {
      const c = await readCommit(this.repo.objects, oid);
      info = { tree: c.tree, time: c.committer.timestamp * 1000, parents: c.parents };
      if (this.commits.size > 65536) this.commits.clear();
      this.commits.set(oid, info);
    }
    return info;
  }

  /** The commit a branch's view lies over: the layer's pinned base, else the branch head (read afresh, or in `heads`). */
  async baseOf(branch: BranchName, heads?: ReadonlyMap<BranchName, Oid>): Promise<Oid | undefined> {
    const pinned = this.store.layer(branch).base;
    if (pinned !== undefined) return pinned ?? undefined;
    return heads === undefined ? this.head(branch) : heads.get(branch);
  }

  /** A branch's head as it is now. */
  async head(branch: BranchName): Promise<Oid | undefined> {
    return (await this.branchHeads()).get(branch);
  }

  /** The branch as a directory now (or over `heads`): its layer over its base, and the base commit's time (ms). */
  async view(branch: BranchName, heads?: ReadonlyMap<BranchName, Oid>): Promise<{ view: MergedView; time: number | undefined }> {
    // The generation first: a commit that settles while the base is read makes this view stale,
    // and a change made through it is refused, never laid over the base from before the commit.
    const layer = this.store.layer(branch);
    const generation = layer.generation;
    const base = await this.baseOf(branch, heads);
    const info = base === undefined ? undefined : await this.commitInfo(base);
    return { view: new MergedView(this.trees, layer, info?.tree ?? null, base ?? null, generation), time: info?.time };
  }

  fs(branch: BranchName): BranchFs {
    let fs = this.branchFs.get(branch);
    if (fs === undefined) {
      const layer = this.store.layer(branch);
      fs = new BranchFs({ store: this.store, objects: this.repo.objects, clock: this.repo.clock }, layer, async () => (await this.view(branch)).view);
      this.branchFs.set(branch, fs);
    }
    return fs;
  }

  async commit(branch: BranchName, message: string, busy?: (dataId: string) => boolean): Promise<WorkCommitResult> {
    return this.exclusive(branch, async () => {
      try {
        const moved = (): Promise<void> => this.heads.moved(branch);
        return await commitWork(this.repo, this.store, this.trees, branch, busy === undefined ? { message, moved } : { message, busy, moved });
      } finally {
        await this.heads.moved(branch);
      }
    });
  }

  /** Runs commits and resets of one branch one at a time (each settles the layer as it found it). */
  private exclusive<T>(branch: BranchName, work: () => Promise<T>): Promise<T> {
    const run = (this.settling.get(branch) ?? Promise.resolve()).then(work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.settling.set(branch, tail);
    void tail.then(() => {
      if (this.settling.get(branch) === tail) this.settling.delete(branch);
    });
    return run;
  }

  /** Uncommitted changes of one branch, or of every branch that has some. */
  async status(branch?: BranchName): Promise<Array<{ branch: BranchName; base: Oid | null; changes: WorkChange[] }>> {
    const out = [];
    for (const b of branch === undefined ? this.store.dirtyBranches().sort() : [branch]) {
      const layer = this.store.layer(b);
      const base = (await this.baseOf(b)) ?? null;
      out.push({ branch: b, base, changes: await workChanges(layer, this.trees, base === null ? null : (await this.commitInfo(base)).tree) });
    }
    return out;
  }

  /** Discards a branch's uncommitted changes; returns how many paths they changed, as `status` counts them. */
  reset(branch: BranchName): Promise<number> {
    return this.exclusive(branch, () => this.resetNow(branch));
  }

  private async resetNow(branch: BranchName): Promise<number> {
    // Counted as status counts them; where that cannot be read (a tree under a change lost), the entries: reset is the way out, and must not fail on it.
    const changed = await this.status(branch).then(
      (s) => s[0]?.changes.length ?? 0,
      () => this.store.layer(branch).size,
    );
    const layer = this.store.layer(branch);
    const entries = [...layer.entries()];
    await layer.change(
      [],
      entries.map(([p]) => p),
      null,
      { base: undefined },
    );
    await this.store.dropData(entries.map(([, e]) => e));
    await this.store.sync();
    return changed;
  }

  /** Creates a branch whose first commit holds an empty tree (mkdir at the mount's root). */
  async createEmptyBranch(branch: BranchName): Promise<void> {
    const problem = branchNameProblem(branch);
    if (problem !== undefined) throw new GitfsError(ErrorCodes.BAD_BRANCH_NAME, problem);
    await this.repo.whileWriting(async () => {
      const writer = await this.repo.newPackWriter();
      let commit: Oid;
      try {
        // An empty root as any empty directory is stored (as commits of the mount store it): with its keep marker.
        const tree = await writeEmptyDirTree(writer);
        commit = await writeCommit(this.repo, writer, tree, [], `create branch ${branch}`);
      } catch (e) {
        await writer.abort();
        throw e;
      }
      await writer.finish();
      await this.repo.refs.update(branch, { expected: null, next: commit, message: 'branch: created by mkdir in the mount' });
    });
    await this.heads.moved(branch);
    await pointHeadIfDangling(this.repo, branch);
  }

  /** Deletes a branch whose tree is empty and whose layer changes nothing (rmdir at the mount's root). */
  async deleteEmptyBranch(branch: BranchName): Promise<boolean> {
    return this.exclusive(branch, async () => {
      const head = await this.head(branch);
      if (head === undefined) return false;
      const layer = this.store.layer(branch);
      const base = (await this.baseOf(branch)) ?? head;
      if (base !== head) return false;
      const { tree } = await this.commitInfo(head);
      if ((await this.trees.get(tree)).size > 0) return false;
      // Changes that cancel out (a file made and removed, the root's time) leave entries but no change.
      if (layer.size > 0 && (await workChanges(layer, this.trees, tree)).length > 0) return false;
      await this.repo.refs.delete(branch, head);
      if (layer.size > 0) await this.resetNow(branch);
      await this.heads.moved(branch);
      return true;
    });
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
