/**
 * How prune removes an object file without losing a writer's touch (freshen.ts). A writer that
 * dedups against an object sets its file's mtime to now; prune removes only files whose mtime
 * has not changed since it judged them. Checked then removed, a touch that lands between the two
 * would be lost: the writer goes on, its ref names an object that is gone. So the file is first
 * renamed into `gitfs/pruning/` (a touch by its path fails from then on, and the writer's
 * freshening looks for the object again, finds it nowhere and fails its operation safely), then
 * its mtime is read there: unchanged, it is removed; changed, a touch landed before the rename and
 * it is put back.
 *
 * A kill between the rename and the end leaves it in `gitfs/pruning/`; the next prune puts every
 * file there back (under the prune lock, prune-lock.ts) before anything else, and judges it again.
 * A pack's `.idx` is set aside before its `.pack` and put back after it, as readers find packs by
 * their index.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { errnoCode } from '../errors.js';
import { crashPoint } from '../util/crash-point.js';
import { fsyncDir } from '../util/durable.js';

/** A loose object's file, or a pack's index or data, relative to the git directory. */
const OBJECT_FILE = /^objects\/(?:[0-9a-f]{2}\/[0-9a-f]{38}|[0-9a-f]{2}\/[0-9a-f]{62}|pack\/pack-(?:[0-9a-f]{40}|[0-9a-f]{64})\.(?:idx|pack))$/;

/** Where a set-aside file came from, relative to the git directory; undefined for a name not made so. */
function originOf(name: string): string | undefined {
  try {
    return decodeURIComponent(name);
  } catch {
    return undefined;
  }
}

function asideDir(gitDir: string): string {
  return join(gitDir, 'gitfs', 'pruning');
}

/**
 * Sets `files` (paths inside `gitDir`, in the order readers should stop finding them) aside, then
 * removes them if the set-aside `judged` one's mtime still satisfies `untouched`; otherwise puts
 * them back. Whether they were removed.
 */
export async function removeUnlessTouched(gitDir: string, files: readonly string[], judged: string, untouched: (mtimeMs: number) => boolean): Promise<boolean> {
  const dir = asideDir(gitDir);
  await mkdir(dir, { recursive: true });
  const aside: Array<{ from: string; to: string }> = [];
  for (const from of files) {
    const to = join(dir, encodeURIComponent(relative(gitDir, from)));
    try {
      await rename(from, to);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      continue;
    }
    aside.push({ from, to });
  }
  crashPoint('set-aside:moved');
  const check = aside.find((a) => a.from === judged);
  const st = check === undefined ? undefined : await stat(check.to);
  if (st !== undefined && untouched(st.mtimeMs)) {
    for (const a of aside) {
      await rm(a.to, { force: true });
      crashPoint('set-aside:removing');
    }
    return true;
  }
  for (const a of [...aside].reverse()) await rename(a.to, a.from);
  return false;
}

/** Puts back every file a killed prune left set aside (call under the prune lock); how many. */
export async function restoreSetAside(gitDir: string): Promise<number> {
  const dir = asideDir(gitDir);
  const all = await readdir(dir).catch((e: unknown) => (errnoCode(e) === 'ENOENT' ? [] : Promise.reject(e)));
  // Only object files go back where they came from; anything else there is not prune's.
  const names = all.filter((n) => OBJECT_FILE.test(originOf(n) ?? ''));
  // Packs before their indexes: an index found without its pack fails its readers.
  const order = [...names.filter((n) => !n.endsWith('.idx')), ...names.filter((n) => n.endsWith('.idx'))];
  const dirs = new Set<string>();
  for (const name of order) {
    const to = join(gitDir, originOf(name) as string);
    await mkdir(dirname(to), { recursive: true });
    await rename(join(dir, name), to);
    dirs.add(dirname(to));
  }
  for (const d of dirs) await fsyncDir(d);
  return order.length;
}
