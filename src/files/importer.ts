/**
 * Imports a directory tree from the local file system into objects: `gitfs commit --from`.
 *
 * Regular files become blobs (or chunked files above the repository's threshold), symlinks
 * become symlink blobs, directories become trees (an empty one keeps a marker entry, unless the
 * tree the snapshot replaces has a submodule there: see `gitlinkAt`). What git cannot hold is
 * never dropped silently: each such path is reported (docs/FORMAT.md, "What git
 * cannot store") and, with `strict`, refused. Hard links are stored as independent copies
 * (their content is deduplicated anyway) and reported.
 *
 * Metadata calls and small-file reads are synchronous on purpose: a tree of thousands of small
 * files costs more in per-call promise and thread-pool overhead than in I/O (as git's own add
 * does, one file at a time); hashing large files and compression still run off this thread.
 */
import { lstatSync, readlinkSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import { ErrorCodes, GitfsError, errnoCode, isGitfsError } from '../errors.js';
import { keepEntry, toTreeEntry, type DirEntry } from '../objects/entry-names.js';
import type { Oid } from '../objects/oid.js';
import { hashObject } from '../objects/oid.js';
import { unstorableName } from '../objects/storable-name.js';
import { encodeTree } from '../objects/tree.js';
import { FirstFailure } from '../util/first-failure.js';
import { Semaphore } from '../util/semaphore.js';
import { storeFile, type StoreComponents } from './store-file.js';

export type ImportComponents = StoreComponents;

/**
 * Entries of one directory under way at once (a subdirectory counts as one while it is stored).
 * A task per entry, all at once, ran a directory of 60 000 files out of a 96 MiB heap
 * (test/files/importer.test.ts). Memory is bounded per directory: each directory under way holds
 * its listing and results, and up to this many subdirectories of each may be under way.
 */
const ENTRY_WINDOW = 16;

export type SkipReason = 'device' | 'fifo' | 'socket' | 'unknown type' | 'name not storable' | 'refused by git fsck';

export interface ImportReport {
  files: number;
  chunkedFiles: number;
  symlinks: number;
  directories: number;
  emptyDirectories: number;
  /** Empty directories kept as the submodules the replaced tree has there. */
  submodules: number;
  bytes: number;
  /** Paths not stored, with why. */
  readonly skipped: Array<{ path: string; reason: SkipReason; detail?: string }>;
  /** Paths that were hard links to a file stored earlier under another path. */
  readonly hardLinks: Array<{ path: string; sameAs: string }>;
}

export interface ImportOptions {
  /** Refuse (GITFS_UNSUPPORTED_FILE_TYPE; GITFS_FSCK_REFUSED for a `.gitmodules` or `.gitattributes` git fsck refuses) instead of skipping what git cannot store. */
  readonly strict?: boolean;
  readonly signal?: AbortSignal;
  readonly concurrency?: number;
  /**
   * The submodule (gitlink) at `path` in the tree this snapshot replaces, if any. An empty
   * directory there (or one holding only what is not stored, as a submodule's `.git`) stays that
   * submodule: export and `git checkout` leave a submodule that was not initialised as an empty
   * directory, and `git add` keeps it. Removing the directory removes it.
   */
  readonly gitlinkAt?: (path: string) => Promise<Oid | undefined>;
}

export async function importDirectory(root: string, components: ImportComponents, options: ImportOptions = {}): Promise<{ oid: Oid; report: ImportReport }> {
  const job = new ImportJob(components, options);
  const rootStat = job.lstat(root, '.');
  if (!rootStat.isDirectory()) {
    throw new GitfsError(ErrorCodes.SOURCE_UNREADABLE, `${root} is not a directory`, { path: root });
  }
  const { oid } = await job.directory(root, '');
  return { oid, report: job.report };
}

class ImportJob {
  readonly report: ImportReport = { files: 0, chunkedFiles: 0, symlinks: 0, directories: 0, emptyDirectories: 0, submodules: 0, bytes: 0, skipped: [], hardLinks: [] };
  private readonly limit: Semaphore;
  /** Large files share one hash worker, so more than two at once only holds more blocks in memory. */
  private readonly largeLimit = new Semaphore(2);
  private readonly linked = new Map<string, string>();
  /** The first failure stops the siblings still running at their next step. */
  private readonly job = new FirstFailure();

  constructor(
    private readonly c: ImportComponents,
    private readonly options: ImportOptions,
  ) {
    this.limit = new Semaphore(options.concurrency ?? 8);
  }

  private unreadable(path: string, e: unknown): GitfsError {
    return new GitfsError(ErrorCodes.SOURCE_UNREADABLE, `cannot read ${path}: ${(e as Error).message}`, { path, errno: errnoCode(e) }, { cause: e });
  }

  lstat(abs: string, rel: string): Stats {
    try {
      return lstatSync(abs);
    } catch (e) {
      throw this.unreadable(rel === '' ? abs : rel, e);
    }
  }

  private skip(rel: string, reason: SkipReason, detail?: string): void {
    if (this.options.strict === true) {
      throw new GitfsError(ErrorCodes.UNSUPPORTED_FILE_TYPE, `${rel}: git cannot store this (${reason}${detail ? `: ${detail}` : ''})`, { path: rel, reason });
    }
    this.report.skipped.push(detail === undefined ? { path: rel, reason } : { path: rel, reason, detail });
  }

  private checkGoing(): void {
    this.options.signal?.throwIfAborted();
    this.job.signal.throwIfAborted();
  }

  /** Stores the directory at `abs`: its tree, or the submodule an empty one stays (`gitlinkAt`). */
  async directory(abs: string, rel: string): Promise<{ readonly kind: 'dir' | 'gitlink'; readonly oid: Oid }> {
    this.checkGoing();
    let names: Buffer[];
    try {
      // Listed asynchronously: each level goes on from a fresh stack (listed synchronously, a tree
      // 2 000 directories deep overflowed it, a RangeError with no code).
      names = await readdir(abs, { encoding: 'buffer' });
    } catch (e) {
      throw this.unreadable(rel || abs, e);
    }
    const results = await this.job.map(names, ENTRY_WINDOW, (raw) => this.entry(abs, rel, raw));
    const entries = results.filter((e): e is DirEntry => e !== undefined).map(toTreeEntry);
    if (entries.length === 0) {
      const gitlink = rel === '' ? undefined : await this.options.gitlinkAt?.(rel);
      if (gitlink !== undefined) {
        this.report.submodules++;
        return { kind: 'gitlink', oid: gitlink };
      }
      this.report.emptyDirectories++;
      entries.push(await keepEntry(this.c.sink));
    }
    this.report.directories++;
    const content = encodeTree(entries);
    return { kind: 'dir', oid: await this.c.sink.writeHashed(hashObject('tree', content), 'tree', content) };
  }

  private async entry(dirAbs: string, dirRel: string, raw: Buffer): Promise<DirEntry | undefined> {
    const name = raw.toString('utf8');
    const rel = dirRel === '' ? name : `${dirRel}/${name}`;
    if (!Buffer.from(name, 'utf8').equals(raw)) {
      this.skip(dirRel === '' ? raw.toString('latin1') : `${dirRel}/${raw.toString('latin1')}`, 'name not storable', 'not valid UTF-8');
      return undefined;
    }
    // The name first (a .git directory is skipped unread), then what only a directory or a symbolic link may not be called.
    const why = unstorableName(name);
    if (why !== undefined) {
      this.skip(rel, 'name not storable', why);
      return undefined;
    }
    const abs = join(dirAbs, name);
    const st = this.lstat(abs, rel);
    const kindWhy = unstorableName(name, st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file');
    if (kindWhy !== undefined) {
      this.skip(rel, 'name not storable', kindWhy);
      return undefined;
    }
    if (st.isDirectory()) {
      return { name, executable: false, ...(await this.directory(abs, rel)), chunked: false };
    }
    if (st.isSymbolicLink()) {
      return this.limit.run(async () => {
        let target: Buffer;
        try {
          target = readlinkSync(abs, { encoding: 'buffer' });
        } catch (e) {
          throw this.unreadable(rel, e);
        }
        this.report.symlinks++;
        return { name, kind: 'symlink', executable: false, oid: await this.c.sink.writeHashed(hashObject('blob', target), 'blob', target), chunked: false };
      });
    }
    if (st.isFile()) return (st.size > this.c.chunkThreshold ? this.largeLimit : this.limit).run(() => this.file(abs, rel, name, st));
    this.skip(rel, st.isBlockDevice() || st.isCharacterDevice() ? 'device' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : 'unknown type');
    return undefined;
  }

  private async file(abs: string, rel: string, name: string, st: Stats): Promise<DirEntry | undefined> {
    this.checkGoing();
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.linked.get(key);
      if (first === undefined) this.linked.set(key, rel);
      else this.report.hardLinks.push({ path: rel, sameAs: first });
    }
    try {
      const { entry, bytes } = await storeFile(abs, name, (st.mode & 0o111) !== 0, st.size, this.c, { signal: this.job.signal, path: rel });
      this.report.files++;
      if (entry.chunked) this.report.chunkedFiles++;
      this.report.bytes += bytes;
      return entry;
    } catch (e) {
      if (isGitfsError(e, ErrorCodes.FSCK_REFUSED)) {
        // Strict: refused with its own code (exit 8, as a commit from the mount), not as a file type.
        if (this.options.strict === true) throw e;
        this.skip(rel, 'refused by git fsck', String(e.data.problem));
        return undefined;
      }
      if (e instanceof GitfsError) throw e;
      throw this.unreadable(rel, e);
    }
  }
}
