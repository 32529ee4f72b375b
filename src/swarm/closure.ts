/**
 * What a node must hold for a commit: the commit and its ancestors up to `history` generations
 * deep, counting the commit itself (1: the commit alone; 0: all), every tree under them, and
 * every blob (files and chunks). First the commits and trees are made present (fetched in
 * batches, level by level, when a fetcher is given), then one deterministic walk lists the
 * blobs: commits breadth-first from the head, parents in order, each commit's tree depth-first
 * in entry order, each blob at its first appearance. Every node computes the same list for the
 * same (commit, history, base), so pieces can be named by number.
 *
 * With a `base`, the closure is what the commit adds to that commit: the walk of commits does not
 * enter the base (nor, through it, its ancestors), and the trees and blobs reachable from the
 * base's tree are left out (walked, not listed). A node whose branch holds an ancestor of a new
 * head, whole, fetches that alone: its walk reads the base's trees and the new ones, and lists
 * the change of the releases between, however long the history kept.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { decodeCommit, type Commit } from '../objects/commit.js';
import type { GitObject } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import type { TreeCache } from './tree-cache.js';
import type { SpecialFile } from '../objects/storable-name.js';
import { isBlobKind, LinkKinds, specialOf, treeLinks, type TreeLinks } from './tree-links.js';

/** Blobs per piece: chunks average 8 KiB, so a piece of a large file is about 1 MiB. */
export const PIECE_OBJECTS = 128;
/** Commits or trees read at once while walking. */
const READ_AHEAD = 16;
/**
 * Trees decoded between two turns of the event loop. Reads of trees a node holds in memory
 * resolve without one, and a 512 MiB image's chunk tree took ~150 ms to decode and order: the
 * node that committed it, walking it to serve it, answered no peer meanwhile, and every peer's
 * first request (the commit) waited for the walk.
 */
const DECODE_SLICE = 256;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface ObjectSource {
  /** Which of `oids` are not here, asked together (one look at the store's directories for all of them). */
  absent(oids: readonly Oid[]): Promise<readonly Oid[]>;
  read(oid: Oid): Promise<GitObject>;
}

export interface Closure {
  readonly commit: Oid;
  readonly history: number;
  /** The commit left out with its ancestors and its tree's objects (what the commit adds to it), if any. */
  readonly base: Oid | undefined;
  readonly commits: readonly Oid[];
  /** Commits at the history limit whose parents are outside the closure (git's `shallow`). */
  readonly boundary: readonly Oid[];
  readonly trees: readonly Oid[];
  readonly blobs: readonly Oid[];
  /** Blobs git fsck reads as `.gitmodules` or `.gitattributes` somewhere in the trees: their content is checked before a ref names the commit. */
  readonly specialFiles: ReadonlyArray<{ readonly oid: Oid; readonly which: SpecialFile }>;
  readonly pieces: number;
}

export function pieceOids(closure: Closure, piece: number): readonly Oid[] {
  return closure.blobs.slice(piece * PIECE_OBJECTS, (piece + 1) * PIECE_OBJECTS);
}

function typed(obj: GitObject, oid: Oid, type: 'commit' | 'tree'): Buffer {
  if (obj.type !== type) throw new GitfsError(ErrorCodes.WRONG_OBJECT_TYPE, `${oid} is a ${obj.type}, not a ${type}`, { oid });
  return obj.content;
}

/** Reads `oids` with up to READ_AHEAD reads in flight (each waits on the disk), in order. */
async function readAll(source: ObjectSource, oids: readonly Oid[]): Promise<GitObject[]> {
  const out = new Array<GitObject>(oids.length);
  let next = 0;
  let failed = false;
  const reader = async (): Promise<void> => {
    while (!failed && next < oids.length) {
      const i = next++;
      try {
        out[i] = await source.read(oids[i] as Oid);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_AHEAD, oids.length) }, reader));
  return out;
}

export interface WalkOptions {
  /**
   * Makes missing commits and trees readable through the source: `missing` of one `level` of the
   * walk (commits of one generation, or trees of one depth, in the walk's order, which every node
   * computes alike), asked once per level. Without it a missing one throws GITFS_OBJECT_NOT_FOUND.
   */
  readonly fetchMeta?: (missing: readonly Oid[], level: readonly Oid[]) => Promise<void>;
  /** Trees decoded by earlier walks: present ones are not read again. */
  readonly trees?: TreeCache;
  /** Leaves out this commit with its ancestors, and the trees and blobs of its tree, which must be here (GITFS_OBJECT_NOT_FOUND if not; read after the commits). */
  readonly base?: Oid;
  /** Told after each level is here and read: how many objects it had, and how many were fetched. */
  readonly onLevel?: (level: { readonly kind: 'commits' | 'trees'; readonly objects: number; readonly fetched: number }) => void;
}

/**
 * The decoded trees of one level of a walk (all here): what the cache holds is taken from it at
 * once (another walk may evict it while this one reads), the rest is read and kept there.
 */
async function readTrees(source: ObjectSource, level: readonly Oid[], cache: TreeCache | undefined): Promise<Map<Oid, TreeLinks>> {
  const known = new Map<Oid, TreeLinks>();
  for (const t of level) {
    const links = cache?.get(t);
    if (links !== undefined) known.set(t, links);
  }
  const toRead = level.filter((t) => !known.has(t));
  const read = await readAll(source, toRead);
  for (const [i, t] of toRead.entries()) {
    if (i > 0 && i % DECODE_SLICE === 0) await nextTurn();
    const links = treeLinks(typed(read[i] as GitObject, t, 'tree'), t);
    known.set(t, links);
    cache?.set(t, links);
  }
  return known;
}

/** Every tree and blob reachable from `commit`'s tree (all here; read level by level, through the cache). */
async function reachOf(source: ObjectSource, commit: Oid, cache: TreeCache | undefined): Promise<ReadonlySet<Oid>> {
  const [c] = await readAll(source, [commit]);
  const reach = new Set<Oid>();
  let level = [decodeCommit(typed(c as GitObject, commit, 'commit'), commit).tree];
  while (level.length > 0) {
    for (const t of level) reach.add(t);
    const next = new Set<Oid>();
    for (const links of (await readTrees(source, level, cache)).values()) {
      links.kinds.forEach((kind, k) => {
        const oid = links.oids[k] as Oid;
        if (kind === LinkKinds.TREE) {
          if (!reach.has(oid)) next.add(oid);
        } else if (isBlobKind(kind)) reach.add(oid);
      });
    }
    level = [...next];
  }
  return reach;
}

/** The closure of `commit`. */
export async function walkClosure(source: ObjectSource, commit: Oid, history: number, options: WalkOptions = {}): Promise<Closure> {
  const { fetchMeta, trees: cache, onLevel, base } = options;
  const commits = new Map<Oid, Commit>();
  const trees = new Map<Oid, TreeLinks>();
  const depth = new Map<Oid, number>([[commit, 1]]);
  const boundary: Oid[] = [];
  /** Fetches what of `oids` is absent; how many that was. */
  const ensure = async (oids: readonly Oid[]): Promise<number> => {
    const missing = await source.absent(oids);
    if (missing.length === 0) return 0;
    if (fetchMeta === undefined) throw new GitfsError(ErrorCodes.OBJECT_NOT_FOUND, `${missing.length} objects of ${commit}'s closure are absent, ${missing[0]} first`, { oid: missing[0] });
    await fetchMeta(missing, oids);
    return missing.length;
  };
  // Commits, generation by generation.
  let level: Oid[] = [commit];
  while (level.length > 0) {
    const fetched = await ensure(level);
    const next: Oid[] = [];
    const read = await readAll(source, level);
    for (const [i, c] of level.entries()) {
      const parsed = decodeCommit(typed(read[i] as GitObject, c, 'commit'), c);
      commits.set(c, parsed);
      const d = depth.get(c) ?? 1;
      if (history !== 0 && d >= history) {
        // The base, as a parent, counts as here: a node fetches by a base only if the base's closure is whole.
        if (parsed.parents.some((p) => p !== base)) boundary.push(c);
        continue;
      }
      for (const p of parsed.parents) {
        if (depth.has(p) || p === base) continue;
        depth.set(p, d + 1);
        next.push(p);
      }
    }
    onLevel?.({ kind: 'commits', objects: level.length, fetched });
    level = next;
  }
  // A node that lacks the commit (most peers asked about it early) has failed by now, without this walk.
  const excluded: ReadonlySet<Oid> = base === undefined ? new Set() : await (cache?.reach(base, () => reachOf(source, base, cache)) ?? reachOf(source, base, cache));
  // Trees, level by level.
  let treeLevel = [...new Set([...commits.values()].map((c) => c.tree))].filter((t) => !excluded.has(t));
  while (treeLevel.length > 0) {
    const fetched = await ensure(treeLevel);
    const next = new Set<Oid>();
    const known = await readTrees(source, treeLevel, cache);
    onLevel?.({ kind: 'trees', objects: treeLevel.length, fetched });
    for (const t of treeLevel) {
      const links = known.get(t) as TreeLinks;
      trees.set(t, links);
      links.kinds.forEach((kind, i) => {
        const oid = links.oids[i] as Oid;
        if (kind === LinkKinds.TREE && !trees.has(oid) && !excluded.has(oid)) next.add(oid);
      });
    }
    treeLevel = [...next].filter((t) => !trees.has(t));
  }
  // The deterministic order.
  await nextTurn();
  const blobs = new Set<Oid>();
  const specialFiles = new Map<string, { oid: Oid; which: SpecialFile }>();
  const treeOrder = new Set<Oid>();
  // Depth first, entries in tree order, with an explicit stack: git allows trees 4 096 deep, past
  // what recursion here would take.
  const visit = (root: Oid): void => {
    const stack: Array<{ links: TreeLinks; next: number }> = [];
    const enter = (t: Oid): void => {
      if (treeOrder.has(t) || excluded.has(t)) return;
      treeOrder.add(t);
      const links = trees.get(t);
      if (links !== undefined) stack.push({ links, next: 0 });
    };
    enter(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { links: TreeLinks; next: number };
      if (top.next >= top.links.kinds.length) {
        stack.pop();
        continue;
      }
      const i = top.next++;
      const oid = top.links.oids[i] as Oid;
      const kind = top.links.kinds[i];
      if (kind === LinkKinds.TREE) enter(oid);
      else if (kind !== undefined && isBlobKind(kind)) {
        // A blob the base holds is not listed; named by a new tree as a special file, it is checked all the same.
        if (!excluded.has(oid)) blobs.add(oid);
        const which = specialOf(kind);
        if (which !== undefined) specialFiles.set(`${which}${oid}`, { oid, which });
      }
    }
  };
  const commitOrder = [...commits.keys()];
  for (const c of commitOrder) visit((commits.get(c) as Commit).tree);
  const blobList = [...blobs];
  return { commit, history, base, commits: commitOrder, boundary, trees: [...treeOrder], blobs: blobList, specialFiles: [...specialFiles.values()], pieces: Math.ceil(blobList.length / PIECE_OBJECTS) };
}
