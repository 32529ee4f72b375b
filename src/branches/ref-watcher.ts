/**
 * Notices branch changes made by any process (gitfs, git, a mount): a cheap stamp of the ref
 * directories every pollMs, a full listing when it changes, and a full listing every relistMs
 * anyway (two updates within one timestamp tick leave the stamp unchanged).
 */
import type { Logger } from '../util/log.js';
import { refStamp, restamp, type RefStamp } from './ref-stamp.js';
import type { BranchRef, RefStore } from './ref-store.js';

export interface RefWatcherOptions {
  readonly pollMs: number;
  readonly relistMs: number;
}

export class RefWatcher {
  private stamp: RefStamp | undefined;
  private current = '';
  private timer: NodeJS.Timeout | undefined;
  private lastList = 0;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly c: { readonly gitDir: string; readonly refs: RefStore; readonly log: Logger; readonly now: () => number },
    private readonly o: RefWatcherOptions,
    private readonly onChange: (refs: readonly BranchRef[]) => void,
  ) {}

  /** Lists once (without calling onChange) and starts watching. */
  async start(): Promise<readonly BranchRef[]> {
    const refs = await this.list();
    this.schedule();
    return refs;
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .catch((e: unknown) => this.c.log.log('warn', 'ref-watch-failed', { error: (e as Error).message }))
        .finally(() => {
          if (this.timer !== undefined) this.schedule();
        });
    }, this.o.pollMs);
  }

  private async tick(): Promise<void> {
    const due = this.c.now() - this.lastList >= this.o.relistMs;
    if (!due && this.stamp !== undefined && restamp(this.c.gitDir, this.stamp.dirs) === this.stamp.stamp) return;
    const before = this.current;
    const refs = await this.list();
    if (this.current !== before) this.onChange(refs);
  }

  private async list(): Promise<readonly BranchRef[]> {
    this.stamp = refStamp(this.c.gitDir);
    this.lastList = this.c.now();
    const refs = await this.c.refs.list();
    this.current = refs.map((r) => `${r.name} ${r.oid}`).join('\n');
    return refs;
  }
}
