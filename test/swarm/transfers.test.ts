import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { NodeId } from '../../src/cluster/node-id.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { BlockPool } from '../../src/swarm/block-pool.js';
import type { SwarmConnection } from '../../src/swarm/connection.js';
import { LocalObjects } from '../../src/swarm/local-objects.js';
import { PieceNews } from '../../src/swarm/piece-news.js';
import { TreeCache } from '../../src/swarm/tree-cache.js';
import { MAX_SUBSCRIPTIONS, Transfers } from '../../src/swarm/transfers.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

const someCommit = (): Oid => hashObject('commit', randomBytes(16));

describe('closures followed per connection (transfers.ts)', function () {
  this.timeout(30_000);
  after(cleanupTempDirs);

  let repo: Repository;
  let local: LocalObjects;
  before(async () => {
    repo = await Repository.init(join(tempDir('transfers'), 'repo'));
    local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
  });
  after(async () => {
    await local.close();
    await repo.close();
  });

  const conn = (nodeId: string): SwarmConnection => ({ nodeId: nodeId as NodeId, isOpen: true, send: () => undefined }) as unknown as SwarmConnection;

  it('counts only the closures a connection follows now: those forgotten or evicted no longer count against its limit', () => {
    const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()));
    const peer = conn('p1');
    // A long-lived connection follows one closure per fetch, each forgotten after it (a failed fetch).
    for (let i = 0; i < 3 * MAX_SUBSCRIPTIONS; i++) {
      const commit = someCommit();
      assert.ok(transfers.reserve(peer), `closure ${i + 1} refused`);
      transfers.subscribe(transfers.get(commit, 0), peer);
      transfers.forget(commit, 0);
    }
    // Up to the limit at once; one more is refused.
    const followed = Array.from({ length: MAX_SUBSCRIPTIONS }, () => {
      assert.ok(transfers.reserve(peer));
      const t = transfers.get(someCommit(), 0);
      transfers.subscribe(t, peer);
      return t;
    });
    assert.equal(transfers.reserve(peer), false, `a connection follows at most ${MAX_SUBSCRIPTIONS} closures at once`);
    // Other closures push those out (none is being fetched): the connection may follow new ones again.
    for (let i = 0; i < 256; i++) transfers.get(someCommit(), 0);
    assert.ok(followed.every((t) => t.subscribers.size === 0), 'evicted closures keep no followers');
    assert.ok(transfers.reserve(peer), 'the evicted closures still counted');
  });

  it('a subscription to a closure forgotten while its walk was queued is not counted', () => {
    const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()));
    const peer = conn('p2');
    for (let i = 0; i < 3 * MAX_SUBSCRIPTIONS; i++) {
      const commit = someCommit();
      assert.ok(transfers.reserve(peer), `closure ${i + 1} refused`);
      const t = transfers.get(commit, 0);
      // Forgotten (a failed fetch) before the subscription lands.
      transfers.forget(commit, 0);
      transfers.subscribe(t, peer);
      assert.equal(t.subscribers.size, 0, 'an orphaned closure takes no followers');
    }
  });
});
