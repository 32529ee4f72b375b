/**
 * Whether one commit is another or one of its ancestors, by the commits that are here: a walk of
 * parents from the descendant, breadth first, bounded (a long history is not read through for a
 * commit that is not in it). And the merge base of two commits, by the same walks.
 */
import { decodeCommit } from './commit.js';
import type { Oid } from './oid.js';

/**
 * How a walk from a descendant ended: it met the commit (`reached`); it read every commit it could
 * reach, all here, without meeting it (`exhausted`: proven not an ancestor); or it cannot tell
 * (`unknown`: a commit was not here, or the limit came first).
 */
export type Ancestry = 'reached' | 'exhausted' | 'unknown';

/**
 * Walks the `limit` commits nearest `head` for `commit`. `content` gives a commit's content, or
 * undefined where it is not here; its errors, and a commit that does not parse, are thrown.
 */
export async function ancestry(content: (oid: Oid) => Promise<Buffer | undefined>, head: Oid, commit: Oid, limit: number): Promise<Ancestry> {
  const seen = new Set<Oid>([head]);
  const queue: Oid[] = [head];
  let complete = true;
  for (let i = 0; i < queue.length; i++) {
    if (i >= limit) return 'unknown';
    const c = queue[i] as Oid;
    if (c === commit) return 'reached';
    const bytes = await content(c);
    if (bytes === undefined) {
      complete = false;
      continue;
    }
    for (const p of decodeCommit(bytes, c).parents) {
      if (seen.has(p)) continue;
      seen.add(p);
      queue.push(p);
    }
  }
  return complete ? 'exhausted' : 'unknown';
}

/**
 * Whether `commit` is `head` or one of its ancestors among the `limit` commits nearest `head`
 * (a shallow history's missing parents end their line).
 */
export async function reaches(content: (oid: Oid) => Promise<Buffer | undefined>, head: Oid, commit: Oid, limit: number): Promise<boolean> {
  return (await ancestry(content, head, commit, limit)) === 'reached';
}

/**
 * The merge base of `a` and `b` among the `limit` commits nearest each that are here (git's: a
 * common ancestor that is no ancestor of another common one; of several, in a criss-cross history,
 * the latest by committer time, then the greatest id): `{ base }`; `'none'` when both histories
 * were read whole and share no commit; `'cut'` when a line of either walk ends (at a commit not
 * here, a shallow boundary, or the limit) on a commit that is not an ancestor of a common one: what
 * lies beyond it is unknown, and may hold the base, or even make one head the other's ancestor.
 */
export async function mergeBase(content: (oid: Oid) => Promise<Buffer | undefined>, a: Oid, b: Oid, limit: number): Promise<{ base: Oid } | 'none' | 'cut'> {
  const [fromA, fromB] = [await ancestors(content, a, limit), await ancestors(content, b, limit)];
  const common = [...fromA.keys()].filter((c) => fromB.has(c));
  const parentsOf = (c: Oid): readonly Oid[] => [...(fromA.get(c)?.parents ?? []), ...(fromB.get(c)?.parents ?? [])];
  // Common too: every ancestor of a common commit that either walk read (where the other's walk
  // stopped short of it, at its limit).
  const shared = new Set<Oid>(common);
  const queue = [...common];
  for (let i = 0; i < queue.length; i++) {
    for (const p of parentsOf(queue[i] as Oid)) {
      if (shared.has(p) || !(fromA.has(p) || fromB.has(p))) continue;
      shared.add(p);
      queue.push(p);
    }
  }
  const cut = (from: ReadonlyMap<Oid, Walked>): boolean => [...from].some(([c, w]) => !shared.has(c) && w.parents.some((p) => !from.has(p)));
  if (cut(fromA) || cut(fromB)) return 'cut';
  // A common commit is no best when it is an ancestor of another: a parent of a shared one.
  const below = new Set([...shared].flatMap(parentsOf));
  let best: { oid: Oid; time: number } | undefined;
  for (const oid of common) {
    if (below.has(oid)) continue;
    const time = (fromA.get(oid) as Walked).time;
    if (best === undefined || time > best.time || (time === best.time && oid > best.oid)) best = { oid, time };
  }
  return best === undefined ? 'none' : { base: best.oid };
}

interface Walked {
  readonly parents: readonly Oid[];
  readonly time: number;
}

/** `head` and its ancestors that are here, breadth first, at most `limit`: each with its parents and committer time. */
async function ancestors(content: (oid: Oid) => Promise<Buffer | undefined>, head: Oid, limit: number): Promise<Map<Oid, Walked>> {
  const found = new Map<Oid, Walked>();
  const queue: Oid[] = [head];
  const seen = new Set<Oid>(queue);
  for (let i = 0; i < queue.length && found.size < limit; i++) {
    const c = queue[i] as Oid;
    const bytes = await content(c);
    if (bytes === undefined) continue;
    const commit = decodeCommit(bytes, c);
    found.set(c, { parents: commit.parents, time: commit.committer.timestamp });
    for (const p of commit.parents) {
      if (seen.has(p)) continue;
      seen.add(p);
      queue.push(p);
    }
  }
  return found;
}
