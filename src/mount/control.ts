/**
 * The mount's control socket, `<git dir>/gitfs/control.sock` (mode 0600): while a mount owns
 * the working layers, `gitfs commit/status/reset/umount` send it one JSON request per
 * connection and get one JSON answer (docs/PROTOCOL.md, "Control socket").
 */
import { chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode, isGitfsError, type ErrorCode } from '../errors.js';

export type ControlRequest =
  | { readonly op: 'ping' }
  | { readonly op: 'commit'; readonly branch: string; readonly message: string }
  | { readonly op: 'status'; readonly branch?: string }
  | { readonly op: 'reset'; readonly branch: string }
  | { readonly op: 'unmount' };

type Answer = { ok: true; result: unknown } | { ok: false; error: { code: string; message: string; data?: Record<string, unknown> } };

const MAX_REQUEST = 64 * 1024;
const MAX_SOCKET_PATH = 107;

export function controlPath(gitDir: string): string {
  return join(gitDir, 'gitfs', 'control.sock');
}

function checkedPath(gitDir: string): string {
  const path = controlPath(gitDir);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `repository path too long for the mount's control socket (${path}); use a shorter path`, { path });
  }
  return path;
}

/** Serves requests until closed. Call only while holding the working layers (no other owner). */
export async function serveControl(gitDir: string, handle: (req: ControlRequest) => Promise<unknown>): Promise<Server> {
  const path = checkedPath(gitDir);
  await unlink(path).catch((e: unknown) => {
    if (errnoCode(e) !== 'ENOENT') throw e;
  });
  const server = createServer((socket) => {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (text: string) => {
      buffered += text;
      if (buffered.length > MAX_REQUEST) return socket.destroy();
      const end = buffered.indexOf('\n');
      if (end < 0) return;
      socket.pause();
      let answer: Promise<Answer>;
      try {
        const req = JSON.parse(buffered.slice(0, end)) as ControlRequest;
        answer = handle(req).then((result): Answer => ({ ok: true, result: result ?? null }));
      } catch (e) {
        answer = Promise.reject(e);
      }
      answer
        .catch((e: unknown): Answer => ({
          ok: false,
          error: isGitfsError(e) ? { code: e.code, message: e.message, data: { ...e.data } } : { code: ErrorCodes.BAD_ARGUMENT, message: (e as Error).message },
        }))
        .then((a) => socket.end(`${JSON.stringify(a)}\n`));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  return server;
}

/** Sends one request; undefined when no mount answers (no socket, or one left by a dead process). */
export function askMount(gitDir: string, req: ControlRequest, timeoutMs = 600_000): Promise<unknown> {
  const path = controlPath(gitDir);
  // A path too long for a socket can have no mount behind it (the mount refuses such a repository).
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => socket.destroy(new GitfsError(ErrorCodes.MOUNT_FAILED, `the mount did not answer within ${timeoutMs / 1000} s`)));
    socket.on('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on('data', (t: string) => (text += t));
    socket.on('error', (e) => {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') resolve(undefined);
      else reject(e);
    });
    socket.on('end', () => {
      let a: Answer;
      try {
        a = JSON.parse(text) as Answer;
      } catch {
        return reject(new GitfsError(ErrorCodes.MOUNT_FAILED, 'the mount sent an unreadable answer'));
      }
      if (a.ok) resolve(a.result);
      else reject(new GitfsError(a.error.code as ErrorCode, a.error.message, a.error.data ?? {}));
    });
  });
}
