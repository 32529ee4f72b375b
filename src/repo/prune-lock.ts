/**
 * One prune at a time per repository (`gitfs prune` beside the daemon's): `gitfs/prune.lock`
 * names the process that prunes (src/util/proc.ts) and a nonce. It is made whole by a hard link
 * from a file written beside it, so it is never seen torn. A lock whose process is gone (killed
 * mid-prune), or that names none, is stale and taken over: renamed aside under a name of its own,
 * removed only if it is still the lock judged stale (another prune may have taken over first: its
 * lock is linked back and this one refused). A lock of a process that cannot be looked up from
 * here (another pid namespace) counts for UNKNOWN_LOCK_MS from when it was made. The lock is
 * removed at the end only if it is still this prune's. Files set aside (set-aside.ts) are put
 * back only under it, so that no prune still at work loses one it is checking.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { textOf } from '../util/if-present.js';
import { liveness, parseProcessRecord, thisProcess } from '../util/proc.js';

/** How long a lock of a process this one cannot look up holds off other prunes. */
const UNKNOWN_LOCK_MS = 86_400_000;
/** Tries at taking the lock when it changes hands meanwhile. */
const TRIES = 3;

/** Runs `work` holding the prune lock; GITFS_PRUNE_REFUSED (reason `running`) while another live process holds it. */
export async function withPruneLock<T>(gitDir: string, work: () => Promise<T>): Promise<T> {
  const path = join(gitDir, 'gitfs', 'prune.lock');
  const mine = `${JSON.stringify({ ...thisProcess(), nonce: randomBytes(8).toString('hex') })}\n`;
  const tmp = `${path}.${randomBytes(6).toString('hex')}`;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(tmp, mine);
  try {
    await take(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  try {
    return await work();
  } finally {
    if ((await textOf(path)) === mine) await rm(path, { force: true });
  }
}

async function take(tmp: string, path: string): Promise<void> {
  const refused = (why: string): GitfsError => new GitfsError(ErrorCodes.PRUNE_REFUSED, `${why} (${path}): try again once it ends`, { reason: 'running', path });
  for (let i = 0; i < TRIES; i++) {
    if (await linked(tmp, path)) return;
    const held = await textOf(path);
    // Released meanwhile: try again.
    if (held === undefined) continue;
    if (await counts(path, held)) throw refused('another prune runs here');
    const aside = `${path}.stale.${randomBytes(6).toString('hex')}`;
    try {
      await rename(path, aside);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') continue;
      throw e;
    }
    const moved = await textOf(aside);
    if (moved !== held) {
      // Another prune took the stale lock over first, and its lock was moved: back, unless a third took the place.
      await linked(aside, path);
      await rm(aside, { force: true });
      throw refused('another prune took over a stale lock');
    }
    await rm(aside, { force: true });
  }
  throw refused('the prune lock keeps changing hands');
}

/** Whether the lock `text` (at `path`) holds off this prune: its process runs, or cannot be told and the lock is young. */
async function counts(path: string, text: string): Promise<boolean> {
  const mark = parseProcessRecord(text)?.mark;
  if (mark === undefined) return false;
  const state = liveness(mark);
  if (state !== 'unknown') return state === 'running';
  const st = await stat(path).catch(() => undefined);
  return st !== undefined && Date.now() - st.mtimeMs < UNKNOWN_LOCK_MS;
}

async function linked(from: string, to: string): Promise<boolean> {
  return link(from, to).then(
    () => true,
    (e: unknown) => (errnoCode(e) === 'EEXIST' ? false : Promise.reject(e)),
  );
}
