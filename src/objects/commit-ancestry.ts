/**
 * Whether one commit is another or one of its ancestors, by the commits that are here: a walk of
 * parents from the descendant, breadth first, bounded (a long history is not read through for a
 * commit that is not in it).
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
