/**
 * Descriptors of data files in use, so that one a handle let go of is closed as soon as nothing
 * uses it. A reader moved onto another copy of its file (readersToCopy) may still have a read
 * under way through its old descriptor: that one closes when the read ends, not with the handle
 * (a reader kept open across many commits held one descriptor, and a deleted copy, per commit).
 */
import { close } from 'node:fs';
import { promisify } from 'node:util';

const closeP = promisify(close);

export class Descriptors {
  /** Operations under way per descriptor. */
  private readonly busy = new Map<number, number>();
  /** Descriptors let go of while in use: closed once their last operation ends. */
  private readonly closing = new Set<number>();

  /** Runs `op` on `fd`; a descriptor let go of meanwhile closes after it. */
  async use<T>(fd: number, op: (fd: number) => Promise<T>): Promise<T> {
    this.busy.set(fd, (this.busy.get(fd) ?? 0) + 1);
    try {
      return await op(fd);
    } finally {
      const left = (this.busy.get(fd) ?? 1) - 1;
      if (left > 0) this.busy.set(fd, left);
      else {
        this.busy.delete(fd);
        if (this.closing.delete(fd)) await closeP(fd).catch(() => undefined);
      }
    }
  }

  /** Closes `fd` now, or once the operations under way on it end. */
  async letGo(fd: number): Promise<void> {
    if (this.busy.has(fd)) this.closing.add(fd);
    else await closeP(fd);
  }
}
