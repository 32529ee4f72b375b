/**
 * What a node must hold for a commit: the commit, `history` generations of ancestors (0: all),
 * every tree under them, and every blob (files and chunks). First the commits and trees are
 * made present (fetched in batches, level by level, when a fetcher is given), then one
 * deterministic walk lists the blobs: commits breadth-first from the head, parents in order,
 * each commit's tree depth-first in entry order, each blob at its first appearance. Every node
 * computes the same list for the same (commit, history), so pieces can be named by number.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { decodeCommit, type Commit } from '../objects/commit.js';
import type { GitObject } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import { decodeTree, TreeModes, type TreeEntry } from '../objects/tree.js';

/** Blobs per piece: chunks average 8 KiB, so a piece of a large file is about 1 MiB. */
export const PIECE_OBJECTS = 128;
/** Ids per metadata request. */
const META_BATCH = 512;

export interface ObjectSource {
  has(oid: Oid): boolean | Promise<boolean>;
  read(oid: Oid): Promise<GitObject>;
}

export interface Closure {
  readonly commit: Oid;
  readonly history: number;
  readonly commits: readonly Oid[];
  /** Commits at the history limit whose parents are outside the closure (git's `shallow`). */
  readonly boundary: readonly Oid[];
  readonly trees: readonly Oid[];
  readonly blobs: readonly Oid[];
  readonly pieces: number;
}

export function pieceOids(closure: Closure, piece: number): readonly Oid[] {
  return closure.blobs.slice(piece * PIECE_OBJECTS, (piece + 1) * PIECE_OBJECTS);
}

function typed(obj: GitObject, oid: Oid, type: 'commit' | 'tree'): Buffer {
  if (obj.type !== type) throw new GitfsError(ErrorCodes.WRONG_OBJECT_TYPE, `${oid} is a ${obj.type}, not a ${type}`, { oid });
  return obj.content;
}

/**
 * The closure of `commit`. With `fetchMeta`, missing commits and trees are asked for in
 * batches (it must make them readable through `source`); without, a missing one throws
 * GITFS_OBJECT_NOT_FOUND.
 */
export async function walkClosure(source: ObjectSource, commit: Oid, history: number, fetchMeta?: (oids: readonly Oid[]) => Promise<void>): Promise<Closure> {
  const commits = new Map<Oid, Commit>();
  const trees = new Map<Oid, readonly TreeEntry[]>();
  const depth = new Map<Oid, number>([[commit, 1]]);
  const boundary: Oid[] = [];
  const ensure = async (oids: readonly Oid[]): Promise<void> => {
    const missing: Oid[] = [];
    for (const o of oids) if (!(await source.has(o))) missing.push(o);
    if (missing.length === 0) return;
    if (fetchMeta === undefined) throw new GitfsError(ErrorCodes.OBJECT_NOT_FOUND, `${missing.length} objects of ${commit}'s closure are absent, ${missing[0]} first`, { oid: missing[0] });
    for (let i = 0; i < missing.length; i += META_BATCH) await fetchMeta(missing.slice(i, i + META_BATCH));
  };
  // Commits, generation by generation.
  let level: Oid[] = [commit];
  while (level.length > 0) {
    await ensure(level);
    const next: Oid[] = [];
    for (const c of level) {
      const parsed = decodeCommit(typed(await source.read(c), c, 'commit'), c);
      commits.set(c, parsed);
      const d = depth.get(c) ?? 1;
      if (history !== 0 && d >= history) {
        if (parsed.parents.length > 0) boundary.push(c);
        continue;
      }
      for (const p of parsed.parents) {
        if (depth.has(p)) continue;
        depth.set(p, d + 1);
        next.push(p);
      }
    }
    level = next;
  }
  // Trees, level by level.
  let treeLevel = [...new Set([...commits.values()].map((c) => c.tree))];
  while (treeLevel.length > 0) {
    await ensure(treeLevel);
    const next = new Set<Oid>();
    for (const t of treeLevel) {
      const entries = decodeTree(typed(await source.read(t), t, 'tree'), t);
      trees.set(t, entries);
      for (const e of entries) if (e.mode === TreeModes.TREE && !trees.has(e.oid)) next.add(e.oid);
    }
    treeLevel = [...next].filter((t) => !trees.has(t));
  }
  // The deterministic order.
  const blobs = new Set<Oid>();
  const treeOrder = new Set<Oid>();
  const visit = (t: Oid): void => {
    if (treeOrder.has(t)) return;
    treeOrder.add(t);
    for (const e of trees.get(t) ?? []) {
      if (e.mode === TreeModes.TREE) visit(e.oid);
      else if (e.mode !== TreeModes.GITLINK) blobs.add(e.oid);
    }
  };
  const commitOrder = [...commits.keys()];
  for (const c of commitOrder) visit((commits.get(c) as Commit).tree);
  const blobList = [...blobs];
  return { commit, history, commits: commitOrder, boundary, trees: [...treeOrder], blobs: blobList, pieces: Math.ceil(blobList.length / PIECE_OBJECTS) };
}
