/**
 * Files holding objects about to be named again are freshened, as git freshens an object it
 * finds instead of writing it (freshen_packed_object, freshen_loose_object): their mtime set to
 * now. `git gc` judges unreachable objects by the age of their file (a pack older than
 * gc.pruneExpire, 2 weeks, is dropped without unpacking them; older loose objects are pruned),
 * so an object a commit dedups against in an old pack (left by a deleted branch or an aborted
 * commit) would otherwise be removed by a gc that runs before the ref names it. A cruft pack's
 * objects carry their own times (its `.mtimes`), which no touch renews: they are written again
 * (ObjectDatabase.packHolding does not offer them).
 */
import { utimes } from 'node:fs/promises';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import type { Clock } from '../util/clock.js';

export class Freshener {
  /** Per file: its freshening, settled with the error it met (if any). */
  private readonly files = new Map<string, Promise<GitfsError | undefined>>();

  constructor(private readonly clock: Clock) {}

  /** Starts freshening `path`, once per path (callers check objects synchronously, one by one). */
  touch(path: string): void {
    if (this.files.has(path)) return;
    const now = new Date(this.clock.now());
    this.files.set(
      path,
      utimes(path, now, now).then(
        () => undefined,
        (e: unknown) =>
          new GitfsError(ErrorCodes.IO, `${path}, which holds objects about to be named again, cannot be freshened (${errnoCode(e) ?? String(e)}): if git gc removed it, try again`, { path, errno: errnoCode(e) }, { cause: e }),
      ),
    );
  }

  /** Resolves once every file touched is fresh; throws GITFS_IO if one could not be (gone: a gc ran). */
  async settled(): Promise<void> {
    for (const failed of await Promise.all(this.files.values())) if (failed !== undefined) throw failed;
  }
}
