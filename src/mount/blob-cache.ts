/**
 * Whole blobs that open handles read from (a blob is one zlib stream: a range of it costs the
 * whole inflate), so that handles opening a blob read already share its copy: each read its own
 * before (ten readers of a 200 MiB blob that git wrote held 2 GiB). A handle keeps the copy it
 * got; the cache lets blobs go, least recently asked for first, once they hold more than the
 * budget (the last one asked for stays, whatever its size).
 */
import type { Oid } from '../objects/oid.js';

export class BlobCache {
  private readonly blobs = new Map<Oid, Promise<Buffer>>();
  private readonly sizes = new Map<Oid, number>();
  private bytes = 0;

  constructor(private readonly budget: number) {}

  /** The blob `oid`, read with `load` unless kept (or being read) already. */
  get(oid: Oid, load: () => Promise<Buffer>): Promise<Buffer> {
    let blob = this.blobs.get(oid);
    if (blob !== undefined) {
      this.blobs.delete(oid);
      this.blobs.set(oid, blob);
      return blob;
    }
    blob = load();
    this.blobs.set(oid, blob);
    blob.then(
      (b) => this.loaded(oid, blob as Promise<Buffer>, b.length),
      () => this.forget(oid, blob as Promise<Buffer>),
    );
    return blob;
  }

  private loaded(oid: Oid, blob: Promise<Buffer>, size: number): void {
    if (this.blobs.get(oid) !== blob) return;
    this.sizes.set(oid, size);
    this.bytes += size;
    for (const old of this.blobs.keys()) {
      if (this.bytes <= this.budget || old === oid) break;
      this.forget(old, this.blobs.get(old) as Promise<Buffer>);
    }
  }

  private forget(oid: Oid, blob: Promise<Buffer>): void {
    if (this.blobs.get(oid) !== blob) return;
    this.blobs.delete(oid);
    this.bytes -= this.sizes.get(oid) ?? 0;
    this.sizes.delete(oid);
  }
}
