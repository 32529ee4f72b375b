/**
 * Git-style lock files: to replace `<path>`, create `<path>.lock` exclusively (O_CREAT|O_EXCL,
 * mode 0644), write the new content into it, fsync, rename it over `<path>`, fsync the directory.
 * Git uses the same protocol, so gitfs and the git CLI exclude each other.
 *
 * Invariants:
 * - `<path>` is only ever replaced by rename, so readers see the old or the new content, never a
 *   mix, and a crash at any point leaves one of the two (plus, at worst, a leftover lock).
 * - An existing lock means another writer holds it: acquiring fails with GITFS_REF_CONFLICT.
 * - Stale locks: a lock gitfs made whose mtime is more than `staleLockMs` (default 30 s) before
 *   `clock.now()` is taken to be left by a crashed process and is broken (moved aside under a
 *   dot-name git ignores, checked to be the same inode that was judged stale, then removed).
 *   Git itself never breaks locks; gitfs does because its writers are long-lived daemons. It
 *   never breaks git's: a git command may hold a lock for minutes (a stopped `git pack-refs`, a
 *   slow reference-transaction hook), and would then rename gitfs's own lock, half written, over
 *   `packed-refs`. gitfs's locks are told apart by their access time, set to LOCK_MARK when made
 *   and at every touch; a stale lock without it is GITFS_REF_CONFLICT (reason `foreign`) until
 *   FOREIGN_STALE_MS old: no git command holds a lock that long unless stopped, and a gitfs lock
 *   that lost its mark (killed before marking it, made by an older gitfs, read on a file system
 *   mounted strictatime) is not held for ever. The
 *   injected clock must therefore read wall-clock milliseconds, the same epoch as file mtimes.
 *   A holder touches its lock every third of the stale age (at most 10 s) while it holds it, so
 *   only a lock whose holder is gone (or stalled that long) grows stale: prune's reflog rewrite
 *   held past 30 s on a slow disk used to have its lock broken by a committer, whose reflog line
 *   it then wrote over. A writer that loses its lock all the same: `commit` re-checks, just before
 *   the rename, that the lock path is still the inode it created, and fails with
 *   GITFS_REF_CONFLICT otherwise, so a broken lock is never renamed over a newer value
 *   (a residual race remains only within that check-then-rename instant).
 * - A failed `write`/`commit` leaves the lock in place (so the caller can still undo side effects
 *   it made under the lock, e.g. a reflog append); `release()` then removes it if (and only if) it
 *   is still ours. Callers always `release()` in a `finally` (as `writeFileLocked` does): after a
 *   successful commit it is a no-op.
 */
import { constants, type BigIntStats } from 'node:fs';
import { link, lstat, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, GitfsError, errnoCode, ioError, isGitfsError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import { fsyncDir } from '../util/durable.js';

export type { Clock } from '../util/clock.js';

export const DEFAULT_STALE_LOCK_MS = 30_000;
export const LOCK_SUFFIX = '.lock';
/**
 * The access time of every lock gitfs makes, so that it breaks only its own: 2038-01-19T03:14:07Z,
 * the latest every file system stores, and ahead of now, so that a read does not move it under
 * relatime (which updates an access time not after the file's change, or a day old). No git lock has it.
 */
export const LOCK_MARK = new Date(2_147_483_647_000);
/** The age past which a lock without gitfs's mark is broken all the same. */
export const FOREIGN_STALE_MS = 10 * 60_000;

function marked(st: BigIntStats): boolean {
  return st.atimeNs / 1_000_000n === BigInt(LOCK_MARK.getTime());
}

export interface LockOptions {
  readonly clock: Clock;
  /** Age (ms, mtime vs clock) beyond which an existing lock is considered abandoned. */
  readonly staleLockMs?: number;
  /** Create missing parent directories of the lock (retrying if a concurrent cleanup removes them). */
  readonly createParents?: boolean;
}

const MAX_ATTEMPTS = 5;
const LOCK_OPEN_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

interface FileId {
  readonly dev: bigint;
  readonly ino: bigint;
}

export class LockFile {
  private fh: FileHandle | undefined;
  private state: 'held' | 'committed' | 'released' = 'held';
  /** Keeps the lock's mtime fresh while it is held (see the invariants). */
  private readonly touch: NodeJS.Timeout | undefined;

  private constructor(
    /** The file the lock protects (absolute). */
    readonly path: string,
    /** `<path>.lock`. */
    readonly lockPath: string,
    fh: FileHandle,
    private readonly fileId: FileId,
    /** Highest directory created for the lock, whose parent entry must be made durable. */
    private readonly createdDir: string | undefined,
    clock: Clock,
    staleMs: number,
  ) {
    this.fh = fh;
    if (staleMs > 0) {
      this.touch = setInterval(() => {
        void this.fh?.utimes(LOCK_MARK, new Date(clock.now())).catch(() => undefined);
      }, Math.min(staleMs, DEFAULT_STALE_LOCK_MS) / 3);
      this.touch.unref();
    }
  }

  /** Takes `<path>.lock`. Throws GITFS_REF_CONFLICT if another live writer holds it, GITFS_IO on I/O errors. */
  static async acquire(target: string, options: LockOptions): Promise<LockFile> {
    const path = resolve(target);
    const lockPath = path + LOCK_SUFFIX;
    const staleMs = options.staleLockMs ?? DEFAULT_STALE_LOCK_MS;
    if (!Number.isFinite(staleMs) || staleMs < 0) {
      throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `staleLockMs must be a non-negative number, got ${staleMs}`);
    }
    let createdDir: string | undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      let fh: FileHandle;
      try {
        fh = await open(lockPath, LOCK_OPEN_FLAGS, 0o644);
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOENT' && options.createParents === true) {
          let made: string | undefined;
          try {
            made = await mkdir(dirname(lockPath), { recursive: true });
          } catch (e2) {
            throw ioError(`cannot create directory for ${lockPath}`, dirname(lockPath), e2);
          }
          if (made !== undefined) {
            const abs = resolve(made);
            if (createdDir === undefined || abs.length < createdDir.length) createdDir = abs;
          }
          continue;
        }
        if (code !== 'EEXIST') throw ioError(`cannot create lock ${lockPath}`, lockPath, e);
        const outcome = await breakIfStale(lockPath, staleMs, options.clock);
        if (outcome === 'held') throw lockedError(lockPath);
        if (outcome === 'foreign') throw foreignLockError(lockPath);
        continue;
      }
      try {
        const st = await fh.stat({ bigint: true });
        await fh.utimes(LOCK_MARK, new Date(Number(st.mtimeMs)));
        return new LockFile(path, lockPath, fh, { dev: st.dev, ino: st.ino }, createdDir, options.clock, staleMs);
      } catch (e) {
        await fh.close().catch(() => undefined);
        await unlink(lockPath).catch(() => undefined);
        throw ioError(`cannot mark lock ${lockPath}`, lockPath, e);
      }
    }
    throw lockedError(lockPath);
  }

  get held(): boolean {
    return this.state === 'held';
  }

  /** Appends `data` to the lock's content. */
  async write(data: string | Uint8Array): Promise<void> {
    const fh = this.handle();
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    try {
      let done = 0;
      while (done < buf.length) {
        const { bytesWritten } = await fh.write(buf, done, buf.length - done);
        done += bytesWritten;
      }
    } catch (e) {
      throw ioError(`cannot write lock ${this.lockPath}`, this.lockPath, e);
    }
  }

  /**
   * fsync, rename `<path>.lock` over `<path>`, fsync the directory. On failure before the rename
   * `<path>` is untouched and the lock stays until `release()`. A failure of the final directory fsync throws
   * GITFS_IO with `data.committed === true`: the new content is in place but may not be durable.
   */
  async commit(): Promise<void> {
    const fh = this.handle();
    clearInterval(this.touch);
    try {
      await fh.sync();
      this.fh = undefined;
      await fh.close();
      if (!(await this.stillHeld())) throw lockBrokenError(this.lockPath);
      await rename(this.lockPath, this.path);
    } catch (e) {
      if (isGitfsError(e)) throw e;
      throw ioError(`cannot commit lock ${this.lockPath}`, this.lockPath, e);
    }
    this.state = 'committed';
    try {
      for (const dir of this.dirsToSync()) await fsyncDir(dir);
    } catch (e) {
      throw ioError(`cannot fsync directory of ${this.path}`, dirname(this.path), e, { committed: true });
    }
  }

  /** Abandons the lock: closes it and removes it if it is still ours. Idempotent; never throws. */
  async release(): Promise<void> {
    clearInterval(this.touch);
    if (this.fh !== undefined) {
      const fh = this.fh;
      this.fh = undefined;
      await fh.close().catch(() => undefined);
    }
    if (this.state !== 'held') return;
    const ours = await this.stillHeld();
    this.state = 'released';
    if (ours) await unlink(this.lockPath).catch(() => undefined);
  }

  private handle(): FileHandle {
    if (this.state !== 'held' || this.fh === undefined) {
      throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `lock ${this.lockPath} is no longer held`);
    }
    return this.fh;
  }

  /** Whether `<path>.lock` is still the file this lock created (false once committed or broken as stale). */
  async stillHeld(): Promise<boolean> {
    if (this.state !== 'held') return false;
    try {
      const st = await lstat(this.lockPath, { bigint: true });
      return st.dev === this.fileId.dev && st.ino === this.fileId.ino;
    } catch {
      return false;
    }
  }

  /** The target's directory, then the parents of every directory created for the lock. */
  private dirsToSync(): string[] {
    let d = dirname(this.path);
    const dirs = [d];
    if (this.createdDir !== undefined) {
      const stop = dirname(this.createdDir);
      while (d !== stop && dirname(d) !== d) {
        d = dirname(d);
        dirs.push(d);
      }
    }
    return dirs;
  }
}

/**
 * Acquires `<path>.lock`, waiting up to `waitMs` for another writer to finish (each holds it for
 * moments), then GITFS_REF_CONFLICT as acquire() would.
 */
export async function acquireWaiting(path: string, options: LockOptions & { readonly waitMs: number }): Promise<LockFile> {
  // Counted in tries, not read off the clock: the waits are real time whatever clock is injected
  // (a clock that stands still, or steps back, must not make this wait for ever).
  const tries = Math.max(1, Math.ceil(options.waitMs / LOCK_RETRY_MS));
  for (let i = 1; ; i++) {
    try {
      return await LockFile.acquire(path, options);
    } catch (e) {
      if (!isGitfsError(e) || e.code !== ErrorCodes.REF_CONFLICT || i >= tries) throw e;
      await sleep(LOCK_RETRY_MS);
    }
  }
}

const LOCK_RETRY_MS = 25;

/** Acquires `<path>.lock`, writes `data`, commits. */
export async function writeFileLocked(path: string, data: string | Uint8Array, options: LockOptions): Promise<void> {
  const lock = await LockFile.acquire(path, options);
  try {
    await lock.write(data);
    await lock.commit();
  } finally {
    await lock.release();
  }
}

/**
 * Decides about an existing lock: 'held' (fresh, or we could not safely break it), 'foreign'
 * (stale, but not gitfs's, and younger than FOREIGN_STALE_MS), 'gone' (it vanished meanwhile), or
 * 'broken' (it was stale and we removed it). Either of the last two means: retry.
 */
async function breakIfStale(lockPath: string, staleMs: number, clock: Clock): Promise<'held' | 'foreign' | 'gone' | 'broken'> {
  let seen;
  try {
    seen = await lstat(lockPath, { bigint: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 'gone';
    throw ioError(`cannot inspect lock ${lockPath}`, lockPath, e);
  }
  const ageMs = clock.now() - Number(seen.mtimeMs);
  if (!(ageMs > staleMs)) return 'held';
  if (!marked(seen) && !(ageMs > Math.max(staleMs, FOREIGN_STALE_MS))) return 'foreign';
  // Move it aside first so that only the inode judged stale is ever deleted.
  const aside = join(dirname(lockPath), `.${basename(lockPath)}.stale-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await rename(lockPath, aside);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 'gone';
    throw ioError(`cannot break stale lock ${lockPath}`, lockPath, e);
  }
  let moved;
  try {
    moved = await lstat(aside, { bigint: true });
  } catch {
    return 'gone';
  }
  if (moved.dev === seen.dev && moved.ino === seen.ino) {
    await unlink(aside).catch(() => undefined);
    return 'broken';
  }
  // A fresh lock replaced the stale one between our lstat and rename: put it back (link fails if yet
  // another writer took the name; that writer's inode check then protects both of them).
  await link(aside, lockPath).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
  return 'held';
}

/** The lock at `lockPath` was broken as stale by another writer: what was to be written under it must not be. */
export function lockBrokenError(lockPath: string): GitfsError {
  return new GitfsError(ErrorCodes.REF_CONFLICT, `lock ${lockPath} was broken as stale by another writer before commit`, { lockPath, reason: 'lock-broken' });
}

function foreignLockError(lockPath: string): GitfsError {
  return new GitfsError(
    ErrorCodes.REF_CONFLICT,
    `${lockPath} exists, and was not made by gitfs: a git command holds it, or one that died left it (gitfs breaks such a lock only once ${FOREIGN_STALE_MS / 60_000} minutes old; remove it sooner once no git command runs)`,
    { lockPath, reason: 'foreign' },
  );
}

function lockedError(lockPath: string): GitfsError {
  return new GitfsError(ErrorCodes.REF_CONFLICT, `${lockPath} exists: another writer holds the lock`, {
    lockPath,
    reason: 'locked',
  });
}
