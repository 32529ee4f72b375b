/**
 * One Bloom filter over the ids of every pack a repository has open, so that an id held by none
 * (the usual case for a writer or a fetcher) costs one probe, not one per pack. A swarm node
 * finishes a pack every 16 MiB, so after a 512 MiB fetch an absent id was probed in some forty.
 *
 * Invariant: every id of every covered pack passes (packs are immutable). Packs added are added
 * to the filter; when one goes, or the filter is past its capacity, it is rebuilt with room to
 * double.
 */
import { IdFilter } from './id-filter.js';
import type { Oid } from './oid.js';
import { filterMayHold, type PackIndex } from './pack-index.js';

export class PackSetFilter {
  private filter = new IdFilter(0);
  private covered = new Set<PackIndex>();
  private ids = 0;

  /** Covers exactly `indexes` from now on. */
  cover(indexes: readonly PackIndex[]): void {
    const next = new Set(indexes);
    const added = indexes.filter((i) => !this.covered.has(i));
    const gone = [...this.covered].some((i) => !next.has(i));
    const ids = (gone ? 0 : this.ids) + (gone ? indexes : added).reduce((n, i) => n + i.count, 0);
    if (gone || ids > this.filter.capacity) {
      this.filter = new IdFilter(2 * ids);
      for (const i of indexes) i.addIdsTo(this.filter);
    } else {
      for (const i of added) i.addIdsTo(this.filter);
    }
    this.covered = next;
    this.ids = ids;
  }

  /** False only when no covered pack holds `oid`. */
  mayHold(oid: Oid): boolean {
    return filterMayHold(this.filter, oid);
  }
}
