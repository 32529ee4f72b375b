/** Walking commit history: newest first by committer time, each commit once. */
import type { Commit } from '../objects/commit.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import { readCommit } from './tree-reader.js';

export interface HistoryOptions {
  /** Follow only first parents (the time-machine view of a branch). */
  readonly firstParent?: boolean;
  readonly limit?: number;
  /** Commits whose parents this repository does not hold (git's `shallow` file): history ends there. */
  readonly shallow?: ReadonlySet<Oid>;
}

export async function* history(store: ObjectReader, starts: readonly Oid[], options: HistoryOptions = {}): AsyncGenerator<{ oid: Oid; commit: Commit }> {
  const seen = new Set<Oid>(starts);
  const queue: Array<{ oid: Oid; commit: Commit }> = [];
  for (const oid of starts) queue.push({ oid, commit: await readCommit(store, oid) });
  let emitted = 0;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  while (queue.length > 0 && emitted < limit) {
    queue.sort((x, y) => y.commit.committer.timestamp - x.commit.committer.timestamp);
    const next = queue.shift() as { oid: Oid; commit: Commit };
    yield next;
    emitted++;
    // Parents are read only when they may be shown: not past the limit, nor past a shallow boundary.
    if (emitted >= limit || options.shallow?.has(next.oid) === true) continue;
    const parents = options.firstParent === true ? next.commit.parents.slice(0, 1) : next.commit.parents;
    for (const p of parents) {
      if (seen.has(p)) continue;
      seen.add(p);
      queue.push({ oid: p, commit: await readCommit(store, p) });
    }
  }
}
