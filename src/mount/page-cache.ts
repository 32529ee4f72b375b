/**
 * When an open may let the kernel keep the pages it cached for a file (FOPEN_KEEP_CACHE), so that
 * reading committed content again costs no FUSE request at all. Without it the kernel drops a
 * file's pages at every open.
 *
 * libfuse gives each mount path one node, and the kernel caches pages per node; the pages of a
 * node are whatever its handles read. Committed content never changes under its id, so:
 *
 * Invariant: `holds.get(p) === x` only if every page the kernel may cache for the node at path p
 * is a page of content x. A record is made at an open that drops the pages (no keep), when every
 * handle open at p reads x; while it stands, every open of p either reads x and keeps, or drops
 * the pages and makes a new record or none. A rename moves nodes between paths, so it removes the
 * records of both sides (handles follow their node: `HandleTable.moved`). Forgetting a record is
 * always safe; the table is bounded.
 */
import type { Oid } from '../objects/oid.js';

/** Records kept: enough for the files read again and again; a rename scans them all. */
const MAX_RECORDS = 4096;

export class PageCachePolicy {
  private readonly holds = new Map<string, Oid>();

  /**
   * An open of `path`, reading committed content `oid` (undefined: a written file, or an open for
   * writing). `others`: the content every other handle open at `path` reads (undefined for a
   * written file). Returns whether the kernel may keep the pages it holds for the file.
   */
  opened(path: string, oid: Oid | undefined, others: Iterable<Oid | undefined>): boolean {
    if (oid !== undefined && this.holds.get(path) === oid) return true;
    // This open drops the node's pages: from here on they hold what its handles read.
    this.holds.delete(path);
    if (oid === undefined) return false;
    for (const other of others) if (other !== oid) return false;
    this.holds.set(path, oid);
    if (this.holds.size > MAX_RECORDS) this.holds.delete(this.holds.keys().next().value as string);
    return false;
  }

  /** A rename or an unlink: the nodes at `paths` and below them change. */
  moved(...paths: string[]): void {
    for (const p of paths) {
      this.holds.delete(p);
      const prefix = `${p}/`;
      for (const k of this.holds.keys()) if (k.startsWith(prefix)) this.holds.delete(k);
    }
  }
}
