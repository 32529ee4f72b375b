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
 * ref moved or it gave up (a removal that fails leaves it until its process ends). A record
 * whose process no longer runs (killed mid-write) is stale: prune removes it; one of a process
 * this one cannot look up (another pid namespace) counts for UNKNOWN_HOLD_MS after it began. A
 * `.tmp` left by a writer killed before its rename is removed after TORN_RECORD_MS. Records are
 * not fsynced: a host crash ends every writer with them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../util/clock.js';
import { namesIn } from '../util/if-present.js';
import { liveness, readProcessRecord, thisProcess } from '../util/proc.js';

/** How long the hold of a process that cannot be looked up from here counts. */
const UNKNOWN_HOLD_MS = 7 * 86_400_000;
/** How long a record may stay half made (written, not yet renamed into place). */
const TORN_RECORD_MS = 60_000;

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
  return { since, release: () => (released ??= rm(path, { force: true }).catch(() => undefined)) };
}

/**
 * When the oldest hold that counts began (`now` by the caller's clock), or undefined if none
 * does; with `removeStale`, the records of processes gone are removed.
 */
export async function oldestHold(gitDir: string, options: { readonly removeStale: boolean; readonly now: number }): Promise<number | undefined> {
  const dir = holdsDir(gitDir);
  const names = await namesIn(dir);
  let oldest: number | undefined;
  for (const name of names) {
    const path = join(dir, name);
    // A `.tmp` is a record being written: its writer has not begun writing objects.
    const since = name.endsWith('.tmp') ? undefined : await countingSince(path, options.now);
    if (since !== undefined) oldest = Math.min(oldest ?? since, since);
    else if (options.removeStale && (!name.endsWith('.tmp') || (await ageOf(path, options.now)) > TORN_RECORD_MS)) await rm(path, { force: true });
  }
  return oldest;
}

/** The record's start, if it counts; undefined for a stale, torn or foreign one. */
async function countingSince(path: string, now: number): Promise<number | undefined> {
  const record = await readProcessRecord(path);
  const since = record?.fields['since'];
  if (record?.mark === undefined || typeof since !== 'number' || !Number.isFinite(since)) return undefined;
  const state = liveness(record.mark);
  return state === 'running' || (state === 'unknown' && now - since < UNKNOWN_HOLD_MS) ? since : undefined;
}

async function ageOf(path: string, now: number): Promise<number> {
  const st = await stat(path).catch(() => undefined);
  return st === undefined ? 0 : now - st.mtimeMs;
}
