/**
 * The one-line request/answer service over a real Unix socket: answers, and clients that would
 * otherwise hold a server open forever (silent, or connected after their answer) cut off, so a
 * daemon's close() finishes; answers in no known shape refused with the caller's code.
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { askUnixSocket, serveUnixSocket } from '../../src/util/unix-socket.js';
import { ErrorCodes, GitfsError, isGitfsError } from '../../src/errors.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

const CLIENT_MS = 300;

describe('util/json-line over a Unix socket', function () {
  this.timeout(20_000);
  let server: Server | undefined;
  const clients: Socket[] = [];
  after(() => {
    for (const c of clients) c.destroy();
    server?.close();
    cleanupTempDirs();
  });

  async function serve(): Promise<string> {
    const path = join(tempDir('json-line'), 's.sock');
    server = await serveUnixSocket(path, async (req) => ({ echo: req }), CLIENT_MS);
    return path;
  }

  function connect(path: string, allowHalfOpen = false): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const c = createConnection({ path, allowHalfOpen }, () => resolve(c));
      c.on('error', reject);
      clients.push(c);
    });
  }

  /** Resolves with how long server.close() took. */
  function closeTime(s: Server): Promise<number> {
    const started = Date.now();
    return new Promise((resolve) => s.close(() => resolve(Date.now() - started)));
  }

  it('answers a request line', async () => {
    const path = await serve();
    assert.deepEqual(await askUnixSocket(path, { op: 'x' }, { timeoutMs: 5000, peer: 'test', failCode: ErrorCodes.NOT_SERVING }), { echo: { op: 'x' } });
    await closeTime(server as Server);
  });

  it('answers a failed system call (a full disk under a commit through the mount) as GITFS_IO with its errno, not as a bad argument; a GitfsError as it is', async () => {
    const path = join(tempDir('json-line'), 's.sock');
    server = await serveUnixSocket(path, async (req) => {
      if ((req as { op?: unknown }).op === 'io') throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      throw new GitfsError(ErrorCodes.UNKNOWN_BRANCH, 'no branch x', { branch: 'x' });
    }, CLIENT_MS);
    const ask = (op: string): Promise<unknown> => askUnixSocket(path, { op }, { timeoutMs: 5000, peer: 'test', failCode: ErrorCodes.NOT_SERVING });
    await assert.rejects(ask('io'), (e) => isGitfsError(e, ErrorCodes.IO) && e.data['errno'] === 'ENOSPC' && /no space left/.test(e.message));
    await assert.rejects(ask('other'), (e) => isGitfsError(e, ErrorCodes.UNKNOWN_BRANCH) && e.data['branch'] === 'x');
    await closeTime(server);
  });

  it('an answer too long for one line (past the longest string V8 holds, or over 64 Mi characters) is GITFS_ANSWER_TOO_LARGE, and the server goes on', async () => {
    const quarterGiB = 'x'.repeat(2 ** 28);
    const path = join(tempDir('json-line'), 's.sock');
    server = await serveUnixSocket(path, async (req) => {
      const op = (req as { op?: unknown }).op;
      // Twice the string: JSON.stringify throws RangeError "Invalid string length" (a `peers` table of that size did, and ended the daemon).
      if (op === 'huge') return [quarterGiB, quarterGiB];
      if (op === 'long') return quarterGiB.slice(0, 65 << 20);
      return { echo: req };
    }, CLIENT_MS);
    const ask = (op: string): Promise<unknown> => askUnixSocket(path, { op }, { timeoutMs: 20_000, peer: 'test', failCode: ErrorCodes.NOT_SERVING });
    await assert.rejects(ask('huge'), (e) => isGitfsError(e, ErrorCodes.ANSWER_TOO_LARGE) && /Invalid string length/.test(e.message));
    await assert.rejects(ask('long'), (e) => isGitfsError(e, ErrorCodes.ANSWER_TOO_LARGE) && /over 67108864/.test(e.message));
    assert.deepEqual(await ask('x'), { echo: { op: 'x' } });
    await closeTime(server);
  });

  it('a client that sends nothing, or half a line, is cut off: close() finishes', async () => {
    const path = await serve();
    const silent = await connect(path);
    const half = await connect(path);
    half.write('{"op":');
    const closed = Promise.all([silent, half].map((c) => new Promise((resolve) => c.once('close', resolve))));
    const ms = await closeTime(server as Server);
    await closed;
    assert.ok(ms >= CLIENT_MS - 50 && ms < 5000, `close() took ${ms} ms`);
  });

  it('a client that stays connected after its answer is cut off too', async () => {
    const path = await serve();
    const c = await connect(path, true);
    c.setEncoding('utf8');
    let answer = '';
    c.on('data', (t: string) => (answer += t));
    // Never ends its side: allowHalfOpen keeps the connection open from here unless the server cuts it.
    c.write('{"op":"y"}\n');
    await sleep(100);
    assert.match(answer, /"echo":\{"op":"y"\}/);
    const ms = await closeTime(server as Server);
    assert.ok(ms >= CLIENT_MS - 150 && ms < 5000, `close() took ${ms} ms`);
  });

  it('an answer in no known shape is GITFS_NOT_SERVING here (the given code), not a crash', async () => {
    // The last: a code this gitfs does not know (a newer one's) would have no exit code; the message keeps it.
    for (const line of ['{"revocations":"x"}', '[1]', 'null', '{"ok":false}', '{"ok":false,"error":null}', '{"ok":false,"error":{"code":1}}', '{"ok":"yes","result":1}', '{"ok":false,"error":{"code":"GITFS_FROM_THE_FUTURE","message":"m"}}']) {
      const path = join(tempDir('json-line'), 'raw.sock');
      const raw = createServer((c) => c.once('data', () => c.end(`${line}\n`)));
      await new Promise<void>((resolve) => raw.listen(path, resolve));
      try {
        await assert.rejects(askUnixSocket(path, { op: 'x' }, { timeoutMs: 5000, peer: 'test', failCode: ErrorCodes.NOT_SERVING }), (e: unknown) => {
          assert.ok(isGitfsError(e), `${line}: ${String(e)}`);
          assert.equal(e.code, ErrorCodes.NOT_SERVING, `${line}: ${e.message}`);
          return true;
        });
      } finally {
        await closeTime(raw);
      }
    }
  });

  it('an answer may be large (a status of 100 000 changed paths), a request may not', async () => {
    const changes = Array.from({ length: 100_000 }, (_, i) => ({ path: `dir/sub/file-${i}.txt`, kind: 'added' }));
    const path = join(tempDir('json-line'), 'big.sock');
    const big = await serveUnixSocket(path, async () => changes, CLIENT_MS);
    try {
      const got = (await askUnixSocket(path, { op: 'status' }, { timeoutMs: 10_000, peer: 'test', failCode: ErrorCodes.NOT_SERVING })) as unknown[];
      assert.equal(got.length, changes.length);
      await assert.rejects(askUnixSocket(path, { op: 'x'.repeat(65 * 1024) }, { timeoutMs: 10_000, peer: 'test', failCode: ErrorCodes.NOT_SERVING }));
    } finally {
      await closeTime(big);
    }
  });
});
