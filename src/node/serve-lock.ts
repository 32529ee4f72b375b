/**
 * One `gitfs serve` per repository: `gitfs/serve.lock`, held by the daemon for as long as it runs
 * (src/util/process-lock.ts: one left by a daemon killed -9 is stale and taken over). Two started
 * at the same moment used to both find no daemon answering and both serve, the second taking over
 * the sockets of the first. A lock of a process of another pid namespace holds while a daemon
 * answers on the repository's socket.
 */
import { join } from 'node:path';
import { ErrorCodes, GitfsError } from '../errors.js';
import { takeLock, type HeldLock } from '../util/process-lock.js';

/** Takes the serve lock of the repository at `gitDir`; GITFS_ALREADY_SERVING while another daemon holds it. */
export function takeServeLock(gitDir: string, daemonAnswers: () => Promise<boolean>): Promise<HeldLock> {
  const path = join(gitDir, 'gitfs', 'serve.lock');
  return takeLock(path, {
    refused: (why, holder) =>
      new GitfsError(ErrorCodes.ALREADY_SERVING, `gitfs serve already runs for ${gitDir}${holder === undefined ? '' : ` (pid ${holder.pid})`}: ${why} (${path})`, { pid: holder?.pid, path }),
    unknownHolds: daemonAnswers,
  });
}
