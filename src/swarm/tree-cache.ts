/**
 * Decoded trees, and the reach of the last base, shared by every closure walk of a node. A new
 * version of a large file changes a few chunk trees out of thousands; with this cache a walk
 * reads and decodes only those (a 512 MiB image has ~4 000 trees). Least recently used trees go first once the entries held
 * pass the budget. Trees are immutable (named by their hash), so an entry never goes stale.
 */
import type { Oid } from '../objects/oid.js';
import type { TreeLinks } from './tree-links.js';

/** Entries (an id string and a kind each) of every tree of a 2 GiB chunked file. */
export const TREE_CACHE_ENTRIES = 256 * 1024;

export class TreeCache {
  private readonly trees = new Map<Oid, TreeLinks>();
  private entries = 0;
  /**
   * The trees and blobs of the last base asked for (closure.ts): the fetch and every peer's
   * Interested walk a new head by the same base at once, and each would list it (65 000 chunks of
   * a 512 MiB image).
   */
  private lastReach: { readonly commit: Oid; readonly reach: Promise<ReadonlySet<Oid>> } | undefined;

  constructor(private readonly maxEntries = TREE_CACHE_ENTRIES) {}

  get(oid: Oid): TreeLinks | undefined {
    const t = this.trees.get(oid);
    if (t !== undefined) {
      this.trees.delete(oid);
      this.trees.set(oid, t);
    }
    return t;
  }

  /** Keeps a tree decoded from an object whose id was checked. */
  set(oid: Oid, links: TreeLinks): void {
    if (this.trees.has(oid) || links.oids.length > this.maxEntries) return;
    this.trees.set(oid, links);
    this.entries += links.oids.length;
    for (const [old, e] of this.trees) {
      if (this.entries <= this.maxEntries) break;
      this.trees.delete(old);
      this.entries -= e.oids.length;
    }
  }

  /** What `compute` gives for `commit`'s tree, shared with the walks asking at the same time or after, until another base is asked for. */
  reach(commit: Oid, compute: () => Promise<ReadonlySet<Oid>>): Promise<ReadonlySet<Oid>> {
    if (this.lastReach?.commit === commit) return this.lastReach.reach;
    const reach = compute();
    this.lastReach = { commit, reach };
    // A base not here is asked again next time.
    reach.catch(() => {
      if (this.lastReach?.reach === reach) this.lastReach = undefined;
    });
    return reach;
  }

  get size(): number {
    return this.trees.size;
  }
}
