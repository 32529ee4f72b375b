/**
 * Open files. A written file's handle holds its data file's descriptor, so unlink and rename
 * never disturb it; a committed file's handle holds its content's id. The kernel keeps one node
 * per path, so a committed file of a branch that git moves behind the mount's back changes for
 * its holders too, once, as a file rewritten in place would (`follows`; src/mount/session.ts).
 */
import type { GitContent } from '../work/merged-view.js';
import type { Attr } from './attrs.js';
import { KEEP_CACHE } from './fuse-binding.js';
import type { BlobStreamReader } from './blob-stream-reader.js';
import type { HeldBlob } from './held-blob.js';
import type { RangeReader } from './range-reader.js';

/**
 * `path`: the mount path of the file a handle reads, moved along by renames through the mount.
 * `follows`: a committed file of a branch, whose content and attributes change when the branch
 * moves (never those of `.history`, `.commits` or `.objects`).
 */
export type Handle =
  | {
      readonly kind: 'data';
      readonly fd: number;
      readonly dataId: string;
      readonly writable: boolean;
      path: string;
      /** A reset discarded its data file: writes through it fail (EIO), as they would land nowhere. */
      discarded?: true;
    }
  | { readonly kind: 'git'; readonly follows: boolean; content: GitContent; attr: Attr; path: string; blob?: Buffer; held?: HeldBlob; ranges?: RangeReader; stream?: BlobStreamReader };

const MAX_HANDLES = KEEP_CACHE;

/** Lets go of what a closed (or replaced) handle's readers keep. */
function closeReaders(h: Extract<Handle, { kind: 'git' }>): void {
  h.stream?.close();
  h.ranges?.close();
  h.held?.release();
}

export class HandleTable {
  private readonly open = new Map<number, Handle>();
  /** The handles open at each path. */
  private readonly byPath = new Map<string, Set<number>>();
  private next = 1;
  /** Checks run at every close (`letGo`). */
  private readonly waiting = new Set<() => void>();

  add(handle: Handle): number {
    // 0 means "no handle" to the FUSE binding, which also keeps bit 30 for itself (KEEP_CACHE).
    while (this.open.has(this.next) || this.next === 0) this.next = (this.next + 1) % MAX_HANDLES;
    const fh = this.next;
    this.open.set(fh, handle);
    this.index(fh, handle.path);
    this.next = (this.next + 1) % MAX_HANDLES;
    return fh;
  }

  /** The handles open at `path`. */
  *at(path: string): IterableIterator<[number, Handle]> {
    for (const fh of this.byPath.get(path) ?? []) yield [fh, this.open.get(fh) as Handle];
  }

  private index(fh: number, path: string): void {
    const set = this.byPath.get(path);
    if (set === undefined) this.byPath.set(path, new Set([fh]));
    else set.add(fh);
  }

  private unindex(fh: number, path: string): void {
    const set = this.byPath.get(path);
    set?.delete(fh);
    if (set?.size === 0) this.byPath.delete(path);
  }

  get(fh: number): Handle | undefined {
    return this.open.get(fh);
  }

  /** Puts `handle` in the place of handle `fh` (same number; it keeps the path). */
  replace(fh: number, handle: Handle): void {
    const old = this.open.get(fh);
    if (old === undefined) return;
    if (old.kind === 'git') closeReaders(old);
    this.unindex(fh, old.path);
    this.open.set(fh, handle);
    this.index(fh, handle.path);
  }

  remove(fh: number): Handle | undefined {
    const h = this.open.get(fh);
    if (h === undefined) return undefined;
    if (h.kind === 'git') closeReaders(h);
    this.open.delete(fh);
    this.unindex(fh, h.path);
    for (const w of this.waiting) w();
    return h;
  }

  /** Resolves once no handle is open at a path `holds` accepts, or after `ms`. */
  letGo(holds: (path: string) => boolean, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        for (const h of this.open.values()) if (holds(h.path)) return;
        done();
      };
      const timer = setTimeout(() => done(), ms);
      const done = (): void => {
        clearTimeout(timer);
        this.waiting.delete(check);
        resolve();
      };
      this.waiting.add(check);
      check();
    });
  }

  /** Whether some handle writes to this data file. */
  writing(dataId: string): boolean {
    for (const h of this.open.values()) if (h.kind === 'data' && h.writable && h.dataId === dataId) return true;
    return false;
  }

  /** A rename through the mount: handles of `from` and below it now read files under `to`. */
  moved(from: string, to: string): void {
    const prefix = `${from}/`;
    for (const [fh, h] of this.open) {
      if (h.path !== from && !h.path.startsWith(prefix)) continue;
      this.unindex(fh, h.path);
      h.path = to + h.path.slice(from.length);
      this.index(fh, h.path);
    }
  }

  entries(): IterableIterator<[number, Handle]> {
    return this.open.entries();
  }
}
