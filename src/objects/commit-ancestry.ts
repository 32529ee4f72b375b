/**
 * Whether one commit is another or one of its ancestors, by the commits that are here: a walk of
 * parents from the descendant, breadth first, bounded (a long history is not read through for a
 * commit that is not in it).
 */
import { decodeCommit } from './commit.js';
import type { Oid } from './oid.js';

/**
 * Whether `commit` is `head` or one of its ancestors among the `limit` commits nearest `head`.
 * `content` gives a commit's content, or undefined where it is not here (a shallow history's
 * missing parents end their line).
 */
export async function reaches(content: (oid: Oid) => Promise<Buffer | undefined>, head: Oid, commit: Oid, limit: number): Promise<boolean> {
  const seen = new Set<Oid>([head]);
  const queue: Oid[] = [head];
  for (let i = 0; i < queue.length && i < limit; i++) {
    const c = queue[i] as Oid;
    if (c === commit) return true;
    const bytes = await content(c);
    if (bytes === undefined) continue;
    for (const p of decodeCommit(bytes, c).parents) {
      if (seen.has(p)) continue;
      seen.add(p);
      queue.push(p);
    }
  }
  return false;
}
