/**
 * Where a partial repository gets the objects it lacks (git calls such a source a promisor
 * remote). A node that keeps a branch `fetch: on-demand` holds its commits and trees but not
 * its blobs; the object database asks the promisor for a blob it does not have, and the
 * promisor asks its supplier (the node daemon's swarm) for it.
 *
 * Misses that arrive within one turn of the event loop go out as one request (a range read
 * misses many chunks at once, and its read-ahead more), several requests may be in flight, and
 * what arrives is hash-checked here, whoever supplied it, and kept in a small cache until the
 * supplier has made it durable in a pack the database reads.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import type { GitObject } from './object-store.js';
import { hashObject, type Oid } from './oid.js';

export interface ObjectSupplier {
  /** Those of `oids` it could get (absent ones are left out); throws only when it cannot be asked. */
  supply(oids: readonly Oid[]): Promise<ReadonlyMap<Oid, GitObject>>;
  /** Names the supplier in errors. */
  readonly name: string;
}

/** Ids per request to the supplier. */
const BATCH = 256;
/** Bytes of supplied objects kept in memory (oldest dropped first). */
const CACHE_BYTES = 64 << 20;

interface Waiter {
  resolve(o: GitObject): void;
  reject(e: unknown): void;
}

export class Promisor {
  private readonly waiting = new Map<Oid, Waiter[]>();
  private queued: Oid[] = [];
  private scheduled = false;
  private readonly cache = new Map<Oid, GitObject>();
  private cacheBytes = 0;
  readonly stats = { requests: 0, objects: 0, bytes: 0 };

  constructor(private readonly supplier: ObjectSupplier) {}

  /** `oid` from the supplier: hash-checked; OBJECT_NOT_FOUND when the supplier has no copy. */
  read(oid: Oid): Promise<GitObject> {
    const cached = this.cache.get(oid);
    if (cached !== undefined) return Promise.resolve(cached);
    return new Promise((resolve, reject) => {
      const waiters = this.waiting.get(oid);
      if (waiters !== undefined) return void waiters.push({ resolve, reject });
      this.waiting.set(oid, [{ resolve, reject }]);
      this.queued.push(oid);
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.send());
    });
  }

  private send(): void {
    this.scheduled = false;
    const all = this.queued;
    this.queued = [];
    for (let i = 0; i < all.length; i += BATCH) void this.request(all.slice(i, i + BATCH));
  }

  private async request(oids: readonly Oid[]): Promise<void> {
    this.stats.requests++;
    let got: ReadonlyMap<Oid, GitObject>;
    try {
      got = await this.supplier.supply(oids);
    } catch (e) {
      for (const oid of oids) this.settle(oid, (w) => w.reject(e));
      return;
    }
    for (const oid of oids) {
      const o = got.get(oid);
      if (o === undefined) {
        const e = new GitfsError(ErrorCodes.OBJECT_NOT_FOUND, `object ${oid} is not here and ${this.supplier.name} found no copy`, { oid });
        this.settle(oid, (w) => w.reject(e));
      } else if (hashObject(o.type, o.content) !== oid) {
        const e = new GitfsError(ErrorCodes.CORRUPT_OBJECT, `${this.supplier.name} supplied a wrong object for ${oid}`, { oid });
        this.settle(oid, (w) => w.reject(e));
      } else {
        this.remember(oid, o);
        this.stats.objects++;
        this.stats.bytes += o.content.length;
        this.settle(oid, (w) => w.resolve(o));
      }
    }
  }

  private settle(oid: Oid, how: (w: Waiter) => void): void {
    const waiters = this.waiting.get(oid) ?? [];
    this.waiting.delete(oid);
    for (const w of waiters) how(w);
  }

  private remember(oid: Oid, o: GitObject): void {
    if (this.cache.has(oid)) return;
    this.cache.set(oid, o);
    this.cacheBytes += o.content.length;
    while (this.cacheBytes > CACHE_BYTES) {
      const [old, obj] = this.cache.entries().next().value as [Oid, GitObject];
      this.cache.delete(old);
      this.cacheBytes -= obj.content.length;
    }
  }
}
