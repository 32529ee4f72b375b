/**
 * What this node knows of a head a member announces for a branch, against its own head of it.
 * Heads are otherwise ranked by the commit time their announcers claim (policy.ts), which nothing
 * checks: alone, it froze a branch whenever a head carried a time later than the next commit's
 * (a publisher whose clock ran ahead, a member announcing an old head with a new time, a commit
 * made on a node whose clock runs behind). Verdicts settle what ancestry can:
 * - 'ahead': the head descends from this node's, so it is taken whatever time it claims;
 * - 'passed': this node's head already holds it (an ancestor), or a fetch of it showed it behind,
 *   diverged or refused, so it is never taken.
 * A head that is here is judged at once by the local commits. One that is not, and claims a time
 * older than this node's head, is probed in the background: its commits, asked of peers as
 * metadata (checked, none stored), are walked back up to PROBE_LIMIT looking for this node's head.
 * Apart from verdicts, a head whose fetch failed (not refused: no peer could give it) is `failing`
 * for FAILING_MS, so that another head is fetched first: one nobody can serve (announced by a
 * member that lost its objects, or lies) must not hold back a newer one that can be had.
 */
import { reaches } from '../objects/commit-ancestry.js';
import type { Oid } from '../objects/oid.js';
import { remember } from '../util/bounded-map.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';

export type HeadVerdict = 'ahead' | 'passed';

export interface VerdictSources {
  /** A commit's content if it is here. */
  here(oid: Oid): Promise<Buffer | undefined>;
  /** A commit's content from here or else from a peer (its id checked), if any has it. */
  anywhere(oid: Oid): Promise<Buffer | undefined>;
}

/** How many commits a probe walks back from an unknown head: a clock behind by minutes makes a few. */
export const PROBE_LIMIT = 64;
/** How many local commits a judgement walks (as the fetcher's ancestry check). */
const LOCAL_LIMIT = 100_000;
/** A probe that could not get the head's own commit is tried again after this long. */
export const PROBE_RETRY_MS = 60_000;
/** How long a head whose fetch failed gives way to other heads. */
export const FAILING_MS = 120_000;
const MAX_VERDICTS = 4096;

const key = (mine: Oid | undefined, head: Oid): string => `${mine ?? ''}>${head}`;

export class HeadVerdicts {
  private readonly verdicts = new Map<string, HeadVerdict>();
  private readonly probing = new Set<string>();
  private readonly retryAt = new Map<string, number>();
  private readonly failedAt = new Map<Oid, number>();

  constructor(
    private readonly sources: VerdictSources,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** The verdict on `head` against this node's `mine` (undefined: this node has no such branch), if any. */
  get(mine: Oid | undefined, head: Oid): HeadVerdict | undefined {
    return this.verdicts.get(key(mine, head));
  }

  /** Records that a fetch of `head` failed now. */
  failed(head: Oid): void {
    remember(this.failedAt, head, this.clock.now(), MAX_VERDICTS);
  }

  /** Whether a fetch of `head` failed within FAILING_MS. */
  failing(head: Oid): boolean {
    return this.clock.now() - (this.failedAt.get(head) ?? -Infinity) < FAILING_MS;
  }

  /** Records what a fetch of `head` showed against `mine`. */
  set(mine: Oid | undefined, head: Oid, verdict: HeadVerdict): void {
    remember(this.verdicts, key(mine, head), verdict, MAX_VERDICTS);
  }

  /**
   * Judges `head` against `mine` if it is not judged yet: at once when `head` is here; in the
   * background when it is not and `claimsOlder` (its announced time is before `mine`'s), so that
   * the caller need not wait for peers. A head not here that claims a later time is left to the
   * fetch that it becomes.
   */
  async judge(mine: Oid, head: Oid, claimsOlder: boolean): Promise<void> {
    const k = key(mine, head);
    if (this.verdicts.has(k) || this.probing.has(k)) return;
    const local = (oid: Oid): Promise<Buffer | undefined> => this.sources.here(oid);
    if ((await local(head)) !== undefined) {
      // Ancestors first: peers announcing a head this node has moved past are the common case, found
      // in a few steps from `mine`. A commit here that does not parse is no head to take either.
      const walk = (from: Oid, to: Oid): Promise<boolean> => reaches(local, from, to, LOCAL_LIMIT).catch(() => false);
      const ahead = !(await walk(mine, head)) && (await walk(head, mine));
      return this.set(mine, head, ahead ? 'ahead' : 'passed');
    }
    if (!claimsOlder || (this.retryAt.get(k) ?? -Infinity) > this.clock.now()) return;
    this.probing.add(k);
    void this.probe(mine, head).finally(() => this.probing.delete(k));
  }

  private async probe(mine: Oid, head: Oid): Promise<void> {
    const k = key(mine, head);
    try {
      const first = await this.sources.anywhere(head);
      if (first === undefined) {
        remember(this.retryAt, k, this.clock.now() + PROBE_RETRY_MS, MAX_VERDICTS);
        return;
      }
      const ahead = await reaches((oid) => (oid === head ? Promise.resolve(first) : this.sources.anywhere(oid)), head, mine, PROBE_LIMIT);
      this.set(mine, head, ahead ? 'ahead' : 'passed');
      this.retryAt.delete(k);
      this.log.log(ahead ? 'info' : 'debug', 'head-probed', { mine, head, verdict: ahead ? 'ahead' : 'passed' });
    } catch (e) {
      remember(this.retryAt, k, this.clock.now() + PROBE_RETRY_MS, MAX_VERDICTS);
      this.log.log('warn', 'head-probe-failed', { mine, head, error: (e as Error).message });
    }
  }
}
