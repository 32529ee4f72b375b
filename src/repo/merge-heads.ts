/**
 * Two heads of one branch that diverged (two nodes wrote it apart, say during a partition) made
 * one again: a merge commit whose tree holds both sides' changes, a file both changed kept twice
 * (src/files/merge-trees.ts). Every node that holds both heads writes the very same commit, so
 * the nodes that merge at once agree without a word, and the branch converges:
 *
 * - the newer head (by committer time, then by id) comes first, and its versions keep the names;
 * - the base is the first commit met walking back from the head with the greater id that the
 *   other head reaches too (both walks bounded, breadth first, in parent order);
 * - author and committer are `gitfs merge`, dated one second after the newer head, in UTC; the
 *   message names both heads, the base and every version set aside.
 *
 * Signed commits (releases on a rollout channel) are never merged: a merge would carry no
 * signature, and a channel takes signed releases only. Neither is a pair without a common commit
 * here (unrelated, or history cut shorter than the divergence): both left as they are.
 */
import { decodeCommit, encodeCommit, type Commit, type Signature } from '../objects/commit.js';
import type { Oid } from '../objects/oid.js';
import { mergeTrees, type SetAside } from '../files/merge-trees.js';
import { readCommit } from '../files/tree-reader.js';
import { isPartial } from './partial.js';
import type { Repository } from './repository.js';

/** Most commits walked back from each head for their base. */
export const MERGE_BASE_LIMIT = 10_000;

const MERGER = { name: 'gitfs merge', email: 'merge@gitfs.invalid' } as const;

/** Two heads to merge: the newer first, their commits, and their base. */
export interface MergePlan {
  readonly newer: Oid;
  readonly older: Oid;
  readonly base: Oid;
  readonly trees: { readonly newer: Oid; readonly older: Oid; readonly base: Oid };
  readonly newerTime: number;
}

export type MergeRefusal = 'signed' | 'no-common-commit';

/** How `a` and `b` (both here, commits and trees) merge, or why they do not. */
export async function planMerge(repo: Repository, a: Oid, b: Oid): Promise<MergePlan | MergeRefusal> {
  const [ca, cb] = await Promise.all([readCommit(repo.objects, a), readCommit(repo.objects, b)]);
  if (signed(ca) || signed(cb)) return 'signed';
  const base = await mergeBase((oid) => commitContent(repo, oid), a < b ? a : b, a < b ? b : a, MERGE_BASE_LIMIT);
  if (base === undefined) return 'no-common-commit';
  const aNewer = ca.committer.timestamp > cb.committer.timestamp || (ca.committer.timestamp === cb.committer.timestamp && a > b);
  const [newer, older] = aNewer ? [{ oid: a, c: ca }, { oid: b, c: cb }] : [{ oid: b, c: cb }, { oid: a, c: ca }];
  const baseTree = (await readCommit(repo.objects, base)).tree;
  return { newer: newer.oid, older: older.oid, base, trees: { newer: newer.c.tree, older: older.c.tree, base: baseTree }, newerTime: newer.c.committer.timestamp };
}

/** Writes the merge commit of `plan` (one pack); no ref moves. */
export async function writeMerge(repo: Repository, plan: MergePlan): Promise<{ commit: Oid; setAside: readonly SetAside[] }> {
  const writer = await repo.newPackWriter({ promisor: await isPartial(repo.gitDir) });
  try {
    const { tree, setAside } = await mergeTrees(repo.objects, writer, plan.trees.base, { tree: plan.trees.newer, tag: shortId(plan.newer) }, { tree: plan.trees.older, tag: shortId(plan.older) });
    const when: Signature = { ...MERGER, timestamp: plan.newerTime + 1, tzOffsetMinutes: 0 };
    const message = mergeMessage(plan, setAside);
    const commit = await writer.write('commit', encodeCommit({ tree, parents: [plan.newer, plan.older], author: when, committer: when, extraHeaders: [], message }));
    await writer.finish();
    return { commit, setAside };
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

/**
 * The first of `from`'s ancestors, breadth first within `limit`, that is also among the `limit`
 * commits nearest `other`; undefined if none is (a commit not here ends its line).
 */
export async function mergeBase(content: (oid: Oid) => Promise<Buffer | undefined>, other: Oid, from: Oid, limit: number): Promise<Oid | undefined> {
  const reached = new Set<Oid>();
  for await (const c of walk(content, other, limit)) reached.add(c);
  for await (const c of walk(content, from, limit)) if (reached.has(c)) return c;
  return undefined;
}

async function* walk(content: (oid: Oid) => Promise<Buffer | undefined>, head: Oid, limit: number): AsyncGenerator<Oid> {
  const queue: Oid[] = [head];
  const seen = new Set<Oid>(queue);
  for (let i = 0; i < queue.length && i < limit; i++) {
    const c = queue[i] as Oid;
    yield c;
    const bytes = await content(c);
    if (bytes === undefined) continue;
    for (const p of decodeCommit(bytes, c).parents) {
      if (seen.has(p)) continue;
      seen.add(p);
      queue.push(p);
    }
  }
}

async function commitContent(repo: Repository, oid: Oid): Promise<Buffer | undefined> {
  return (await repo.objects.has(oid)) ? (await repo.objects.read(oid)).content : undefined;
}

function signed(c: Commit): boolean {
  return c.extraHeaders.some(([key]) => key.startsWith('gpgsig'));
}

const shortId = (oid: Oid): string => oid.slice(0, 12);

function mergeMessage(plan: MergePlan, setAside: readonly SetAside[]): string {
  let text = `Merge ${shortId(plan.older)} into ${shortId(plan.newer)}\n\nThe branch was written apart from ${plan.base}:\n  ${plan.newer} (newer: its versions keep their names)\n  ${plan.older}\n`;
  if (setAside.length > 0) text += `\nBoth changed these; the other version is kept beside:\n${setAside.map((s) => `  ${s.path} -> ${s.as}\n`).join('')}`;
  return text;
}
