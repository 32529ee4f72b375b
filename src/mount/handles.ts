/**
 * Open files. A written file's handle holds its data file's descriptor, so unlink and rename
 * never disturb it; a committed file's handle holds its content's id, which never changes.
 */
import type { GitContent } from '../work/merged-view.js';
import type { Attr } from './attrs.js';
import type { RangeReader } from './range-reader.js';

/** `path`: the mount path a handle was opened by (the file may have moved since). */
export type Handle =
  | { readonly kind: 'data'; readonly fd: number; readonly dataId: string; readonly writable: boolean; readonly path: string }
  | { readonly kind: 'git'; readonly content: GitContent; readonly path: string; blob?: Buffer; ranges?: RangeReader; readonly attr: Attr };

export class HandleTable {
  private readonly open = new Map<number, Handle>();
  private next = 1;

  add(handle: Handle): number {
    // 0 means "no handle" to the FUSE binding; numbers wrap long before 2^31 open files.
    while (this.open.has(this.next) || this.next === 0) this.next = (this.next + 1) % 0x7fffffff;
    const fh = this.next;
    this.open.set(fh, handle);
    this.next = (this.next + 1) % 0x7fffffff;
    return fh;
  }

  get(fh: number): Handle | undefined {
    return this.open.get(fh);
  }

  remove(fh: number): Handle | undefined {
    const h = this.open.get(fh);
    this.open.delete(fh);
    return h;
  }

  /** Whether some handle writes to this data file. */
  writing(dataId: string): boolean {
    for (const h of this.open.values()) if (h.kind === 'data' && h.writable && h.dataId === dataId) return true;
    return false;
  }

  /** The mount paths files are held open by. */
  paths(): Set<string> {
    return new Set([...this.open.values()].map((h) => h.path));
  }

  entries(): IterableIterator<[number, Handle]> {
    return this.open.entries();
  }
}
