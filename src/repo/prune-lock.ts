/**
 * One prune at a time per repository (`gitfs prune` beside the daemon's): `gitfs/prune.lock`, a
 * lock held by one live process (src/util/process-lock.ts: a lock of a process killed mid-prune
 * is stale and taken over). A lock of a process that cannot be looked up from here (another pid
 * namespace) counts for UNKNOWN_LOCK_MS from when it was made. Files set aside (set-aside.ts) are
 * put back only under it, so that no prune still at work loses one it is checking.
 */
import { join } from 'node:path';
import { ErrorCodes, GitfsError } from '../errors.js';
import { withLock } from '../util/process-lock.js';

/** How long a lock of a process this one cannot look up holds off other prunes. */
const UNKNOWN_LOCK_MS = 86_400_000;

/** Runs `work` holding the prune lock; GITFS_PRUNE_REFUSED (reason `running`) while another live process holds it. */
export async function withPruneLock<T>(gitDir: string, work: () => Promise<T>): Promise<T> {
  const path = join(gitDir, 'gitfs', 'prune.lock');
  return withLock(
    path,
    {
      refused: (holder, why) =>
        holder === undefined
          ? new GitfsError(ErrorCodes.PRUNE_REFUSED, `cannot take the prune lock ${path}: ${why}`, { reason: 'running', path })
          : new GitfsError(ErrorCodes.PRUNE_REFUSED, `another prune runs here (pid ${holder.pid}, ${path}): try again once it ends`, { reason: 'running', path, pid: holder.pid }),
      unknownHolds: (made) => Date.now() - made < UNKNOWN_LOCK_MS,
    },
    work,
  );
}
