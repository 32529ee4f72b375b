/**
 * What a node knows it holds whole of a branch's head: a fetch by base (closure.ts) takes only
 * what a new head adds to the base, so the base's own closure must be whole here already, as
 * deep as the new head's policy asks less one (the new head is one more generation).
 */
import type { Oid } from '../objects/oid.js';

/** A closure held whole: the commit, `history` deep (0: all), with its blobs or only its commits and trees. */
export interface Whole {
  readonly commit: Oid;
  readonly history: number;
  readonly blobs: boolean;
}

/** Whether `whole`, the closure of a new head's only parent, holds what a fetch of `history` deep (with blobs, if `blobs`) needs besides what the head adds. */
export function coversBase(whole: Whole, history: number, blobs: boolean): boolean {
  if (blobs && !whole.blobs) return false;
  if (history === 1 || whole.history === 0) return true;
  return history !== 0 && whole.history >= history - 1;
}
