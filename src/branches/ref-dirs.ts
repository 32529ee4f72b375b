/**
 * The directories refs leave: a ref `a/b` lives in a directory `a`, which stays when the ref goes
 * and is then in the way of a ref `a` (git removes such directories as it removes refs, and
 * removes an empty one in the way of a new ref).
 */
import { readdir, rmdir } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { errnoCode, ioError } from '../errors.js';

/**
 * If `path` is a directory holding only (nested) empty directories, removes it. Returns false if
 * something else is in the way (a file below it), true otherwise (including when nothing is there).
 */
export async function removeEmptyDirTree(path: string): Promise<boolean> {
  let entries;
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return true;
    throw ioError(`cannot list ${path}`, path, e);
  }
  for (const entry of entries) {
    if (!entry.isDirectory() || !(await removeEmptyDirTree(join(path, entry.name)))) return false;
  }
  try {
    await rmdir(path);
    return true;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT') return true;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw ioError(`cannot remove ${path}`, path, e);
  }
}

/** Removes `dir` and its ancestors while they are empty, stopping at (not removing) `stop`. Never throws. */
export async function removeEmptyParents(dir: string, stop: string): Promise<void> {
  let d = dir;
  while (d !== stop && d.startsWith(stop + sep)) {
    try {
      await rmdir(d);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') return;
    }
    d = dirname(d);
  }
}
