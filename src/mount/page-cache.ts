/**
 * When an open may let the kernel keep the pages it cached for a file (FOPEN_KEEP_CACHE), so that
 * reading committed content again costs no FUSE request at all. Without it the kernel drops a
 * file's pages at every open.
 *
 * libfuse gives each mount path one node, and the kernel caches pages per node; the pages of a
 * node are whatever its handles read. Committed content never changes under its id, so:
 *
 * Invariant: a confirmed record of content x at path p means every page the kernel may cache for
 * the node at p is a page of content x. A record is made at an open that drops the pages (no
 * keep), when every handle open at p reads x, and confirmed by that handle's first read (the
 * drop is done by then); while it stands, every open of p either reads x and keeps, or drops the
 * pages and makes a new record or none. A rename moves nodes between paths, so it removes the
 * records of both sides (handles follow their node: `HandleTable.moved`). Forgetting a record is
 * always safe; the table is bounded.
 */
import type { Oid } from '../objects/oid.js';
import { remember } from '../util/bounded-map.js';

/** Records kept: enough for the files read again and again; a rename scans them all. */
const MAX_RECORDS = 4096;

/** Content whose pages the kernel may hold for a path; `until`: the handle whose first read confirms the drop. */
interface Held {
  readonly oid: Oid;
  until: number | undefined;
}

export class PageCachePolicy {
  private readonly holds = new Map<string, Held>();

  /**
   * An open of `path` by handle `fh`, reading committed content `oid` (undefined: a written
   * file, or an open for writing). `others`: the content every other handle open at `path` reads
   * (undefined for a written file). Returns whether the kernel may keep the pages it holds.
   *
   * The kernel drops the pages only after this open's answer reaches the opening process, so a
   * record counts from the first read through the handle that dropped them (`read`), which
   * proves that open finished; an open whose answer the kernel discarded never reads.
   */
  opened(path: string, fh: number, oid: Oid | undefined, others: Iterable<Oid | undefined>): boolean {
    const held = this.holds.get(path);
    if (oid !== undefined && held?.oid === oid && held.until === undefined) return true;
    // This open drops the node's pages: from here on they hold what its handles read.
    this.holds.delete(path);
    if (oid === undefined) return false;
    for (const other of others) if (other !== oid) return false;
    remember(this.holds, path, { oid, until: fh }, MAX_RECORDS);
    return false;
  }

  /** A read through handle `fh` of the file at `path`. */
  read(path: string, fh: number): void {
    const held = this.holds.get(path);
    if (held?.until === fh) held.until = undefined;
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
