import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeId } from '../../src/cluster/node-id.js';
import { encodeCommit } from '../../src/objects/commit.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { encodeTree, TreeModes } from '../../src/objects/tree.js';
import { Repository } from '../../src/repo/repository.js';
import { baseHistory } from '../../src/swarm/base-chain.js';
import { BlockPool } from '../../src/swarm/block-pool.js';
import { PIECE_OBJECTS, pieceOids, walkClosure, type Closure } from '../../src/swarm/closure.js';
import { CommitFetch } from '../../src/swarm/commit-fetch.js';
import type { SwarmConnection } from '../../src/swarm/connection.js';
import { LocalObjects } from '../../src/swarm/local-objects.js';
import { LIMITS, type SwarmMessage, type WireObject } from '../../src/swarm/messages.js';
import type { RequestOwner } from '../../src/swarm/object-read.js';
import { PieceNews } from '../../src/swarm/piece-news.js';
import { TreeCache } from '../../src/swarm/tree-cache.js';
import { setBit, Transfers, type Transfer } from '../../src/swarm/transfers.js';
import { silentLogger, type Logger } from '../../src/util/log.js';
import { captureLogger } from '../multicast/fixture.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

/** A peer's connection that records what the fetch sends it. */
function peer(nodeId: string): SwarmConnection & { readonly got: SwarmMessage[] } {
  const got: SwarmMessage[] = [];
  return { nodeId: nodeId as NodeId, isOpen: true, got, send: (m: SwarmMessage) => void got.push(m), close: () => undefined, pauseWhile: (work: Promise<unknown>) => void work } as unknown as SwarmConnection & { readonly got: SwarmMessage[] };
}

/** A CommitFetch of `transfer` as node bb among `order` (aa, bb unless given), its requests numbered from 1, avoiding as `avoid` says. */
function fetchOf(
  local: LocalObjects,
  transfer: Transfer,
  o: { readonly order?: readonly string[]; readonly avoid?: Map<NodeId, number>; readonly pieceMaxMs?: number | undefined; readonly log?: Logger | undefined } = {},
): CommitFetch {
  let request = 0;
  return new CommitFetch(
    { local, transfer, trees: new TreeCache(), log: o.log ?? silentLogger, now: () => Date.now(), avoid: o.avoid ?? new Map(), nextRequest: () => ++request, track: (_r: number, _o: RequestOwner | undefined) => undefined },
    { order: (o.order ?? ['aa', 'bb']) as NodeId[], self: 'bb' as NodeId, blobs: true, ...(o.pieceMaxMs === undefined ? {} : { pieceMaxMs: o.pieceMaxMs }) },
  );
}

/**
 * A commit of one tree of PIECE_OBJECTS + 2 small blobs (the last `lastBytes` long, if given):
 * two pieces, piece 0 here and piece 1 (`missing`) not; and a fetch of it by node bb, whose
 * upstream is aa (in the order aa, bb, or `order`), a piece given `pieceMaxMs` in all if given.
 */
async function twoPieces(
  local: LocalObjects,
  o: { readonly lastBytes?: number; readonly pieceMaxMs?: number; readonly log?: Logger; readonly order?: readonly string[] } = {},
): Promise<{ commit: { oid: Oid }; closure: Closure; transfer: Transfer; fetch: CommitFetch; missing: WireObject[]; avoid: Map<NodeId, number> }> {
  const blobs = Array.from({ length: PIECE_OBJECTS + 2 }, (_, i) => {
    const content = randomBytes(i === PIECE_OBJECTS + 1 ? (o.lastBytes ?? 32) : 32);
    return { oid: hashObject('blob', content), type: 'blob' as const, content };
  });
  const treeContent = encodeTree(blobs.map((b, i) => ({ mode: TreeModes.FILE, name: `f${String(i).padStart(4, '0')}`, oid: b.oid })));
  const tree = { oid: hashObject('tree', treeContent), type: 'tree' as const, content: treeContent };
  const sig = { name: 'T', email: 't@example.com', timestamp: 1_700_000_000, tzOffsetMinutes: 0 };
  const commitContent = encodeCommit({ tree: tree.oid, parents: [], author: sig, committer: sig, extraHeaders: [], message: 'two pieces\n' });
  const commit = { oid: hashObject('commit', commitContent), type: 'commit' as const, content: commitContent };
  await local.addAll([commit, tree]);
  const closure = await walkClosure(local, commit.oid, 0);
  assert.equal(closure.pieces, 2);
  const first = new Set(pieceOids(closure, 0));
  await local.addAll(blobs.filter((b) => first.has(b.oid)));
  await local.flush();

  const transfer = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now())).get(commit.oid, 0);
  const avoid = new Map<NodeId, number>();
  const fetch = fetchOf(local, transfer, { avoid, pieceMaxMs: o.pieceMaxMs, log: o.log, ...(o.order === undefined ? {} : { order: o.order }) });
  return { commit, closure, transfer, fetch, missing: blobs.filter((b) => !first.has(b.oid)), avoid };
}

/** Runs `fetch` until its first want: piece 1 of `closure`, and only it, asked of `up` (the peer that claimed it); then stops it. */
async function onlySecondPieceAskedOf(up: { readonly got: SwarmMessage[] }, closure: Closure, fetch: CommitFetch): Promise<void> {
  const running = fetch.run();
  let asked: readonly Oid[] = [];
  for (let i = 0; i < 100 && asked.length === 0; i++) {
    await sleep(30);
    asked = up.got.flatMap((m) => (m.kind === 'want' ? m.oids : []));
  }
  assert.deepEqual([...asked].sort(), [...pieceOids(closure, 1)].sort(), 'piece 1, and only it, asked of the peer that claimed it');
  fetch.stop('the test is over');
  await assert.rejects(running, /the test is over/);
}

type Want = Extract<SwarmMessage, { kind: 'want' }>;

/** The first want of blobs `conn` is sent (waited for, bounded: 3 s). */
async function firstBlobsWant(conn: { readonly got: SwarmMessage[] }): Promise<Want> {
  for (let i = 0; i < 100; i++) {
    const want = conn.got.find((m): m is Want => m.kind === 'want' && m.want === 'blobs');
    if (want !== undefined) return want;
    await sleep(30);
  }
  throw new Error('no want of blobs was sent');
}

describe('fetching a closure (commit-fetch.ts)', function () {
  this.timeout(30_000);
  after(cleanupTempDirs);

  it('gives up a batch of commits and trees whose peer sends only empty messages: they do not keep the request alive', async function () {
    this.timeout(40_000);
    const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
    try {
      const commit = hashObject('commit', randomBytes(64));
      const transfer = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now())).get(commit, 0);
      const fetch = fetchOf(local, transfer);
      const knower = peer('aa');
      fetch.announcedBy([knower.nodeId]);
      fetch.addPeer(knower);
      const running = fetch.run();
      running.catch(() => undefined);
      const asked = Date.now();
      let want: number | undefined;
      let cancelled: number | undefined;
      // Bounded: 20 s at most, an empty `objects` for the want every second.
      for (let tick = 0; tick < 20 && cancelled === undefined; tick++) {
        await sleep(1000);
        for (const m of knower.got) if (m.kind === 'want' && m.want === 'meta') want ??= m.request;
        if (want !== undefined) fetch.handle(knower, { kind: 'objects', request: want, objects: [], done: false });
        if (knower.got.some((m) => m.kind === 'cancel' && m.request === want)) cancelled = Date.now() - asked;
      }
      assert.notEqual(want, undefined, 'the walk asked for the commit');
      assert.ok(cancelled !== undefined, 'the want was never given up');
      assert.ok(cancelled >= 14_000 && cancelled < 19_000, `given up after ${cancelled} ms (idle limit 15 s)`);
      fetch.stop('the test is over');
      await assert.rejects(running);
    } finally {
      await local.close();
      await repo.close();
    }
  });

  it('by a base: takes what the commit adds to the base offered when it descends from it in a line (the commits of the line read from its announcer if need be, one by one; peers told only then), else the whole closure (also when no announcer sends the commit within 5 s); a Have heard before is not read as one of the closure chosen', async function () {
    this.timeout(40_000);
    const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
    try {
      const put = async (type: 'blob' | 'tree' | 'commit', content: Buffer, store = true): Promise<Oid> => {
        const oid = hashObject(type, content);
        if (store) await local.addAll([{ oid, type, content }]);
        return oid;
      };
      const sig = { name: 'T', email: 't@example.com', timestamp: 1_700_000_000, tzOffsetMinutes: 0 };
      const commitOf = (tree: Oid, parents: Oid[], message: string): Buffer => encodeCommit({ tree, parents, author: sig, committer: sig, extraHeaders: [], message });
      const a = await put('blob', Buffer.from('a\n'));
      const b = await put('blob', Buffer.from('b\n'), false);
      const parent = await put('commit', commitOf(await put('tree', encodeTree([{ mode: TreeModes.FILE, name: 'a', oid: a }])), [], 'parent\n'));
      const tree = await put('tree', encodeTree([{ mode: TreeModes.FILE, name: 'a', oid: a }, { mode: TreeModes.FILE, name: 'b', oid: b }]));
      const head = await put('commit', commitOf(tree, [parent], 'head\n'));
      // Another child of the parent, not here: its announcer is asked for it.
      const elsewhereContent = commitOf(tree, [parent], 'elsewhere\n');
      const elsewhere = await put('commit', elsewhereContent, false);
      await local.flush();
      const transfers = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now()));
      const start = (offered: Oid, announced: boolean, wanted = head): { fetch: CommitFetch; up: ReturnType<typeof peer>; running: Promise<unknown> } => {
        let request = 0;
        const fetch = new CommitFetch(
          {
            local,
            transfer: transfers.get(wanted, 0),
            trees: new TreeCache(),
            log: silentLogger,
            now: () => Date.now(),
            avoid: new Map(),
            nextRequest: () => ++request,
            track: (_r: number, _o: RequestOwner | undefined) => undefined,
            base: { find: async () => offered, transfer: (base, line) => transfers.get(wanted, baseHistory(0, line), base) },
          },
          { order: ['aa' as NodeId, 'bb' as NodeId], self: 'bb' as NodeId, blobs: true },
        );
        const up = peer('aa');
        if (announced) fetch.announcedBy([up.nodeId]);
        fetch.addPeer(up);
        // A peer following the whole closure from an earlier fetch says it holds its one piece.
        fetch.handle(up, { kind: 'have', commit: wanted, history: 0, pieces: 1, bitfield: Buffer.from([0x80]), complete: true });
        const running = fetch.run();
        running.catch(() => undefined);
        return { fetch, up, running };
      };
      const interest = (up: ReturnType<typeof peer>): SwarmMessage[] => up.got.filter((m) => m.kind === 'interested');

      const byBase = start(parent, true);
      await sleep(300);
      assert.deepEqual(interest(byBase.up), [{ kind: 'interested', commit: head, history: 1, base: parent }], 'peers are told of the closure by base alone');
      assert.equal(byBase.fetch.transfer.closure?.blobs.length, 1, 'b alone: a is the parent\'s');
      assert.deepEqual(byBase.up.got.filter((m) => m.kind === 'want'), [], 'the Have of the whole closure was not read as one of this');
      byBase.fetch.handle(byBase.up, { kind: 'have', commit: head, history: 1, base: parent, pieces: 1, bitfield: Buffer.from([0x80]), complete: true });
      await sleep(300);
      assert.deepEqual(byBase.up.got.flatMap((m) => (m.kind === 'want' ? m.oids : [])), [b], 'b is asked of the peer holding it');
      byBase.fetch.stop('the test is over');
      await assert.rejects(byBase.running, /the test is over/);

      // Its announcers cannot list the closure by base (they lack the base): the fetch fails once they all said so, not after 30 s of stall.
      const lacking = start(parent, true);
      const [other, second] = [peer('cc'), peer('dd')];
      lacking.fetch.announcedBy([lacking.up.nodeId, second.nodeId]);
      lacking.fetch.addPeer(other);
      lacking.fetch.addPeer(second);
      await sleep(300);
      let settled = false;
      lacking.running.then(
        () => (settled = true),
        () => (settled = true),
      );
      const unknown = { kind: 'have' as const, commit: head, history: 1, base: parent, pieces: 0, bitfield: Buffer.alloc(0), complete: false };
      // Another peer, not announcing it, holding a piece: the fetch goes on.
      lacking.fetch.handle(other, { ...unknown, pieces: 1, bitfield: Buffer.from([0x80]) });
      lacking.fetch.handle(lacking.up, unknown);
      await sleep(1500);
      assert.equal(settled, false, 'a peer holding a piece keeps the fetch by base going');
      // No piece anywhere, but one announcer has not answered yet: the fetch goes on.
      lacking.fetch.handle(other, unknown);
      await sleep(1500);
      assert.equal(settled, false, 'an announcer that has not answered keeps the fetch by base going');
      lacking.fetch.handle(second, unknown);
      const failedAt = Date.now();
      await assert.rejects(lacking.running, /cannot list what it adds to/);
      assert.ok(Date.now() - failedAt < 2500, `failed ${Date.now() - failedAt} ms after no peer could serve it`);
      lacking.fetch.stop('the test is over');

      const whole = async (f: ReturnType<typeof start>, commit: Oid, why: string): Promise<void> => {
        assert.deepEqual(interest(f.up), [{ kind: 'interested', commit, history: 0, base: undefined }], why);
        f.fetch.stop('the test is over');
        await assert.rejects(f.running, /the test is over/);
      };
      const notParent = start(head, true);
      await sleep(300);
      await whole(notParent, head, 'the base offered is not its parent');
      const unannounced = start(parent, false, elsewhere);
      await sleep(300);
      await whole(unannounced, elsewhere, 'the commit is not here and no peer announces it');

      // Not here: asked of its announcer (a META want), which sends it; then peers hear of the closure by base.
      const asked = start(parent, true, elsewhere);
      await sleep(300);
      const want = asked.up.got.find((m) => m.kind === 'want');
      assert.ok(want?.kind === 'want' && want.want === 'meta' && want.oids.join() === elsewhere, `the commit is asked of its announcer: ${JSON.stringify(asked.up.got)}`);
      assert.deepEqual(interest(asked.up), [], 'no peer is told before the closure is chosen');
      asked.fetch.handle(asked.up, { kind: 'objects', request: want.request, objects: [{ oid: elsewhere, type: 'commit', content: elsewhereContent }], done: true });
      await sleep(300);
      assert.deepEqual(interest(asked.up), [{ kind: 'interested', commit: elsewhere, history: 1, base: parent }]);
      asked.fetch.stop('the test is over');
      await assert.rejects(asked.running, /the test is over/);

      // Two generations past the base, neither here: each asked of the announcer in turn, then the closure by base.
      const midContent = commitOf(tree, [parent], 'mid\n');
      const farContent = commitOf(tree, [hashObject('commit', midContent)], 'far\n');
      const line = start(parent, true, hashObject('commit', farContent));
      for (const content of [farContent, midContent]) {
        const oid = hashObject('commit', content);
        let asking: SwarmMessage | undefined;
        for (let i = 0; i < 30 && asking === undefined; i++) {
          await sleep(100);
          asking = line.up.got.find((m) => m.kind === 'want' && m.oids.includes(oid));
        }
        assert.ok(asking?.kind === 'want' && asking.oids.length === 1, `${oid} is asked of the announcer: ${JSON.stringify(line.up.got)}`);
        assert.deepEqual(interest(line.up), [], 'no peer is told before the closure is chosen');
        line.fetch.handle(line.up, { kind: 'objects', request: asking.request, objects: [{ oid, type: 'commit', content }], done: true });
      }
      await sleep(300);
      assert.deepEqual(interest(line.up), [{ kind: 'interested', commit: hashObject('commit', farContent), history: 2, base: parent }]);
      assert.deepEqual(line.fetch.transfer.closure?.commits, [hashObject('commit', farContent), hashObject('commit', midContent)], 'the commits of the line, not the base');
      line.fetch.stop('the test is over');
      await assert.rejects(line.running, /the test is over/);

      // An announcer that never sends it: the whole closure after 5 s.
      const silent = start(parent, true, hashObject('commit', randomBytes(32)));
      const since = Date.now();
      while (interest(silent.up).length === 0 && Date.now() - since < 10_000) await sleep(100);
      const waited = Date.now() - since;
      assert.ok(waited >= 4500 && waited < 8000, `the whole closure after ${waited} ms`);
      const told = interest(silent.up)[0];
      assert.ok(told?.kind === 'interested' && told.history === 0 && told.base === undefined, `the whole closure: ${JSON.stringify(told)}`);
      silent.fetch.stop('the test is over');
      await assert.rejects(silent.running, /the test is over/);
    } finally {
      await local.close();
      await repo.close();
    }
  });

  it('takes no piece past the end of the closure from a peer, told before or after the walk: the fetch stays short of the piece it lacks and asks for nothing else', async () => {
    const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
    try {
      const { commit, closure, transfer, fetch } = await twoPieces(local);
      const up = peer('aa');
      fetch.addPeer(up);
      // Before this node knows the closure, its upstream says it holds pieces 12 and 13 of 20.
      const bits = new Uint8Array(3);
      setBit(bits, 12);
      fetch.handle(up, { kind: 'have', commit: commit.oid, history: 0, pieces: 20, bitfield: Buffer.from(bits), complete: false });
      fetch.handle(up, { kind: 'have_piece', commit: commit.oid, history: 0, piece: 13 });
      let settled = false;
      const running = fetch.run().finally(() => (settled = true));
      await sleep(300);
      // And after: piece 14, and a bitfield of 20 with bit 15.
      fetch.handle(up, { kind: 'have_piece', commit: commit.oid, history: 0, piece: 14 });
      setBit(bits, 15);
      fetch.handle(up, { kind: 'have', commit: commit.oid, history: 0, pieces: 20, bitfield: Buffer.from(bits), complete: false });
      await sleep(300);
      assert.equal(settled, false, 'the fetch ended with piece 1 missing');
      assert.equal(transfer.complete, false);
      assert.deepEqual([...transfer.pieces], [0]);
      const asked = up.got.flatMap((m) => (m.kind === 'want' ? m.oids : []));
      assert.deepEqual(asked.filter((oid: Oid) => !closure.blobs.includes(oid)), [], 'asked for objects outside the closure');
      fetch.stop('the test is over');
      await assert.rejects(running, /the test is over/);
    } finally {
      await local.close();
      await repo.close();
    }
  });

  it('keeps the HavePieces heard before the walk as bits, however many (2^20 cost a set of 2^20 numbers a peer), and reads them once the closure is known: the claimed piece is asked of that peer', async () => {
    const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
    try {
      const { commit, closure, fetch } = await twoPieces(local);
      const up = peer('aa');
      fetch.addPeer(up);
      // Piece 1 of the closure's two, and every number a message may carry past it: one message, its piece changed.
      const m: { kind: 'have_piece'; commit: Oid; history: number; piece: number } = { kind: 'have_piece', commit: commit.oid, history: 0, piece: 1 };
      fetch.handle(up, m);
      const before = process.memoryUsage().heapUsed;
      for (let piece = 2; piece < LIMITS.pieces; piece++) {
        m.piece = piece;
        fetch.handle(up, m);
      }
      const grew = process.memoryUsage().heapUsed - before;
      assert.ok(grew < 8 << 20, `2^20 HavePieces before the walk grew the heap by ${(grew / 2 ** 20).toFixed(1)} MiB`);
      await onlySecondPieceAskedOf(up, closure, fetch);
    } finally {
      await local.close();
      await repo.close();
    }
  });

  it('keeps a Have heard before the walk as it came, however many pieces it claims, and reads it once the closure is known: the claimed piece is asked of that peer', async () => {
    const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
    try {
      const { commit, closure, fetch } = await twoPieces(local);
      const up = peer('aa');
      fetch.addPeer(up);
      // 32 Haves of 2^20 pieces, every bit set (the most a message may claim). Each was read into
      // a set of 2^20 entries at once: ~0.28 s apiece here, 9 s in all.
      const bits = Buffer.alloc(LIMITS.pieces / 8, 0xff);
      const started = performance.now();
      for (let i = 0; i < 32; i++) fetch.handle(up, { kind: 'have', commit: commit.oid, history: 0, pieces: LIMITS.pieces, bitfield: bits, complete: false });
      const ms = performance.now() - started;
      assert.ok(ms < 2000, `32 Haves of 2^20 pieces took ${ms.toFixed(0)} ms`);
      await onlySecondPieceAskedOf(up, closure, fetch);
    } finally {
      await local.close();
      await repo.close();
    }
  });

  it('avoids a peer that trickles a piece: each object in time for the idle timer, the piece never whole in time', async function () {
    this.timeout(40_000);
    const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
    try {
      // One piece of PIECE_OBJECTS small blobs; the commit and tree are here, the blobs are not.
      const blobs = Array.from({ length: PIECE_OBJECTS }, () => {
        const content = randomBytes(32);
        return { oid: hashObject('blob', content), type: 'blob' as const, content };
      });
      const treeContent = encodeTree(blobs.map((b, i) => ({ mode: TreeModes.FILE, name: `f${String(i).padStart(4, '0')}`, oid: b.oid })));
      const tree = { oid: hashObject('tree', treeContent), type: 'tree' as const, content: treeContent };
      const sig = { name: 'T', email: 't@example.com', timestamp: 1_700_000_000, tzOffsetMinutes: 0 };
      const commitContent = encodeCommit({ tree: tree.oid, parents: [], author: sig, committer: sig, extraHeaders: [], message: 'one piece\n' });
      const commit = { oid: hashObject('commit', commitContent), type: 'commit' as const, content: commitContent };
      await local.addAll([commit, tree]);
      await local.flush();
      const byOid = new Map(blobs.map((b) => [b.oid, b]));
      const transfer = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now())).get(commit.oid, 0);
      const avoid = new Map<NodeId, number>();
      const fetch = fetchOf(local, transfer, { pieceMaxMs: 1500, avoid });
      const up = peer('aa');
      fetch.addPeer(up);
      const bits = new Uint8Array(1);
      setBit(bits, 0);
      const have = (): void => fetch.handle(up, { kind: 'have', commit: commit.oid, history: 0, pieces: 1, bitfield: Buffer.from(bits), complete: true });
      have();
      const running = fetch.run();
      running.catch(() => undefined);
      // Bounded: 60 turns of 250 ms. One object per want per turn; after each cancel, the piece announced again.
      const sent = new Map<number, number>();
      let cancels = 0;
      for (let turn = 0; turn < 60 && !avoid.has('aa' as NodeId); turn++) {
        await sleep(250);
        const cancelled = new Set(up.got.flatMap((m) => (m.kind === 'cancel' ? [m.request] : [])));
        if (cancelled.size > cancels) {
          cancels = cancelled.size;
          have();
        }
        for (const m of up.got) {
          if (m.kind !== 'want' || m.want !== 'blobs' || cancelled.has(m.request)) continue;
          const n = sent.get(m.request) ?? 0;
          const o = byOid.get(m.oids[n] as Oid);
          if (o === undefined) continue;
          sent.set(m.request, n + 1);
          fetch.handle(up, { kind: 'objects', request: m.request, objects: [o], done: false });
        }
      }
      assert.ok(avoid.has('aa' as NodeId), `the trickling peer is avoided (${cancels} pieces cancelled)`);
      assert.ok(cancels >= 3, `cancelled ${cancels} times`);
      assert.equal(transfer.complete, false);
      fetch.stop('the test is over');
      await assert.rejects(running, /the test is over/);
    } finally {
      await local.close();
      await repo.close();
    }
  });

  it('parts of a blob the trees name .gitattributes refuse nothing on their own: a huge size (its stream damaged) or its real bytes in one part (small enough for a message) get their peer blamed, and the blob comes from another holder', async () => {
    const blob = (content: string): WireObject => ({ oid: hashObject('blob', Buffer.from(content)), type: 'blob', content: Buffer.from(content) });
    const [attributes, file] = [blob('*.bin binary\n'), blob('hello\n')];
    const forgeries: Array<{ size: number; zlib: Buffer; last: boolean }> = [
      // 64 MiB of .gitattributes, its bytes no zlib stream.
      { size: 64 << 20, zlib: Buffer.alloc(LIMITS.partBytes, 7), last: false },
      // Its real bytes, which hash to its id, as one part.
      { size: attributes.content.length, zlib: deflateSync(attributes.content), last: true },
    ];
    for (const forged of forgeries) {
      const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
      const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
      try {
        const treeContent = encodeTree([{ mode: TreeModes.FILE, name: '.gitattributes', oid: attributes.oid }, { mode: TreeModes.FILE, name: 'file', oid: file.oid }]);
        const tree = { oid: hashObject('tree', treeContent), type: 'tree' as const, content: treeContent };
        const sig = { name: 'T', email: 't@example.com', timestamp: 1_700_000_000, tzOffsetMinutes: 0 };
        const commitContent = encodeCommit({ tree: tree.oid, parents: [], author: sig, committer: sig, extraHeaders: [], message: 'attributes\n' });
        const commit = { oid: hashObject('commit', commitContent), type: 'commit' as const, content: commitContent };
        await local.addAll([commit, tree]);
        await local.flush();
        const transfer = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now())).get(commit.oid, 0);
        const avoid = new Map<NodeId, number>();
        const fetch = fetchOf(local, transfer, { order: ['aa', 'bb', 'cc'], avoid });
        const [aa, cc] = [peer('aa'), peer('cc')];
        for (const conn of [aa, cc]) {
          fetch.addPeer(conn);
          fetch.handle(conn, { kind: 'have', commit: commit.oid, history: 0, pieces: 1, bitfield: Buffer.from([0x80]), complete: true });
        }
        const running = fetch.run();
        running.catch(() => undefined);
        const want = await firstBlobsWant(aa);
        fetch.handle(aa, { kind: 'part', request: want.request, oid: attributes.oid, offset: 0, ...forged });
        for (let i = 0; i < 100 && !avoid.has('aa' as NodeId) && fetch.refusal === undefined; i++) await sleep(10);
        assert.equal(fetch.refusal, undefined, `parts of ${forged.size} bytes refuse nothing`);
        assert.ok(avoid.has('aa' as NodeId), `the peer of parts of ${forged.size} bytes is avoided`);
        fetch.peerGone(aa);
        const again = await firstBlobsWant(cc);
        fetch.handle(cc, { kind: 'objects', request: again.request, objects: [attributes, file].filter((o) => again.oids.includes(o.oid)), done: true });
        await running;
        assert.equal(transfer.complete, true);
      } finally {
        await local.close();
        await repo.close();
      }
    }
  });

  it('a peer that says it cannot send a piece (Reject REFUSED) no longer counts as holding it, and another holder is asked; the fetch fails only once no holder is left', async () => {
    const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
    /** A fetch of piece 1 (twoPieces) from aa and cc, both holding it; aa, its upstream, is asked first and refuses it. */
    const refusedByUpstream = async (): Promise<{ fetch: CommitFetch; transfer: Transfer; running: Promise<unknown>; cc: ReturnType<typeof peer>; missing: WireObject[] }> => {
      const { commit, transfer, fetch, missing } = await twoPieces(local);
      const [aa, cc] = [peer('aa'), peer('cc')];
      for (const conn of [aa, cc]) {
        fetch.addPeer(conn);
        fetch.handle(conn, { kind: 'have', commit: commit.oid, history: 0, pieces: 2, bitfield: Buffer.from([0xc0]), complete: true });
      }
      const running = fetch.run();
      running.catch(() => undefined);
      const want = await firstBlobsWant(aa);
      fetch.handle(aa, { kind: 'reject', request: want.request, reason: 'refused', missing: want.oids });
      return { fetch, transfer, running, cc, missing };
    };
    /** The want of blobs `conn` is sent once the chain is seen stuck (bounded: 10 s). */
    const askedOnceStuck = async (conn: ReturnType<typeof peer>, running: Promise<unknown>): Promise<Want> => {
      let settled = false;
      running.then(() => (settled = true), () => (settled = true));
      for (let i = 0; i < 100 && !settled; i++) {
        const want = conn.got.find((m): m is Want => m.kind === 'want' && m.want === 'blobs');
        if (want !== undefined) return want;
        await sleep(100);
      }
      await running;
      throw new Error('the other holder was never asked');
    };
    try {
      const served = await refusedByUpstream();
      const want = await askedOnceStuck(served.cc, served.running);
      served.fetch.handle(served.cc, { kind: 'objects', request: want.request, objects: served.missing.filter((o) => want.oids.includes(o.oid)), done: true });
      await served.running;
      assert.equal(served.transfer.complete, true);

      const unserved = await refusedByUpstream();
      const again = await askedOnceStuck(unserved.cc, unserved.running);
      unserved.fetch.handle(unserved.cc, { kind: 'reject', request: again.request, reason: 'refused', missing: again.oids });
      await assert.rejects(unserved.running, /cc cannot send .*: larger than the swarm carries, and no other peer holds it/);
    } finally {
      await local.close();
      await repo.close();
    }
  });

  it('a commit one announcer says it cannot send (Reject REFUSED) is asked of another, and of that one no more', async () => {
    const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
    try {
      const commit = hashObject('commit', randomBytes(64));
      const transfer = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now())).get(commit, 0);
      const fetch = fetchOf(local, transfer, { order: ['aa', 'bb', 'cc'] });
      const [aa, cc] = [peer('aa'), peer('cc')];
      fetch.announcedBy([aa.nodeId, cc.nodeId]);
      for (const conn of [aa, cc]) fetch.addPeer(conn);
      const running = fetch.run();
      running.catch(() => undefined);
      const metaWants = (conn: ReturnType<typeof peer>): Want[] => conn.got.filter((m): m is Want => m.kind === 'want' && m.want === 'meta');
      for (let i = 0; i < 100 && metaWants(aa).length === 0; i++) await sleep(30);
      const [refused] = metaWants(aa);
      assert.ok(refused !== undefined, 'the commit is asked of the first announcer');
      fetch.handle(aa, { kind: 'reject', request: refused.request, reason: 'refused', missing: [commit] });
      for (let i = 0; i < 100 && metaWants(cc).length === 0; i++) await sleep(30);
      assert.deepEqual(metaWants(cc).map((m) => m.oids), [[commit]], 'then of the other');
      assert.equal(metaWants(aa).length, 1, 'not of the one that refused it again');
      fetch.stop('the test is over');
      await assert.rejects(running, /the test is over/);
    } finally {
      await local.close();
      await repo.close();
    }
  });

  it('parts answering a want of commits and trees (which never come in parts) are a lie: the peer is avoided', async () => {
    const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
    const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
    try {
      const commit = hashObject('commit', randomBytes(64));
      const transfer = new Transfers(local, new TreeCache(), new PieceNews(() => Date.now())).get(commit, 0);
      const avoid = new Map<NodeId, number>();
      const fetch = fetchOf(local, transfer, { avoid });
      const aa = peer('aa');
      fetch.announcedBy([aa.nodeId]);
      fetch.addPeer(aa);
      const running = fetch.run();
      running.catch(() => undefined);
      let want: SwarmMessage | undefined;
      for (let i = 0; i < 100 && want === undefined; i++) {
        await sleep(30);
        want = aa.got.find((m) => m.kind === 'want' && m.want === 'meta');
      }
      assert.ok(want?.kind === 'want', 'the commit is asked of its announcer');
      // The first MiB of a well-formed stream of 2 MiB: nothing in the parts themselves is wrong.
      const zlib = deflateSync(randomBytes(2 << 20), { level: 0 }).subarray(0, LIMITS.partBytes);
      fetch.handle(aa, { kind: 'part', request: want.request, oid: commit, size: 2 << 20, offset: 0, zlib, last: false });
      for (let i = 0; i < 100 && !avoid.has('aa' as NodeId); i++) await sleep(10);
      assert.ok(avoid.has('aa' as NodeId), 'the peer is avoided');
      fetch.stop('the test is over');
      await assert.rejects(running, /the test is over/);
    } finally {
      await local.close();
      await repo.close();
    }
  });

  describe('the upstream is waited for while it brings pieces, whatever it announces', function () {
    this.timeout(40_000);

    /** A Have from the upstream of the closure's `pieces` (0: it does not know it), `byte` its bitfield. */
    type News = { readonly pieces: number; readonly byte: number };

    /**
     * Fetches piece 1 (twoPieces) by bb in the order aa, bb, cc: cc holds all and answers at once;
     * aa, its upstream, said Interested (so it takes part, whatever it announces), and every 100 ms
     * tick says what `news` gives (each Have handled right after the one before, as from one
     * read) and answers the wants of blobs it was sent: with their objects from tick `servesFrom`
     * on, else as missing (or, `o.refuses`, as refused). cc is heard of from tick `o.holderFrom`
     * (0 unless given). For `withinMs` at most: when cc was first asked (ms from the start), and
     * whether the fetch completed.
     */
    async function belowUpstream(
      news: (tick: number) => readonly News[],
      servesFrom: number,
      withinMs: number,
      o: { readonly refuses?: boolean; readonly holderFrom?: number } = {},
    ): Promise<{ elsewhereMs: number | undefined; complete: boolean }> {
      const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
      const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
      try {
        const { commit, transfer, fetch, missing } = await twoPieces(local, { order: ['aa', 'bb', 'cc'] });
        const [aa, cc] = [peer('aa'), peer('cc')];
        transfer.subscribers.add(aa);
        fetch.addPeer(aa);
        const heardOfHolder = (): void => {
          fetch.addPeer(cc);
          fetch.handle(cc, { kind: 'have', commit: commit.oid, history: 0, pieces: 2, bitfield: Buffer.from([0xc0]), complete: true });
        };
        if ((o.holderFrom ?? 0) === 0) heardOfHolder();
        const objects = (want: Want): WireObject[] => missing.filter((b) => want.oids.includes(b.oid));
        const answered = new Set<number>();
        const started = Date.now();
        let [settled, elsewhereMs] = [false, undefined as number | undefined];
        const running = fetch.run().finally(() => (settled = true));
        running.catch(() => undefined);
        for (let tick = 0; !settled && Date.now() - started < withinMs; tick++) {
          if (tick > 0 && tick === o.holderFrom) heardOfHolder();
          for (const n of news(tick)) fetch.handle(aa, { kind: 'have', commit: commit.oid, history: 0, pieces: n.pieces, bitfield: Buffer.from(n.pieces === 0 ? [] : [n.byte]), complete: false });
          for (const m of aa.got) {
            if (m.kind !== 'want' || m.want !== 'blobs' || answered.has(m.request)) continue;
            answered.add(m.request);
            fetch.handle(aa, tick >= servesFrom ? { kind: 'objects', request: m.request, objects: objects(m), done: true } : { kind: 'reject', request: m.request, reason: o.refuses === true ? 'refused' : 'missing', missing: m.oids });
          }
          const want = cc.got.find((m): m is Want => m.kind === 'want' && m.want === 'blobs');
          if (want !== undefined && elsewhereMs === undefined) {
            elsewhereMs = Date.now() - started;
            fetch.handle(cc, { kind: 'objects', request: want.request, objects: objects(want), done: true });
          }
          await sleep(100);
        }
        if (!settled) fetch.stop('the test is over');
        await running.catch(() => undefined);
        return { elsewhereMs, complete: transfer.complete };
      } finally {
        await local.close();
        await repo.close();
      }
    }

    it('an upstream still learning the closure, then passing its pieces on, is waited for', async () => {
      // It learns the closure at 3 s (holding piece 0), and gains piece 1 and sends it at 5 s.
      const news = (tick: number): News[] => (tick === 0 ? [{ pieces: 0, byte: 0 }] : tick === 30 ? [{ pieces: 2, byte: 0x80 }] : tick === 50 ? [{ pieces: 2, byte: 0xc0 }] : []);
      const { elsewhereMs, complete } = await belowUpstream(news, 50, 12_000);
      assert.equal(complete, true);
      assert.equal(elsewhereMs, undefined, 'the holder is never asked');
    });

    it('saying again that it knows the closure, or that it holds a piece held here, is no progress: an upstream that brings nothing is left after its wait (5 s)', async () => {
      // Every second, it says it knows the closure and holds piece 0 (held here), then that it does not know it.
      const news = (tick: number): News[] => (tick % 10 !== 0 ? [] : tick % 20 === 0 ? [{ pieces: 2, byte: 0x80 }] : [{ pieces: 0, byte: 0 }]);
      const { elsewhereMs, complete } = await belowUpstream(news, Infinity, 12_000);
      assert.ok(elsewhereMs !== undefined && elsewhereMs < 9000, `the holder was asked after ${elsewhereMs} ms`);
      assert.equal(complete, true);
    });

    it('an upstream that refuses a piece asked ahead (Reject REFUSED, never having claimed it) does not end the fetch before a holder is heard of', async () => {
      const news = (tick: number): News[] => (tick === 0 ? [{ pieces: 2, byte: 0x80 }] : []);
      const { elsewhereMs, complete } = await belowUpstream(news, Infinity, 30_000, { refuses: true, holderFrom: 30 });
      assert.ok(elsewhereMs !== undefined && elsewhereMs >= 3000, `the holder was asked after ${elsewhereMs} ms`);
      assert.equal(complete, true);
    });

    it('an upstream that claims a piece needed here and takes the claim back at once (so it is never asked for it) holds the chain 20 s at most', async () => {
      const news = (tick: number): News[] => (tick % 10 === 0 ? [{ pieces: 2, byte: 0xc0 }, { pieces: 2, byte: 0x80 }] : []);
      const { elsewhereMs, complete } = await belowUpstream(news, Infinity, 27_000);
      assert.ok(elsewhereMs !== undefined && elsewhereMs >= 15_000 && elsewhereMs < 25_000, `the holder was asked after ${elsewhereMs} ms`);
      assert.equal(complete, true);
    });
  });

  describe('a slow piece is raced by another holder (raceSlow)', function () {
    /**
     * Fetches piece 1 (twoPieces, a piece given 1.5 s in all) from aa and cc, both holding it: aa
     * streams `streamed` (which blob of the piece, the size it declares, its zlib stream) in parts,
     * one every 900 ms (each MiB buys a second); cc answers at once whatever it is asked. Returns
     * what each was sent, whether aa is avoided, and how many pieces were raced.
     */
    async function race(lastBytes: number, streamed: (missing: WireObject[]) => { oid: Oid; size: number; zlib: Buffer }, partEveryMs = 900): Promise<{ aa: SwarmMessage[]; cc: SwarmMessage[]; avoided: boolean; raced: number }> {
      const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
      const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
      try {
        const { commit, transfer, fetch, missing, avoid } = await twoPieces(local, { lastBytes, pieceMaxMs: 1500 });
        const byOid = new Map(missing.map((b) => [b.oid, b]));
        const slow = streamed(missing);
        const [aa, cc] = [peer('aa'), peer('cc')];
        const bits = new Uint8Array(1);
        setBit(bits, 0);
        setBit(bits, 1);
        for (const conn of [aa, cc]) {
          fetch.addPeer(conn);
          fetch.handle(conn, { kind: 'have', commit: commit.oid, history: 0, pieces: 2, bitfield: Buffer.from(bits), complete: true });
        }
        const running = fetch.run();
        running.catch(() => undefined);
        const answered = new Set<number>();
        let offset = 0;
        let nextPartAt = 0;
        // Bounded: 300 turns of 50 ms; aa's whole stream would take longer than that.
        for (let turn = 0; turn < 300 && !transfer.complete; turn++) {
          await sleep(50);
          const cancelled = new Set([...aa.got, ...cc.got].flatMap((m) => (m.kind === 'cancel' ? [m.request] : [])));
          const wantOf = (conn: Peer): Extract<SwarmMessage, { kind: 'want' }> | undefined => conn.got.find((m): m is Extract<SwarmMessage, { kind: 'want' }> => m.kind === 'want' && m.want === 'blobs' && !cancelled.has(m.request));
          const slowWant = wantOf(aa);
          if (slowWant !== undefined && Date.now() >= nextPartAt && offset < slow.zlib.length) {
            if (offset === 0) {
              const rest = slowWant.oids.filter((oid) => oid !== slow.oid).flatMap((oid) => byOid.get(oid) ?? []);
              fetch.handle(aa, { kind: 'objects', request: slowWant.request, objects: rest, done: false });
            }
            const zlib = slow.zlib.subarray(offset, offset + LIMITS.partBytes);
            fetch.handle(aa, { kind: 'part', request: slowWant.request, oid: slow.oid, size: slow.size, offset, zlib, last: offset + zlib.length === slow.zlib.length });
            offset += zlib.length;
            nextPartAt = Date.now() + partEveryMs;
            if (offset === slow.zlib.length) fetch.handle(aa, { kind: 'objects', request: slowWant.request, objects: [], done: true });
          }
          const fastWant = wantOf(cc);
          if (fastWant !== undefined && !answered.has(fastWant.request)) {
            answered.add(fastWant.request);
            fetch.handle(cc, { kind: 'objects', request: fastWant.request, objects: fastWant.oids.flatMap((oid) => byOid.get(oid) ?? []), done: true });
          }
        }
        await running;
        return { aa: aa.got, cc: cc.got, avoided: avoid.has('aa' as NodeId), raced: fetch.progress.raced };
      } finally {
        await local.close();
        await repo.close();
      }
    }

    type Peer = ReturnType<typeof peer>;
    const wants = (got: readonly SwarmMessage[]): number[] => got.flatMap((m) => (m.kind === 'want' && m.want === 'blobs' ? [m.request] : []));
    const cancels = (got: readonly SwarmMessage[]): number[] => got.flatMap((m) => (m.kind === 'cancel' ? [m.request] : []));

    it('an honest peer slower than the limit: the piece is asked of another holder too, the first to bring it wins, and the slow request is cancelled, no fault of its peer', async () => {
      // A 6 MiB blob, stored (incompressible): 7 parts, 6 s and more from aa.
      const result = await race(6 << 20, (missing) => {
        const big = missing.find((b) => b.content.length === 6 << 20);
        assert.ok(big !== undefined, 'the large blob is in piece 1');
        return { oid: big.oid, size: big.content.length, zlib: deflateSync(big.content, { level: 0 }) };
      });
      assert.equal(result.raced, 1);
      assert.equal(wants(result.cc).length, 1, 'cc is asked once');
      assert.deepEqual(cancels(result.aa), wants(result.aa), "aa's request is cancelled");
      assert.equal(result.avoided, false, 'aa is not avoided: it was slow, not wrong');
    });

    it('a member declaring a size the blob has not (streaming at the floor): the other holder brings the blob, which proves the size false, and that member is avoided', async () => {
      // Piece 1's blobs are 32 bytes; aa streams the first of them as 64 MiB (a real stream, stored blocks of other bytes; 8 s of parts, never the last).
      const result = await race(32, (missing) => ({ oid: (missing[0] as WireObject).oid, size: 64 << 20, zlib: deflateSync(randomBytes(8 << 20), { level: 0 }).subarray(0, 8 << 20) }));
      assert.equal(result.raced, 1);
      assert.equal(result.avoided, true, 'aa is avoided');
      assert.deepEqual(cancels(result.aa), wants(result.aa), "aa's request is cancelled");
    });

    it('a large blob coming fast (over 4 MiB/s) past the limit is not raced', async () => {
      // 16 MiB at a part every 150 ms: ~6.7 MiB/s, ~2.5 s in all, past the piece's 1.5 s.
      const result = await race(16 << 20, (missing) => {
        const big = missing.find((b) => b.content.length === 16 << 20);
        assert.ok(big !== undefined);
        return { oid: big.oid, size: big.content.length, zlib: deflateSync(big.content, { level: 0 }) };
      }, 150);
      assert.equal(result.raced, 0);
      assert.deepEqual(wants(result.cc), [], 'cc is never asked');
    });

    it('no other holder: the slow request goes on alone, and its piece comes whole from it', async () => {
      const repo = await Repository.init(join(tempDir('commit-fetch'), 'repo'));
      const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
      try {
        const { commit, transfer, fetch, missing } = await twoPieces(local, { lastBytes: 4 << 20, pieceMaxMs: 1500 });
        const big = missing.find((b) => b.content.length === 4 << 20);
        assert.ok(big !== undefined);
        const zlib = deflateSync(big.content, { level: 0 });
        const aa = peer('aa');
        fetch.addPeer(aa);
        const bits = new Uint8Array(1);
        setBit(bits, 0);
        setBit(bits, 1);
        fetch.handle(aa, { kind: 'have', commit: commit.oid, history: 0, pieces: 2, bitfield: Buffer.from(bits), complete: true });
        const running = fetch.run();
        running.catch(() => undefined);
        const want = await firstBlobsWant(aa);
        fetch.handle(aa, { kind: 'objects', request: want.request, objects: missing.filter((b) => b !== big), done: false });
        // One part every 900 ms, past the piece's 1.5 s: 5 parts, ~3.6 s.
        for (let offset = 0; offset < zlib.length; offset += LIMITS.partBytes) {
          const part = zlib.subarray(offset, offset + LIMITS.partBytes);
          fetch.handle(aa, { kind: 'part', request: want.request, oid: big.oid, size: big.content.length, offset, zlib: part, last: offset + part.length === zlib.length });
          await sleep(900);
        }
        fetch.handle(aa, { kind: 'objects', request: want.request, objects: [], done: true });
        await running;
        assert.equal(transfer.complete, true);
        assert.equal(fetch.progress.raced, 0);
        assert.deepEqual(cancels(aa.got), []);
      } finally {
        await local.close();
        await repo.close();
      }
    });
  });

  describe('a blob in parts with no room here (a real 16 MiB tmpfs)', function () {
    const mounts: string[] = [];
    afterEach(() => {
      // Lazily: a test that failed may still hold files open there.
      for (const m of mounts.splice(0)) execFileSync('umount', ['-l', m]);
    });

    type Peer = ReturnType<typeof peer>;

    /**
     * Runs `body` with a repository on a fresh 16 MiB tmpfs, its fetch of two pieces (twoPieces)
     * running, and a Have of both from each of `ids`; then closes what it opened.
     */
    async function onTmpfs(
      ids: readonly string[],
      body: (fetch: CommitFetch, running: Promise<unknown>, peers: Peer[], missing: WireObject[]) => Promise<void>,
      o: { readonly sizeMiB?: number; readonly pieces?: Parameters<typeof twoPieces>[1] } = {},
    ): Promise<void> {
      const at = tempDir('commit-fetch-tmpfs');
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${o.sizeMiB ?? 16}m`, 'tmpfs', at]);
      mounts.push(at);
      const repo = await Repository.init(join(at, 'repo'));
      const local = new LocalObjects(repo, { flushBytes: 1 << 20, promisor: false, pool: new BlockPool(8) });
      try {
        const { commit, fetch, missing } = await twoPieces(local, o.pieces);
        const bits = new Uint8Array(1);
        setBit(bits, 0);
        setBit(bits, 1);
        const peers = ids.map((id) => {
          const conn = peer(id);
          fetch.addPeer(conn);
          fetch.handle(conn, { kind: 'have', commit: commit.oid, history: 0, pieces: 2, bitfield: Buffer.from(bits), complete: true });
          return conn;
        });
        const running = fetch.run();
        running.catch(() => undefined);
        await body(fetch, running, peers, missing);
      } finally {
        await local.close();
        await repo.close();
      }
    }

    /** Waits (bounded) for a want of piece 1 sent to `conn` not yet cancelled, and answers it with the first part of its first blob, declared `size` bytes. */
    async function answerWithPart(conn: Peer, fetch: CommitFetch, size: number): Promise<Oid> {
      for (let i = 0; i < 400; i++) {
        const cancelled = new Set(conn.got.flatMap((m) => (m.kind === 'cancel' ? [m.request] : [])));
        const want = conn.got.find((m) => m.kind === 'want' && m.want === 'blobs' && !cancelled.has(m.request));
        if (want?.kind === 'want') {
          const oid = want.oids[0] as Oid;
          fetch.handle(conn, { kind: 'part', request: want.request, oid, size, offset: 0, zlib: Buffer.alloc(LIMITS.partBytes), last: false });
          // Bounded: until the request is cancelled, or the fetch stops.
          for (let j = 0; j < 100 && !conn.got.some((m) => m.kind === 'cancel' && m.request === want.request); j++) await sleep(10);
          return oid;
        }
        await sleep(30);
      }
      throw new Error(`${conn.nodeId} was never asked for piece 1: ${JSON.stringify(conn.got.map((m) => [m.kind, "request" in m ? m.request : undefined]))}`);
    }

    it("asks another holder when one peer declares a size with no room here (its word alone), and stops once a second declares the same", () =>
      onTmpfs(['aa', 'cc'], async (fetch, running, [aa, cc]) => {
        assert.ok(aa !== undefined && cc !== undefined);
        const size = 64 * 2 ** 30;
        const first = await answerWithPart(aa, fetch, size);
        assert.equal(aa.got.filter((m) => m.kind === 'cancel').length, 1, 'the request with no room is cancelled');
        // Not stopped: the upstream no longer counts as holding the piece, which is asked of the other holder (once the chain is stuck).
        const second = await answerWithPart(cc, fetch, size);
        assert.equal(second, first, 'the same blob');
        assert.equal(aa.got.filter((m) => m.kind === 'want' && m.want === 'blobs').length, 1, 'the upstream is not asked again');
        await assert.rejects(running, /no room for a blob of 68719476736 bytes/);
      }));

    it('stops, saying why, once no other holder is left to ask: a peer that withheld the piece no longer counts, complete or not', () =>
      onTmpfs(['aa', 'cc'], async (fetch, running, [aa, cc]) => {
        assert.ok(aa !== undefined && cc !== undefined);
        // Both complete; they declare different sizes, neither with room here.
        await answerWithPart(aa, fetch, 64 * 2 ** 30);
        await answerWithPart(cc, fetch, 20 * 2 ** 30);
        // Not a stall of 30 s ("no peer could supply the rest"): the no-room error at once.
        await assert.rejects(running, /no room for a blob of 21474836480 bytes/);
      }));

    it('in a race of a slow piece, no room for the second copy of the blob cancels that request alone: no strike, no size agreed, and the slow one brings the piece', () => {
      const log = captureLogger();
      // Room for a blob of 12 MiB with 1 GiB to spare at the start, not once a few MiB of it are written.
      return onTmpfs(
        ['aa', 'cc', 'dd'],
        async (fetch, running, [aa, cc, dd], missing) => {
          assert.ok(aa !== undefined && cc !== undefined && dd !== undefined);
          const big = missing.find((b) => b.content.length === 12 << 20);
          assert.ok(big !== undefined);
          const zlib = deflateSync(big.content, { level: 0 });
          const want = await firstBlobsWant(aa);
          fetch.handle(aa, { kind: 'objects', request: want.request, objects: missing.filter((b) => b !== big), done: false });
          // One part every 400 ms (2.5 MiB/s: raced past 1.5 s), ~5 s in all; a race asked meanwhile is answered with its first part.
          const answered = new Set<number>();
          for (let offset = 0; offset < zlib.length; offset += LIMITS.partBytes) {
            const part = zlib.subarray(offset, offset + LIMITS.partBytes);
            fetch.handle(aa, { kind: 'part', request: want.request, oid: big.oid, size: big.content.length, offset, zlib: part, last: offset + part.length === zlib.length });
            for (const conn of [cc, dd]) {
              for (const m of conn.got) {
                if (m.kind !== 'want' || answered.has(m.request)) continue;
                answered.add(m.request);
                fetch.handle(conn, { kind: 'part', request: m.request, oid: big.oid, size: big.content.length, offset: 0, zlib: zlib.subarray(0, LIMITS.partBytes), last: false });
              }
            }
            await sleep(400);
          }
          fetch.handle(aa, { kind: 'objects', request: want.request, objects: [], done: true });
          await running;
          assert.ok(answered.size >= 1, 'the slow piece was raced');
          assert.ok(log.lines.some((e) => e.event === 'race-no-room'), 'a race met no room');
          assert.ok(!log.lines.some((e) => e.event === 'part-size-no-room'), 'no peer was struck for it');
        },
        { sizeMiB: 1024 + 16, pieces: { lastBytes: 12 << 20, pieceMaxMs: 1500, log } },
      );
    });

    it('stops at once when no other peer holds the piece', () =>
      onTmpfs(['aa'], async (fetch, running, [aa]) => {
        assert.ok(aa !== undefined);
        await answerWithPart(aa, fetch, LIMITS.objectBytes + 1);
        await assert.rejects(running, /no room for a blob of/);
      }));
  });
});
