/**
 * git's `shallow` file: commits whose parents a repository deliberately lacks (a branch kept
 * with limited history). git (fsck, log, gc) treats those commits as roots. gitfs adds the
 * boundary commits of a partial fetch and drops entries whose parents have since come whole.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import { systemClock } from '../util/clock.js';
import { acquireWaiting } from './lock-file.js';

export async function readShallow(gitDir: string): Promise<Set<Oid>> {
  try {
    return new Set((await readFile(join(gitDir, 'shallow'), 'utf8')).split('\n').filter(isOid));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return new Set();
    throw e;
  }
}

/**
 * Adds `boundary`, then keeps the entries `keep` picks from all of them: read, decided and
 * written under `shallow.lock`, git's own lock for it, so a `git fetch --deepen` or another gitfs
 * process meanwhile loses no entry (waits up to 10 s for it, then GITFS_REF_CONFLICT).
 */
export async function updateShallow(gitDir: string, boundary: readonly Oid[], keep: (candidates: ReadonlySet<Oid>) => Promise<ReadonlySet<Oid>>): Promise<void> {
  const lock = await acquireWaiting(join(gitDir, 'shallow'), { clock: systemClock, waitMs: SHALLOW_LOCK_WAIT_MS });
  try {
    const current = await readShallow(gitDir);
    const next = await keep(new Set([...current, ...boundary]));
    if (next.size === current.size && [...next].every((o) => current.has(o))) return;
    await lock.write([...next].sort().map((o) => `${o}\n`).join(''));
    await lock.commit();
  } finally {
    await lock.release();
  }
}

const SHALLOW_LOCK_WAIT_MS = 10_000;

/** What `keptShallow` asks of the repository: durable presence, and a commit's parents. */
export interface ShallowSource {
  /** Whether `oid` is here durably (in a finished pack, or loose). */
  here(oid: Oid): Promise<boolean>;
  parents(commit: Oid): Promise<readonly Oid[]>;
}

/**
 * Whether the commits `depth` deep from `head` (the head at depth 1; 0: all its history) are here
 * and none before that depth is cut short (`shallow`, the shallow file's entries): then each came
 * with its closure whole, as `keptShallow` keeps the file. Reads each of those commits once.
 */
export async function historyHere(head: Oid, depth: number, shallow: ReadonlySet<Oid>, source: ShallowSource): Promise<boolean> {
  const depths = new Map<Oid, number>([[head, 1]]);
  const queue: Oid[] = [head];
  for (let i = 0; i < queue.length; i++) {
    const c = queue[i] as Oid;
    const d = depths.get(c) as number;
    if (!(await source.here(c))) return false;
    if (depth !== 0 && d >= depth) continue;
    if (shallow.has(c)) return false;
    for (const p of await source.parents(c)) {
      if (depths.has(p)) continue;
      depths.set(p, d + 1);
      queue.push(p);
    }
  }
  return true;
}

/**
 * Which of `candidates` (the shallow file's entries and a new boundary) stay in it: those here
 * with a parent outside both `within` (the commits of a closure just checked whole and durable)
 * and the candidates here. Every such commit came whole (its closure was checked when it became a
 * boundary), so git's walk from a dropped entry ends at a kept one. A parent merely present is not
 * enough: it may lack its tree (a walk brings every commit before any tree).
 */
export async function keptShallow(candidates: ReadonlySet<Oid>, within: ReadonlySet<Oid>, source: ShallowSource): Promise<Set<Oid>> {
  const here = new Set<Oid>();
  for (const c of candidates) if (await source.here(c)) here.add(c);
  const kept = new Set<Oid>();
  for (const c of here) if ((await source.parents(c)).some((p) => !within.has(p) && !here.has(p))) kept.add(c);
  return kept;
}
