/**
 * Files holding objects about to be named again are freshened, as git freshens an object it
 * finds instead of writing it (freshen_packed_object, freshen_loose_object): their mtime set to
 * now. `git gc` judges unreachable objects by the age of their file (a pack older than
 * gc.pruneExpire, 2 weeks, is dropped without unpacking them; older loose objects are pruned),
 * so an object a commit dedups against in an old pack (left by a deleted branch or an aborted
 * commit) would otherwise be removed by a gc that runs before the ref names it. A cruft pack's
 * objects carry their own times (its `.mtimes`), which no touch renews: they are written again
 * (ObjectDatabase.packHolding does not offer them). A file gone before it was touched (a gc's
 * repack moved its objects to a new pack) has its objects looked up again once, and their new
 * files freshened; an object found nowhere, or only in a cruft pack (where a gc with cruft packs
 * moves what was unreachable), fails the freshening, and the operation is to be run again.
 */
import { utimes } from 'node:fs/promises';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { Oid } from './oid.js';

/** Where objects are now: the lookup after the files that held them went. */
export interface ObjectFiles {
  /** Lists the repository's packs and loose objects again. */
  refresh(): Promise<void>;
  /** The file that holds `oid` (a pack, not a cruft one, or its loose file), or undefined. */
  fileOf(oid: Oid): string | undefined;
}

/** One file's freshening: settled with the error it met (if any), and the objects it was touched for while it runs. */
interface Touch {
  readonly done: Promise<GitfsError | undefined>;
  oids: Set<Oid> | undefined;
}

export class Freshener {
  /**
   * Per file, its freshening; the ids are kept only until it succeeds (a commit that dedups
   * millions of chunks against one pack holds none of them after that).
   */
  private readonly files = new Map<string, Touch>();

  constructor(
    private readonly clock: Clock,
    private readonly objects: ObjectFiles,
  ) {}

  /** Starts freshening `path`, which holds `oid`, once per path (callers check objects synchronously, one by one). */
  touch(path: string, oid: Oid): void {
    const known = this.files.get(path);
    if (known !== undefined) {
      known.oids?.add(oid);
      return;
    }
    const now = new Date(this.clock.now());
    const entry: Touch = {
      oids: new Set([oid]),
      done: utimes(path, now, now).then(
        () => void (entry.oids = undefined),
        (e: unknown) =>
          new GitfsError(ErrorCodes.IO, `${path}, which holds objects about to be named again, cannot be freshened (${errnoCode(e) ?? String(e)}): if git gc removed it, try again`, { path, errno: errnoCode(e) }, { cause: e }),
      ),
    };
    this.files.set(path, entry);
  }

  /** Resolves once every file touched is fresh; throws GITFS_IO if one could not be, nor its objects found again. */
  async settled(): Promise<void> {
    const gone: Array<{ failed: GitfsError; oids: ReadonlySet<Oid> }> = [];
    for (const [path, entry] of [...this.files]) {
      const failed = await entry.done;
      if (failed === undefined) continue;
      if (failed.data['errno'] !== 'ENOENT') throw failed;
      this.files.delete(path);
      gone.push({ failed, oids: entry.oids ?? new Set() });
    }
    if (gone.length === 0) return;
    await this.objects.refresh();
    const again = new Freshener(this.clock, this.objects);
    for (const { failed, oids } of gone) {
      for (const oid of oids) {
        const file = this.objects.fileOf(oid);
        if (file === undefined) throw failed;
        again.touch(file, oid);
      }
    }
    for (const { done } of again.files.values()) {
      const failed = await done;
      if (failed !== undefined) throw failed;
    }
  }
}
