/**
 * The daemon's scrub, as ZFS and Ceph scrub their disks: every `scrub.everyMs` (a week by
 * default), every pack is read through and checked (its checksum, each entry's CRC-32:
 * src/objects/pack-verify.ts), and what a disk let rot is mended from peers (src/repo/repair.ts),
 * before the last other copy in the cluster rots too. When the last scrub that left no damage
 * began is kept in `gitfs/scrub.json` (`{"at": <ms>, "packs": <n>, "damaged": <n>}`), so that
 * restarts neither put it off for ever nor run it at every start. A scrub cut short by a stop
 * starts over.
 */
import { join } from 'node:path';
import { isGitfsError } from '../errors.js';
import type { ObjectSupplier } from '../objects/promisor.js';
import { withPruneLock } from '../repo/prune-lock.js';
import { repair } from '../repo/repair.js';
import { scanStore } from '../repo/store-scan.js';
import type { Repository } from '../repo/repository.js';
import type { Clock } from '../util/clock.js';
import { writeFileAtomic } from '../util/durable.js';
import { textOf } from '../util/if-present.js';
import type { Logger } from '../util/log.js';

/** The first scrub after a start, at the soonest: a node just started fetches what it missed first. */
const SCRUB_WAIT_MS = 3_600_000;
/** When a scrub that failed, or left damage (no peer had a good copy), is tried again. */
const SCRUB_RETRY_MS = 6 * 3_600_000;

export function scrubFilePath(gitDir: string): string {
  return join(gitDir, 'gitfs', 'scrub.json');
}

export class Scrubber {
  private constructor(
    private readonly repo: Repository,
    private readonly everyMs: number,
    private readonly clock: Clock,
    private next: number,
  ) {}

  /**
   * `everyMs` 0: never. The next scrub is due `everyMs` after the start of the last one recorded,
   * but not within SCRUB_WAIT_MS (or `everyMs`, if shorter) of now.
   */
  static async load(repo: Repository, everyMs: number, clock: Clock): Promise<Scrubber> {
    const text = await textOf(scrubFilePath(repo.gitDir)).catch(() => undefined);
    let last: unknown;
    try {
      last = text === undefined ? undefined : (JSON.parse(text) as { at?: unknown }).at;
    } catch {
      last = undefined;
    }
    const now = clock.now();
    const soonest = now + Math.min(everyMs, SCRUB_WAIT_MS);
    const due = typeof last === 'number' && Number.isFinite(last) && last <= now ? last + everyMs : soonest;
    return new Scrubber(repo, everyMs, clock, Math.max(due, soonest));
  }

  due(now: number): boolean {
    return this.everyMs > 0 && now >= this.next;
  }

  /**
   * Checks every pack and loose object, and mends the damage but in packs `exclude` names (packs
   * about to be removed: what they hold is elsewhere already), with `supplier` (the swarm) for what
   * no pack here holds good. Logged, never thrown. One that fails or leaves damage is tried again
   * after SCRUB_RETRY_MS; `signal` (the daemon stopping) ends it between reads and objects.
   */
  async run(supplier: ObjectSupplier | undefined, exclude: ReadonlySet<string>, log: Logger, signal: AbortSignal): Promise<void> {
    const started = this.clock.now();
    this.next = started + Math.min(this.everyMs, SCRUB_RETRY_MS);
    try {
      const found = await scanStore(this.repo, signal);
      const packs = this.repo.objects.packs().length;
      const damaged = found.packs.length + found.loose.length + found.caches.length;
      let left = 0;
      if (damaged > 0) {
        log.log('warn', 'damaged-packs', { packs: found.packs.map((d) => d.name), entries: found.packs.reduce((n, d) => n + d.damaged.length, 0), loose: found.loose.length, caches: found.caches.map((c) => c.path) });
        const mend = { ...found, packs: found.packs.filter((d) => !exclude.has(d.name)) };
        const r = await withPruneLock(this.repo.gitDir, () => repair(this.repo, [], mend, supplier, signal));
        left = r.left.length;
        log.log(left > 0 ? 'warn' : 'info', 'repaired', { cachesSetAside: r.cachesSetAside, reindexed: r.reindexed, healed: r.healed, supplied: r.supplied, rewritten: r.rewritten, setAside: r.setAside, looseSetAside: r.looseSetAside, left: r.left });
      }
      log.log('info', 'scrubbed', { packs, damaged, ms: this.clock.now() - started });
      if (left > 0) return;
      // Kept only once nothing is left, so that a restart does not put the next try off a period.
      this.next = started + this.everyMs;
      await writeFileAtomic(scrubFilePath(this.repo.gitDir), `${JSON.stringify({ at: started, packs, damaged })}\n`);
    } catch (e) {
      if (signal.aborted) return;
      log.log('warn', 'scrub-failed', { error: (e as Error).message, ...(isGitfsError(e) ? { code: e.code } : {}) });
    }
  }
}
