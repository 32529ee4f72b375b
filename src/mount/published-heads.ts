/**
 * The branch heads a mount answers from. The kernel keeps the names and attributes the mount
 * gave it, so what the mount answers may change only together with those caches: for a change
 * made behind the kernel's back (a commit by another process, a fetch, git itself) the mount
 * makes the kernel forget the branch, publishes the new head, and makes it forget again (a
 * lookup answered between the first forget and the publish is dropped by the second). A
 * change this process made through the kernel (mkdir at the root, a commit over the control
 * socket) is published at once, and forgotten without waiting: it may come from a request
 * handler, which must never wait for the kernel (src/mount/kernel-cache.ts).
 *
 * Changes are found by watching the ref files (every 100 ms, a full listing every 2 s) and when
 * a gitfs process that moved a ref asks (`refresh`, the control socket's `refs` request).
 */
import type { BranchName } from '../branches/ref-name.js';
import type { BranchRef, RefStore } from '../branches/ref-store.js';
import { RefWatcher } from '../branches/ref-watcher.js';
import type { Oid } from '../objects/oid.js';
import type { Logger } from '../util/log.js';
import type { BranchHeads } from '../work/branch-heads.js';

const POLL_MS = 100;
const RELIST_MS = 2000;

export type Forget = (branches: readonly BranchName[]) => Promise<void>;

export class PublishedHeads implements BranchHeads {
  private readonly map = new Map<BranchName, Oid>();
  /** Per branch, the number of the listing it was last published from: an older listing never overrides a newer one. */
  private readonly from = new Map<BranchName, number>();
  private listings = 0;
  private refreshing: Promise<void> = Promise.resolve();
  private readonly watcher: RefWatcher;

  constructor(
    private readonly c: { readonly gitDir: string; readonly refs: RefStore; readonly log: Logger; readonly now: () => number },
    private readonly forget: Forget,
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

  async moved(): Promise<void> {
    const changed = this.publish(await this.list(), true);
    if (changed.length > 0) void this.forget(changed);
  }

  /** Takes in changes made elsewhere; resolves once the kernel has forgotten what they change. */
  refresh(): Promise<void> {
    const run = this.refreshing.then(async () => {
      const listing = await this.list();
      const changed = this.publish(listing, false);
      if (changed.length === 0) return;
      await this.forget(changed);
      this.publish(listing, true);
      await this.forget(changed);
    });
    this.refreshing = run.catch((e: unknown) => this.c.log.log('warn', 'heads-refresh-failed', { error: (e as Error).message }));
    return this.refreshing;
  }

  private async list(): Promise<{ seq: number; refs: ReadonlyMap<BranchName, Oid> }> {
    const seq = ++this.listings;
    const refs: readonly BranchRef[] = await this.c.refs.list();
    return { seq, refs: new Map(refs.map((r) => [r.name, r.oid])) };
  }

  /** The branches whose heads the listing changes; with `apply`, publishes them. */
  private publish(listing: { seq: number; refs: ReadonlyMap<BranchName, Oid> }, apply: boolean): BranchName[] {
    const changed: BranchName[] = [];
    for (const name of new Set([...this.map.keys(), ...listing.refs.keys()])) {
      const next = listing.refs.get(name);
      if (next === this.map.get(name) || (this.from.get(name) ?? 0) > listing.seq) continue;
      changed.push(name);
      if (!apply) continue;
      this.from.set(name, listing.seq);
      if (next === undefined) this.map.delete(name);
      else this.map.set(name, next);
    }
    return changed;
  }
}
