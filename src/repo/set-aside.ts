/**
 * How prune removes an object file without losing a writer's touch (freshen.ts). A writer that
 * dedups against an object sets its file's mtime to now; prune removes only files whose mtime
 * has not changed since it judged them. Checked then removed, a touch that lands between the two
 * would be lost: the writer goes on, its ref names an object that is gone. So the file is first
 * renamed into `gitfs/pruning/` (a touch by its path fails from then on, and the writer's
 * freshening looks for the object again, finds it nowhere and fails its operation safely), then
 * its mtime is read there: unchanged, it is removed; changed, a touch landed before the rename and
 * it is put back. A failure between the two puts it back too. Where `gitfs/` and `objects/` are on
 * different file systems (no rename between them), the file is checked in place, as before.
 *
 * A kill between the rename and the end leaves it in `gitfs/pruning/`: refs may name what is there
 * (a touch that landed just before the rename). It is put back, under the prune lock
 * (prune-lock.ts), by the next prune before it judges, by `gitfs serve` at its start and every
 * minute, and by `gitfs fsck`. A pack's `.idx` is set aside before its `.pack`, removed before it,
 * and put back after it: a `.pack` found there alone was being removed, and goes.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { errnoCode } from '../errors.js';
import { crashPoint } from '../util/crash-point.js';
import { fsyncDir } from '../util/durable.js';
import { namesIn } from '../util/if-present.js';

/** A loose object's file, or a pack's index or data (any name git gives a pack), relative to the git directory. */
const OBJECT_FILE = /^objects\/(?:[0-9a-f]{2}\/(?:[0-9a-f]{38}|[0-9a-f]{62})|pack\/(?!tmp_|\.)[^/]+\.(?:idx|pack))$/;

/** Where a set-aside file came from, relative to the git directory; undefined for a name not made so. */
function originOf(name: string): string | undefined {
  try {
    const from = decodeURIComponent(name);
    return OBJECT_FILE.test(from) && !from.includes('..') ? from : undefined;
  } catch {
    return undefined;
  }
}

function asideDir(gitDir: string): string {
  return join(gitDir, 'gitfs', 'pruning');
}

/** Makes the set-aside directory; call before removeUnlessTouched. */
export async function prepareSetAside(gitDir: string): Promise<void> {
  await mkdir(asideDir(gitDir), { recursive: true });
}

/**
 * Sets `files` (paths inside `gitDir`, in the order readers should stop finding them) aside, then
 * removes them if the set-aside `judged` one's mtime still satisfies `untouched`; otherwise puts
 * them back. Whether they were removed.
 */
export async function removeUnlessTouched(gitDir: string, files: readonly string[], judged: string, untouched: (mtimeMs: number) => boolean): Promise<boolean> {
  const aside: Array<{ from: string; to: string }> = [];
  try {
    for (const from of files) {
      const to = join(asideDir(gitDir), encodeURIComponent(relative(gitDir, from)));
      try {
        await rename(from, to);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') continue;
        if (errnoCode(e) === 'EXDEV') return removeInPlace(files, judged, untouched);
        throw e;
      }
      aside.push({ from, to });
    }
    crashPoint('set-aside:moved');
    const check = aside.find((a) => a.from === judged);
    const st = check === undefined ? undefined : await stat(check.to);
    if (st !== undefined && untouched(st.mtimeMs)) {
      for (const a of aside.splice(0)) {
        await rm(a.to, { force: true });
        crashPoint('set-aside:removing');
      }
      return true;
    }
    return false;
  } finally {
    for (const a of aside.reverse()) await rename(a.to, a.from);
  }
}

/** removeUnlessTouched where no rename reaches `gitfs/pruning/`: checked, then removed. */
async function removeInPlace(files: readonly string[], judged: string, untouched: (mtimeMs: number) => boolean): Promise<boolean> {
  const st = await stat(judged).catch(() => undefined);
  if (st === undefined || !untouched(st.mtimeMs)) return false;
  for (const f of files) await rm(f, { force: true });
  return true;
}

/** Puts back every file a killed prune left set aside (call under the prune lock); how many. */
export async function restoreSetAside(gitDir: string): Promise<number> {
  const dir = asideDir(gitDir);
  const all = await namesIn(dir);
  // Only object files go back where they came from; anything else there is not prune's.
  const names = all.filter((n) => originOf(n) !== undefined);
  const isPack = (n: string): boolean => n.endsWith('.pack');
  const indexOf = (n: string): string => `${n.slice(0, -'.pack'.length)}.idx`;
  const dirs = new Set<string>();
  let back = 0;
  // Packs before their indexes: an index found without its pack fails its readers.
  for (const name of [...names.filter((n) => !n.endsWith('.idx')), ...names.filter((n) => n.endsWith('.idx'))]) {
    if (isPack(name) && !names.includes(indexOf(name))) {
      // Its index was removed already: it was going.
      await rm(join(dir, name), { force: true });
      continue;
    }
    const to = join(gitDir, originOf(name) as string);
    await mkdir(dirname(to), { recursive: true });
    await rename(join(dir, name), to);
    dirs.add(dirname(to));
    back++;
  }
  for (const d of dirs) await fsyncDir(d);
  return back;
}

/** Whether anything is set aside (a cheap look before taking the prune lock to put it back). */
export async function anythingSetAside(gitDir: string): Promise<boolean> {
  return (await namesIn(asideDir(gitDir))).length > 0;
}
