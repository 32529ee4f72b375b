/** File-system reads where a missing path is an answer, not a failure: nothing there. */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { errnoCode } from '../errors.js';

/** The names in `dir`; none if it does not exist. Other failures propagate. */
export function namesIn(dir: string): Promise<string[]> {
  return readdir(dir).catch((e: unknown) => (errnoCode(e) === 'ENOENT' ? [] : Promise.reject(e)));
}

/** Whether something is at `path`, a symlink itself included (a failure to look counts as nothing). */
export function isThere(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

/** The text of `path`; undefined if it does not exist. Other failures propagate. */
export function textOf(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch((e: unknown) => (errnoCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
}
