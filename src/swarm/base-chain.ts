/**
 * Whether a new head descends from a base along a line of single-parent commits: a release
 * channel's history, where a node that missed some releases (down for a day, or the committer
 * made two in a row) fetches what they add to its head (closure.ts, `base`) rather than the whole
 * closure. A merge, a root, or a line longer than BASE_CHAIN_MAX is no such line: the whole
 * closure is fetched.
 */
import type { Oid } from '../objects/oid.js';

/** Generations from a head back to its base, at most (each may be a round trip to a peer). */
export const BASE_CHAIN_MAX = 64;

/**
 * True if following `head`'s only parent, then that one's, reaches `base` within `max`
 * generations. `parentsOf` reads a commit (here, or from a peer) and fails as it fails.
 */
export async function descendsInLine(head: Oid, base: Oid, parentsOf: (commit: Oid) => Promise<readonly Oid[]>, max = BASE_CHAIN_MAX): Promise<boolean> {
  let commit = head;
  for (let generation = 0; generation < max; generation++) {
    const parents = await parentsOf(commit);
    if (parents.length !== 1) return false;
    const [parent] = parents as [Oid];
    if (parent === base) return true;
    commit = parent;
  }
  return false;
}
