/**
 * One request, one answer, each a line of JSON, over any stream socket (Unix, TCP, TLS). The
 * mount's control socket, the node daemon's socket and the cluster's join service speak it
 * (docs/PROTOCOL.md). Answers are `{"ok":true,"result":…}` or `{"ok":false,"error":{code,message,data}}`;
 * the asking side rethrows an error answer as the GitfsError it was (one of a code it does not know as its own failure).
 */
import type { Duplex } from 'node:stream';
import { ErrorCodes, GitfsError, errnoCode, isErrorCode, isGitfsError, type ErrorCode } from '../errors.js';

export type Answer = { ok: true; result: unknown } | { ok: false; error: { code: string; message: string; data?: Record<string, unknown> } };

/** A request is a command and its arguments: longer, it is nobody's we know. */
const MAX_REQUEST = 64 * 1024;
/**
 * An answer from a local socket may list a lot (`gitfs status` of 100 000 changed paths: the
 * test's); what it holds is held once more, parsed. 64 KiB, as requests, was too little for a
 * status of many changes. Counted in characters (UTF-16 units), as the answer is read.
 */
const MAX_ANSWER = 64 << 20;
/** What a remote peer may answer (a revocation list, a join): another node must not make this one hold 64 MiB. */
export const REMOTE_MAX_ANSWER = 1 << 20;
/** How long a client has to send its request line, and to close once answered. */
const CLIENT_MS = 30_000;

/**
 * What an error becomes in an answer: a GitfsError as it is; a system call's failure (a full disk
 * under a commit through the mount: ENOSPC) GITFS_IO, as the CLI reports one of its own; anything
 * else (a request line that is no JSON) GITFS_BAD_ARGUMENT.
 */
function errorAnswer(e: unknown): { code: string; message: string; data?: Record<string, unknown> } {
  if (isGitfsError(e)) return { code: e.code, message: e.message, data: { ...e.data } };
  const errno = errnoCode(e);
  if (errno !== undefined && /^E[A-Z0-9]+$/.test(errno)) return { code: ErrorCodes.IO, message: (e as Error).message, data: { errno } };
  return { code: ErrorCodes.BAD_ARGUMENT, message: (e as Error).message };
}

/**
 * The line that carries `a`. An answer longer than any client reads (MAX_ANSWER), or that does not
 * serialise at all (a `peers` table past the longest string V8 holds: RangeError), is answered as
 * GITFS_ANSWER_TOO_LARGE: the throw, in a promise's callback, was an unhandled rejection that
 * ended the daemon.
 */
function answerLine(a: Answer): string {
  let line: string;
  try {
    line = JSON.stringify(a);
  } catch (e) {
    return tooLarge(`the answer does not serialise: ${(e as Error).message}`);
  }
  return line.length > MAX_ANSWER ? tooLarge(`the answer is ${line.length} characters, over ${MAX_ANSWER}`) : `${line}\n`;
}

function tooLarge(message: string): string {
  const a: Answer = { ok: false, error: { code: ErrorCodes.ANSWER_TOO_LARGE, message } };
  return `${JSON.stringify(a)}\n`;
}

/**
 * Reads one request line from `socket`, answers it with `handle`'s result, and ends the socket.
 * A client that sends no full line, or stays connected after its answer, is cut off after
 * `clientMs` (30 s): an idle one must not hold up the server's close (a daemon's shutdown).
 */
export function answerOneLine(socket: Duplex, handle: (req: unknown) => Promise<unknown>, clientMs = CLIENT_MS): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  let idle = setTimeout(() => socket.destroy(), clientMs);
  socket.once('close', () => clearTimeout(idle));
  const onData = (text: string): void => {
    buffered += text;
    if (buffered.length > MAX_REQUEST) return void socket.destroy();
    const end = buffered.indexOf('\n');
    if (end < 0) return;
    socket.off('data', onData);
    socket.pause();
    // The handler takes what it takes (a commit, a fetch); the client's time starts again after.
    clearTimeout(idle);
    let answer: Promise<Answer>;
    try {
      const req: unknown = JSON.parse(buffered.slice(0, end));
      answer = handle(req).then((result): Answer => ({ ok: true, result: result ?? null }));
    } catch (e) {
      answer = Promise.reject(e);
    }
    answer
      .catch((e: unknown): Answer => ({ ok: false, error: errorAnswer(e) }))
      .then((a) => {
        socket.end(answerLine(a));
        if (!socket.destroyed) idle = setTimeout(() => socket.destroy(), clientMs);
      });
  };
  socket.on('data', onData);
}

/**
 * Writes `req` once `socket` is ready (call it from the connect event) and resolves with the
 * answer's result. `peer` names the other side in errors; `failCode` is used when it answers nonsense
 * (or too much: over `maxAnswer` characters).
 */
export function askOneLine(socket: Duplex, req: unknown, peer: string, failCode: ErrorCode, maxAnswer = MAX_ANSWER): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (t: string) => {
      text += t;
      if (text.length > maxAnswer) socket.destroy(new GitfsError(failCode, `${peer} sent an answer over ${maxAnswer} characters`));
    });
    socket.on('error', reject);
    socket.on('end', () => {
      let a: unknown;
      try {
        a = JSON.parse(text);
      } catch {
        return reject(new GitfsError(failCode, `${peer} sent an unreadable answer`));
      }
      // The other side may be anyone: an answer is read only in the shape of an Answer.
      if (isRecord(a) && a.ok === true && 'result' in a) return resolve(a.result);
      const error = isRecord(a) && a.ok === false ? a.error : undefined;
      if (isRecord(error) && typeof error.code === 'string' && typeof error.message === 'string') {
        const data = isRecord(error.data) ? error.data : {};
        // A code of a newer gitfs (or of nobody's) would have no exit code here: the asker's own, the original kept in the message and data.
        if (!isErrorCode(error.code)) return reject(new GitfsError(failCode, `${peer}: ${error.message} [${error.code}]`, { ...data, peerCode: error.code }));
        return reject(new GitfsError(error.code, error.message, data));
      }
      reject(new GitfsError(failCode, `${peer} sent an answer in no known shape`));
    });
    socket.write(`${JSON.stringify(req)}\n`);
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
