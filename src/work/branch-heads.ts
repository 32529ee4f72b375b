/**
 * Where a workspace learns the branch heads its views lie over. A command reads them live
 * (`LiveHeads`); the mount serves a published copy that changes only together with the
 * kernel's caches (src/mount/published-heads.ts).
 */
import type { BranchName } from '../branches/ref-name.js';
import { refStamp, restamp } from '../branches/ref-stamp.js';
import type { RefStore } from '../branches/ref-store.js';
import type { Oid } from '../objects/oid.js';

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
 * modification time, and packed-refs is replaced whole), and checked once per event-loop turn.
 */
export class LiveHeads implements BranchHeads {
  private heads: { stamp: string; dirs: readonly string[]; map: Map<BranchName, Oid> } | undefined;
  private checked = false;

  constructor(
    private readonly gitDir: string,
    private readonly refs: RefStore,
  ) {}

  async current(): Promise<ReadonlyMap<BranchName, Oid>> {
    // One check per turn of the event loop: a request asks several times (route, base, view).
    if (this.heads !== undefined && (this.checked || restamp(this.gitDir, this.heads.dirs) === this.heads.stamp)) {
      this.checkedThisTurn();
      return this.heads.map;
    }
    // Stamp first, list after: a change during the listing makes the next look list again.
    const { stamp, dirs } = refStamp(this.gitDir);
    this.heads = { stamp, dirs, map: new Map((await this.refs.list()).map((r) => [r.name, r.oid])) };
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
