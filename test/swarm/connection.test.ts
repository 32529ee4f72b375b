import assert from 'node:assert/strict';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { initCluster, loadMembership } from '../../src/cluster/cluster-store.js';
import { clientOptions, serverOptions } from '../../src/cluster/tls.js';
import { hashObject } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { BlockPool } from '../../src/swarm/block-pool.js';
import { SwarmConnection } from '../../src/swarm/connection.js';
import type { SwarmMessage, WireObject } from '../../src/swarm/messages.js';
import type { ClusterTrust, NodeIdentity } from '../../src/cluster/identity.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('swarm connection', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());
  let identity: NodeIdentity;
  let trust: ClusterTrust;
  let id: NodeId;
  const infoHash = Buffer.alloc(20, 7);

  before(async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    await initCluster(repo.gitDir, Date.now());
    ({ identity, trust } = await loadMembership(repo.gitDir, Date.now()));
    await repo.close();
    id = identity.nodeId;
  });

  /**
   * A member's TLS server whose connections are SwarmConnections (their messages to
   * `onMessage`, their end to `closed`), and a member's TLS socket connected to it.
   */
  async function tlsPair(onMessage: (c: SwarmConnection, m: SwarmMessage) => void = () => undefined): Promise<{ server: Server; socket: TLSSocket; peerSocket: Promise<TLSSocket>; closed: Promise<string> }> {
    let accepted: (s: TLSSocket) => void = () => undefined;
    let ended: (reason: string) => void = () => undefined;
    const peerSocket = new Promise<TLSSocket>((resolve) => (accepted = resolve));
    const closed = new Promise<string>((resolve) => (ended = resolve));
    const server = createServer(serverOptions(identity, trust), (socket) => {
      accepted(socket);
      new SwarmConnection(socket, id, { infoHash, selfId: id, initiator: false, pool: new BlockPool(8) }, { onMessage, onClose: (_c, reason) => ended(reason) });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...clientOptions(identity, trust) }, () => resolve(s));
      s.once('error', reject);
    });
    return { server, socket, peerSocket, closed };
  }

  it('counts what waits in the wire as queued: a sender waits while the peer does not read, and goes on when it does', async () => {
    let received = 0;
    const { server, socket, peerSocket } = await tlsPair((_c, m) => void (m.kind === 'objects' && (received += m.objects.length)));
    const conn = new SwarmConnection(socket, id, { infoHash, selfId: id, initiator: true, pool: new BlockPool(8) }, { onMessage: () => undefined, onClose: () => undefined });
    try {
      // Handshakes done: a small message goes through.
      const one = pseudoRandomBytes(100, 'one');
      conn.send({ kind: 'objects', request: 1, objects: [{ oid: hashObject('blob', one), type: 'blob', content: one }], done: false });
      for (let i = 0; i < 500 && received === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(received, 1);

      // The peer stops reading; 64 MiB go out in 1 MiB messages, more than the kernel's buffers hold.
      (await peerSocket).pause();
      const content = pseudoRandomBytes(1 << 20, 'big');
      const big: WireObject = { oid: hashObject('blob', content), type: 'blob', content };
      for (let i = 0; i < 64; i++) conn.send({ kind: 'objects', request: 2, objects: [big], done: false });
      let drained = false;
      const waiting = conn.drained(4 << 20).then(() => (drained = true));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(drained, false, 'drained() resolved while the peer read nothing');
      // One write at a time in the socket: Node would join queued writes into a new buffer (a copy).
      assert.ok(socket.writableLength <= (1 << 20) + 1024, `${socket.writableLength} bytes queued in the socket`);
      (await peerSocket).resume();
      await waiting;
      for (let i = 0; i < 1000 && received < 65; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(received, 65);
    } finally {
      conn.close('done');
      server.close();
    }
  });

  it('a sender pacing itself with drained() from before the handshakes waits for them: nothing piles up unencoded', async () => {
    let received = 0;
    const { server, socket } = await tlsPair((_c, m) => void (m.kind === 'objects' && (received += m.objects.length)));
    let reason = '';
    const conn = new SwarmConnection(socket, id, { infoHash, selfId: id, initiator: true, pool: new BlockPool(8) }, { onMessage: () => undefined, onClose: (_c, r) => (reason = r) });
    try {
      // 160 MiB in 1 MiB messages, more than a peer may leave unread: paced, none of it is at once.
      const content = pseudoRandomBytes(1 << 20, 'paced');
      const big: WireObject = { oid: hashObject('blob', content), type: 'blob', content };
      for (let i = 0; i < 160 && conn.isOpen; i++) {
        conn.send({ kind: 'objects', request: 1, objects: [big], done: false });
        await conn.drained(4 << 20);
      }
      for (let i = 0; i < 1000 && received < 160 && conn.isOpen; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(reason, '');
      assert.equal(received, 160);
    } finally {
      conn.close('done');
      server.close();
    }
  });

  /** A BitTorrent frame: length, message id, payload. */
  const btFrame = (id: number, payload: Buffer): Buffer => {
    const frame = Buffer.alloc(5 + payload.length);
    frame.writeUInt32BE(1 + payload.length, 0);
    frame[4] = id;
    payload.copy(frame, 5);
    return frame;
  };
  /** An extended handshake (BEP 10: message 20, extension 0) of a bencoded payload. */
  const extendedHandshake = (bencoded: string): Buffer => btFrame(20, Buffer.concat([Buffer.from([0]), Buffer.from(bencoded, 'latin1')]));

  /** Sends a BitTorrent handshake for the cluster, then `frames`, and gives why the connection closed. */
  async function closedBy(...frames: Buffer[]): Promise<string> {
    const { server, socket, closed } = await tlsPair();
    try {
      const reserved = Buffer.alloc(8);
      reserved[5] = 0x10; // the extension protocol (BEP 10)
      socket.write(Buffer.concat([Buffer.from('\x13BitTorrent protocol', 'latin1'), reserved, infoHash, Buffer.alloc(20, 1)]));
      for (const f of frames) socket.write(f);
      return await closed;
    } finally {
      socket.destroy();
      server.close();
    }
  }

  it('a malformed extended handshake ends the connection, not the process', async () => {
    // {m: {gitfs_swarm: {toString: "x"}}}: the library calls info.m[name].toString().
    assert.match(await closedBy(extendedHandshake('d1:md11:gitfs_swarmd8:toString1:xeee')), /unreadable wire message/);
  });

  it('a peer sending what gitfs does not use (a BitTorrent have or request, a second or oversized extended handshake) is dropped before the library keeps any of it', async () => {
    const good = extendedHandshake('d1:md11:gitfs_swarmi1eee');
    assert.match(await closedBy(good, btFrame(4, Buffer.from([0xff, 0xff, 0xff, 0xff]))), /^BitTorrent message 4, which gitfs does not use$/);
    assert.match(await closedBy(good, btFrame(6, Buffer.alloc(12))), /^BitTorrent message 6, which gitfs does not use$/);
    // Each extended handshake's names the library keeps for good: 2 000 new ones, again and again, grew the heap without bound.
    const names = Array.from({ length: 2000 }, (_, i) => `${String(i).padStart(8, '0')}i1e`).map((n) => `8:${n.slice(0, 8)}${n.slice(8)}`).join('');
    assert.match(await closedBy(good, extendedHandshake(`d1:md${names}ee`)), /^a second extended handshake$/);
    assert.match(await closedBy(extendedHandshake(`d1:md${names}ee`)), /^an extended handshake of \d+ bytes \(limit 16384\)$/);
  });

  it('a peer that leaves what it is sent unread is dropped before the queue grows past its bound', async () => {
    let heard = 0;
    const { server, socket, peerSocket } = await tlsPair(() => void heard++);
    let reason = '';
    const conn = new SwarmConnection(socket, id, { infoHash, selfId: id, initiator: true, pool: new BlockPool(8) }, { onMessage: () => undefined, onClose: (_c, r) => (reason = r) });
    try {
      // Handshakes done once a message goes through.
      conn.send({ kind: 'free' });
      for (let i = 0; i < 500 && heard === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(heard, 1);
      (await peerSocket).pause();
      // What a peer asking without reading draws: an answer (here a Free) per request, unread.
      for (let i = 0; i < 70_000 && conn.isOpen; i++) conn.send({ kind: 'free' });
      assert.equal(conn.isOpen, false);
      assert.match(reason, /leaves unread 65537 messages/);
    } finally {
      conn.close('done');
      socket.destroy();
      // Paused, the server's side would never read the end: it would hold the server (and the test run) open.
      (await peerSocket).destroy();
      server.close();
    }
  });
});
