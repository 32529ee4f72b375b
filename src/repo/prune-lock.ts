/**
 * One prune at a time per repository (`gitfs prune` beside the daemon's): `gitfs/prune.lock`
 * names the process that prunes (src/util/proc.ts) and a nonce. It is made whole by a hard link
 * from a file written beside it, so it is never seen torn. A lock whose process is gone (killed
 * mid-prune), or that names none, is stale and removed, then taken as usual. Only a holder of
 * `prune.lock.takeover` (made the same way) removes a stale lock, and only if it is still the lock
 * judged stale: two prunes meeting one stale lock cannot both remove it, the second taking away
 * the lock the first just made. A takeover lock left by a process killed in those few
 * milliseconds is stale the same way. A lock of a process that cannot be looked up from here
 * (another pid namespace) counts for UNKNOWN_LOCK_MS from when it was made (a takeover lock for
 * UNKNOWN_TAKEOVER_MS). The lock is removed at the end only if it is still this prune's. Files set
 * aside (set-aside.ts) are put back only under it, so that no prune still at work loses one it is
 * checking.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { textOf } from '../util/if-present.js';
import { liveness, parseProcessRecord, thisProcess } from '../util/proc.js';

/** How long a lock of a process this one cannot look up holds off other prunes. */
const UNKNOWN_LOCK_MS = 86_400_000;
/** The same for a takeover lock (held for milliseconds). */
const UNKNOWN_TAKEOVER_MS = 60_000;
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
    await take(tmp, mine, path);
  } finally {
    await rm(tmp, { force: true });
  }
  try {
    return await work();
  } finally {
    if ((await textOf(path)) === mine) await rm(path, { force: true });
  }
}

async function take(tmp: string, mine: string, path: string): Promise<void> {
  for (let i = 0; i < TRIES; i++) {
    if (await linked(tmp, path)) return;
    const held = await textOf(path);
    // Released meanwhile: try again.
    if (held === undefined) continue;
    if (await counts(path, held, UNKNOWN_LOCK_MS)) throw refused(path, 'another prune runs here');
    await removeStale(tmp, mine, path, held);
  }
  throw refused(path, 'the prune lock keeps changing hands');
}

function refused(path: string, why: string): GitfsError {
  return new GitfsError(ErrorCodes.PRUNE_REFUSED, `${why} (${path}): try again once it ends`, { reason: 'running', path });
}

/** Removes the stale lock `held` at `path` if it is still there, holding the takeover lock meanwhile. */
async function removeStale(tmp: string, mine: string, path: string, held: string): Promise<void> {
  const takeover = `${path}.takeover`;
  if (!(await linked(tmp, takeover))) {
    const other = await textOf(takeover);
    if (other === undefined) return;
    if (await counts(takeover, other, UNKNOWN_TAKEOVER_MS)) throw refused(path, 'another prune is taking over a stale lock');
    // Its maker was killed within the takeover: out of the way, if it is still that one.
    const aside = `${takeover}.stale.${randomBytes(6).toString('hex')}`;
    try {
      await rename(takeover, aside);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw e;
    }
    if ((await textOf(aside)) !== other) await linked(aside, takeover);
    await rm(aside, { force: true });
    return;
  }
  try {
    if ((await textOf(path)) === held) await rm(path, { force: true });
  } finally {
    if ((await textOf(takeover)) === mine) await rm(takeover, { force: true });
  }
}

/** Whether the lock `text` (at `path`) holds: its process runs, or cannot be told and the lock is younger than `unknownMs`. */
async function counts(path: string, text: string, unknownMs: number): Promise<boolean> {
  const mark = parseProcessRecord(text)?.mark;
  if (mark === undefined) return false;
  const state = liveness(mark);
  if (state !== 'unknown') return state === 'running';
  const st = await stat(path).catch(() => undefined);
  return st !== undefined && Date.now() - st.mtimeMs < unknownMs;
}

async function linked(from: string, to: string): Promise<boolean> {
  return link(from, to).then(
    () => true,
    (e: unknown) => (errnoCode(e) === 'EEXIST' ? false : Promise.reject(e)),
  );
}
