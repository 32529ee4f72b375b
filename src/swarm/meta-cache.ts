/**
 * Commits and trees this node read from its repository, kept in memory (up to a byte budget,
 * oldest out first) together with the reads in flight. A node that walks a closure and then
 * serves its commits and trees to every fetcher reads each once: an image's chunk tree is some
 * 3 500 nodes, each a random read in a 512 MiB pack, asked by every node of the cluster at once.
 * Blobs are not kept (the bulk of the bytes, each asked by one peer); their reads in flight are
 * shared all the same, among reads by the same loader (one that reads up to another limit may
 * answer otherwise).
 */
import type { GitObject } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';

/** Bytes an object holds in memory: its content, and the zlib stream it keeps to serve deflated (served-entry.ts). */
const heldBytes = (o: GitObject & { readonly zlib?: Buffer }): number => o.content.length + (o.zlib?.length ?? 0);

export class MetaCache {
  private readonly kept = new Map<Oid, GitObject>();
  private readonly reading = new Map<(oid: Oid) => Promise<GitObject>, Map<Oid, Promise<GitObject>>>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** `oid` from the cache, from a read in flight, or from `load` (which must check what it reads). */
  read(oid: Oid, load: (oid: Oid) => Promise<GitObject>): Promise<GitObject> {
    const hit = this.kept.get(oid);
    if (hit !== undefined) return Promise.resolve(hit);
    let reading = this.reading.get(load);
    if (reading === undefined) this.reading.set(load, (reading = new Map()));
    const running = reading.get(oid);
    if (running !== undefined) return running;
    const inFlight = reading;
    const read = load(oid).then(
      (obj) => {
        inFlight.delete(oid);
        if (obj.type === 'tree' || obj.type === 'commit') this.keep(oid, obj);
        return obj;
      },
      (e: unknown) => {
        inFlight.delete(oid);
        throw e;
      },
    );
    inFlight.set(oid, read);
    return read;
  }

  private keep(oid: Oid, obj: GitObject): void {
    if (heldBytes(obj) > this.maxBytes || this.kept.has(oid)) return;
    this.kept.set(oid, obj);
    this.bytes += heldBytes(obj);
    for (const [old, o] of this.kept) {
      if (this.bytes <= this.maxBytes) break;
      this.kept.delete(old);
      this.bytes -= heldBytes(o);
    }
  }
}
