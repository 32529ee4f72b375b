/**
 * The daemon's scrub, as ZFS and Ceph scrub their disks: every `scrub.everyMs` (a week by
 * default), every pack is read through and checked (its checksum, each entry's CRC-32:
 * src/objects/pack-verify.ts), and what a disk let rot is mended from peers (src/repo/repair.ts),
 * before the last other copy in the cluster rots too. When the last scrub ended is kept in
 * `gitfs/scrub.json` (`{"at": <ms>, "packs": <n>, "damaged": <n>}`), so that restarts neither put
 * it off for ever nor run it at every start.
 */
import { join } from 'node:path';
import { isGitfsError } from '../errors.js';
import type { ObjectSupplier } from '../objects/promisor.js';
import { withPruneLock } from '../repo/prune-lock.js';
import { repair, verifyPacks } from '../repo/repair.js';
import type { Repository } from '../repo/repository.js';
import type { Clock } from '../util/clock.js';
import { writeFileAtomic } from '../util/durable.js';
import { textOf } from '../util/if-present.js';
import type { Logger } from '../util/log.js';

/** The first scrub of a node that never scrubbed, at the latest: not at once (a node just started fetches what it missed first). */
const FIRST_SCRUB_AFTER_MS = 3_600_000;

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

  /** `everyMs` 0: never. The next scrub is due `everyMs` after the last one recorded (unreadable: none). */
  static async load(repo: Repository, everyMs: number, clock: Clock): Promise<Scrubber> {
    const text = await textOf(scrubFilePath(repo.gitDir)).catch(() => undefined);
    let last: unknown;
    try {
      last = text === undefined ? undefined : (JSON.parse(text) as { at?: unknown }).at;
    } catch {
      last = undefined;
    }
    const now = clock.now();
    const next = typeof last === 'number' && Number.isFinite(last) && last <= now ? last + everyMs : now + Math.min(everyMs, FIRST_SCRUB_AFTER_MS);
    return new Scrubber(repo, everyMs, clock, next);
  }

  due(now: number): boolean {
    return this.everyMs > 0 && now >= this.next;
  }

  /**
   * Checks every pack and mends the damaged ones but those in `exclude` (packs about to be
   * removed), with `supplier` (the swarm) for what no pack here holds good. Logged, never thrown;
   * `signal` (the daemon stopping) ends the check between reads, and it is done again next time.
   */
  async run(supplier: ObjectSupplier | undefined, exclude: ReadonlySet<string>, log: Logger, signal: AbortSignal): Promise<void> {
    const started = this.clock.now();
    this.next = started + this.everyMs;
    try {
      const damage = (await verifyPacks(this.repo, signal)).filter((d) => !exclude.has(d.name));
      const packs = this.repo.objects.packs().length;
      if (damage.length > 0) {
        log.log('warn', 'damaged-packs', { packs: damage.map((d) => d.name), entries: damage.reduce((n, d) => n + d.damaged.length, 0) });
        const r = await withPruneLock(this.repo.gitDir, () => repair(this.repo, [], damage, supplier));
        log.log(r.left.length > 0 ? 'warn' : 'info', 'repaired', { healed: r.healed, supplied: r.supplied, rewritten: r.rewritten, setAside: r.setAside, left: r.left });
      }
      log.log('info', 'scrubbed', { packs, damaged: damage.length, ms: this.clock.now() - started });
      await writeFileAtomic(scrubFilePath(this.repo.gitDir), `${JSON.stringify({ at: this.clock.now(), packs, damaged: damage.length })}\n`);
    } catch (e) {
      if (signal.aborted) return;
      log.log('warn', 'scrub-failed', { error: (e as Error).message, ...(isGitfsError(e) ? { code: e.code } : {}) });
    }
  }
}
