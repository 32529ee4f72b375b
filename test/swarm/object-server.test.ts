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
import { decodeMessage, encodeMessage, LIMITS, type SwarmMessage } from '../../src/swarm/messages.js';
import { ObjectServer } from '../../src/swarm/object-server.js';
import { PieceNews } from '../../src/swarm/piece-news.js';
import { TreeCache } from '../../src/swarm/tree-cache.js';
import { Transfers } from '../../src/swarm/transfers.js';
import { silentLogger } from '../../src/util/log.js';
import { waitFor } from '../support/cluster-nodes.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

const blob = (bytes: number): { oid: Oid; type: 'blob'; content: Buffer } => {
  const content = randomBytes(bytes);
  return { oid: hashObject('blob', content), type: 'blob', content };
};

type Tree = { oid: Oid; type: 'tree'; content: Buffer };

/** Two trees of one file each (the files need not exist). */
function twoTrees(): [Tree, Tree] {
  const tree = (): Tree => {
    const content = encodeTree([{ mode: TreeModes.FILE, name: 'f', oid: blob(16).oid }]);
    return { oid: hashObject('tree', content), type: 'tree', content };
  };
  return [tree(), tree()];
}

/** A peer's connection that records what the server sends it, and when. */
function peer(nodeId: string): SwarmConnection & { readonly got: { at: number; m: SwarmMessage }[] } {
  const got: { at: number; m: SwarmMessage }[] = [];
  return { nodeId: nodeId as NodeId, isOpen: true, got, send: (m: SwarmMessage) => void got.push({ at: Date.now(), m }), drained: async () => undefined } as unknown as SwarmConnection & {
    readonly got: { at: number; m: SwarmMessage }[];
  };
}

/** Resolves once `conn` has been sent a message `done(m)` accepts, or fails after `ms`. */
async function until(conn: ReturnType<typeof peer>, done: (m: SwarmMessage) => boolean, ms: number): Promise<void> {
  await waitFor('a message', ms, () => (conn.got.some((g) => done(g.m)) ? true : undefined), { everyMs: 10, detail: () => JSON.stringify(conn.got.map((g) => g.m.kind)) });
}

describe('serving wants (object-server.ts)', function () {
  this.timeout(30_000);
  after(cleanupTempDirs);

  async function server(): Promise<{ local: LocalObjects; server: ObjectServer; close: () => Promise<void> }> {
    const repo = await Repository.init(join(tempDir('object-server'), 'repo'));
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
    const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()));
    const server = new ObjectServer({ local, transfers, log: silentLogger, now: () => Date.now() });
    return { local, server, close: async () => (await local.close(), await repo.close()) };
  }

  it('sends what a want asked ahead for as it arrives here (what is here first), and what never comes as missing once none has come for a while', async () => {
    const { local, server: s, close } = await server();
    try {
      const downstream = peer('d0');
      const held = blob(4096);
      const later = [blob(4096), blob(4096)];
      const never = blob(4096);
      await local.addAll([held]);
      // This node's own fetch has asked for `later` and `never` (they are on their way).
      local.expect([...later, never].map((o) => o.oid));
      s.handle(downstream, { kind: 'want', request: 7, want: 'blobs', oids: [held.oid, ...later.map((o) => o.oid)], ahead: true });
      await until(downstream, (m) => m.kind === 'objects', 1000);
      const first = downstream.got[0]?.m;
      assert.deepEqual(first?.kind === 'objects' ? [first.objects.map((o) => o.oid), first.done] : undefined, [[held.oid], false], 'what is here goes at once');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(downstream.got.length, 1, 'the rest waits while it is still coming');
      const arrivedAt = Date.now();
      await local.addAll(later);
      await until(downstream, (m) => m.kind === 'objects' && m.done, 2000);
      const sent = downstream.got.flatMap((g) => (g.m.kind === 'objects' ? g.m.objects.map((o) => o.oid) : []));
      assert.deepEqual(sent, [held.oid, ...later.map((o) => o.oid)]);
      assert.ok((downstream.got.at(-1)?.at ?? Infinity) - arrivedAt < 500, 'sent as soon as the objects arrived');

      // An object on its way that never comes: after AHEAD_WAIT_MS without an arrival it is
      // answered as missing, and the slot is free again.
      const askedAt = Date.now();
      s.handle(downstream, { kind: 'want', request: 8, want: 'blobs', oids: [never.oid], ahead: true });
      await until(downstream, (m) => m.kind === 'reject' && m.request === 8, 5000);
      const reject = downstream.got.find((g) => g.m.kind === 'reject' && g.m.request === 8);
      assert.deepEqual(reject?.m.kind === 'reject' ? reject.m.missing : undefined, [never.oid]);
      assert.ok((reject?.at ?? 0) - askedAt >= 1500, 'waited for it before giving up');

      // An object no want of this node names is not coming: missing at once, ahead or not, so a
      // peer cannot hold the upload slot with wants for what this node is not fetching.
      local.unexpect([never.oid]);
      for (const [request, ahead] of [[9, true], [10, false]] as const) {
        const at = Date.now();
        s.handle(downstream, { kind: 'want', request, want: 'blobs', oids: [never.oid], ahead });
        await until(downstream, (m) => m.kind === 'reject' && m.request === request, 1000);
        assert.ok(Date.now() - at < 500, `want ${request}: answered at once`);
      }
    } finally {
      await close();
    }
  });

  it('a META want asked ahead (a batch of a shared level of the walk) waits also for trees this node has not asked for yet; one not asked ahead answers them missing at once', async () => {
    const { local, server: s, close } = await server();
    try {
      const downstream = peer('d2');
      const trees = twoTrees();
      const oids = trees.map((t) => t.oid);
      const plainAt = Date.now();
      s.handle(downstream, { kind: 'want', request: 1, want: 'meta', oids, ahead: false });
      await until(downstream, (m) => m.kind === 'reject' && m.request === 1, 1000);
      assert.ok(Date.now() - plainAt < 500, 'not asked ahead: missing at once');
      // Asked ahead before this node's own walk reaches the level: nothing names them yet.
      s.handle(downstream, { kind: 'want', request: 2, want: 'meta', oids, ahead: true });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(downstream.got.filter((g) => 'request' in g.m && g.m.request === 2).length, 0, 'it waits for them');
      const arrivedAt = Date.now();
      await local.addAll(trees);
      await until(downstream, (m) => m.kind === 'objects' && m.request === 2 && m.done, 2000);
      const sent = downstream.got.flatMap((g) => (g.m.kind === 'objects' && g.m.request === 2 ? g.m.objects.map((o) => o.oid) : []));
      assert.deepEqual(sent, oids);
      assert.ok(Date.now() - arrivedAt < 500, 'sent as soon as they arrived');
      assert.equal(downstream.got.some((g) => g.m.kind === 'reject' && g.m.request === 2), false);
    } finally {
      await close();
    }
  });

  it('a cancelled META want asked ahead sends nothing more, and frees its place at once the wait ends', async () => {
    const { local, server: s, close } = await server();
    try {
      const downstream = peer('d3');
      const trees = twoTrees();
      const [first, second] = trees;
      s.handle(downstream, { kind: 'want', request: 3, want: 'meta', oids: trees.map((t) => t.oid), ahead: true });
      await local.addAll([first]);
      await until(downstream, (m) => m.kind === 'objects' && m.request === 3, 2000);
      s.handle(downstream, { kind: 'cancel', request: 3 });
      await local.addAll([second]);
      await new Promise((r) => setTimeout(r, 300));
      const answers = downstream.got.filter((g) => 'request' in g.m && g.m.request === 3).map((g) => g.m);
      assert.deepEqual(
        answers.map((m) => (m.kind === 'objects' ? [m.objects.map((o) => o.oid), m.done] : m.kind)),
        [[[first.oid], false]],
        'only what was sent before the cancel',
      );
      // Both of the connection's places for META and READ wants are free again.
      for (const request of [4, 5]) s.handle(downstream, { kind: 'want', request, want: 'meta', oids: [second.oid], ahead: false });
      await until(downstream, (m) => m.kind === 'objects' && m.request === 5 && m.done, 2000);
      assert.equal(downstream.got.some((g) => g.m.kind === 'reject' && g.m.reason === 'busy'), false);
    } finally {
      await close();
    }
  });

  it('keeps what one message inflates to within what a receiver takes: compressible objects far below a batch deflated go in several messages', async () => {
    const { local, server: s, close } = await server();
    try {
      const downstream = peer('d1');
      // Five 7 MiB blobs of one repeated byte each: a few KiB deflated, 35 MiB inflated.
      const blobs = [1, 2, 3, 4, 5].map((b) => {
        const content = Buffer.alloc(7 << 20, b);
        return { oid: hashObject('blob', content), type: 'blob' as const, content };
      });
      await local.addAll(blobs);
      await local.flush();
      s.handle(downstream, { kind: 'want', request: 9, want: 'blobs', oids: blobs.map((o) => o.oid), ahead: false });
      await until(downstream, (m) => m.kind === 'objects' && m.done, 20_000);
      const messages = downstream.got.flatMap((g) => (g.m.kind === 'objects' ? [g.m] : []));
      assert.ok(messages.every((m) => m.objects.every((o) => o.zlib !== undefined)), 'the blobs go deflated, as stored');
      // Each message as a receiver decodes it: none is refused for inflating past its limit.
      const received = messages.flatMap((m) => {
        const back = decodeMessage(encodeMessage(m));
        return back.kind === 'objects' ? back.objects.map((o) => hashObject(o.type, o.content)) : [];
      });
      assert.deepEqual(received, blobs.map((o) => o.oid));
      assert.ok(messages.length >= 2, `${messages.length} message(s) for 35 MiB inflated`);
      for (const m of messages) assert.ok(m.objects.reduce((n, o) => n + o.content.length, 0) <= LIMITS.inflatedBytes);
    } finally {
      await close();
    }
  });

  it('tells a blob larger than a message carries that is held in memory (no peer sends one whole: a guard) as refused before the last batch, and sends the rest', async () => {
    const { local, server: s, close } = await server();
    try {
      const downstream = peer('d0');
      const small = blob(4096);
      const huge = blob(LIMITS.messageBytes);
      await local.addAll([small, huge]);
      s.handle(downstream, { kind: 'want', request: 9, want: 'blobs', oids: [small.oid, huge.oid], ahead: false });
      await until(downstream, (m) => m.kind === 'objects' && m.done, 5000);
      const kinds = downstream.got.map((g) => (g.m.kind === 'reject' ? `reject:${g.m.reason}:${g.m.missing.join(',')}` : g.m.kind === 'objects' ? `objects:${g.m.objects.map((o) => o.oid).join(',')}:${g.m.done}` : g.m.kind));
      assert.deepEqual(kinds, [`reject:refused:${huge.oid}`, `objects:${small.oid}:true`]);
    } finally {
      await close();
    }
  });

  it('a send that yields the slot gives back the pin of the object it had batched and not sent: its pool block returns once its pack leaves memory', async () => {
    const repo = await Repository.init(join(tempDir('object-server'), 'repo'));
    const pool = new BlockPool(8);
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool });
    const s = new ObjectServer({ local, transfers: new Transfers(local, new TreeCache(), new PieceNews(() => Date.now())), log: silentLogger, now: () => Date.now() });
    // Two blobs received in blocks of the pool (as a relay holds them), a third not: two batches' worth.
    const [first, second, third] = [blob(600 << 10), blob(600 << 10), blob(600 << 10)];
    for (const o of [first, second]) {
      const view = pool.take(o.content.length) as Buffer;
      o.content.copy(view);
      await local.addAll([{ ...o, content: view }], true);
    }
    await local.addAll([third]);
    // A receiver too slow while others wait: the first batch's flush yields the slot.
    const slow = Object.assign(peer('d4'), { drained: async () => false });
    s.handle(slow, { kind: 'want', request: 1, want: 'blobs', oids: [first, second, third].map((o) => o.oid), ahead: false });
    await until(slow, (m) => m.kind === 'reject' && m.reason === 'busy', 2000);
    const sent = slow.got.flatMap((g) => (g.m.kind === 'objects' ? g.m.objects.map((o) => o.oid) : []));
    assert.deepEqual(sent, [first.oid], 'the first batch went, then the slot was yielded');
    // Closing finishes the last pack: both blocks leave memory, and go back unless a pin still holds one.
    await local.close();
    await repo.close();
    assert.equal(pool.stats.returned, 2, 'both blocks went back to the pool');
  });

  it('gives up the waits of a want asked ahead when the store closes', async () => {
    const { local, server: s, close } = await server();
    const downstream = peer('d1');
    const never = blob(1024);
    local.expect([never.oid]);
    s.handle(downstream, { kind: 'want', request: 1, want: 'blobs', oids: [never.oid], ahead: true });
    await new Promise((r) => setTimeout(r, 50));
    const waited = local.arrival(never.oid, 60_000);
    const closedAt = Date.now();
    await close();
    assert.equal(await waited, undefined);
    assert.ok(Date.now() - closedAt < 1000, 'closing does not wait out the waits');
  });

  it("answers one member's Interested in many closures (over two connections) in turn with another's: that one's Have waits for one walk of them, not all", async () => {
    const { local, server: s, close } = await server();
    try {
      const sig = { name: 'T', email: 't@example.com', timestamp: 1_700_000_000, tzOffsetMinutes: 0 };
      // A line of 12 commits: histories 1 to 12 of its head are 12 closures, each walked.
      let head: Oid | undefined;
      for (let i = 0; i < 12; i++) {
        const file = blob(16);
        const tree = { oid: hashObject('tree', encodeTree([{ mode: TreeModes.FILE, name: 'f', oid: file.oid }])), type: 'tree' as const, content: encodeTree([{ mode: TreeModes.FILE, name: 'f', oid: file.oid }]) };
        const content = encodeCommit({ tree: tree.oid, parents: head === undefined ? [] : [head], author: sig, committer: sig, extraHeaders: [], message: `${i}\n` });
        head = hashObject('commit', content);
        await local.addAll([file, tree, { oid: head, type: 'commit', content }]);
      }
      assert.ok(head !== undefined);
      // Who was sent each Have, in order.
      const answered: string[] = [];
      const conn = (nodeId: string): SwarmConnection => ({ nodeId, isOpen: true, send: (m: SwarmMessage) => void (m.kind === 'have' && answered.push(nodeId)) }) as unknown as SwarmConnection;
      const many = [conn('m1'), conn('m1')];
      for (let history = 1; history <= 10; history++) s.handle(many[history % 2] as SwarmConnection, { kind: 'interested', commit: head, history });
      s.handle(conn('o1'), { kind: 'interested', commit: head, history: 0 });
      await waitFor('every Have', 5000, () => (answered.length === 11 ? true : undefined), { everyMs: 10 });
      assert.ok(answered.indexOf('o1') <= 1, `the other member was answered after ${answered.indexOf('o1')} of the first one's closures`);
    } finally {
      await close();
    }
  });
});
