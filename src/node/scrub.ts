/**
 * The daemon's scrub, as ZFS and Ceph scrub their disks: every `scrub.everyMs` (a week by
 * default), every pack is read through and checked (its checksum, each entry's CRC-32:
 * src/objects/pack-verify.ts), then every loose object and git's caches, and what a disk let rot
 * is mended from peers (src/repo/repair.ts), before the last other copy in the cluster rots too.
 *
 * A pass goes a step at a time: each step reads packs up to STEP_BYTES (at least one) and mends
 * what it found, so that pack merges, prunes and fetches go on between steps (the daemon runs one
 * at a time), however large the store. `gitfs/scrub.json` keeps when the last pass that left no
 * damage began (`{"at": <ms>, "packs": <n>, "damaged": <n>}`) and when one that failed or left
 * damage is to be tried again (`"retryAt"`), so that restarts neither put the scrub off for ever
 * nor run it at every start, and the pass under way (`"pass": {"started", "packs": [its pack
 * names], "done": [those read], "damaged", "left"}`), so that one cut short by a stop goes on
 * after the restart where it was.
 */
import { join } from 'node:path';
import { isGitfsError } from '../errors.js';
import type { ObjectSupplier } from '../objects/promisor.js';
import { checkGitCaches } from '../repo/git-caches.js';
import { withPruneLock } from '../repo/prune-lock.js';
import { repair } from '../repo/repair.js';
import { packsToScan, scanLoose, scanPack, type PackDamage, type StoreDamage } from '../repo/store-scan.js';
import type { Repository } from '../repo/repository.js';
import type { Clock } from '../util/clock.js';
import { writeFileAtomic } from '../util/durable.js';
import { textOf } from '../util/if-present.js';
import type { Logger } from '../util/log.js';

/** The first scrub after a start, at the soonest: a node just started fetches what it missed first. */
const SCRUB_WAIT_MS = 3_600_000;
/** When a scrub that failed, or left damage (no peer had a good copy), is tried again. */
const SCRUB_RETRY_MS = 6 * 3_600_000;
/** The packs one step reads, at most (at least one pack): about a second through the page cache, a few from a disk. */
export const STEP_BYTES = 512 << 20;

export function scrubFilePath(gitDir: string): string {
  return join(gitDir, 'gitfs', 'scrub.json');
}

/** The last pass that left no damage, as kept. */
interface Kept {
  readonly at: number;
  readonly packs: number;
  readonly damaged: number;
}

/** A pass under way: when it began, its packs (those there when its first step began), those read, the damage found and what of it is left. */
interface Pass {
  readonly started: number;
  packs?: readonly string[];
  readonly done: Set<string>;
  damaged: number;
  left: number;
}

export class Scrubber {
  private constructor(
    private readonly repo: Repository,
    private readonly everyMs: number,
    private readonly clock: Clock,
    private readonly stepBytes: number,
    private kept: Kept | undefined,
    private pass: Pass | undefined,
    private next: number,
    /** When a pass that failed or left damage is tried again: kept across restarts. */
    private retryAt: number | undefined,
  ) {}

  /**
   * `everyMs` 0: never. The next scrub is due `everyMs` after the start of the last one kept (a
   * retry, when one that failed or left damage is to be tried again; a pass under way goes on at
   * once), but not within SCRUB_WAIT_MS (or `everyMs`, if shorter) of now.
   */
  static async load(repo: Repository, everyMs: number, clock: Clock, stepBytes = STEP_BYTES): Promise<Scrubber> {
    const { kept, pass, retryAt } = parseScrubFile(await textOf(scrubFilePath(repo.gitDir)).catch(() => undefined), clock.now());
    const now = clock.now();
    const soonest = now + Math.min(everyMs, SCRUB_WAIT_MS);
    const due = retryAt ?? (pass !== undefined || kept === undefined ? soonest : kept.at + everyMs);
    return new Scrubber(repo, everyMs, clock, stepBytes, kept, pass, Math.max(due, soonest), retryAt);
  }

  due(now: number): boolean {
    return this.everyMs > 0 && now >= this.next;
  }

  /**
   * One step of the pass (a new one if none is under way): reads packs up to the step's bytes,
   * and, once no pack is left, the loose objects and git's caches; mends the damage found but in
   * packs `exclude` names (packs about to be removed: what they hold is elsewhere already), with
   * `supplier` (the swarm) for what no pack here holds good. The next step is due at once. A pass
   * that failed or left damage is tried again after SCRUB_RETRY_MS. Logged, never thrown;
   * `signal` (the daemon stopping) ends it between reads and objects.
   */
  async run(supplier: ObjectSupplier | undefined, exclude: ReadonlySet<string>, log: Logger, signal: AbortSignal): Promise<void> {
    const now = this.clock.now();
    this.next = now + Math.min(this.everyMs, SCRUB_RETRY_MS);
    this.retryAt = undefined;
    const pass = (this.pass ??= { started: now, done: new Set(), damaged: 0, left: 0 });
    // No step of the pass done yet (a first one that failed counts as none).
    const first = pass.done.size === 0;
    try {
      const present = await packsToScan(this.repo);
      // The pass reads the packs there when it began. One written since is not its own: what went
      // into it was checked on the way (a writer hashes what it writes, a merge or repair copies
      // entries whose CRC-32 matched), and the pass ends however fast fetches add packs.
      const packs = (pass.packs ??= present.map((p) => p.name));
      const mine = new Set(packs);
      const todo = present.filter((p) => mine.has(p.name) && !pass.done.has(p.name));
      const found: PackDamage[] = [];
      let bytes = 0;
      let read = 0;
      for (const p of todo) {
        if (read > 0 && bytes + p.size > this.stepBytes) break;
        // One pack that cannot be read through (no right to it, say) holds up no other: logged, and counted as left.
        const d = await scanPack(this.repo, p, signal).catch((e: unknown) => {
          if (signal.aborted) throw e;
          log.log('warn', 'scrub-pack-failed', { pack: p.name, error: (e as Error).message, ...(isGitfsError(e) ? { code: e.code } : {}) });
          pass.left++;
          return undefined;
        });
        if (d !== undefined) found.push(d);
        bytes += p.size;
        read++;
      }
      const last = read === todo.length;
      // git's caches first: a damaged multi-pack-index would keep every damaged pack in place.
      const damage: StoreDamage = { packs: found, loose: last ? await scanLoose(this.repo, signal) : [], caches: first ? await checkGitCaches(this.repo.gitDir, signal) : [] };
      const damaged = damage.packs.length + damage.loose.length + damage.caches.length;
      if (damaged > 0) pass.left += await this.mend(damage, supplier, exclude, log, signal);
      pass.damaged += damaged;
      for (const p of todo.slice(0, read)) pass.done.add(p.name);
      if (!last) {
        this.next = now;
        await this.save();
        return;
      }
      log.log('info', 'scrubbed', { packs: pass.done.size, damaged: pass.damaged, ms: this.clock.now() - pass.started });
      this.pass = undefined;
      // Kept only once nothing is left; else the retry is kept, so that a restart does not put it off a period.
      if (pass.left === 0) {
        this.kept = { at: pass.started, packs: pass.done.size, damaged: pass.damaged };
        this.next = pass.started + this.everyMs;
      } else {
        this.retryAt = this.next;
      }
      await this.save();
    } catch (e) {
      if (signal.aborted) return;
      log.log('warn', 'scrub-failed', { error: (e as Error).message, ...(isGitfsError(e) ? { code: e.code } : {}) });
      this.retryAt = this.next;
      await this.save().catch(() => undefined);
    }
  }

  /** Mends `damage` but in packs `exclude` names, logged; how many lines are left. */
  private async mend(damage: StoreDamage, supplier: ObjectSupplier | undefined, exclude: ReadonlySet<string>, log: Logger, signal: AbortSignal): Promise<number> {
    log.log('warn', 'damaged-packs', { packs: damage.packs.map((d) => d.name), entries: damage.packs.reduce((n, d) => n + d.damaged.length, 0), loose: damage.loose.length, caches: damage.caches.map((c) => c.path) });
    const mend = { ...damage, packs: damage.packs.filter((d) => !exclude.has(d.name)) };
    const r = await withPruneLock(this.repo.gitDir, () => repair(this.repo, [], mend, supplier, signal));
    log.log(r.left.length > 0 ? 'warn' : 'info', 'repaired', { cachesSetAside: r.cachesSetAside, reindexed: r.reindexed, healed: r.healed, supplied: r.supplied, rewritten: r.rewritten, setAside: r.setAside, looseSetAside: r.looseSetAside, left: r.left });
    return r.left.length;
  }

  private save(): Promise<void> {
    const pass = this.pass === undefined ? {} : { pass: { ...this.pass, done: [...this.pass.done] } };
    const retry = this.retryAt === undefined ? {} : { retryAt: this.retryAt };
    return writeFileAtomic(scrubFilePath(this.repo.gitDir), `${JSON.stringify({ ...this.kept, ...pass, ...retry })}\n`);
  }
}

/** scrub.json as read: what is unreadable, or from the future (a clock set back; a retry more than its delay ahead), counts as not there. */
function parseScrubFile(text: string | undefined, now: number): { kept?: Kept; pass?: Pass; retryAt?: number } {
  let parsed: unknown;
  try {
    parsed = text === undefined ? {} : JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  const json = parsed as Record<string, unknown>;
  const retry = json['retryAt'];
  const retryAt = typeof retry === 'number' && Number.isFinite(retry) && retry <= now + SCRUB_RETRY_MS ? retry : undefined;
  const time = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v <= now;
  const count = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0);
  const kept = time(json['at']) ? { at: json['at'], packs: count(json['packs']), damaged: count(json['damaged']) } : undefined;
  const p = json['pass'] as Record<string, unknown> | undefined;
  const names = (v: unknown): v is string[] => Array.isArray(v) && v.every((n) => typeof n === 'string');
  const pass = typeof p === 'object' && p !== null && time(p['started']) && names(p['packs']) && names(p['done'])
    ? { started: p['started'], packs: p['packs'], done: new Set(p['done']), damaged: count(p['damaged']), left: count(p['left']) }
    : undefined;
  return { ...(kept === undefined ? {} : { kept }), ...(pass === undefined ? {} : { pass }), ...(retryAt === undefined ? {} : { retryAt }) };
}
