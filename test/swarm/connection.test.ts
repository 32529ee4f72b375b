import assert from 'node:assert/strict';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { initCluster, loadMembership } from '../../src/cluster/cluster-store.js';
import { clientOptions, serverOptions } from '../../src/cluster/tls.js';
import { hashObject } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { BlockPool } from '../../src/swarm/block-pool.js';
import { SwarmConnection } from '../../src/swarm/connection.js';
import type { WireObject } from '../../src/swarm/messages.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('swarm connection', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('counts what waits in the wire as queued: a sender waits while the peer does not read, and goes on when it does', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    await initCluster(repo.gitDir, Date.now());
    const { identity, trust } = await loadMembership(repo.gitDir, Date.now());
    await repo.close();
    const id = identity.nodeId;
    const infoHash = Buffer.alloc(20, 7);
    let received = 0;
    let peerSocket: TLSSocket | undefined;
    const server = createServer(serverOptions(identity, trust), (socket) => {
      peerSocket = socket;
      new SwarmConnection(socket, id, { infoHash, selfId: id, initiator: false, pool: new BlockPool(8) }, {
        onMessage: (_c, m) => void (m.kind === 'objects' && (received += m.objects.length)),
        onClose: () => undefined,
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...clientOptions(identity, trust) }, () => resolve(s));
      s.once('error', reject);
    });
    const conn = new SwarmConnection(socket, id, { infoHash, selfId: id, initiator: true, pool: new BlockPool(8) }, { onMessage: () => undefined, onClose: () => undefined });
    try {
      // Handshakes done: a small message goes through.
      const one = pseudoRandomBytes(100, 'one');
      conn.send({ kind: 'objects', request: 1, objects: [{ oid: hashObject('blob', one), type: 'blob', content: one }], done: false });
      for (let i = 0; i < 500 && received === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(received, 1);

      // The peer stops reading; 64 MiB go out in 1 MiB messages, more than the kernel's buffers hold.
      (peerSocket as TLSSocket).pause();
      const content = pseudoRandomBytes(1 << 20, 'big');
      const big: WireObject = { oid: hashObject('blob', content), type: 'blob', content };
      for (let i = 0; i < 64; i++) conn.send({ kind: 'objects', request: 2, objects: [big], done: false });
      let drained = false;
      const waiting = conn.drained(4 << 20).then(() => (drained = true));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(drained, false, 'drained() resolved while the peer read nothing');
      // One write at a time in the socket: Node would join queued writes into a new buffer (a copy).
      assert.ok(socket.writableLength <= (1 << 20) + 1024, `${socket.writableLength} bytes queued in the socket`);
      (peerSocket as TLSSocket).resume();
      await waiting;
      for (let i = 0; i < 1000 && received < 65; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(received, 65);
    } finally {
      conn.close('done');
      server.close();
    }
  });
});
