/**
 * What this node knows of a head a member announces for a branch, against its own head of it.
 * Heads are otherwise ranked by the commit time their announcers claim (policy.ts), which nothing
 * checks: alone, it froze a branch whenever a head carried a time later than the next commit's
 * (a publisher whose clock ran ahead, a member announcing an old head with a new time, a commit
 * made on a node whose clock runs behind). Verdicts settle what ancestry proves:
 * - 'ahead': the head descends from this node's, so it is taken whatever time it claims;
 * - 'fork': neither is signed, and the head and this node's were written apart from a common
 *   commit (here, with the history between all here; or the probe below met one of this node's
 *   head's ancestors, on a branch that keeps its whole history): taken whatever time it claims,
 *   and its fetch merges the two (src/repo/merge-heads.ts), or passes it for the branch when they
 *   cannot be merged. Both sides take each other's head, and both write the same merge;
 * - 'passed': this node's head already holds it (an ancestor), the two histories, read whole
 *   here, share no commit, or a fetch of it showed it behind: it is never taken while this
 *   node's head stays; or a merge with it failed: not taken for a while (the swarm's
 *   `mergeRetryMs`), then judged anew, so that the merge is tried again. (A head a fetch refused,
 *   or whose merge was refused, is passed for its branch whatever this node's head: the swarm's
 *   `refused`.)
 * A head that cannot be proven either way (a commit between the two not here, or too far back)
 * is 'unproven': the time rule and the fetch decide, as they would without verdicts, and it is
 * judged again after RETRY_MS. A head not yet judged has no standing; the time rule takes it
 * only when it claims a later second than this node's head (policy.ts): one of the same second
 * waits for its judgement, as it may be an ancestor (a member back with the release before).
 *
 * Judging never holds up a caller: `consider` queues a pair (at most MAX_PENDING), judged in the
 * background one at a time per lane (below); `judged` is called whenever a lane empties. A head that
 * is here is judged by the local commits (walks of at most LOCAL_LIMIT). One that is not is
 * 'passed' when one of the PROBE_LIMIT commits nearest this node's head names it as a parent (a
 * release this node pruned is still named by its child). Failing that, one that claims a time
 * older than this node's head is probed, in a lane of its own (a slow announcer never holds up
 * what the local commits settle): its commits, read here or else asked of the members announcing
 * it as metadata (checked, none stored), are walked back up to PROBE_LIMIT looking for this node's
 * head, or, failing that, for one of its ancestors (a fork); no ask starts after PROBE_MS (one
 * under way ends by its own limits).
 *
 * Apart from verdicts, a head whose fetch failed (not refused: no peer could give it) is `failing`
 * for FAILING_MS, so that another head is fetched first: one nobody can serve (announced by a
 * member that lost its objects, or lies) must not hold back a newer one that can be had. So is,
 * one rank above those, every head of a branch announced only by members that announced a head of
 * that branch that failed so within FAILING_MS (unless a head of theirs that gave way so came
 * since): a member announcing a fresh id every few seconds, each claiming a later time, would
 * otherwise have each fetched before the head that can be had.
 */
import type { BranchName } from '../branches/ref-name.js';
import type { NodeId } from '../cluster/node-id.js';
import { decodeCommit, isSigned } from '../objects/commit.js';
import { ancestry, mergeBase } from '../objects/commit-ancestry.js';
import type { Oid } from '../objects/oid.js';
import { remember } from '../util/bounded-map.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';

export type HeadVerdict = 'ahead' | 'fork' | 'passed';
/** Why a head gives way to others (head-verdicts.ts `failing`): its own fetch failed, or its announcers' did. */
export type Failing = 'head' | 'announcers';
/** A verdict, or 'unproven': judged, and neither could be shown (judged again after RETRY_MS). */
export type HeadStanding = HeadVerdict | 'unproven';

export interface VerdictSources {
  /** A commit's content if it is here. */
  here(oid: Oid): Promise<Buffer | undefined>;
  /** A commit's content from `from` (members announcing a head), its id checked, if one gives it. */
  ask(oid: Oid, from: readonly NodeId[]): Promise<Buffer | undefined>;
}

/**
 * How many commits a probe walks back from an unknown head (a clock behind by minutes makes a
 * few), and how many of this node's own are read for a parent that names a head not here.
 */
export const PROBE_LIMIT = 64;
/** How many commits a probe met here are checked for ancestors of this node's head (a fork). */
const MET_CHECKED = 4;
/** How long a probe starts asks (each ask is bounded by its own limits): a silent announcer holds up other probes little longer. */
export const PROBE_MS = 30_000;
/** How many local commits a judgement walks each way: an announced head is mostly a few commits away. */
export const LOCAL_LIMIT = 2000;
/** A pair that could not be judged is judged again after this long. */
export const RETRY_MS = 60_000;
/** How long a head whose fetch failed gives way to other heads. */
export const FAILING_MS = 120_000;
/** Pairs waiting to be judged; more are left for a later `consider`. */
export const MAX_PENDING = 256;
const MAX_VERDICTS = 16_384;

interface Pair {
  readonly mine: Oid;
  readonly head: Oid;
  readonly claimsOlder: boolean;
  readonly from: readonly NodeId[];
  /** Whether the branch keeps its whole history, so that a fork found is one a merge can be based on. */
  readonly wholeHistory: boolean;
}

const key = (mine: Oid | undefined, head: Oid): string => `${mine ?? ''}>${head}`;

/** Pairs judged in the background by `run`, which takes them one at a time until none is left; `emptied` after each run. */
class Lane {
  readonly pairs = new Map<string, Pair>();
  private current: Promise<void> | undefined;

  constructor(
    private readonly run: (pairs: Map<string, Pair>) => Promise<void>,
    private readonly emptied: () => void,
  ) {}

  /** The run under way, if any. */
  get running(): Promise<void> | undefined {
    return this.current;
  }

  /** Starts a run unless one is under way or nothing waits. */
  start(): void {
    if (this.pairs.size === 0 || this.current !== undefined) return;
    this.current = this.run(this.pairs).finally(() => {
      this.current = undefined;
      this.emptied();
      // A pair that came in after the run's last look, before this: taken up now.
      this.start();
    });
  }
}

export class HeadVerdicts {
  /** Per pair, its verdict, and when one set for a while (`set`'s `forMs`) lapses. */
  private readonly verdicts = new Map<string, { readonly verdict: HeadVerdict; readonly lapsesAt?: number }>();
  private readonly retryAt = new Map<string, number>();
  private readonly failedAt = new Map<Oid, number>();
  /** Per branch and member, when a head of the branch the member announced last failed its fetch. */
  private readonly announcerFailedAt = new Map<string, number>();
  /** Pairs to judge by the local commits. */
  private readonly local = new Lane((pairs) => this.drain(pairs, (pair) => this.judgeHere(pair)), () => this.emptied());
  /** Pairs the local commits could not judge, to probe through their announcers. */
  private readonly probes = new Lane((pairs) => this.drain(pairs, (pair) => this.probe(pair)), () => this.emptied());
  private stopped = false;

  constructor(
    private readonly sources: VerdictSources,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** Called whenever the pairs queued have all been judged (the policies may decide otherwise now). */
    private readonly judged: () => void = () => undefined,
  ) {}

  /** What is known of `head` against this node's `mine` (undefined: this node has no such branch); undefined: not judged yet. */
  get(mine: Oid | undefined, head: Oid): HeadStanding | undefined {
    const k = key(mine, head);
    const v = this.current(k);
    // Used: kept as the most recent (the map drops the entry set longest ago).
    if (v !== undefined) {
      this.verdicts.delete(k);
      this.verdicts.set(k, v);
      return v.verdict;
    }
    return this.retryAt.has(k) ? 'unproven' : undefined;
  }

  /**
   * Records what a fetch of `head` showed against `mine` (for a branch this node lacks:
   * undefined); `forMs`: for that long only, then the pair has no standing again (judged anew).
   */
  set(mine: Oid | undefined, head: Oid, verdict: HeadVerdict, forMs?: number): void {
    remember(this.verdicts, key(mine, head), forMs === undefined ? { verdict } : { verdict, lapsesAt: this.clock.now() + forMs }, MAX_VERDICTS);
  }

  /** The verdict on pair `k`, unless it lapsed (then dropped). */
  private current(k: string): { readonly verdict: HeadVerdict } | undefined {
    const v = this.verdicts.get(k);
    if (v?.lapsesAt !== undefined && v.lapsesAt <= this.clock.now()) {
      this.verdicts.delete(k);
      return undefined;
    }
    return v;
  }

  /** Records that a fetch of `head` for `branches`, announced by `announcers`, failed now. */
  failed(head: Oid, branches: Iterable<BranchName>, announcers: Iterable<NodeId>): void {
    const now = this.clock.now();
    remember(this.failedAt, head, now, MAX_VERDICTS);
    for (const branch of branches) for (const id of announcers) remember(this.announcerFailedAt, `${branch}\0${id}`, now, MAX_VERDICTS);
  }

  /**
   * Records that a fetch of `head` for `branches`, announced by `announcers`, came whole: where
   * it gave way for its announcers alone (each had failed there), their failures no longer count.
   * (A member does not clear its own by also announcing an honest head: that head gave way for
   * nobody.)
   */
  fetched(head: Oid, branches: Iterable<BranchName>, announcers: readonly NodeId[]): void {
    for (const branch of branches) {
      if (this.failing(branch, head, announcers) !== 'announcers') continue;
      for (const id of announcers) this.announcerFailedAt.delete(`${branch}\0${id}`);
    }
  }

  /**
   * Whether `head` of `branch` gives way: 'head' when its own fetch failed within FAILING_MS,
   * 'announcers' when every member of `announcers` (some) announced a head of the branch that did.
   */
  failing(branch: BranchName, head: Oid, announcers: readonly NodeId[]): Failing | undefined {
    const recent = (at: number | undefined): boolean => this.clock.now() - (at ?? -Infinity) < FAILING_MS;
    if (recent(this.failedAt.get(head))) return 'head';
    return announcers.length > 0 && announcers.every((id) => recent(this.announcerFailedAt.get(`${branch}\0${id}`))) ? 'announcers' : undefined;
  }

  /**
   * Queues `head` (announced by `from`) to be judged against `mine` unless it is judged, queued,
   * or waits for a retry; `claimsOlder`: its announced time is before `mine`'s (only such a head
   * is probed when it is not here: one claiming the same or a later time is fetched anyway).
   */
  consider(mine: Oid, head: Oid, claimsOlder: boolean, from: readonly NodeId[], wholeHistory = true): void {
    if (this.stopped) return;
    const k = key(mine, head);
    const waits = this.current(k) !== undefined || this.local.pairs.has(k) || this.probes.pairs.has(k) || this.local.pairs.size >= MAX_PENDING || (this.retryAt.get(k) ?? -Infinity) > this.clock.now();
    if (!waits) this.local.pairs.set(k, { mine, head, claimsOlder, from, wholeHistory });
    this.local.start();
  }

  /** Resolves once every pair queued now is judged (or could not be). */
  async idle(): Promise<void> {
    while (this.local.running !== undefined || this.probes.running !== undefined) await Promise.all([this.local.running, this.probes.running]);
  }

  private emptied(): void {
    if (!this.stopped) this.judged();
  }

  /** Lets the pairs being judged finish; no more are judged. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.local.pairs.clear();
    this.probes.pairs.clear();
    await this.idle();
  }

  /** Judges the pairs of `lane` one at a time, oldest first, until none is left. */
  private async drain(lane: Map<string, Pair>, judge: (pair: Pair) => Promise<HeadVerdict | 'probe' | undefined>): Promise<void> {
    for (let next = lane.entries().next(); !next.done && !this.stopped; next = lane.entries().next()) {
      const [k, pair] = next.value;
      try {
        const verdict = await judge(pair);
        if (verdict === 'probe') this.toProbe(k, pair);
        else if (verdict === undefined) remember(this.retryAt, k, this.clock.now() + RETRY_MS, MAX_VERDICTS);
        else {
          // A fetch's verdict, set while this was judged (a merge failed, for a while), knows more.
          if (this.current(k) === undefined) this.set(pair.mine, pair.head, verdict);
          this.retryAt.delete(k);
        }
      } catch (e) {
        remember(this.retryAt, k, this.clock.now() + RETRY_MS, MAX_VERDICTS);
        if (!this.stopped) this.log.log('warn', 'head-judgement-failed', { mine: pair.mine, head: pair.head, error: (e as Error).message });
      } finally {
        lane.delete(k);
      }
    }
  }

  /**
   * Hands a pair the local commits could not judge to the probing lane, which asks peers: slow
   * or silent announcers hold up only other probes, never a judgement the local commits give.
   */
  private toProbe(k: string, pair: Pair): void {
    if (this.probes.pairs.size >= MAX_PENDING) {
      remember(this.retryAt, k, this.clock.now() + RETRY_MS, MAX_VERDICTS);
      return;
    }
    this.probes.pairs.set(k, pair);
    this.probes.start();
  }

  /** What the local commits say of a pair; 'probe' for a head not here that claims an older time, announced by someone. */
  private async judgeHere({ mine, head, claimsOlder, from }: Pair): Promise<HeadVerdict | 'probe' | undefined> {
    const here = (oid: Oid): Promise<Buffer | undefined> => this.sources.here(oid);
    const content = await here(head);
    if (content !== undefined) {
      // Ancestors first: a member announcing a head this node has moved past is the common case,
      // found in a few steps from `mine`.
      if ((await ancestry(here, mine, head, LOCAL_LIMIT)) === 'reached') return 'passed';
      if ((await ancestry(here, head, mine, LOCAL_LIMIT)) === 'reached') return 'ahead';
      if (await this.signed(content, head, mine)) return undefined;
      // A fork with a base here; unrelated whole histories, never to be merged; or a gap (left to the times).
      const found = await mergeBase(here, mine, head, LOCAL_LIMIT);
      if (typeof found === 'string') return found === 'none' ? 'passed' : undefined;
      return found.base === head ? 'passed' : found.base === mine ? 'ahead' : 'fork';
    }
    // Named by a parent id of one of this node's commits: passed, whether or not it is still here.
    if ((await ancestry(here, mine, head, PROBE_LIMIT)) === 'reached') return 'passed';
    return claimsOlder && from.length > 0 ? 'probe' : undefined;
  }

  /**
   * Walks an absent head's commits back to this node's head, asking its announcers for those not
   * here: 'ahead' if found within PROBE_LIMIT and PROBE_MS; 'fork' if not, but the walk met one of
   * this node's head's ancestors (the two were written apart from it).
   */
  private async probe({ mine, head, from, wholeHistory }: Pair): Promise<HeadVerdict | undefined> {
    const deadline = this.clock.now() + PROBE_MS;
    const ask = (oid: Oid): Promise<Buffer | undefined> => (this.clock.now() > deadline || this.stopped ? Promise.resolve(undefined) : this.sources.ask(oid, from));
    const first = await ask(head);
    if (first === undefined) return undefined;
    // A fork is sought only where a merge could follow: whole histories, no release.
    const seekFork = wholeHistory && !(await this.signed(first, head, mine));
    const met: Oid[] = [];
    const content = async (oid: Oid): Promise<Buffer | undefined> => {
      if (oid === head) return first;
      const local = await this.sources.here(oid);
      if (local === undefined) return ask(oid);
      if (seekFork && met.length < MET_CHECKED) met.push(oid);
      return local;
    };
    const walk = await ancestry(content, head, mine, PROBE_LIMIT);
    let verdict: HeadVerdict | undefined = walk === 'reached' ? 'ahead' : undefined;
    for (const m of walk === 'reached' ? [] : met) {
      if ((await ancestry((oid) => this.sources.here(oid), mine, m, LOCAL_LIMIT)) !== 'reached') continue;
      verdict = 'fork';
      break;
    }
    this.log.log(verdict === undefined ? 'debug' : 'info', 'head-probed', { mine, head, found: walk === 'reached', verdict: verdict ?? 'unproven' });
    // Neither within PROBE_LIMIT, out of time, or a commit on the way not to be had: unknown (the time rule holds).
    return verdict;
  }

  /** Whether `head` (its content given) or `mine` is a signed commit (a release: never merged). */
  private async signed(content: Buffer, head: Oid, mine: Oid): Promise<boolean> {
    const own = await this.sources.here(mine);
    return isSigned(decodeCommit(content, head)) || (own !== undefined && isSigned(decodeCommit(own, mine)));
  }
}
