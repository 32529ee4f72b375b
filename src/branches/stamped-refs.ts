/**
 * The branch refs for a process that asks for them often (the daemon's swarm every 2 s, its ref
 * watcher, a workspace at every request): listed again only when the ref stamp changed
 * (ref-stamp.ts: a few stat calls), when the last listing was racy, or when `relistMs` passed
 * since it. Listing reads every loose ref file: with 1 000 branches, listing every 2 s took an idle
 * daemon 10 % of a CPU (BENCHMARKS.md, "An idle daemon").
 *
 * Racy: a stamped directory (or packed-refs) had changed less than RACY_MS before the listing
 * began. A second change within the same timestamp tick of the file system would leave the stamp
 * as the listing saw it, so such a listing is not trusted past the next look (the way git treats
 * an index entry as racily clean). That comparison is with the file system's clock (Date.now),
 * whose times may lie ahead (the clock was set back since): so a listing is trusted too once this
 * process has seen the same stamp for RACY_MS by its own clock, which no later change in that
 * tick can outlast until the clock comes round to those times again: within RACY_MS of them,
 * every look lists. A ref file rewritten in place (no git or gitfs writer does that) changes no
 * directory: `relistMs` bounds how long it goes unseen.
 */
import { refStamp, restamp } from './ref-stamp.js';
import type { BranchName } from './ref-name.js';
import type { BranchRef, BrokenRef, RefStore } from './ref-store.js';

/** How far back a change makes a listing racy: far above any file system's timestamp tick. */
const RACY_MS = 1000;

export class StampedRefs {
  private last:
    | { readonly stamp: string; readonly dirs: readonly string[]; readonly refs: readonly BranchRef[]; readonly broken: readonly BrokenRef[]; readonly aliases: ReadonlySet<BranchName>; readonly at: number; readonly racy: boolean; readonly newestMs: number }
    | undefined;
  /** A stamp and when this process first saw it (its own clock). */
  private seen: { readonly stamp: string; readonly at: number } | undefined;

  constructor(
    private readonly c: { readonly gitDir: string; readonly refs: RefStore; readonly now: () => number },
    private readonly relistMs: number,
  ) {}

  /** The directories the last listing's stamp covers (refs/heads and those under it). */
  get dirs(): readonly string[] {
    return this.last?.dirs ?? [];
  }

  /** The broken branch files of the last listing (RefStore.broken: left out of the refs). */
  get broken(): readonly BrokenRef[] {
    return this.last?.broken ?? [];
  }

  /** The symbolic branch files of the last listing (RefStore.listing: left out of the refs). */
  get aliases(): ReadonlySet<BranchName> {
    return this.last?.aliases ?? new Set();
  }

  /** Whether the refs may differ from the last listing (`relistMs`: this look's own bound). */
  stale(relistMs = this.relistMs): boolean {
    const last = this.last;
    return (
      last === undefined ||
      last.racy ||
      // Times set ahead come round again: a change in their tick then would leave the stamp as it is.
      Math.abs(Date.now() - last.newestMs) < RACY_MS ||
      this.c.now() - last.at >= relistMs ||
      restamp(this.c.gitDir, last.dirs) !== last.stamp
    );
  }

  /** The refs: the last listing unless stale (or `force`). */
  async list(force = false): Promise<readonly BranchRef[]> {
    if (!force && this.last !== undefined && !this.stale()) return this.last.refs;
    const at = this.c.now();
    const began = Date.now();
    // Stamp first, list after: a change during the listing shows at the next look.
    const { stamp, dirs, newestMs } = refStamp(this.c.gitDir);
    if (this.seen?.stamp !== stamp) this.seen = { stamp, at };
    const { refs, broken, aliases } = await this.c.refs.listing();
    this.last = { stamp, dirs, refs, broken, aliases, at, racy: began - newestMs < RACY_MS && at - this.seen.at < RACY_MS, newestMs };
    return refs;
  }
}
