/**
 * Notices branch changes made by any process (gitfs, git, a mount). The ref directories and
 * packed-refs are watched with inotify (`fs.watch`): an event there lists the refs again (a ref
 * update renames a file into its directory). In case an event was missed, it also stamps the
 * directories every 10 s (ref-stamp.ts), listing when the stamp changed, and lists every
 * watchedRelistMs anyway. Where a directory cannot be watched (no inotify, or the watches used
 * up), it stamps them every pollMs instead and lists when the stamp changed or relistMs passed.
 * A stamp taken racily (stamped-refs.ts) is never trusted. An idle repository so costs a few stat
 * calls between relists, however many branches it has (BENCHMARKS.md, "An idle daemon").
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../util/log.js';
import type { BranchRef, RefStore } from './ref-store.js';
import { StampedRefs } from './stamped-refs.js';

export interface RefWatcherOptions {
  /** Between stamps when the directories cannot be watched. */
  readonly pollMs: number;
  /** Between full listings when polling, whatever the stamps say. */
  readonly relistMs: number;
  /** Between full listings while watching, in case an event was missed (default 60 s). */
  readonly watchedRelistMs?: number;
}

const WATCHED_RELIST_MS = 60_000;
/** Between stamps while watching. */
const WATCHED_STAMP_MS = 10_000;

export class RefWatcher {
  private readonly refs: StampedRefs;
  private current = '';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** An event came while a look was running: list again after it. */
  private again = false;
  private stopped = false;
  /** Watches by directory; undefined while watching fails (then it polls). */
  private watches: Map<string, FSWatcher> | undefined = new Map();

  constructor(
    private readonly c: { readonly gitDir: string; readonly refs: RefStore; readonly log: Logger; readonly now: () => number },
    private readonly o: RefWatcherOptions,
    private readonly onChange: (refs: readonly BranchRef[]) => void,
  ) {
    this.refs = new StampedRefs(c, o.relistMs);
  }

  private get watchedRelistMs(): number {
    return this.o.watchedRelistMs ?? WATCHED_RELIST_MS;
  }

  /** Lists once (without calling onChange) and starts watching. */
  async start(): Promise<readonly BranchRef[]> {
    const refs = await this.list();
    this.schedule();
    return refs;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.watches?.values() ?? []) w.close();
    this.watches?.clear();
    await this.running;
  }

  /** The next look: at the next stamp. */
  private schedule(): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const ms = this.watches !== undefined ? Math.min(WATCHED_STAMP_MS, this.watchedRelistMs) : this.o.pollMs;
    this.timer = setTimeout(() => this.look(false), ms);
  }

  /** `changed`: an event says something changed (list at once); else list if the stamp or the time says so. */
  private look(changed: boolean): void {
    if (this.running !== undefined) {
      this.again ||= changed;
      return;
    }
    this.running = this.tick(changed)
      .catch((e: unknown) => this.c.log.log('warn', 'ref-watch-failed', { error: (e as Error).message }))
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.look(true);
        } else this.schedule();
      });
  }

  private async tick(changed: boolean): Promise<void> {
    if (!changed && !this.refs.stale(this.watches !== undefined ? this.watchedRelistMs : this.o.relistMs)) return;
    const before = this.current;
    const refs = await this.list();
    if (this.current !== before) this.onChange(refs);
  }

  private async list(): Promise<readonly BranchRef[]> {
    const refs = await this.refs.list(true);
    // A directory watched only now may have changed after its listing and before its watch (a ref
    // renamed into a namespace just made): it is listed once more (after start, at the first look).
    if (this.watchDirs([this.c.gitDir, ...this.refs.dirs])) this.again = true;
    this.current = refs.map((r) => `${r.name} ${r.oid}`).join('\n');
    return refs;
  }

  /** Watches exactly `dirs` (directories made or removed since the last listing come and go); whether it watches one it did not before. */
  private watchDirs(dirs: readonly string[]): boolean {
    const watches = this.watches;
    if (watches === undefined || this.stopped) return false;
    let added = false;
    const wanted = new Set(dirs);
    for (const [dir, w] of watches) {
      if (wanted.has(dir)) continue;
      w.close();
      watches.delete(dir);
    }
    for (const dir of wanted) {
      if (watches.has(dir)) continue;
      // In the repository's own directory only packed-refs matters (git pack-refs renames it in).
      const matters = dir === this.c.gitDir ? (name: string | null): boolean => name === 'packed-refs' : (): boolean => true;
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (matters(name)) this.look(true);
        });
        w.on('error', () => {
          // The directory went away (a branch namespace emptied): the parent's event lists again.
          w.close();
          if (watches.get(dir) === w) watches.delete(dir);
        });
        watches.set(dir, w);
        added = true;
      } catch (e) {
        // Vanished since it was found: the next listing sees that. Anything else: poll from now on.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        this.c.log.log('warn', 'ref-watch-polling', { dir, error: (e as Error).message });
        for (const w of watches.values()) w.close();
        this.watches = undefined;
        return false;
      }
    }
    return added;
  }
}
