/**
 * How a partial node reads what it lacks: the object database asks its promisor, which batches
 * misses and asks the daemon's object socket (a real Unix socket here, served by the real
 * server with a supply function standing in for the swarm). Hostile answers (wrong objects,
 * broken frames) are refused with stable codes; a daemon that does not run means "not found".
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, GitfsError } from '../../src/errors.js';
import { FrameReader, aliveFrame, endFrame, objectFrame } from '../../src/node/object-frames.js';
import { DaemonObjects, objectSocketPath, readThroughDaemon, serveObjectSocket } from '../../src/node/object-socket.js';
import type { GitObject } from '../../src/objects/object-store.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { Promisor } from '../../src/objects/promisor.js';
import { Repository } from '../../src/repo/repository.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

function blob(text: string): { oid: Oid; object: GitObject } {
  const content = Buffer.from(text);
  return { oid: hashObject('blob', content), object: { type: 'blob', content } };
}

async function rejects(p: Promise<unknown>, code: string): Promise<GitfsError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof GitfsError, `expected a GitfsError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, got success`);
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('node/object-socket: partial reads through the daemon', function () {
  after(cleanupTempDirs);

  it('frames survive any split of the byte stream', () => {
    const a = blob('a'.repeat(70_000));
    const b = blob('b');
    const bytes = Buffer.concat([...objectFrame(a.oid, a.object), aliveFrame(), ...objectFrame(b.oid, b.object), endFrame({ ok: true })]);
    for (const step of [1, 3, 4, 5, 4096, bytes.length]) {
      const reader = new FrameReader();
      const frames = [];
      for (let i = 0; i < bytes.length; i += step) frames.push(...reader.push(bytes.subarray(i, i + step)));
      assert.deepEqual(
        frames.map((f) => (f.kind === 'object' ? [f.oid, f.object.content.length] : f.kind === 'alive' ? ['alive'] : ['end', f.body])),
        [[a.oid, 70_000], ['alive'], [b.oid, 1], ['end', { ok: true }]],
        `split every ${step} bytes`,
      );
    }
    assert.throws(() => new FrameReader().push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1])), (e: unknown) => e instanceof GitfsError && e.code === ErrorCodes.PEER_FAILED);
    assert.throws(() => new FrameReader().push(Buffer.from([0, 0, 0, 1, 9])), (e: unknown) => e instanceof GitfsError && e.code === ErrorCodes.PEER_FAILED);
  });

  it('the promisor sends misses of one turn as one request, checks every object, and says which are absent', async () => {
    const have = [blob('one'), blob('two'), blob('three')];
    const asked: Oid[][] = [];
    const forged = blob('forged');
    const p = new Promisor({
      name: 'the test supplier',
      async supply(oids) {
        asked.push([...oids]);
        const out = new Map<Oid, GitObject>();
        for (const h of have) if (oids.includes(h.oid)) out.set(h.oid, h.object);
        if (oids.includes(forged.oid)) out.set(forged.oid, blob('not what was asked').object);
        return out;
      },
    });
    const got = await Promise.all(have.map((h) => p.read(h.oid)));
    assert.deepEqual(got.map((o) => o.content.toString()), ['one', 'two', 'three']);
    assert.equal(asked.length, 1, 'three misses in one turn: one request');
    assert.equal((await p.read(have[0]!.oid)).content.toString(), 'one');
    assert.equal(asked.length, 1, 'a second read comes from the cache');
    await rejects(p.read(blob('nobody').oid), ErrorCodes.OBJECT_NOT_FOUND);
    await rejects(p.read(forged.oid), ErrorCodes.CORRUPT_OBJECT);
  });

  it("a repository reads absent blobs through the daemon's socket, and only what it lacks", async () => {
    const dir = tempDir("object-socket");
    const repo = await Repository.init(join(dir, 'repo'));
    try {
      mkdirSync(join(repo.gitDir, 'gitfs'), { recursive: true });
      const remote = [blob('from a peer'), blob('x'.repeat(300_000))];
      const asked: Oid[][] = [];
      const server = await serveObjectSocket(objectSocketPath(repo.gitDir), async (oids) => {
        asked.push([...oids]);
        return new Map(remote.filter((r) => oids.includes(r.oid)).map((r) => [r.oid, r.object]));
      });
      try {
        readThroughDaemon(repo);
        assert.equal(await repo.objects.has(remote[0]!.oid), false);
        assert.equal((await repo.objects.read(remote[0]!.oid)).content.toString(), 'from a peer');
        assert.equal(await repo.objects.sizeOf(remote[1]!.oid), 300_000);
        await rejects(repo.objects.read(blob('absent everywhere').oid), ErrorCodes.OBJECT_NOT_FOUND);
        assert.equal(asked.length, 3);
        // A request line that never ends is cut off (bounded memory), and the server goes on.
        const sent = await new Promise<number>((resolve) => {
          const flood = createConnection(objectSocketPath(repo.gitDir));
          const piece = Buffer.alloc(1 << 20, 'x');
          let written = 0;
          const pump = (): void => {
            while (written < 64 << 20 && !flood.destroyed) {
              written += piece.length;
              if (!flood.write(piece)) return void flood.once('drain', pump);
            }
            flood.end();
          };
          flood.on('error', () => undefined);
          flood.on('close', () => resolve(written));
          flood.on('connect', pump);
        });
        assert.ok(sent < 64 << 20, `the server took ${sent} bytes of a request line before hanging up`);
        // A malformed request gets an error end frame, and the server goes on.
        await rejects(new DaemonObjects(objectSocketPath(repo.gitDir)).supply(['nope' as Oid]), ErrorCodes.PEER_FAILED);
        assert.equal((await new DaemonObjects(objectSocketPath(repo.gitDir)).supply([remote[0]!.oid])).size, 1);
      } finally {
        await server.close();
      }
      // No daemon: absent objects are just not found.
      await rejects(repo.objects.read(blob('no daemon').oid), ErrorCodes.OBJECT_NOT_FOUND);
    } finally {
      await repo.close();
    }
  });

  it('closing hangs up on a request whose answer still waits (on peers, for minutes), rather than waiting for it', async () => {
    const dir = tempDir('object-socket');
    mkdirSync(join(dir, 'gitfs'), { recursive: true });
    const server = await serveObjectSocket(objectSocketPath(dir), () => new Promise<never>(() => undefined));
    const asking = new DaemonObjects(objectSocketPath(dir)).supply([blob('on its way').oid]).then(
      () => 'answered',
      () => 'hung up',
    );
    await sleep(200);
    const closed = await Promise.race([server.close().then(() => 'closed'), sleep(5000).then(() => 'still waiting')]);
    assert.equal(closed, 'closed');
    assert.equal(await asking, 'hung up');
  });

  it('a socket that answers with a wrong object or garbage is refused with a stable code', async () => {
    const dir = tempDir("object-socket");
    const path = join(dir, 'objects.sock');
    const wanted = blob('wanted');
    let answer: (ask: Buffer) => Buffer[] = () => [];
    const server = createServer((socket) => socket.once('data', (ask) => socket.end(Buffer.concat(answer(ask)))));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const p = new Promisor(new DaemonObjects(path));
      answer = () => [...objectFrame(wanted.oid, blob('impostor').object), endFrame({ ok: true })];
      await rejects(p.read(wanted.oid), ErrorCodes.CORRUPT_OBJECT);
      answer = () => [Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')];
      await rejects(p.read(wanted.oid), ErrorCodes.PEER_FAILED);
      answer = () => [...objectFrame(wanted.oid, wanted.object)];
      await rejects(p.read(wanted.oid), ErrorCodes.NOT_SERVING);
      answer = () => [...objectFrame(wanted.oid, wanted.object), endFrame({ ok: true })];
      assert.equal((await p.read(wanted.oid)).content.toString(), 'wanted');
    } finally {
      await close(server);
    }
  });
});
