/**
 * `gitfs/damaged/`: where a repair (repair.ts) moves a damaged pack once a copy of its objects is
 * in place, a damaged loose file once a pack holds a good copy, a copy of a damaged index it made
 * again from its pack, and git's damaged caches: out of git's sight, kept for an operator to look
 * at. A pack goes index first (readers stop finding it), then its `.pack` and
 * what lay beside it; a kill between the two leaves the `.pack` alone in `objects/pack/`, which
 * no reader opens but `git repack --cruft` trips on: recoverKilledRepair moves it on.
 */
import { copyFile, mkdir, rename, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ErrorCodes, errnoCode, GitfsError, isGitfsError } from '../errors.js';
import type { Oid } from '../objects/oid.js';
import { fsyncDir, fsyncFile } from '../util/durable.js';
import { isThere, namesIn } from '../util/if-present.js';
import { PACK_FILES } from './pack-merge.js';
import { withPruneLock } from './prune-lock.js';
import type { Repository } from './repository.js';

/** Where damaged packs and loose files go, relative to the git directory. */
export const DAMAGED_DIR = join('gitfs', 'damaged');

/** Every file that may lie beside a pack, the index first. */
const BESIDE = [...PACK_FILES, 'keep', 'mtimes'] as const;

/** A `.pack` whose index was set aside this long ago (by its ctime: a rename sets it) is a killed repair's, not a writer's between its two renames. */
const ORPHAN_AGE_MS = 60_000;

/** Moves a pack's files into DAMAGED_DIR, its index first; files already gone (merged meanwhile) are passed. */
export async function setAsidePack(repo: Repository, name: string): Promise<void> {
  const packDir = join(repo.gitDir, 'objects', 'pack');
  const to = await damagedDir(repo);
  // What an earlier repair set aside under this name is renamed first, all of it: a kill among
  // the moves below then leaves what recoverKilledRepair looks for (this pack's index alone there).
  for (const ext of BESIDE) await freed(repo, join(to, `${name}.${ext}`));
  for (const ext of BESIDE) await moveIfThere(join(packDir, `${name}.${ext}`), join(to, `${name}.${ext}`));
  await fsyncDir(to);
  await fsyncDir(packDir);
  await repo.objects.refresh();
}

/**
 * Copies the file at `from` into DAMAGED_DIR as `name`, durably, before a new one replaces it
 * (a pack's damaged index as `<name>.bad-idx`: not `.idx`, no pack moved there is missing it).
 */
export async function copyAside(repo: Repository, from: string, name: string): Promise<void> {
  const to = await freed(repo, join(await damagedDir(repo), name));
  await copyFile(from, to);
  await fsyncFile(to);
  await fsyncDir(dirname(to));
}

/** Moves the loose file of `oid` into DAMAGED_DIR as `loose-<id>`. */
export async function setAsideLoose(repo: Repository, oid: Oid): Promise<void> {
  await moveAside(repo, repo.objects.loosePathOf(oid), `loose-${oid}`);
}

/** Moves `from` (a file or a directory) into DAMAGED_DIR as `name`; whether it was there to move. */
export async function moveAside(repo: Repository, from: string, name: string): Promise<boolean> {
  if (!(await isThere(from))) return false;
  const to = await damagedDir(repo);
  await moveIfThere(from, await freed(repo, join(to, name)));
  await fsyncDir(to);
  await fsyncDir(dirname(from));
  return true;
}

async function damagedDir(repo: Repository): Promise<string> {
  const to = join(repo.gitDir, DAMAGED_DIR);
  await mkdir(to, { recursive: true });
  return to;
}

/**
 * `path`, made free: what a repair set aside there before (a pack of the same name damaged
 * again, say) is renamed to `<path>.<ms now>` first, so that nothing set aside is written over.
 */
async function freed(repo: Repository, path: string): Promise<string> {
  if (await isThere(path)) await moveIfThere(path, `${path}.${repo.clock.now()}`);
  return path;
}

/**
 * Finishes what a repair killed while it set a pack aside left: a `.pack` (and what lay beside
 * it) in `objects/pack/` whose index is in DAMAGED_DIR already, once ORPHAN_AGE_MS old, under the
 * prune lock (taken only when there is something to finish; not to be had: left for the next
 * time). How many. Not for a caller that holds the lock (it is not taken twice).
 */
export async function recoverKilledRepair(repo: Repository, nowMs: number): Promise<number> {
  const from = join(repo.gitDir, 'objects', 'pack');
  const to = join(repo.gitDir, DAMAGED_DIR);
  const orphans = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const entry of await namesIn(to)) {
      const name = entry.endsWith('.idx') ? entry.slice(0, -'.idx'.length) : undefined;
      // A killed move leaves the index here and the pack there; with both here, a pack of the same name is a new one.
      if (name === undefined || (await isThere(join(to, `${name}.pack`))) || (await isThere(join(from, `${name}.idx`)))) continue;
      const pack = await stat(join(from, `${name}.pack`)).catch(() => undefined);
      if (pack !== undefined && nowMs - pack.ctimeMs >= ORPHAN_AGE_MS) out.push(name);
    }
    return out;
  };
  if ((await orphans()).length === 0) return 0;
  try {
    return await withPruneLock(repo.gitDir, async () => {
      const names = await orphans();
      for (const name of names) for (const ext of BESIDE) await moveIfThere(join(from, `${name}.${ext}`), join(to, `${name}.${ext}`));
      if (names.length > 0) await fsyncDir(from);
      return names.length;
    });
  } catch (e) {
    if (isGitfsError(e, ErrorCodes.PRUNE_REFUSED)) return 0;
    throw e;
  }
}

/** Renames `from` to `to`; one gone already is passed; `gitfs/` on another file system than `objects/` is GITFS_IO saying so. */
async function moveIfThere(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    if (errnoCode(e) === 'EXDEV') throw new GitfsError(ErrorCodes.IO, `cannot move ${from} into ${to}: another file system (move it by hand)`, { path: from }, { cause: e });
    throw e;
  }
}
