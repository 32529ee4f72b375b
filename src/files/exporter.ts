/**
 * Writes a tree out to the local file system: `gitfs export`.
 * The target must be absent or an empty directory. Every path is created fresh with O_EXCL
 * (files) or mkdir (directories), so nothing is ever written through a symlink and no entry can
 * land outside the target: names were validated when their trees were decoded. A submodule
 * (gitlink) becomes an empty directory, as git checkout leaves one not initialised.
 */
import { chmod, mkdir, open, readdir, rm, symlink } from 'node:fs/promises';
import { makeDirs, removeMadeDirs } from '../util/make-dirs.js';
import { basename, dirname, join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { isDirectoryKind, type DirEntry } from '../objects/entry-names.js';
import type { ObjectReader } from '../objects/object-store.js';
import { readTyped } from '../objects/typed-read.js';
import { FirstFailure } from '../util/first-failure.js';
import { Semaphore } from '../util/semaphore.js';
import { coalesce, fileContent } from './file-content.js';
import { listDirectory } from './tree-reader.js';

export interface ExportReport {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
}

export async function exportEntry(store: ObjectReader, entry: DirEntry, target: string): Promise<ExportReport> {
  const report: ExportReport = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const job: ExportJob = { store, report, limit: new Semaphore(8), large: new Semaphore(1), tasks: new FirstFailure(), target: dirname(join(target, '.entry')), madeInTarget: [] };
  if (isDirectoryKind(entry.kind)) {
    const made = await prepareTarget(target);
    try {
      await exportDir(job, entry, target);
    } catch (e) {
      // The target was empty or absent: what a failed export made goes, so that it can be run again
      // as it was. Only that: a name another process wrote into the target meanwhile is theirs.
      await Promise.all(job.madeInTarget.map((name) => rm(join(target, name), { recursive: true, force: true }).catch(() => undefined)));
      await removeMadeDirs(made);
      throw e;
    }
  } else {
    await exportLeaf(job, entry, target);
  }
  return report;
}

/** Makes the target directory, or checks that it is empty; the directories it made (makeDirs). */
async function prepareTarget(target: string): Promise<string[]> {
  try {
    const existing = await readdir(target);
    if (existing.length > 0) throw new GitfsError(ErrorCodes.EXPORT_TARGET, `${target} exists and is not empty`, { path: target });
    return [];
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw wrap(target, e);
    return makeDirs(target).catch((err: unknown) => {
      throw wrap(target, err);
    });
  }
}

function wrap(path: string, e: unknown): GitfsError {
  if (e instanceof GitfsError) return e;
  return new GitfsError(ErrorCodes.EXPORT_TARGET, `cannot write ${path}: ${(e as Error).message}`, { path, errno: errnoCode(e) }, { cause: e });
}

/**
 * Plain blobs larger than this are written one at a time: each is read whole (up to the read
 * limit, 256 MiB; git writes such blobs, gitfs cuts large files into chunks), and eight of them
 * were held at once.
 */
const LARGE_BLOB_BYTES = 16 << 20;

/**
 * One export: its store and report, at most 8 reads at once (directories listed under the same
 * limit) and one large plain blob (LARGE_BLOB_BYTES), its tasks, which stop at the first failure
 * (the writes under way end at their next piece, before the command reports it), and the names
 * it made in its target directory.
 */
interface ExportJob {
  readonly store: ObjectReader;
  readonly report: ExportReport;
  readonly limit: Semaphore;
  readonly large: Semaphore;
  readonly tasks: FirstFailure;
  /** The target as the paths of its entries name it (join normalises: `out/` is `out`). */
  readonly target: string;
  readonly madeInTarget: string[];
}

/** Notes `path`, just made by this export, if it lies directly in the target (what a failure takes away). */
function made(job: ExportJob, path: string): void {
  if (dirname(path) === job.target) job.madeInTarget.push(basename(path));
}

/** Entries of one directory under way at once (a subdirectory counts as one while it is written). */
const ENTRY_WINDOW = 16;

async function exportDir(job: ExportJob, dir: DirEntry, path: string): Promise<void> {
  job.tasks.signal.throwIfAborted();
  job.report.directories++;
  if (dir.kind === 'gitlink') return; // a submodule: its commit is another repository's
  const entries = await job.limit.run(() => listDirectory(job.store, dir.oid));
  await job.tasks.map(entries, ENTRY_WINDOW, async (e) => {
    const child = join(path, e.name);
    if (isDirectoryKind(e.kind)) {
      await mkdir(child).catch((err: unknown) => {
        throw wrap(child, err);
      });
      made(job, child);
      await exportDir(job, e, child);
    } else {
      await job.limit.run(async () => ((await isLargeBlob(job.store, e)) ? job.large.run(() => exportLeaf(job, e, child)) : exportLeaf(job, e, child)));
    }
  });
}

/** Whether `e` is a plain blob above LARGE_BLOB_BYTES, by its header (a chunked file is read in runs of ~1 MiB). */
async function isLargeBlob(store: ObjectReader, e: DirEntry): Promise<boolean> {
  if (e.kind !== 'file' || e.chunked || store.sizeOf === undefined) return false;
  // One whose header does not read is left to the read, which says why.
  return (await store.sizeOf(e.oid).catch(() => 0)) > LARGE_BLOB_BYTES;
}

async function exportLeaf(job: ExportJob, e: DirEntry, path: string): Promise<void> {
  const { store, report } = job;
  job.tasks.signal.throwIfAborted();
  if (e.kind === 'symlink') {
    const target = await readTyped(store, e.oid, 'blob');
    await symlink(target, path).catch((err: unknown) => {
      throw wrap(path, err);
    });
    made(job, path);
    report.symlinks++;
    return;
  }
  const mode = e.executable ? 0o755 : 0o644;
  const fh = await open(path, 'wx', mode).catch((err: unknown) => {
    throw wrap(path, err);
  });
  made(job, path);
  try {
    try {
      for await (const piece of coalesce(fileContent(store, e))) {
        job.tasks.signal.throwIfAborted();
        for (let done = 0; done < piece.length; ) done += (await fh.write(piece, done, piece.length - done)).bytesWritten;
        report.bytes += piece.length;
      }
    } finally {
      await fh.close();
    }
  } catch (err) {
    // Made here (O_EXCL), and cut short by a read that failed (a streamed blob found corrupt at its
    // end) or a stop: not left looking like the file.
    await rm(path, { force: true });
    throw err;
  }
  await chmod(path, mode);
  report.files++;
}
