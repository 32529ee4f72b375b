/**
 * The node daemon's object socket (`<gitdir>/gitfs/objects.sock`, mode 0600): how a mount or a
 * CLI command on a partial node gets the blobs it lacks. One request per connection, a JSON line
 * `{"oids":[…]}`; the answer is frames (object-frames.ts): the objects the daemon had or fetched
 * from its peers, then an end frame. Both sides are here: the daemon's server and the client
 * the object database's promisor uses.
 */
import { createConnection, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode, isGitfsError } from '../errors.js';
import type { GitObject } from '../objects/object-store.js';
import { isOid, type Oid } from '../objects/oid.js';
import { Promisor, type ObjectSupplier } from '../objects/promisor.js';
import type { Repository } from '../repo/repository.js';
import { listenUnixSocket } from '../util/unix-socket.js';
import { aliveFrame, endFrame, FrameReader, objectFrame } from './object-frames.js';

export function objectSocketPath(gitDir: string): string {
  return join(gitDir, 'gitfs', 'objects.sock');
}

/** Ids per request. */
export const MAX_REQUEST_OIDS = 1024;
const MAX_REQUEST_LINE = 64 * 1024;
/** A request whose answer stalls this long is given up. */
const IDLE_MS = 60_000;
/** How often the daemon says an answer is still being made (object-frames.ts `aliveFrame`). */
const ALIVE_MS = 20_000;

export interface ObjectSocketServer {
  /**
   * Stops listening and hangs up on the requests under way: their answers may wait on peers for
   * minutes (a blob in parts), kept alive by frames, and a daemon's stop must not wait for them
   * (the fetches themselves end with the swarm's stop).
   */
  close(): Promise<void>;
}

/** Serves the socket at `path` (replacing one left there) with `supply`. */
export async function serveObjectSocket(path: string, supply: (oids: readonly Oid[]) => Promise<ReadonlyMap<Oid, GitObject>>): Promise<ObjectSocketServer> {
  const open = new Set<Socket>();
  const server: Server = await listenUnixSocket(path, (socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    void answer(socket, supply);
  });
  return {
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  };
}

async function answer(socket: Socket, supply: (oids: readonly Oid[]) => Promise<ReadonlyMap<Oid, GitObject>>): Promise<void> {
  socket.on('error', () => socket.destroy());
  // A client that sends nothing, or stops reading, is dropped (it would hold the daemon's stop).
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  try {
    const oids = parseRequest(await requestLine(socket));
    // A blob fetched in parts may take minutes: the client hears that the answer is coming.
    const alive = setInterval(() => socket.destroyed || socket.write(aliveFrame()), ALIVE_MS);
    // Hung up on (a stop, a client gone), it says nothing more, however long the supply takes.
    socket.once('close', () => clearInterval(alive));
    const supplied = await supply(oids).finally(() => clearInterval(alive));
    for (const [oid, o] of supplied) {
      for (const part of objectFrame(oid, o)) {
        if (socket.destroyed) return;
        if (!socket.write(part)) await drainOrClose(socket);
      }
    }
    socket.end(endFrame({ ok: true }));
  } catch (e) {
    const error = isGitfsError(e) ? { code: e.code, message: e.message } : { code: ErrorCodes.IO, message: (e as Error).message };
    if (!socket.destroyed) socket.end(endFrame({ ok: false, error }));
  }
}

/** Resolves once the socket can take more, or is gone (never waits on a destroyed socket). */
function drainOrClose(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.once('drain', done);
    socket.once('close', done);
  });
}

function requestLine(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (t: string) => {
      text += t;
      const end = text.indexOf('\n');
      if (end >= 0) {
        socket.removeAllListeners('data');
        socket.pause();
        resolve(text.slice(0, end));
      } else if (text.length > MAX_REQUEST_LINE) {
        socket.removeAllListeners('data');
        socket.destroy();
        reject(new GitfsError(ErrorCodes.BAD_ARGUMENT, 'request line too long'));
      }
    });
    const none = (): void => reject(new GitfsError(ErrorCodes.BAD_ARGUMENT, 'no request'));
    socket.once('end', none);
    socket.once('close', none);
  });
}

function parseRequest(line: string): Oid[] {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'the request is not JSON');
  }
  const oids = (req as { oids?: unknown } | null)?.oids;
  if (!Array.isArray(oids) || oids.length === 0 || oids.length > MAX_REQUEST_OIDS || !oids.every((o) => typeof o === 'string' && isOid(o))) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `a request names 1 to ${MAX_REQUEST_OIDS} full object ids`);
  }
  return oids as Oid[];
}

/** The client: asks the daemon at `path`. A daemon that does not run supplies nothing. */
export class DaemonObjects implements ObjectSupplier {
  readonly name = 'the node daemon';

  constructor(private readonly path: string) {}

  supply(oids: readonly Oid[]): Promise<ReadonlyMap<Oid, GitObject>> {
    const got = new Map<Oid, GitObject>();
    const reader = new FrameReader();
    return new Promise((resolve, reject) => {
      const socket = createConnection(this.path);
      const fail = (e: GitfsError): void => {
        socket.destroy();
        reject(e);
      };
      socket.setTimeout(IDLE_MS, () => fail(new GitfsError(ErrorCodes.NOT_SERVING, `${this.name} sent nothing for ${IDLE_MS / 1000} s`)));
      socket.once('error', (e) => {
        const code = errnoCode(e);
        if (code === 'ENOENT' || code === 'ECONNREFUSED') fail(new GitfsError(ErrorCodes.OBJECT_NOT_FOUND, `no node daemon runs to fetch ${oids[0]} from peers`, { oid: oids[0] }));
        else fail(new GitfsError(ErrorCodes.NOT_SERVING, `${this.name}'s object socket failed: ${e.message}`));
      });
      socket.once('connect', () => socket.write(`${JSON.stringify({ oids })}\n`));
      socket.on('data', (data: Buffer) => {
        let frames;
        try {
          frames = reader.push(data);
        } catch (e) {
          return fail(e as GitfsError);
        }
        for (const f of frames) {
          if (f.kind === 'object') {
            got.set(f.oid, f.object);
            continue;
          }
          if (f.kind === 'alive') continue;
          const body = f.body as { ok?: boolean; error?: { code: string; message: string } };
          socket.destroy();
          if (body.ok === true) return resolve(got);
          return reject(new GitfsError(ErrorCodes.PEER_FAILED, `${this.name} could not fetch objects: ${body.error?.message ?? 'no reason given'}`));
        }
      });
      socket.once('end', () => fail(new GitfsError(ErrorCodes.NOT_SERVING, `${this.name} closed the object socket before the end of its answer`)));
    });
  }
}

/**
 * Lets `repo` read what it lacks through the node daemon (a partial node's blobs; a damaged
 * copy's replacement). Never for the daemon's own repository: it would ask itself.
 */
export function readThroughDaemon(repo: Repository): void {
  repo.objects.setPromisor(new Promisor(new DaemonObjects(objectSocketPath(repo.gitDir))));
}
