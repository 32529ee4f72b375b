/** Durable file-system steps: fsync of directories, atomic replace of small files. */
import { link, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { errnoCode } from '../errors.js';
import { namesIn } from './if-present.js';

/** Makes a directory's entries (creations, renames) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes a file's content durable (opened and synced as a directory is). */
export function fsyncFile(path: string): Promise<void> {
  return fsyncDir(path);
}

/** Makes every file and directory below `dir` (and `dir` itself) durable; symlinks are left as they are. */
export async function fsyncTree(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) await fsyncTree(path);
    else if (e.isFile()) await fsyncFile(path);
  }
  await fsyncDir(dir);
}

/** What follows `<name>.tmp-` in a temporary file's name. */
const TEMPORARY_TAG_RE = /^[0-9a-f]{12}$/;

/** Writes `data` to a new temporary file beside `path` and fsyncs it; returns its path (removed again if that fails). */
async function writeTemporary(path: string, data: string | Uint8Array, mode: number): Promise<string> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  return tmp;
}

/** Writes `data` to a temporary file beside `path`, fsyncs it, renames it over `path`, fsyncs the directory. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await rename(await writeTemporary(path, data, mode), path);
  await fsyncDir(dirname(path));
}

/**
 * Creates `path` with `data`, whole or not at all, never over an existing file (EEXIST): written
 * to a temporary file beside it, fsynced, linked to `path` (link does not replace), the temporary
 * removed, the directory fsynced. A crash leaves at most the temporary, never a partial `path`.
 * Where the file system has no hard links (vfat, exFAT: a USB stick), `path` is claimed empty
 * first and the temporary renamed over it: a crash there leaves it empty, never partial.
 */
export async function createFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = await writeTemporary(path, data, mode);
  try {
    await link(tmp, path).catch(async (e: unknown) => {
      if (!NO_LINKS.has(errnoCode(e) ?? '')) throw e;
      await (await open(path, 'wx', mode)).close();
      await rename(tmp, path);
    });
  } finally {
    await rm(tmp, { force: true });
  }
  await fsyncDir(dirname(path));
}

/**
 * Removes the temporaries of `path` that a killed writer left beside it (`writeFileAtomic`'s and
 * `createFileAtomic`'s), for callers that are the only writer of `path` at the time; returns how
 * many. A missing directory has none.
 */
export async function removeLeftTemporaries(path: string): Promise<number> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp-`;
  const names = await namesIn(dir);
  const left = names.filter((n) => n.startsWith(prefix) && TEMPORARY_TAG_RE.test(n.slice(prefix.length)));
  for (const n of left) await rm(join(dir, n), { force: true });
  if (left.length > 0) await fsyncDir(dir);
  return left.length;
}

/** What link(2) answers where the file system has no hard links. */
const NO_LINKS: ReadonlySet<string> = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);
