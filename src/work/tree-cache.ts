/**
 * Decoded trees by id, the least recently used let go past TREES_HELD trees or ENTRIES_HELD entries
 * in all (a directory of 50 000 names, committed often, makes a large new tree each time). Trees
 * are immutable, so a cached one is never stale.
 */
import { fromTreeEntries, type DirEntry } from '../objects/entry-names.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import { decodeTree } from '../objects/tree.js';
import { readTyped } from '../objects/typed-read.js';

export type TreeListing = ReadonlyMap<string, DirEntry>;

const TREES_HELD = 8192;
/** Entries held in all: ~200 bytes of heap each (bench/cache-heap.ts), ~100 MB. */
const ENTRIES_HELD = 500_000;

export class TreeCache {
  private readonly trees = new Map<Oid, TreeListing>();
  private entries = 0;

  constructor(private readonly store: ObjectReader) {}

  async get(oid: Oid): Promise<TreeListing> {
    const hit = this.trees.get(oid);
    if (hit !== undefined) {
      this.trees.delete(oid);
      this.trees.set(oid, hit);
      return hit;
    }
    const entries = fromTreeEntries(decodeTree(await readTyped(this.store, oid, 'tree'), oid), oid);
    const listing = new Map(entries.map((e) => [e.name, e]));
    // Read meanwhile by another caller: that one is kept.
    const raced = this.trees.get(oid);
    if (raced !== undefined) return raced;
    this.trees.set(oid, listing);
    this.entries += listing.size;
    for (const [old, held] of this.trees) {
      if (old === oid || (this.trees.size <= TREES_HELD && this.entries <= ENTRIES_HELD)) break;
      this.trees.delete(old);
      this.entries -= held.size;
    }
    return listing;
  }
}
