/**
 * Whether a directory may have changed since it was last listed, for lookups that miss: a writer
 * asks for every object it stores, and a node fetching a closure for every object it lacks, so a
 * stat per miss was most of what a miss cost (with the exception thrown for each absent file).
 *
 * A directory's stamp (mtime and inode) changes when a name is added or removed. A stamp is
 * trusted only once it is old enough that a later change cannot carry the same time (100 ms, or
 * 2 s where the file system keeps whole seconds). Callers that ask in the same turn share one stat,
 * which starts after all of them have asked, so none is answered from a look taken before it asked.
 */
import { stat } from 'node:fs/promises';
import { ErrorCodes, errnoCode, GitfsError } from '../errors.js';

export interface DirStamp {
  readonly mtimeNs: bigint;
  readonly ino: bigint;
  readonly trusted: boolean;
}

/** The directory's stamp now (an absent directory has one too: it may appear). */
async function statStamp(dir: string): Promise<DirStamp> {
  try {
    const st = await stat(dir, { bigint: true });
    const wholeSeconds = st.mtimeNs % 1_000_000_000n === 0n;
    const ageMs = Date.now() - Number(st.mtimeNs / 1_000_000n);
    return { mtimeNs: st.mtimeNs, ino: st.ino, trusted: ageMs > (wholeSeconds ? 2000 : 100) };
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { mtimeNs: -1n, ino: -1n, trusted: true };
    throw new GitfsError(ErrorCodes.IO, `cannot stat ${dir}: ${(e as Error).message}`, { path: dir }, { cause: e });
  }
}

export class DirWatch {
  /** The stamp taken before the last listing. */
  private listedAt: DirStamp | undefined;
  private next: Promise<boolean> | undefined;

  constructor(readonly dir: string) {}

  /** A stamp to take before listing the directory, and to give to listed() after. */
  stamp(): Promise<DirStamp> {
    return statStamp(this.dir);
  }

  listed(stamp: DirStamp): void {
    this.listedAt = stamp;
  }

  /** Whether `stamp` (taken now) proves the directory unchanged since its last listing. */
  unchangedAt(stamp: DirStamp): boolean {
    const seen = this.listedAt;
    return seen?.trusted === true && stamp.mtimeNs === seen.mtimeNs && stamp.ino === seen.ino;
  }

  /** False only if the directory provably has not changed since its last listing. */
  mayHaveChanged(): Promise<boolean> {
    this.next ??= Promise.resolve().then(async () => {
      this.next = undefined;
      const seen = this.listedAt;
      if (seen?.trusted !== true) return true;
      const now = await statStamp(this.dir);
      return now.mtimeNs !== seen.mtimeNs || now.ino !== seen.ino;
    });
    return this.next;
  }
}
