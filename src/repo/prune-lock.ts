/**
 * One prune at a time per repository (`gitfs prune` beside the daemon's): `gitfs/prune.lock`
 * names the process that prunes (src/util/proc.ts) and a nonce. It is made whole by a hard link
 * from a file written beside it, so it is never seen torn. A lock whose process is gone (killed
 * mid-prune), or that names none, is stale and removed, then the lock is taken as usual. Only one
 * process removes a given stale lock: the one that made `prune.lock.takeover.<key>`, keyed by the
 * stale lock's content (its nonce), by the same hard link. So two prunes meeting one stale lock
 * never both remove it (the second would take away the lock the first just made); no file is
 * renamed aside and put back (a third process could take the place in between), and a takeover
 * file is never removed by another for being stale. A takeover file whose maker was killed is stale:
 * the next takes over one level down, by a file keyed by it in turn (`.<key>.<key>`), up to
 * TAKEOVER_DEPTH. Whoever takes the lock removes every takeover file: none can concern its lock.
 * A lock of a process that cannot be looked up from here (another pid namespace) counts for
 * UNKNOWN_LOCK_MS from when it was made (a takeover file for UNKNOWN_TAKEOVER_MS). The lock is
 * removed at the end only if it is still this prune's. Files set aside (set-aside.ts) are put
 * back only under it, so that no prune still at work loses one it is checking.
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { namesIn, textOf } from '../util/if-present.js';
import { liveness, parseProcessRecord, thisProcess } from '../util/proc.js';

/** How long a lock of a process this one cannot look up holds off other prunes. */
const UNKNOWN_LOCK_MS = 86_400_000;
/** The same for a takeover file (held for milliseconds). */
const UNKNOWN_TAKEOVER_MS = 60_000;
/** Takeover files of killed makers, one under the other, before a prune gives up (and asks for a hand). */
const TAKEOVER_DEPTH = 4;
const TAKEOVER = '.takeover.';
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
    // Takeover files left behind are harmless (each names a lock that is gone): one not removed now waits for the next.
    if (await linked(tmp, path)) return clearTakeovers(path).catch(() => undefined);
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

const keyOf = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

/** Removes the stale lock `held` at `path` if it is still there, as the one process that made its takeover file (or, its maker killed, the one below). */
async function removeStale(tmp: string, mine: string, path: string, held: string): Promise<void> {
  let takeover = `${path}${TAKEOVER}${keyOf(held)}`;
  for (let depth = 0; depth < TAKEOVER_DEPTH; depth++) {
    if (await linked(tmp, takeover)) {
      try {
        if ((await textOf(path)) === held) await rm(path, { force: true });
      } finally {
        // Left behind, it concerns a lock that is gone: whoever takes the lock removes it.
        if ((await textOf(takeover)) === mine) await rm(takeover, { force: true });
      }
      return;
    }
    const other = await textOf(takeover);
    // Gone: the stale lock was dealt with and the lock taken meanwhile.
    if (other === undefined) return;
    if (await counts(takeover, other, UNKNOWN_TAKEOVER_MS)) throw refused(path, 'another prune is taking over a stale lock');
    takeover = `${takeover}.${keyOf(other)}`;
  }
  throw refused(path, `takeover files of ${TAKEOVER_DEPTH} killed prunes lie one under the other: remove ${path}${TAKEOVER}* by hand`);
}

/** Removes every takeover file (under the lock: each concerns a stale lock that is gone). */
async function clearTakeovers(path: string): Promise<void> {
  const prefix = `${basename(path)}${TAKEOVER}`;
  for (const name of await namesIn(dirname(path))) if (name.startsWith(prefix)) await rm(join(dirname(path), name), { force: true });
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
