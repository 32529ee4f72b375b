/**
 * Whether one commit is another or one of its ancestors, by the commits that are here: a walk of
 * parents from the descendant, breadth first, bounded (a long history is not read through for a
 * commit that is not in it). And the merge base of two commits, what one holds that the other
 * lacks, and which of several commits no other reaches, by the same walks.
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
 * The merge base of `a` and `b` by the commits here, as git finds it (paint down to common: one
 * walk from both heads, newest committer time first, each commit marked with the heads that reach
 * it; one reached from both is common, and what lies below it is no longer followed; of the common
 * ones, those an ancestor of another are dropped: `independent`); of several left (a criss-cross
 * history), the latest by committer time, then the greatest id. `{ base }`; `'none'` when the
 * histories, read whole, share no commit; `'cut'` when the walk meets a commit not here (a shallow
 * boundary, a pruned line) that no common commit holds, or would read more than `limit` commits:
 * what lies beyond may hold the base, or even make one head the other's ancestor. `limit` bounds
 * each walk (commits taken from its queue; twice that read).
 */
export async function mergeBase(content: (oid: Oid) => Promise<Buffer | undefined>, a: Oid, b: Oid, limit: number): Promise<{ base: Oid } | 'none' | 'cut'> {
  const parted = await divergence(content, a, b, limit);
  if (parted === 'cut') return 'cut';
  return parted.base;
}

/**
 * Where `a` and `b` part, by the one walk of mergeBase: the commits each reaches that the other
 * does not (every one of them, and maybe more: a clock that ran behind can stop the paint from one
 * short of a commit both reach), and their base as mergeBase gives it; `'cut'` where the walk
 * itself is cut (the base alone may be `'cut'`, by the walks that choose among several).
 */
export async function divergence(
  content: (oid: Oid) => Promise<Buffer | undefined>,
  a: Oid,
  b: Oid,
  limit: number,
): Promise<{ own: { a: Oid[]; b: Oid[] }; base: { base: Oid } | 'none' | 'cut' } | 'cut'> {
  const painted = await paintDown(content, a, [b], limit);
  if (painted === 'cut') return 'cut';
  const base = await bestBase(content, painted, limit);
  const only = (mark: number): Oid[] => [...painted.flags].filter(([, f]) => (f & (FROM_A | FROM_B)) === mark).map(([oid]) => oid);
  return { own: { a: only(FROM_A), b: only(FROM_B) }, base: typeof base === 'string' ? base : { base: base.oid } };
}

/** The base among the common commits a paint found, as mergeBase says. */
async function bestBase(content: (oid: Oid) => Promise<Buffer | undefined>, painted: Painted, limit: number): Promise<Found | 'none' | 'cut'> {
  // A common commit found before another that holds it (a clock that ran behind) was painted stale since.
  const candidates = painted.found.filter((f) => ((painted.flags.get(f.oid) as number) & STALE) === 0);
  // Of several (a criss-cross, or stale paint that stopped short), one another reaches is no base.
  const kept = await independent(content, candidates.map((c) => c.oid), limit);
  if (kept === 'cut') return 'cut';
  const independents = new Set(kept);
  let best: Found | undefined;
  for (const c of candidates) {
    if (!independents.has(c.oid)) continue;
    if (best === undefined || c.time > best.time || (c.time === best.time && c.oid > best.oid)) best = c;
  }
  return best ?? 'none';
}

/**
 * Of `commits`, those that no other one reaches (git's `merge-base --independent`, its
 * remove_redundant: each painted down against the others), in their order, each once; `'cut'`
 * where a walk is (mergeBase).
 */
export async function independent(content: (oid: Oid) => Promise<Buffer | undefined>, commits: readonly Oid[], limit: number): Promise<Oid[] | 'cut'> {
  const distinct = [...new Set(commits)];
  const redundant = new Set<Oid>();
  for (const c of distinct.length > 1 ? distinct : []) {
    const others = distinct.filter((o) => o !== c && !redundant.has(o));
    if (redundant.has(c) || others.length === 0) continue;
    const from = await paintDown(content, c, others, limit);
    if (from === 'cut') return 'cut';
    if (((from.flags.get(c) as number) & FROM_B) !== 0) redundant.add(c);
    for (const o of others) if (((from.flags.get(o) as number) & FROM_A) !== 0) redundant.add(o);
  }
  return distinct.filter((c) => !redundant.has(c));
}

interface Found {
  readonly oid: Oid;
  readonly time: number;
}

/** Every commit a paint met, with its marks, and the common ones in the order found. */
interface Painted {
  readonly flags: Map<Oid, number>;
  readonly found: Found[];
}

/**
 * Paints down from `one` (FROM_A) and `others` (FROM_B) to their common commits (git's
 * paint_down_to_common): every commit met with its marks, and the common ones in the order found;
 * 'cut' as mergeBase says (a commit not here that is not stale, more than `limit` commits taken
 * from the queue, or more than twice that read).
 */
async function paintDown(content: (oid: Oid) => Promise<Buffer | undefined>, one: Oid, others: readonly Oid[], limit: number): Promise<Painted | 'cut'> {
  const flags = new Map<Oid, number>();
  const queue = new CommitQueue();
  let reads = 0;
  const reach = async (oid: Oid, mark: number): Promise<void> => {
    flags.set(oid, (flags.get(oid) ?? 0) | mark);
    reads++;
    const bytes = await content(oid);
    queue.push({ oid, time: bytes === undefined ? -Infinity : decodeCommit(bytes, oid).committer.timestamp, bytes });
  };
  await reach(one, FROM_A);
  for (const o of others) await reach(o, FROM_B);
  const found: Found[] = [];
  for (let popped = 0; queue.some((e) => ((flags.get(e.oid) as number) & STALE) === 0); popped++) {
    if (popped >= limit || reads > 2 * limit) return 'cut';
    const { oid, time, bytes } = queue.pop() as Queued;
    const held = flags.get(oid) as number;
    let mark = held & (FROM_A | FROM_B | STALE);
    // Not here, and not below a common commit (or itself common): what it holds is unknown.
    if (bytes === undefined) {
      if ((mark & STALE) === 0) return 'cut';
      continue;
    }
    if (mark === (FROM_A | FROM_B)) {
      if ((held & FOUND) === 0) found.push({ oid, time });
      flags.set(oid, held | FOUND);
      mark |= STALE;
    }
    for (const p of decodeCommit(bytes, oid).parents) {
      if (((flags.get(p) ?? 0) & mark) === mark) continue;
      await reach(p, mark);
    }
  }
  return { flags, found };
}

const FROM_A = 1;
const FROM_B = 2;
/** Below a common commit: no longer a candidate, and followed only while something is not. */
const STALE = 4;
/** Common, and counted as found (a commit may be queued more than once). */
const FOUND = 8;

interface Queued {
  readonly oid: Oid;
  /** Committer time; a commit not here goes last. */
  readonly time: number;
  readonly bytes: Buffer | undefined;
}

/** Commits by newest committer time first (then the greater id): a binary heap. */
class CommitQueue {
  private readonly heap: Queued[] = [];

  push(e: Queued): void {
    const h = this.heap;
    h.push(e);
    for (let i = h.length - 1; i > 0; ) {
      const up = (i - 1) >> 1;
      if (!before(h[i] as Queued, h[up] as Queued)) break;
      [h[i], h[up]] = [h[up] as Queued, h[i] as Queued];
      i = up;
    }
  }

  pop(): Queued | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || last === undefined) return top;
    h[0] = last;
    for (let i = 0; ; ) {
      const [l, r] = [2 * i + 1, 2 * i + 2];
      let m = i;
      if (l < h.length && before(h[l] as Queued, h[m] as Queued)) m = l;
      if (r < h.length && before(h[r] as Queued, h[m] as Queued)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as Queued, h[i] as Queued];
      i = m;
    }
    return top;
  }

  some(test: (e: Queued) => boolean): boolean {
    return this.heap.some(test);
  }
}

const before = (x: Queued, y: Queued): boolean => x.time > y.time || (x.time === y.time && x.oid > y.oid);
