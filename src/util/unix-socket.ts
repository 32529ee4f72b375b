/**
 * A local service on a Unix socket (mode 0600: only its owner's user), one JSON request per
 * connection (src/util/json-line.ts). Used by the mount's control socket and the node daemon's.
 */
import { chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { ErrorCodes, GitfsError, errnoCode, type ErrorCode } from '../errors.js';
import { answerOneLine, askOneLine } from './json-line.js';

/** The longest path Linux accepts for a Unix socket (sun_path holds 108 bytes with the NUL). */
export const MAX_SOCKET_PATH = 107;

export function checkSocketPath(path: string, what: string): string {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `repository path too long for the ${what} (${path}); use a shorter path`, { path });
  }
  return path;
}

/** Serves requests at `path` (replacing a socket left there) until the server is closed; `clientMs` as for answerOneLine. */
export function serveUnixSocket(path: string, handle: (req: unknown) => Promise<unknown>, clientMs?: number): Promise<Server> {
  return listenUnixSocket(path, (socket) => answerOneLine(socket, handle, clientMs));
}

/** Listens at `path` (replacing a socket left there, mode 0600), each connection to `onConnection`. */
export async function listenUnixSocket(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  await unlink(path).catch((e: unknown) => {
    if (errnoCode(e) !== 'ENOENT') throw e;
  });
  const server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  return server;
}

/** Sends one request; undefined when nothing answers at `path` (no socket, or one left by a dead process). */
export function askUnixSocket(path: string, req: unknown, options: { timeoutMs: number; peer: string; failCode: ErrorCode }): Promise<unknown> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.setTimeout(options.timeoutMs, () =>
      socket.destroy(new GitfsError(options.failCode, `${options.peer} did not answer within ${options.timeoutMs / 1000} s`)),
    );
    socket.once('error', (e) => {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') resolve(undefined);
      else if (e instanceof GitfsError) reject(e);
      // EACCES (another user's socket) and the like: a clear error, not a crash.
      else reject(new GitfsError(options.failCode, `cannot reach ${options.peer} at ${path}: ${e.message}`, { path, errno: code }));
    });
    socket.on('connect', () => askOneLine(socket, req, options.peer, options.failCode).then(resolve, reject));
  });
}
