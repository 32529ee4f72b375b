/**
 * One prune at a time per repository (`gitfs prune` beside the daemon's): `gitfs/prune.lock`
 * names the process that prunes (src/util/proc.ts). It is made whole by a hard link, so it is
 * never seen torn; one whose process no longer runs (killed mid-prune) is taken over. Two
 * prunes that both find the same stale lock at the same moment may both take it: the second's
 * removal of the stale one can remove the first's new one. Files set aside (set-aside.ts) are
 * put back only under this lock, so that no prune still at work loses one it is checking.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { isRunning, readProcessRecord, thisProcess } from '../util/proc.js';

/** Runs `work` holding the prune lock; GITFS_PRUNE_REFUSED (reason `running`) while another live process holds it. */
export async function withPruneLock<T>(gitDir: string, work: () => Promise<T>): Promise<T> {
  const path = join(gitDir, 'gitfs', 'prune.lock');
  const tmp = `${path}.${randomBytes(6).toString('hex')}`;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(tmp, `${JSON.stringify(thisProcess())}\n`);
  try {
    if (!(await take(tmp, path))) {
      if (await heldByLiveProcess(path)) {
        throw new GitfsError(ErrorCodes.PRUNE_REFUSED, `another prune runs here (${path}): try again once it ends`, { reason: 'running', path });
      }
      await rm(path, { force: true });
      if (!(await take(tmp, path))) throw new GitfsError(ErrorCodes.PRUNE_REFUSED, `another prune took ${path} meanwhile`, { reason: 'running', path });
    }
  } finally {
    await rm(tmp, { force: true });
  }
  try {
    return await work();
  } finally {
    await rm(path, { force: true });
  }
}

async function take(from: string, to: string): Promise<boolean> {
  return link(from, to).then(
    () => true,
    (e: unknown) => (errnoCode(e) === 'EEXIST' ? false : Promise.reject(e)),
  );
}

/** Whether the lock names a process that runs: not if it is gone since (its holder ended), or names none (stale). */
async function heldByLiveProcess(path: string): Promise<boolean> {
  const mark = (await readProcessRecord(path))?.mark;
  return mark !== undefined && isRunning(mark);
}
