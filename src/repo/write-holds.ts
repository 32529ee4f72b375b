/**
 * Write holds: a writer's objects are safe from prune (prune.ts) from the moment it starts until
 * a ref names them. Prune removes what no ref keeps once its file is older than the grace
 * period; a writer that runs longer than that (a commit of a large tree finishes a full pack
 * every 32 768 objects, a swarm fetch one every 16 MiB) would otherwise lose its early packs
 * before its ref moves. While a writer holds, prune removes nothing in a file touched since the
 * hold began.
 *
 * A hold is a file in `gitfs/holds/`, one line of JSON naming when it began and its process
 * (src/util/proc.ts), written by rename before the writer writes anything and removed once its
 * ref moved or it gave up. A record whose process no longer runs (killed mid-write) is stale:
 * prune removes it. Records are not fsynced: a host crash ends every writer with them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import type { Clock } from '../util/clock.js';
import { isRunning, readProcessRecord, thisProcess } from '../util/proc.js';

export interface WriteHold {
  /** When the hold began (ms since the epoch): files touched since are not pruned while it lasts. */
  readonly since: number;
  /** Ends the hold: its objects are named by a ref now, or not wanted. Idempotent. */
  release(): Promise<void>;
}

function holdsDir(gitDir: string): string {
  return join(gitDir, 'gitfs', 'holds');
}

/** Begins a hold; its record is in place when this resolves. */
export async function holdWrites(gitDir: string, clock: Clock): Promise<WriteHold> {
  const dir = holdsDir(gitDir);
  await mkdir(dir, { recursive: true });
  const since = clock.now();
  const path = join(dir, `${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeFile(`${path}.tmp`, `${JSON.stringify({ since, ...thisProcess() })}\n`);
  await rename(`${path}.tmp`, path);
  let released: Promise<void> | undefined;
  return { since, release: () => (released ??= rm(path, { force: true })) };
}

/** When the oldest hold of a running process began, or undefined if none holds; stale records are removed. */
export async function oldestHold(gitDir: string): Promise<number | undefined> {
  const dir = holdsDir(gitDir);
  const names = await readdir(dir).catch((e: unknown) => (errnoCode(e) === 'ENOENT' ? [] : Promise.reject(e)));
  let oldest: number | undefined;
  for (const name of names) {
    const path = join(dir, name);
    // A `.tmp` is a record being written: its writer has not begun writing objects.
    if (name.endsWith('.tmp')) continue;
    const since = await liveSince(path);
    if (since === undefined) await rm(path, { force: true });
    else oldest = Math.min(oldest ?? since, since);
  }
  return oldest;
}

/** The record's start, if its process still runs; undefined for a stale, torn or foreign one. */
async function liveSince(path: string): Promise<number | undefined> {
  const record = await readProcessRecord(path);
  const since = record?.fields['since'];
  return record?.mark !== undefined && typeof since === 'number' && Number.isFinite(since) && isRunning(record.mark) ? since : undefined;
}
