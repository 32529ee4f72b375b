/**
 * Two heads of one branch that diverged (two nodes wrote it apart, say during a partition) made
 * one again: a merge commit whose tree holds both sides' changes, a file both changed kept twice
 * (src/files/merge-trees.ts). Every node that holds both heads and the history down to their base
 * writes the very same commit, so the nodes that merge at once agree without a word, and the
 * branch converges:
 *
 * - the newer head (by committer time, then by id) comes first, and its versions keep the names;
 * - the base is git's merge base among the commits here (`mergeBase` in commit-ancestry.ts: the
 *   latest by committer time, then the greatest id, where a criss-cross history has several);
 * - author and committer are `gitfs merge`, dated one second after the newer head, in UTC; the
 *   message names both heads, the base and every version set aside.
 *
 * Where more than two heads were written apart, nodes hand them over in many orders. So that they
 * still write the same commits, a merge joins writes, not heads: the commits either head holds
 * above the merges gitfs wrote (`writesOf`: a head itself, or, for such a merge, the writes of both
 * its parents), none reaching another, merged one after another onto the newest, newest first.
 * Nodes that come to hold the same writes, and the history down to every step's base, write the
 * same commits, whatever they held before; the join of the k newest writes is an ancestor of the
 * join of all, and a join goes on from the longest run of the newest writes that one of the two
 * heads joins already (`chainOf`). A node that cannot join (history cut short, more than
 * JOINED_MAX writes) merges the two heads as they are; `Kept` reconciles the two kinds.
 *
 * Two heads whose own commits (those the other lacks) are all such merges hold the same writes,
 * merged apart: one is kept as it is (`Kept`), so that nodes which merged in other orders, or ran
 * other versions of gitfs, come to one head without merging merges without end. So is a head that
 * is the join of all the writes already (its chain, `chainOf`).
 *
 * Signed commits (releases on a rollout channel) are never merged: a merge would carry no
 * signature, and a channel takes signed releases only. Neither is a pair without a common commit,
 * or whose history between a head and the base is not all here (`MergeRefusal`): both left as
 * they are.
 */
import { decodeCommit, encodeCommit, isSigned, type Commit, type Signature } from '../objects/commit.js';
import { divergence, independent } from '../objects/commit-ancestry.js';
import type { Oid } from '../objects/oid.js';
import { readTyped } from '../objects/typed-read.js';
import { mergeTrees, type SetAside } from '../files/merge-trees.js';
import { readCommit } from '../files/tree-reader.js';
import type { Repository } from './repository.js';

/** Most commits the walk for the base takes from its queue (commit-ancestry.ts). */
export const MERGE_BASE_LIMIT = 10_000;

/** Most writes a merge joins: past it, or where they cannot all be read, the two heads are merged as they are. */
export const JOINED_MAX = 64;

/** Most versions set aside that a merge's message (and the `merged` log line) lists. */
export const LISTED = 100;

const MERGER = { name: 'gitfs merge', email: 'merge@gitfs.invalid' } as const;

/** Two heads to merge: the newer first, their commits, and their base. */
export interface PairPlan {
  readonly newer: Oid;
  readonly older: Oid;
  readonly base: Oid;
  readonly trees: { readonly newer: Oid; readonly older: Oid; readonly base: Oid };
  readonly newerTime: number;
}

/**
 * Two heads to merge, and the join of the writes either holds where joining them is more than
 * merging the two heads (joinedWrites): joined, or else, where a step of the join is refused (a
 * write with no common commit with the merge before it, history down to a step's base not here),
 * the heads as they are.
 */
export interface MergePlan extends PairPlan {
  readonly join: Join | undefined;
}

/**
 * The writes to join, newest first (by committer time, then the greater id), and where the join
 * goes on from: `onto`, which joins the first `from` of them already (a head's chain, or the
 * first write alone).
 */
export interface Join {
  readonly writes: readonly Oid[];
  readonly onto: Oid;
  readonly from: number;
}

/**
 * Why two heads are not merged: a release among them (`signed`); a time a second later that is no
 * safe integer (`bad-time`); no common commit, with both histories read whole
 * (`no-common-commit`); history between a head and the base not all here, a shallow or pruned
 * line, or longer than the walks (`history-cut`: one head may even descend from the other).
 */
export type MergeRefusal = 'signed' | 'bad-time' | 'no-common-commit' | 'history-cut';

/**
 * Of two heads, the one to keep without a merge, where every commit either holds that the other
 * lacks is a merge gitfs wrote: then both hold the very same writes, merged apart (in other
 * orders, or by another version of gitfs), and merging them again would only make one more head
 * to merge. The head holding more than merges is kept (a head that holds the other, too); of two
 * that hold merges only, the newer by committer time, then the greater id, as every node chooses.
 * Also a head that is the join of every write the two hold (its chain of merges), the newer first.
 */
export interface Kept {
  readonly keep: Oid;
}

/**
 * How `a` and `b` (both here, commits and trees) come to one head: one kept as it is, their merge,
 * or why they are not merged. One walk of the history finds both what each holds that the other
 * lacks and their base.
 */
export async function planMerge(repo: Repository, a: Oid, b: Oid): Promise<MergePlan | MergeRefusal | Kept> {
  const reads = new PlanReads(repo);
  const pair = await planPair(reads, a, b);
  if (typeof pair === 'string' || 'keep' in pair) return pair;
  const writes = await joinedWrites(reads, a, b);
  if (writes === undefined) return { ...pair, join: undefined };
  let join: Join = { writes, onto: writes[0] as Oid, from: 1 };
  for (const head of [pair.newer, pair.older]) {
    const chain = (await chainOf(reads, head)) ?? [];
    let run = 0;
    while (run < chain.length && chain[run]?.write === writes[run]) run++;
    // A head that joins them all already (a clock that ran behind hid it from the walk) is kept; of two, the newer.
    if (run === writes.length) return { keep: head };
    if (run > join.from) join = { writes, onto: (chain[run - 1] as Link).join, from: run };
  }
  return { ...pair, join };
}

const READS_KEPT = 50_000;

/** The commits one plan reads, each read and parsed once (at most READS_KEPT kept). */
class PlanReads {
  private readonly kept = new Map<Oid, { readonly content: Buffer; parsed?: Commit } | undefined>();

  constructor(readonly repo: Repository) {}

  /** The content of commit `oid`, or undefined where it is not here (for the walks of commit-ancestry.ts). */
  readonly content = async (oid: Oid): Promise<Buffer | undefined> => (await this.entry(oid))?.content;

  /** Whether commit `oid` is here. */
  async has(oid: Oid): Promise<boolean> {
    return (await this.entry(oid)) !== undefined;
  }

  /** Commit `oid`, parsed; one not here is GITFS_OBJECT_NOT_FOUND, as the store says. */
  async commit(oid: Oid): Promise<Commit> {
    const entry = await this.entry(oid);
    if (entry === undefined) return readCommit(this.repo.objects, oid);
    return (entry.parsed ??= decodeCommit(entry.content, oid));
  }

  private async entry(oid: Oid): Promise<{ readonly content: Buffer; parsed?: Commit } | undefined> {
    if (this.kept.has(oid)) return this.kept.get(oid);
    const read = (await this.repo.objects.has(oid)) ? { content: await readTyped(this.repo.objects, oid, 'commit') } : undefined;
    if (this.kept.size < READS_KEPT) this.kept.set(oid, read);
    return read;
  }
}

/** planMerge for the two heads as they are. */
async function planPair(reads: PlanReads, a: Oid, b: Oid): Promise<PairPlan | MergeRefusal | Kept> {
  const { repo } = reads;
  const [ca, cb] = [await reads.commit(a), await reads.commit(b)];
  const parted = await divergence(reads.content, a, b, MERGE_BASE_LIMIT);
  if (parted !== 'cut') {
    const [aAlike, bAlike] = [await mergesOnly(reads, parted.own.a), await mergesOnly(reads, parted.own.b)];
    if (aAlike && bAlike) return { keep: newer(a, ca, b, cb) ? a : b };
    if (aAlike || bAlike) return { keep: aAlike ? b : a };
  }
  if (isSigned(ca) || isSigned(cb)) return 'signed';
  // A time a second later must still be one git and gitfs read (a head may claim any).
  if (!Number.isSafeInteger(Math.max(ca.committer.timestamp, cb.committer.timestamp) + 1)) return 'bad-time';
  if (parted === 'cut') return 'history-cut';
  if (parted.base === 'none') return 'no-common-commit';
  // Cut, or one head holds the other after all (a clock that ran behind made the walk take a
  // commit both hold for one of a head's own): nothing to merge.
  if (parted.base === 'cut' || parted.base.base === a || parted.base.base === b) return 'history-cut';
  const { base } = parted.base;
  const baseTree = (await reads.commit(base)).tree;
  // A commit is here without its tree only in a damaged or partly pruned repository.
  if (!(await repo.objects.has(baseTree))) return 'history-cut';
  const [n, o] = newer(a, ca, b, cb) ? [{ oid: a, c: ca }, { oid: b, c: cb }] : [{ oid: b, c: cb }, { oid: a, c: ca }];
  return { newer: n.oid, older: o.oid, base, trees: { newer: n.c.tree, older: o.c.tree, base: baseTree }, newerTime: n.c.committer.timestamp };
}

/**
 * The writes either of `a` and `b` holds, none reaching another, newest first, where joining them
 * is more than merging the two heads: undefined where they are `a` and `b` themselves (the join is
 * their merge), fewer than two (a clock that ran behind hid that one head holds the other's
 * writes), more than JOINED_MAX, or cannot be told (a commit or a write's tree not here, more
 * than four times JOINED_MAX commits read from a head or found in all, a walk cut).
 */
async function joinedWrites(reads: PlanReads, a: Oid, b: Oid): Promise<Oid[] | undefined> {
  const found = new Set<Oid>();
  for (const head of [a, b]) if (!(await writesOf(reads, head, found))) return undefined;
  if ((found.size === 2 && found.has(a) && found.has(b)) || found.size > 4 * JOINED_MAX) return undefined;
  const kept = await independent(reads.content, [...found], MERGE_BASE_LIMIT);
  if (kept === 'cut' || kept.length < 2 || kept.length > JOINED_MAX) return undefined;
  const dated = await Promise.all(kept.map(async (oid) => ({ oid, c: await reads.commit(oid) })));
  for (const { c } of dated) if (!(await reads.repo.objects.has(c.tree))) return undefined;
  return dated.sort((x, y) => (newer(x.oid, x.c, y.oid, y.c) ? -1 : 1)).map((d) => d.oid);
}

/**
 * Adds to `found` the writes `head` holds above the merges gitfs wrote: itself, or the writes of
 * both parents of such a merge. False where a commit is not here, or past four times JOINED_MAX
 * commits read.
 */
async function writesOf(reads: PlanReads, head: Oid, found: Set<Oid>): Promise<boolean> {
  const seen = new Set<Oid>();
  for (const stack = [head]; stack.length > 0; ) {
    const oid = stack.pop() as Oid;
    if (seen.has(oid)) continue;
    seen.add(oid);
    if (seen.size > 4 * JOINED_MAX || !(await reads.has(oid))) return false;
    const c = await reads.commit(oid);
    if (isGitfsMerge(c)) stack.push(...c.parents);
    else found.add(oid);
  }
  return true;
}

/** Whether `a` (commit `ca`) is newer than `b` (`cb`): by committer time, then by id. */
function newer(a: Oid, ca: Commit, b: Oid, cb: Commit): boolean {
  return ca.committer.timestamp > cb.committer.timestamp || (ca.committer.timestamp === cb.committer.timestamp && a > b);
}

async function mergesOnly(reads: PlanReads, commits: readonly Oid[]): Promise<boolean> {
  for (const oid of commits) if (!isGitfsMerge(await reads.commit(oid))) return false;
  return true;
}

/**
 * A merge commit as writePair writes it: two parents, unsigned, author and committer `gitfs merge`
 * in UTC, and the first lines of its message (a member may write one as well, as it may write any
 * commit; one that differs in any of these, a merge a user settled by hand, is a write).
 */
function isGitfsMerge(c: Commit): boolean {
  const by = (s: Signature): boolean => s.name === MERGER.name && s.email === MERGER.email && s.tzOffsetMinutes === 0;
  const [newerHead, olderHead] = c.parents;
  if (c.parents.length !== 2 || newerHead === undefined || olderHead === undefined || !by(c.author) || !by(c.committer) || isSigned(c)) return false;
  return c.message.startsWith(`${mergeTitle(newerHead, olderHead)}\n\nThe branch was written apart from `);
}

/** What writeMerge wrote: the commit to move to, every version set aside, how many merge commits it took, and how many writes it joined (none: the two heads merged as they are). */
export interface Merged {
  readonly commit: Oid;
  readonly setAside: readonly SetAside[];
  readonly merges: number;
  readonly joined?: number;
}

/** Writes the merge commits of `plan` (one pack each): its writes joined, or else its two heads merged; no ref moves. */
export async function writeMerge(repo: Repository, plan: MergePlan): Promise<Merged> {
  const joined = plan.join === undefined ? undefined : await writeJoin(repo, plan.join);
  return joined ?? { ...(await writePair(repo, plan)), merges: 1 };
}

/**
 * Merges the writes of `join` past its run one after another onto it; undefined where a step is
 * not merged as two heads (refused; or kept, which writes that are independent never are): what it
 * wrote before is left unnamed, for `gitfs prune`.
 */
async function writeJoin(repo: Repository, { writes, onto, from }: Join): Promise<Merged | undefined> {
  const reads = new PlanReads(repo);
  const setAside = new Map<string, SetAside>();
  let [head, merges] = [onto, 0];
  for (const write of writes.slice(from)) {
    const step = await planPair(reads, head, write);
    if (typeof step === 'string' || 'keep' in step) return undefined;
    const written = await writePair(repo, step);
    [head, merges] = [written.commit, merges + 1];
    // A version set aside by two steps (two writes held it) is beside once, under one name.
    for (const s of written.setAside) if (!setAside.has(s.as)) setAside.set(s.as, s);
  }
  return { commit: head, setAside: [...setAside.values()], merges, joined: writes.length };
}

/** A step of a join: the write it merged in, and the commit that joins it and those before. */
interface Link {
  readonly write: Oid;
  readonly join: Oid;
}

/**
 * The join `head` is, as its chain in order: the first write (the end of the first parents down),
 * then each merge's second parent (a write) with that merge. Every merge must be one a join
 * writes: a gitfs merge dated a second after its first parent whose message names both parents
 * in full (its tree is trusted). A head that is no gitfs merge is a chain of itself. Undefined
 * where it is no such chain (at most JOINED_MAX links), or a commit is not here.
 */
async function chainOf(reads: PlanReads, head: Oid): Promise<Link[] | undefined> {
  const later: Link[] = [];
  for (let at = head; later.length < JOINED_MAX; ) {
    if (!(await reads.has(at))) return undefined;
    const c = await reads.commit(at);
    if (!isGitfsMerge(c)) return [{ write: at, join: at }, ...later.reverse()];
    const [first, second] = c.parents as [Oid, Oid];
    if (!(await reads.has(first)) || !(await reads.has(second)) || isGitfsMerge(await reads.commit(second))) return undefined;
    const firstTime = (await reads.commit(first)).committer.timestamp;
    const dated = c.committer.timestamp === firstTime + 1 && c.author.timestamp === firstTime + 1;
    const names = new RegExp(`^${mergeTitle(first, second)}\\n\\nThe branch was written apart from [0-9a-f]{40,64}:\\n  ${first} \\(newer: its versions keep their names\\)\\n  ${second}\\n`);
    if (!dated || !names.test(c.message)) return undefined;
    later.push({ write: second, join: at });
    at = first;
  }
  return undefined;
}

/** Writes the merge commit of two heads (one pack). */
async function writePair(repo: Repository, plan: PairPlan): Promise<{ commit: Oid; setAside: readonly SetAside[] }> {
  const writer = await repo.newPackWriter();
  try {
    const { tree, setAside } = await mergeTrees(repo.objects, writer, plan.trees.base, plan.trees.newer, plan.trees.older);
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

const shortId = (oid: Oid): string => oid.slice(0, 12);

/** A merge's first line. */
const mergeTitle = (newerHead: Oid, olderHead: Oid): string => `Merge ${shortId(olderHead)} into ${shortId(newerHead)}`;

function mergeMessage(plan: PairPlan, setAside: readonly SetAside[]): string {
  let text = `${mergeTitle(plan.newer, plan.older)}\n\nThe branch was written apart from ${plan.base}:\n  ${plan.newer} (newer: its versions keep their names)\n  ${plan.older}\n`;
  if (setAside.length === 0) return text;
  text += `\nBoth changed these; the other version is kept beside:\n${setAside.slice(0, LISTED).map((s) => `  ${s.path} -> ${s.as}\n`).join('')}`;
  if (setAside.length > LISTED) text += `  and ${setAside.length - LISTED} more\n`;
  return text;
}
