/**
 * Where a workspace learns the branch heads its views lie over. A command reads them live
 * (`LiveHeads`); the mount serves a published copy that changes only together with the
 * kernel's caches (src/mount/published-heads.ts).
 */
import type { BranchName } from '../branches/ref-name.js';
import type { BranchRef, RefStore } from '../branches/ref-store.js';
import { StampedRefs } from '../branches/stamped-refs.js';
import type { Oid } from '../objects/oid.js';

/** Between listings of a workspace's heads whatever their stamp says (a ref file rewritten in place). */
const RELIST_MS = 60_000;

export interface BranchHeads {
  /** Every branch head as the workspace shows it now. */
  current(): Promise<ReadonlyMap<BranchName, Oid>>;
  /** This process moved `branch`: current() shows it from now on. Never waits on the kernel, never rejects. */
  moved(branch: BranchName): Promise<void>;
  /** Calls `listener` with the branches whose heads change in what current() shows, as they change. */
  onChange(listener: (branches: readonly BranchName[]) => void): void;
  /**
   * `branch`'s layer let go of the commit it was pinned to (its last change was undone) and
   * follows the head again: what was shown of the old commit may differ from the head's.
   */
  unpinned(branch: BranchName): void;
}

/**
 * The heads as they are now: read again only when a ref file changed, which two or three stat
 * calls tell (every ref update renames a file into its directory, changing that directory's
 * modification time, and packed-refs is replaced whole; stamped-refs.ts), and checked once per
 * event-loop turn.
 */
export class LiveHeads implements BranchHeads {
  private readonly refs: StampedRefs;
  private heads: { refs: readonly BranchRef[]; map: Map<BranchName, Oid> } | undefined;
  private checked = false;

  constructor(c: { readonly gitDir: string; readonly refs: RefStore; readonly now: () => number }) {
    this.refs = new StampedRefs(c, RELIST_MS);
  }

  async current(): Promise<ReadonlyMap<BranchName, Oid>> {
    // One check per turn of the event loop: a request asks several times (route, base, view).
    if (this.heads !== undefined && this.checked) return this.heads.map;
    const refs = await this.refs.list();
    if (this.heads?.refs !== refs) this.heads = { refs, map: new Map(refs.map((r) => [r.name, r.oid])) };
    this.checkedThisTurn();
    return this.heads.map;
  }

  private checkedThisTurn(): void {
    if (this.checked) return;
    this.checked = true;
    setImmediate(() => (this.checked = false));
  }

  moved(_branch: BranchName): Promise<void> {
    this.checked = false;
    return Promise.resolve();
  }

  /** A command reads the heads as they are at each look and keeps no view across a change: nothing to tell. */
  onChange(_listener: (branches: readonly BranchName[]) => void): void {}

  /** Nothing was shown from a cache that could hold the old commit. */
  unpinned(_branch: BranchName): void {}
}
