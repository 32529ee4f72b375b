import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { NodeId } from '../../src/cluster/node-id.js';
import { encodeCommit } from '../../src/objects/commit.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { encodeTree, TreeModes } from '../../src/objects/tree.js';
import { Repository } from '../../src/repo/repository.js';
import { BlockPool } from '../../src/swarm/block-pool.js';
import type { SwarmConnection } from '../../src/swarm/connection.js';
import { LocalObjects } from '../../src/swarm/local-objects.js';
import { PieceNews } from '../../src/swarm/piece-news.js';
import { TreeCache } from '../../src/swarm/tree-cache.js';
import type { Closure } from '../../src/swarm/closure.js';
import { MAX_SUBSCRIPTIONS, Transfers } from '../../src/swarm/transfers.js';
import { BASE_CHAIN_MAX } from '../../src/swarm/base-chain.js';
import { captureLogger } from '../multicast/fixture.js';
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

  it('evicted closures keep no followers', () => {
    const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()));
    const peer = conn('p1');
    const followed = Array.from({ length: MAX_SUBSCRIPTIONS }, () => {
      assert.ok(transfers.reserve(peer));
      const t = transfers.get(someCommit(), 0);
      transfers.subscribe(t, peer);
      return t;
    });
    assert.ok(followed.every((t) => t.subscribers.has(peer)));
    // Other closures push those out (none is being fetched): they keep no followers.
    for (let i = 0; i < 256; i++) transfers.get(someCommit(), 0);
    assert.ok(followed.every((t) => t.subscribers.size === 0), 'evicted closures keep no followers');
  });

  it('a connection following one closure per head it fetches is never cut off: the 65th lets the oldest go', () => {
    const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()));
    const peer = conn('p3');
    const all = Array.from({ length: 3 * MAX_SUBSCRIPTIONS }, (_, i) => {
      assert.ok(transfers.reserve(peer), `closure ${i + 1} refused`);
      const t = transfers.get(someCommit(), 0);
      transfers.subscribe(t, peer);
      return t;
    });
    const following = all.filter((t) => t.subscribers.has(peer));
    assert.deepEqual(following, all.slice(-MAX_SUBSCRIPTIONS), `the newest ${MAX_SUBSCRIPTIONS} are followed`);
  });

  it(`at most ${MAX_SUBSCRIPTIONS} subscriptions of a connection wait for their walk: one more is refused`, () => {
    const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()));
    const peer = conn('p4');
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) assert.ok(transfers.reserve(peer));
    assert.equal(transfers.reserve(peer), false);
    transfers.subscribe(transfers.get(someCommit(), 0), peer);
    assert.ok(transfers.reserve(peer), 'one walk done: room for another');
  });

  it('a subscription to a closure evicted while its walk was queued is not counted', () => {
    const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()));
    const peer = conn('p2');
    for (let i = 0; i < 3 * MAX_SUBSCRIPTIONS; i++) {
      assert.ok(transfers.reserve(peer), `closure ${i + 1} refused`);
      const t = transfers.get(someCommit(), 0);
      // Evicted (256 other closures) before the subscription lands.
      for (let j = 0; j < 256; j++) transfers.get(someCommit(), 0);
      transfers.subscribe(t, peer);
      assert.equal(t.subscribers.size, 0, 'an orphaned closure takes no followers');
    }
  });

  it('a closure forgotten after a failed fetch keeps its followers, and tells them of it once it is learnt again', () => {
    const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()));
    const got: string[] = [];
    const peer = { nodeId: 'p5' as NodeId, isOpen: true, send: (m: { kind: string }) => void got.push(m.kind) } as unknown as SwarmConnection;
    const commit = someCommit();
    assert.ok(transfers.reserve(peer));
    const t = transfers.get(commit, 0);
    transfers.subscribe(t, peer);
    const empty: Closure = { commit, history: 0, base: undefined, commits: [commit], boundary: [], trees: [], blobs: [], specialFiles: [], pieces: 0 };
    t.learn(empty, () => true);
    transfers.forget(t);
    assert.equal(t.closure, undefined, 'what is held is counted again');
    assert.ok(t.subscribers.has(peer), 'the follower stays');
    assert.equal(transfers.get(commit, 0), t);
    got.length = 0;
    t.learn(empty, () => true);
    assert.deepEqual(got, ['have'], 'it hears of the closure again');
  });
  it('walks a closure by base deeper than a line can be only for a base the commit descends from in a line: any other id a peer names is not walked (its walk could read the whole history each time)', async () => {
    const sig = { name: 'T', email: 't@example.com', timestamp: 1_700_000_000, tzOffsetMinutes: 0 };
    const put = async (type: 'blob' | 'tree' | 'commit', content: Buffer): Promise<Oid> => {
      const oid = hashObject(type, content);
      await local.addAll([{ oid, type, content }]);
      return oid;
    };
    const commitOf = async (name: string, parents: Oid[]): Promise<Oid> => {
      const tree = await put('tree', encodeTree([{ mode: TreeModes.FILE, name, oid: await put('blob', Buffer.from(`${name}\n`)) }]));
      return put('commit', encodeCommit({ tree, parents, author: sig, committer: sig, extraHeaders: [], message: `${name}\n` }));
    };
    const root = await commitOf('root', []);
    const head = await commitOf('two', [await commitOf('one', [root])]);
    const unrelated = await commitOf('elsewhere', []);
    await local.flush();
    const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()));
    assert.equal((await transfers.known(head, 2, root)).closure?.commits.length, 2, 'a line of two: listed');
    assert.equal((await transfers.known(head, 0, unrelated)).closure, undefined, 'no ancestor, all history: not walked');
    assert.equal((await transfers.known(head, BASE_CHAIN_MAX + 1, unrelated)).closure, undefined, 'no ancestor, deeper than a line: not walked');
    // As deep as a line at most, the walk is bounded whatever the base: listed.
    assert.deepEqual((await transfers.known(head, 2, unrelated)).closure?.commits, [head, (await transfers.known(head, 2, root)).closure?.commits[1]]);
    assert.equal((await transfers.known(head, 0)).closure?.commits.length, 3, 'the whole closure is here to walk');
  });

  it("walks the closures members ask about in turn: one asking about many holds back no other's walk (nor this node's own) by more than one of its own", async () => {
    const sig = { name: 'T', email: 't@example.com', timestamp: 1_700_000_000, tzOffsetMinutes: 0 };
    const put = async (type: 'blob' | 'tree' | 'commit', content: Buffer): Promise<Oid> => {
      const oid = hashObject(type, content);
      await local.addAll([{ oid, type, content }]);
      return oid;
    };
    // A line of 12 commits: histories 1 to 12 of its head are 12 closures, each walked.
    let head: Oid | undefined;
    for (let i = 0; i < 12; i++) {
      const tree = await put('tree', encodeTree([{ mode: TreeModes.FILE, name: 'f', oid: await put('blob', Buffer.from(`turn ${i}\n`)) }]));
      head = await put('commit', encodeCommit({ tree, parents: head === undefined ? [] : [head], author: sig, committer: sig, extraHeaders: [], message: `turn ${i}\n` }));
    }
    assert.ok(head !== undefined);
    await local.flush();
    const log = captureLogger();
    const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()), log);
    const asked = Array.from({ length: 10 }, (_, i) => transfers.known(head, i + 1, undefined, 'hostile' as NodeId));
    asked.push(transfers.known(head, 0, undefined, 'honest' as NodeId), transfers.known(head, 12));
    await Promise.all(asked);
    const walked = log.lines.filter((l) => l.event === 'closure-walked').map((l) => l.fields.history as number);
    assert.equal(walked.length, 12);
    assert.deepEqual(walked.slice(0, 3).sort((a, b) => a - b), [0, 1, 12], `the honest member's walk and this node's come after one of the other's, not all: ${walked.join(', ')}`);
  });
});
