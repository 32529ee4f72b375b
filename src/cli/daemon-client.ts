/** Asking the node daemon (`gitfs serve`) of a repository over its Unix socket (docs/PROTOCOL.md "Node daemon socket"). */
import { resolve } from 'node:path';
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import { daemonSocketPath } from '../node/daemon.js';
import { readRepositoryConfig } from '../repo/repository.js';
import { askUnixSocket } from '../util/unix-socket.js';

/** One request; GITFS_NOT_SERVING when no daemon runs for `gitDir`, GITFS_NOT_A_REPOSITORY when it is no repository. */
export async function askDaemon(gitDir: string, req: unknown, timeoutMs = 10_000): Promise<unknown> {
  const a = await askUnixSocket(daemonSocketPath(gitDir), req, { timeoutMs, peer: 'the node daemon', failCode: ErrorCodes.NOT_SERVING });
  if (a === undefined) {
    // No repository there at all says so (GITFS_NOT_A_REPOSITORY), rather than that nothing serves it.
    await readRepositoryConfig(resolve(gitDir)).catch((e: unknown) => {
      if (isGitfsError(e, ErrorCodes.NOT_A_REPOSITORY)) throw e;
    });
    throw new GitfsError(ErrorCodes.NOT_SERVING, `no node daemon runs for ${gitDir} (start gitfs serve)`, { path: gitDir });
  }
  return a;
}
