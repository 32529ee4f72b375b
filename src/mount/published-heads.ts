/**
 * The branch heads a mount answers from. The kernel keeps the names and attributes the mount
 * gave it, so what the mount answers may change only together with those caches: for a change
 * made behind the kernel's back (a commit by another process, a fetch, git itself) the mount
 * makes the kernel forget the branch, publishes the new head, and then (`KernelSync.settle`)
 * waits for every request begun before the publish to be answered and makes the kernel forget
 * again, names and the files held open (whose names survive a forget). A change this process
 * made through the kernel (mkdir at the root, a commit over the control socket) is published
 * at once, and forgotten without waiting: it may come from a request handler, which must never
 * wait for the kernel (src/mount/kernel-cache.ts).
 *
 * Changes are found by watching the ref directories (inotify; polled every 100 ms where that
 * fails) and when a gitfs process that moved a ref asks (`refresh`, the control socket's `refs`
 * request).
 */
import type { BranchName } from '../branches/ref-name.js';
import type { BranchRef, RefStore } from '../branches/ref-store.js';
import { RefWatcher } from '../branches/ref-watcher.js';
import type { Oid } from '../objects/oid.js';
import type { Logger } from '../util/log.js';
import type { BranchHeads } from '../work/branch-heads.js';

const POLL_MS = 100;
const RELIST_MS = 2000;

/** The kernel side of publishing (src/mount/session.ts). */
export interface KernelSync {
  /** Makes the kernel forget the branches' names and attributes. */
  forget(branches: readonly BranchName[]): Promise<void>;
  /**
   * Called in the turn of a publish: waits out the requests begun before it, then forgets again,
   * the files held open too; opens in those branches wait for it meanwhile.
   */
  settle(branches: readonly BranchName[]): Promise<void>;
}

export class PublishedHeads implements BranchHeads {
  /** Replaced, never changed, by a publish. */
  private map = new Map<BranchName, Oid>();
  /** Per branch, the number of the listing it was last published from: an older listing never overrides a newer one. */
  private readonly from = new Map<BranchName, number>();
  private listings = 0;
  private refreshing: Promise<void> = Promise.resolve();
  private readonly watcher: RefWatcher;
  private readonly listeners: Array<(branches: readonly BranchName[]) => void> = [];

  constructor(
    private readonly c: { readonly gitDir: string; readonly refs: RefStore; readonly log: Logger; readonly now: () => number },
    private readonly kernel: KernelSync,
  ) {
    this.watcher = new RefWatcher(c, { pollMs: POLL_MS, relistMs: RELIST_MS }, () => void this.refresh());
  }

  /** Publishes the heads of now and starts watching. */
  async start(): Promise<void> {
    this.publish(await this.list(), true);
    await this.watcher.start();
  }

  stop(): Promise<void> {
    return this.watcher.stop();
  }

  current(): Promise<ReadonlyMap<BranchName, Oid>> {
    return Promise.resolve(this.map);
  }

  /** The heads published now; a publish later leaves this map as it is (a request keeps the heads it began with). */
  now(): ReadonlyMap<BranchName, Oid> {
    return this.map;
  }

  onChange(listener: (branches: readonly BranchName[]) => void): void {
    this.listeners.push(listener);
  }

  /** The branch's view goes over to the head: the kernel forgets what it was told of the old commit (at once: this comes from a request's handler). */
  unpinned(branch: BranchName): void {
    void this.kernel.forget([branch]);
  }

  async moved(branch: BranchName): Promise<void> {
    try {
      const seq = ++this.listings;
      const oid = await this.c.refs.resolve(branch);
      if (this.publish({ seq, refs: oid === undefined ? new Map() : new Map([[branch, oid]]) }, true, branch).length > 0) void this.kernel.forget([branch]);
    } catch (e) {
      this.c.log.log('warn', 'heads-reread-failed', { branch, error: (e as Error).message });
    }
  }

  /** Takes in changes made elsewhere; resolves once the kernel has forgotten what they change. */
  refresh(): Promise<void> {
    const run = this.refreshing.then(async () => {
      const listing = await this.list();
      const changed = this.publish(listing, false);
      if (changed.length === 0) return;
      await this.kernel.forget(changed);
      this.publish(listing, true);
      // Called in the same turn as the publish: no request is answered in between.
      await this.kernel.settle(changed);
    });
    this.refreshing = run.catch((e: unknown) => this.c.log.log('warn', 'heads-refresh-failed', { error: (e as Error).message }));
    return this.refreshing;
  }

  private async list(): Promise<{ seq: number; refs: ReadonlyMap<BranchName, Oid> }> {
    const seq = ++this.listings;
    const refs: readonly BranchRef[] = await this.c.refs.list();
    return { seq, refs: new Map(refs.map((r) => [r.name, r.oid])) };
  }

  /** The branches whose heads the listing (of every branch, or of `only`) changes; with `apply`, publishes them. */
  private publish(listing: { seq: number; refs: ReadonlyMap<BranchName, Oid> }, apply: boolean, only?: BranchName): BranchName[] {
    const changed: BranchName[] = [];
    for (const name of only === undefined ? new Set([...this.map.keys(), ...listing.refs.keys()]) : [only]) {
      const next = listing.refs.get(name);
      if (next === this.map.get(name) || (this.from.get(name) ?? 0) > listing.seq) continue;
      changed.push(name);
      if (!apply) continue;
      if (changed.length === 1) this.map = new Map(this.map);
      this.from.set(name, listing.seq);
      if (next === undefined) this.map.delete(name);
      else this.map.set(name, next);
    }
    if (apply && changed.length > 0) for (const listener of this.listeners) listener(changed);
    return changed;
  }
}
