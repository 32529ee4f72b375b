/**
 * Whether a new head descends from a base along a line of single-parent commits: a release
 * channel's history, where a node that missed some releases (down for a day, or the committer
 * made two in a row) fetches what they add to its head (closure.ts, `base`) rather than the whole
 * closure. A merge, a root, or a line longer than BASE_CHAIN_MAX is no such line: the whole
 * closure is fetched, and a node asked about a closure by such a base does not walk it.
 */
import type { Oid } from '../objects/oid.js';

/** Generations from a head back to its base, at most (each may be a round trip to a peer). */
export const BASE_CHAIN_MAX = 64;

/**
 * The generations from `head` back to `base` following only parents, each commit having one
 * (1: `base` is `head`'s parent); undefined if there is no such line within `max`. `parentsOf`
 * reads a commit (here, or from a peer) and fails as it fails.
 */
export async function lineToBase(head: Oid, base: Oid, parentsOf: (commit: Oid) => Promise<readonly Oid[]>, max = BASE_CHAIN_MAX): Promise<number | undefined> {
  if (head === base) return undefined;
  let commit = head;
  for (let generation = 1; generation <= max; generation++) {
    const parents = await parentsOf(commit);
    if (parents.length !== 1) return undefined;
    const [parent] = parents as [Oid];
    if (parent === base) return generation;
    commit = parent;
  }
  return undefined;
}

/**
 * The history a closure by a base `line` generations back is named with: a policy's history as
 * deep as the line or deeper (0: all) lists the same closure (the walk stops at the base), named
 * as the line, so that nodes whose policies differ share one transfer, and the daily release (a
 * line of 1) keeps history 1, as nodes before lines knew it.
 */
export const baseHistory = (history: number, line: number): number => (history === 0 || history >= line ? line : history);
