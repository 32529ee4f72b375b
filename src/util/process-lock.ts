/**
 * A lock file held by one live process at a time (the prune lock, the serve lock): it names the
 * process that holds it (proc.ts) and a nonce. It is made whole by a hard link from a file
 * written beside it, so it is never seen torn. A lock whose process is gone (killed -9), or that
 * names none, is stale and removed, then the lock is taken as usual. Only one process removes a
 * given stale lock: the one that made `<lock>.takeover.<key>`, keyed by the stale lock's content
 * (its nonce), by the same hard link. So two takers meeting one stale lock never both remove it
 * (the second would take away the lock the first just made); no file is renamed aside and put
 * back (a third process could take the place in between), and a takeover file is never removed
 * by another for being stale. A takeover file whose maker lives is waited for (TAKEOVER_WAIT_MS,
 * then the next try, which finds the lock taken). A takeover file whose maker was killed is
 * stale: the next takes over one level down, by a file keyed by it in turn (`.<key>.<key>`), up
 * to TAKEOVER_DEPTH. Whoever
 * takes the lock removes every takeover file: none can concern its lock. A lock of a process that
 * cannot be looked up from here (another pid namespace) counts as the caller says
 * (`unknownHolds`); a takeover file for UNKNOWN_TAKEOVER_MS from when it was made. The lock is
 * removed on release only if it is still this holder's.
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from '../errors.js';
import { namesIn, textOf } from './if-present.js';
import { liveness, parseProcessRecord, thisProcess, type ProcessMark } from './proc.js';

/** How long a takeover file of a process this one cannot look up holds off other takers (held for milliseconds). */
const UNKNOWN_TAKEOVER_MS = 60_000;
/** Whether a file of a process this one cannot look up, made at `made` (ms), is recent enough to hold. */
const recent = (made: number): boolean => Date.now() - made < UNKNOWN_TAKEOVER_MS;
/** Takeover files of killed makers, one under the other, before a taker gives up (and asks for a hand). */
const TAKEOVER_DEPTH = 4;
const TAKEOVER = '.takeover.';
/** Tries at taking the lock when it changes hands meanwhile (or another process is taking over a stale one). */
const TRIES = 5;
/** How long to wait for another process taking over a stale lock (it holds its takeover file for milliseconds). */
const TAKEOVER_WAIT_MS = 50;

export interface LockRules {
  /**
   * The error thrown when the lock cannot be taken: `holder` is the live process that holds it,
   * or undefined when none does but the lock is stuck (`why` says how).
   */
  refused(holder: ProcessMark | undefined, why: string): Error;
  /** Whether a lock of a process of another pid namespace still holds (`made`: when the lock file was made, ms). */
  unknownHolds(made: number): Promise<boolean> | boolean;
}

export interface HeldLock {
  /** What this holder wrote into the lock file: it still holds the lock while the file says so. */
  readonly content: string;
  /** Removes the lock if it is still this holder's. */
  release(): Promise<void>;
}

/** Takes the lock at `path`, or throws `rules.refused` while another live process holds it. */
export async function takeLock(path: string, rules: LockRules): Promise<HeldLock> {
  const mine = `${JSON.stringify({ ...thisProcess(), nonce: randomBytes(8).toString('hex') })}\n`;
  // Named as clearLeftovers() knows it.
  const tmp = `${path}.${randomBytes(6).toString('hex')}`;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(tmp, mine);
  try {
    await take(tmp, mine, path, rules);
  } finally {
    await rm(tmp, { force: true });
  }
  return {
    content: mine,
    release: async () => {
      if ((await textOf(path)) === mine) await rm(path, { force: true });
    },
  };
}

/** Runs `work` holding the lock at `path`. */
export async function withLock<T>(path: string, rules: LockRules, work: () => Promise<T>): Promise<T> {
  const held = await takeLock(path, rules);
  try {
    return await work();
  } finally {
    await held.release();
  }
}

async function take(tmp: string, mine: string, path: string, rules: LockRules): Promise<void> {
  let takingOver = false;
  for (let i = 0; i < TRIES; i++) {
    // Takeover files left behind are harmless (each names a lock that is gone): one not removed now waits for the next.
    if (await linked(tmp, path)) return clearLeftovers(path, tmp).catch(() => undefined);
    const held = await textOf(path);
    // Released meanwhile: try again.
    if (held === undefined) continue;
    if (await counts(path, held, rules.unknownHolds)) throw rules.refused(parseProcessRecord(held)?.mark, 'another process holds it');
    takingOver = (await removeStale(tmp, mine, path, held, rules)) === 'taking-over';
  }
  throw rules.refused(undefined, takingOver ? 'another process is taking over a stale lock' : 'the lock keeps changing hands');
}

const keyOf = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

/** Removes the stale lock `held` at `path` if it is still there, as the one process that made its takeover file (or, its maker killed, the one below). */
async function removeStale(tmp: string, mine: string, path: string, held: string, rules: LockRules): Promise<'taking-over' | undefined> {
  let takeover = `${path}${TAKEOVER}${keyOf(held)}`;
  for (let depth = 0; depth < TAKEOVER_DEPTH; depth++) {
    if (await linked(tmp, takeover)) {
      try {
        if ((await textOf(path)) === held) await rm(path, { force: true });
      } finally {
        // Left behind, it concerns a lock that is gone: whoever takes the lock removes it.
        if ((await textOf(takeover)) === mine) await rm(takeover, { force: true });
      }
      return undefined;
    }
    const other = await textOf(takeover);
    // Gone: the stale lock was dealt with and the lock taken meanwhile.
    if (other === undefined) return undefined;
    // Another process is taking over: it holds the lock in a moment (the caller's next try says so).
    if (await counts(takeover, other, recent)) {
      await new Promise((resolve) => setTimeout(resolve, TAKEOVER_WAIT_MS));
      return 'taking-over';
    }
    takeover = `${takeover}.${keyOf(other)}`;
  }
  throw rules.refused(undefined, `takeover files of ${TAKEOVER_DEPTH} killed processes lie one under the other: remove ${path}${TAKEOVER}* by hand`);
}

/**
 * Under the lock: removes every takeover file (each concerns a stale lock that is gone), and the
 * file a taker writes beside the lock (`<lock>.<hex>`, but `mine`) of a taker killed between
 * writing and removing it: its process is gone, or cannot be told (or the file names none yet)
 * and the file is older than UNKNOWN_TAKEOVER_MS (a taker removes it within milliseconds).
 */
async function clearLeftovers(path: string, mine: string): Promise<void> {
  const base = basename(path);
  for (const name of await namesIn(dirname(path))) {
    const at = join(dirname(path), name);
    if (name.startsWith(`${base}${TAKEOVER}`)) await rm(at, { force: true });
    else if (at !== mine && name.startsWith(`${base}.`) && /^[0-9a-f]{12}$/.test(name.slice(base.length + 1))) {
      const text = await textOf(at);
      if (text === undefined) continue;
      // Naming no process yet: a taker between creating it and writing it (writeFile is not atomic), unless it is old.
      const holds = parseProcessRecord(text)?.mark === undefined ? recent((await stat(at).catch(() => undefined))?.mtimeMs ?? 0) : await counts(at, text, recent);
      if (!holds) await rm(at, { force: true });
    }
  }
}

/** Whether the lock `text` (at `path`) holds: its process runs, or cannot be told and `unknownHolds` says so. */
async function counts(path: string, text: string, unknownHolds: LockRules['unknownHolds']): Promise<boolean> {
  const mark = parseProcessRecord(text)?.mark;
  if (mark === undefined) return false;
  const state = liveness(mark);
  if (state !== 'unknown') return state === 'running';
  const st = await stat(path).catch(() => undefined);
  return st !== undefined && (await unknownHolds(st.mtimeMs));
}

async function linked(from: string, to: string): Promise<boolean> {
  return link(from, to).then(
    () => true,
    (e: unknown) => (errnoCode(e) === 'EEXIST' ? false : Promise.reject(e)),
  );
}
