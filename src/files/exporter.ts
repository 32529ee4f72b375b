/**
 * Writes a tree out to the local file system: `gitfs export`.
 * The target must be absent or an empty directory. Every path is created fresh with O_EXCL
 * (files) or mkdir (directories), so nothing is ever written through a symlink and no entry can
 * land outside the target: names were validated when their trees were decoded.
 */
import { chmod, mkdir, open, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import type { DirEntry } from '../objects/entry-names.js';
import type { ObjectReader } from '../objects/object-store.js';
import { readTyped } from '../objects/typed-read.js';
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
  const limit = new Semaphore(8);
  if (entry.kind === 'dir') {
    await prepareTarget(target);
    await exportDir(store, entry, target, report, limit);
  } else {
    await exportLeaf(store, entry, target, report);
  }
  return report;
}

async function prepareTarget(target: string): Promise<void> {
  try {
    const existing = await readdir(target);
    if (existing.length > 0) throw new GitfsError(ErrorCodes.EXPORT_TARGET, `${target} exists and is not empty`, { path: target });
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw wrap(target, e);
    await mkdir(target, { recursive: true }).catch((err: unknown) => {
      throw wrap(target, err);
    });
  }
}

function wrap(path: string, e: unknown): GitfsError {
  if (e instanceof GitfsError) return e;
  return new GitfsError(ErrorCodes.EXPORT_TARGET, `cannot write ${path}: ${(e as Error).message}`, { path, errno: errnoCode(e) }, { cause: e });
}

async function exportDir(store: ObjectReader, dir: DirEntry, path: string, report: ExportReport, limit: Semaphore): Promise<void> {
  report.directories++;
  const entries = await listDirectory(store, dir.oid);
  await Promise.all(
    entries.map(async (e) => {
      const child = join(path, e.name);
      if (e.kind === 'dir') {
        await mkdir(child).catch((err: unknown) => {
          throw wrap(child, err);
        });
        await exportDir(store, e, child, report, limit);
      } else {
        await limit.run(() => exportLeaf(store, e, child, report));
      }
    }),
  );
}

async function exportLeaf(store: ObjectReader, e: DirEntry, path: string, report: ExportReport): Promise<void> {
  if (e.kind === 'symlink') {
    const target = await readTyped(store, e.oid, 'blob');
    await symlink(target, path).catch((err: unknown) => {
      throw wrap(path, err);
    });
    report.symlinks++;
    return;
  }
  const mode = e.executable ? 0o755 : 0o644;
  const fh = await open(path, 'wx', mode).catch((err: unknown) => {
    throw wrap(path, err);
  });
  try {
    for await (const piece of coalesce(fileContent(store, e))) {
      for (let done = 0; done < piece.length; ) done += (await fh.write(piece, done, piece.length - done)).bytesWritten;
      report.bytes += piece.length;
    }
  } finally {
    await fh.close();
  }
  await chmod(path, mode);
  report.files++;
}
