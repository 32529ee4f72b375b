/**
 * Open files. A written file's handle holds its data file's descriptor, so unlink and rename
 * never disturb it; a committed file's handle holds its content's id, which never changes.
 */
import type { GitContent } from '../work/merged-view.js';
import type { Attr } from './attrs.js';
import { KEEP_CACHE } from './fuse-binding.js';
import type { RangeReader } from './range-reader.js';

/** `path`: the mount path of the file a handle reads, moved along by renames through the mount. */
export type Handle =
  | { readonly kind: 'data'; readonly fd: number; readonly dataId: string; readonly writable: boolean; path: string }
  | { readonly kind: 'git'; readonly content: GitContent; path: string; blob?: Buffer; ranges?: RangeReader; readonly attr: Attr };

const MAX_HANDLES = KEEP_CACHE;

export class HandleTable {
  private readonly open = new Map<number, Handle>();
  private next = 1;
  /** Checks run at every close (`letGo`). */
  private readonly waiting = new Set<() => void>();

  add(handle: Handle): number {
    // 0 means "no handle" to the FUSE binding, which also keeps bit 30 for itself (KEEP_CACHE).
    while (this.open.has(this.next) || this.next === 0) this.next = (this.next + 1) % MAX_HANDLES;
    const fh = this.next;
    this.open.set(fh, handle);
    this.next = (this.next + 1) % MAX_HANDLES;
    return fh;
  }

  get(fh: number): Handle | undefined {
    return this.open.get(fh);
  }

  remove(fh: number): Handle | undefined {
    const h = this.open.get(fh);
    this.open.delete(fh);
    if (h !== undefined) for (const w of this.waiting) w();
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
    for (const h of this.open.values()) {
      if (h.path === from) h.path = to;
      else if (h.path.startsWith(prefix)) h.path = to + h.path.slice(from.length);
    }
  }

  entries(): IterableIterator<[number, Handle]> {
    return this.open.entries();
  }
}
