/**
 * One `gitfs serve` per repository: `gitfs/serve.lock`, held by the daemon for as long as it runs
 * (src/util/process-lock.ts: one left by a daemon killed -9 is stale and taken over). Two started
 * at the same moment used to both find no daemon answering and both serve, the second taking over
 * the sockets of the first. The holder touches the lock every FRESH_MS / 4: a lock of a process
 * of another pid namespace (which cannot be looked up from here) holds while it is that fresh, or
 * while a daemon answers on the repository's socket. Once the lock is taken, a daemon that still
 * answers on the socket (one of a gitfs without the lock, or whose lock was removed by hand)
 * refuses the start too.
 */
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, GitfsError } from '../errors.js';
import { textOf } from '../util/if-present.js';
import { takeLock, type HeldLock } from '../util/process-lock.js';

/** How long a touched lock of a process this one cannot look up holds without a daemon answering. */
const FRESH_MS = 60_000;

/** Takes the serve lock of the repository at `gitDir`; GITFS_ALREADY_SERVING while another daemon holds it or answers. */
export async function takeServeLock(gitDir: string, daemonAnswers: () => Promise<boolean>): Promise<HeldLock> {
  const path = join(gitDir, 'gitfs', 'serve.lock');
  const held = await takeLock(path, {
    refused: (holder, why) =>
      holder === undefined
        ? new GitfsError(ErrorCodes.ALREADY_SERVING, `cannot take the serve lock ${path}: ${why}`, { path })
        : new GitfsError(ErrorCodes.ALREADY_SERVING, `gitfs serve already runs for ${gitDir} (pid ${holder.pid})`, { pid: holder.pid, path }),
    unknownHolds: async (made) => Date.now() - made < FRESH_MS || (await daemonAnswers()),
  });
  if (await daemonAnswers()) {
    await held.release();
    throw new GitfsError(ErrorCodes.ALREADY_SERVING, `gitfs serve already runs for ${gitDir}: a daemon answers on its socket (one without ${path})`, { path });
  }
  const touch = setInterval(() => {
    void (async () => {
      if ((await textOf(path)) !== held.content) return;
      const now = new Date();
      await utimes(path, now, now);
    })().catch(() => undefined);
  }, FRESH_MS / 4);
  touch.unref();
  return {
    content: held.content,
    release: async () => {
      clearInterval(touch);
      await held.release();
    },
  };
}
