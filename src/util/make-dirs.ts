/**
 * `mkdir -p` for paths a user names. Node's own (`mkdir(path, { recursive: true })`) never
 * returns where mkdir answers ENOENT under a directory that exists (`/proc/x`: it makes the
 * parent again, which exists, and tries the child again, for ever); here each missing ancestor
 * is made once, then the path once, and the error of that stands.
 *
 * Returns the directories it made, outermost first, so that a caller that fails after it can
 * take them away again (`removeMadeDirs`).
 */
import { mkdir, rmdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { errnoCode } from '../errors.js';

export async function makeDirs(path: string): Promise<string[]> {
  const missing: string[] = [];
  const made: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    try {
      await mkdir(p);
      made.push(p);
      break;
    } catch (e) {
      if (errnoCode(e) === 'EEXIST' && (await stat(p)).isDirectory()) break;
      if (errnoCode(e) !== 'ENOENT' || dirname(p) === p) throw e;
      missing.push(p);
    }
  }
  // Where the walk up stopped exists now; what is missing below it is made from the top down, once each.
  for (const p of missing.reverse()) {
    await mkdir(p).then(
      () => void made.push(p),
      async (e: unknown) => {
        if (errnoCode(e) !== 'EEXIST' || !(await stat(p)).isDirectory()) throw e;
      },
    );
  }
  return made;
}

/** Removes what `makeDirs` made, innermost first, as far as each is still empty. */
export async function removeMadeDirs(made: readonly string[]): Promise<void> {
  for (const p of [...made].reverse()) {
    if (!(await rmdir(p).then(() => true, () => false))) return;
  }
}
