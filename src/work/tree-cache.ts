/** Decoded trees by id, bounded. Trees are immutable, so a cached one is never stale. */
import { fromTreeEntries, type DirEntry } from '../objects/entry-names.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import { decodeTree } from '../objects/tree.js';
import { readTyped } from '../objects/typed-read.js';
import { remember } from '../util/bounded-map.js';

export type TreeListing = ReadonlyMap<string, DirEntry>;

export class TreeCache {
  private readonly trees = new Map<Oid, TreeListing>();

  constructor(
    private readonly store: ObjectReader,
    private readonly capacity = 8192,
  ) {}

  async get(oid: Oid): Promise<TreeListing> {
    const hit = this.trees.get(oid);
    if (hit !== undefined) {
      this.trees.delete(oid);
      this.trees.set(oid, hit);
      return hit;
    }
    const entries = fromTreeEntries(decodeTree(await readTyped(this.store, oid, 'tree'), oid), oid);
    const listing = new Map(entries.map((e) => [e.name, e]));
    return remember(this.trees, oid, listing, this.capacity);
  }
}
