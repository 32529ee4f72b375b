/**
 * Blobs too large for one swarm message (git wrote them: gitfs chunks what it writes) replicate in
 * parts, end to end: a real object server on one repository and a real fetch on another, over a
 * pair of real SwarmConnections on loopback TLS (the wire, the server's upload slot and pacing,
 * the fetch's checks and its pack writing all run). The blobs are committed with the git CLI,
 * loose as `git add` leaves them, or repacked by `git repack -adf` with one version a delta of the
 * other; the receiver's repository must pass `git fsck --strict` and give the same bytes to `git
 * cat-file`. A sender whose parts hash to another id is cut off and avoided, and nothing is kept.
 *
 * Memory: the process's peak RSS (VmHWM, reset through /proc/self/clear_refs before the transfer)
 * is measured over a 128 MiB transfer, both ends in this process.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { deflateSync, inflateSync } from 'node:zlib';
import type { ClusterTrust, NodeIdentity } from '../../src/cluster/identity.js';
import { initCluster, loadMembership } from '../../src/cluster/cluster-store.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import { clientOptions, serverOptions } from '../../src/cluster/tls.js';
import type { Oid } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { BlockPool } from '../../src/swarm/block-pool.js';
import { CommitFetch } from '../../src/swarm/commit-fetch.js';
import { SwarmConnection } from '../../src/swarm/connection.js';
import { LocalObjects } from '../../src/swarm/local-objects.js';
import { LIMITS, type SwarmMessage } from '../../src/swarm/messages.js';
import type { RequestOwner } from '../../src/swarm/object-read.js';
import { ObjectServer } from '../../src/swarm/object-server.js';
import { CONTENDED_WINDOW_MS } from '../../src/swarm/part-sender.js';
import { PieceNews } from '../../src/swarm/piece-news.js';
import { TreeCache } from '../../src/swarm/tree-cache.js';
import { Transfers } from '../../src/swarm/transfers.js';
import { silentLogger } from '../../src/util/log.js';
import { sleep, waitFor } from '../support/cluster-nodes.js';
import { pseudoRandomBytes } from '../support/data.js';
import { gitBytes, gitRun, gitText } from '../support/git-env.js';
import { tempDirs } from '../support/tmp.js';

const MiB = 1 << 20;
const SERVER = 'aa' as NodeId;
const CLIENT = 'bb' as NodeId;

/** Closes both ends of a test's transfer: the connection, the TLS server, then the stores. */
async function closeAll(client: SwarmConnection, server: Server, stores: ReadonlyArray<{ close(): Promise<void> }>): Promise<void> {
  client.close('done');
  server.close();
  for (const s of stores) await s.close();
}

/** The kB of a line of /proc/self/status. */
function status(field: 'VmHWM' | 'VmRSS'): number {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith(`${field}:`)) ?? '';
  return Number(/(\d+)/.exec(line)?.[1] ?? NaN);
}

describe('blobs larger than a swarm message, in parts (end to end over TLS)', function () {
  this.timeout(300_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());
  let identity: NodeIdentity;
  let trust: ClusterTrust;

  before(async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    await initCluster(repo.gitDir, Date.now());
    ({ identity, trust } = await loadMembership(repo.gitDir, Date.now()));
    await repo.close();
  });

  /** Files committed with git into a new gitfs repository, one commit per version (each the parent of the next): the last commit. */
  async function committedWithGit(versions: readonly Buffer[], name = 'big.bin'): Promise<{ gitDir: string; commit: Oid; blobs: Oid[] }> {
    const repo = await Repository.init(join(tmp.make(), 'server'));
    await repo.close();
    const gitDir = repo.gitDir;
    let parent: string | undefined;
    const blobs: Oid[] = [];
    for (const [i, content] of versions.entries()) {
      const file = join(tmp.make(), 'big.bin');
      writeFileSync(file, content);
      const blob = gitText(['hash-object', '-w', file], { gitDir }) as Oid;
      blobs.push(blob);
      const tree = gitText(['mktree'], { gitDir, input: `100644 blob ${blob}\t${name}\n` });
      parent = gitText(['commit-tree', tree, '-m', `version ${i}`, ...(parent === undefined ? [] : ['-p', parent])], { gitDir });
    }
    gitText(['update-ref', 'refs/heads/main', parent as string], { gitDir });
    return { gitDir, commit: parent as Oid, blobs };
  }

  /**
   * A TLS connection between a server end (`serve` gets its messages: the object server's
   * handling by default) and a client end whose answers go to the requests tracked.
   */
  async function pair(serve: (conn: SwarmConnection, m: SwarmMessage) => void, requests: Map<number, RequestOwner>): Promise<{ client: SwarmConnection; closed: Promise<string>; server: Server }> {
    const infoHash = Buffer.alloc(20, 9);
    const server = createServer(serverOptions(identity, trust), (socket) => {
      new SwarmConnection(socket, CLIENT, { infoHash, selfId: identity.nodeId, initiator: false, pool: new BlockPool(8) }, { onMessage: serve, onClose: () => undefined });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...clientOptions(identity, trust) }, () => resolve(s));
      s.once('error', reject);
    });
    let ended: (reason: string) => void = () => undefined;
    const closed = new Promise<string>((resolve) => (ended = resolve));
    let fetch: CommitFetch | undefined;
    const client = new SwarmConnection(socket, SERVER, { infoHash, selfId: identity.nodeId, initiator: true, pool: new BlockPool(8) }, {
      onMessage: (conn, m) => {
        if (m.kind === 'objects' || m.kind === 'reject' || m.kind === 'part') requests.get(m.request)?.handle(conn, m);
        else fetch?.handle(conn, m);
      },
      onClose: (conn, reason) => {
        for (const r of requests.values()) r.peerGone(conn);
        fetch?.peerGone(conn);
        ended(reason);
      },
    });
    Object.assign(client, { attach: (f: CommitFetch) => (fetch = f) });
    return { client, closed, server };
  }

  /** The object server of the repository at `gitDir`, as a node serves it. */
  async function objectServer(gitDir: string): Promise<{ server: ObjectServer; close: () => Promise<void> }> {
    const repo = await Repository.open(gitDir);
    const local = new LocalObjects(repo, { flushBytes: 16 * MiB, promisor: false, pool: new BlockPool(8) });
    const server = new ObjectServer({ local, transfers: new Transfers(local, new TreeCache(), new PieceNews(() => Date.now())), log: silentLogger, now: () => Date.now() });
    return { server, close: async () => (await local.close(), await repo.close()) };
  }

  /** A fetch of `commit`'s whole closure into a new repository, over `client`. */
  async function fetcher(client: SwarmConnection, commit: Oid, requests: Map<number, RequestOwner>): Promise<{ fetch: CommitFetch; repo: Repository; local: LocalObjects; avoid: Map<NodeId, number> }> {
    const repo = await Repository.init(join(tmp.make(), 'client'));
    const local = new LocalObjects(repo, { flushBytes: 16 * MiB, promisor: false, pool: new BlockPool(8) });
    const avoid = new Map<NodeId, number>();
    let request = 0;
    const fetch = new CommitFetch(
      {
        local,
        transfer: new Transfers(local, new TreeCache(), new PieceNews(() => Date.now())).get(commit, 0),
        trees: new TreeCache(),
        log: silentLogger,
        now: () => Date.now(),
        avoid,
        nextRequest: () => ++request,
        track: (r: number, owner: RequestOwner | undefined) => void (owner === undefined ? requests.delete(r) : requests.set(r, owner)),
      },
      { order: [SERVER, CLIENT], self: CLIENT, blobs: true },
    );
    (client as unknown as { attach(f: CommitFetch): void }).attach(fetch);
    fetch.announcedBy([SERVER]);
    fetch.addPeer(client);
    return { fetch, repo, local, avoid };
  }

  /** Fetches the closure of `commit` from the repository at `gitDir`: the receiver's git directory, and the peak RSS over the transfer (kB above the RSS before it). */
  async function replicate(gitDir: string, commit: Oid): Promise<{ receiver: string; peakKb: number }> {
    const served = await objectServer(gitDir);
    const requests = new Map<number, RequestOwner>();
    const { client, server } = await pair((conn, m) => served.server.handle(conn, m), requests);
    const { fetch, repo, local } = await fetcher(client, commit, requests);
    try {
      writeFileSync('/proc/self/clear_refs', '5');
      const before = status('VmRSS');
      await fetch.run();
      const peakKb = status('VmHWM') - before;
      gitText(['update-ref', 'refs/heads/main', commit], { gitDir: repo.gitDir });
      return { receiver: repo.gitDir, peakKb };
    } finally {
      await closeAll(client, server, [local, repo, served]);
    }
  }

  /** The receiver holds `blobs` as the sender does, and git fsck --strict is clean. */
  function sameAsSender(receiver: string, sender: string, blobs: readonly Oid[]): void {
    const fsck = gitRun(['fsck', '--strict', '--no-dangling'], { gitDir: receiver });
    assert.equal(fsck.status, 0, `git fsck --strict: ${fsck.stderr}`);
    for (const blob of blobs) assert.ok(gitBytes(['cat-file', 'blob', blob], { gitDir: receiver }).equals(gitBytes(['cat-file', 'blob', blob], { gitDir: sender })), `blob ${blob} differs`);
  }

  it('a 128 MiB incompressible blob git wrote (loose) reaches the other node whole, in parts; git fsck --strict is clean there; memory stays far below the blob', async () => {
    const content = pseudoRandomBytes(128 * MiB, 'big-loose');
    const { gitDir, commit, blobs } = await committedWithGit([content]);
    assert.ok(content.length > LIMITS.messageBytes);
    const { receiver, peakKb } = await replicate(gitDir, commit);
    sameAsSender(receiver, gitDir, blobs);
    // Both ends run here: the sender's parts and the receiver's, a few MiB each, never the blob.
    console.log(`      peak RSS over the transfer: +${(peakKb / 1024).toFixed(1)} MiB for a ${content.length / MiB} MiB blob`);
    assert.ok(peakKb * 1024 < content.length / 2, `peak RSS rose by ${peakKb} kB`);
  });

  it('two 24 MiB versions repacked by git (one a delta of the other) both reach the other node, the delta resolved and deflated anew', async () => {
    const v1 = pseudoRandomBytes(24 * MiB, 'big-v1');
    const v2 = Buffer.from(v1);
    pseudoRandomBytes(4096, 'edit').copy(v2, 10 * MiB);
    const { gitDir, commit, blobs } = await committedWithGit([v1, v2]);
    gitText(['repack', '-adf'], { gitDir });
    const pack = readdirSync(join(gitDir, 'objects', 'pack')).find((f) => f.endsWith('.idx')) as string;
    const deltas = gitText(['verify-pack', '-v', join(gitDir, 'objects', 'pack', pack)]).split('\n').filter((l) => blobs.some((b) => l.startsWith(b)) && l.trim().split(/\s+/).length > 5);
    assert.equal(deltas.length, 1, 'git made one version a delta of the other');
    const { receiver } = await replicate(gitDir, commit);
    sameAsSender(receiver, gitDir, blobs);
  });

  it('a blob its tree names .gitattributes, too large for a message, is refused as git fsck would be asked to check it (GITFS_FSCK_REFUSED), not stored unchecked', async () => {
    const { gitDir, commit } = await committedWithGit([pseudoRandomBytes(9 * MiB, 'big-attributes')], '.gitattributes');
    const served = await objectServer(gitDir);
    const requests = new Map<number, RequestOwner>();
    const { client, server } = await pair((conn, m) => served.server.handle(conn, m), requests);
    const { fetch, local, repo } = await fetcher(client, commit, requests);
    try {
      await assert.rejects(fetch.run(), /too large for gitfs to check/);
      assert.equal(fetch.refusal?.code, 'GITFS_FSCK_REFUSED');
      await local.flush();
      assert.equal(gitRun(['rev-parse', '--verify', '-q', 'refs/heads/main'], { gitDir: repo.gitDir }).status, 1, 'no branch');
    } finally {
      await closeAll(client, server, [local, repo, served]);
    }
  });

  it('a sender whose parts assemble to content of another id is cut off and avoided; nothing of it is kept, and the fetch does not complete', async () => {
    const content = pseudoRandomBytes(12 * MiB, 'big-liar');
    const { gitDir, commit, blobs } = await committedWithGit([content]);
    const big = blobs[0] as Oid;
    const served = await objectServer(gitDir);
    const requests = new Map<number, RequestOwner>();
    const lie = deflateSync(pseudoRandomBytes(content.length, 'not-it'), { level: 1 });
    // Honest with commits and trees; the blob comes as parts of other bytes of the same size.
    const { client, closed, server } = await pair((conn, m) => {
      if (m.kind !== 'want' || m.want !== 'blobs' || !m.oids.includes(big)) return served.server.handle(conn, m);
      for (let at = 0; at < lie.length; at += LIMITS.partBytes) {
        conn.send({ kind: 'part', request: m.request, oid: big, size: content.length, offset: at, zlib: lie.subarray(at, at + LIMITS.partBytes), last: at + LIMITS.partBytes >= lie.length });
      }
      conn.send({ kind: 'objects', request: m.request, objects: [], done: true });
    }, requests);
    const { fetch, repo, local, avoid } = await fetcher(client, commit, requests);
    try {
      const running = fetch.run();
      running.catch(() => undefined);
      assert.match(await closed, /sent blob .* hashes to another id/);
      assert.ok((avoid.get(SERVER) ?? 0) > Date.now(), 'the liar is avoided');
      fetch.stop('test over');
      await assert.rejects(running);
      await local.flush();
      assert.notEqual(gitRun(['cat-file', '-e', big], { gitDir: repo.gitDir }).status, 0, 'the blob is not stored');
      assert.deepEqual(readdirSync(join(repo.gitDir, 'objects', 'pack')).filter((f) => f.startsWith('tmp_')), [], 'no pack left half written');
      assert.equal(gitRun(['fsck', '--strict', '--no-dangling'], { gitDir: repo.gitDir }).status, 0);
      assert.equal(gitRun(['rev-parse', '--verify', '-q', 'refs/heads/main'], { gitDir: repo.gitDir }).status, 1, 'no branch');
    } finally {
      await closeAll(client, server, [local, repo, served]);
    }
  });

  /**
   * One object server holding a 48 MiB blob git wrote (or, with `versions`, those blobs), and two
   * clients over real TLS: a slow one (it reads a part, or a message of objects, every 3 s, a slow
   * link or disk: a third of the pace a receiver grants, while `pace` holds) and another (as slow,
   * with `otherSlow`). `run` gets them and the (first) blob; everything closes after it.
   */
  async function slowAndOther(
    run: (t: { slow: Client; other: Client; slowPace: { pace: boolean }; otherPace: { pace: boolean }; big: Oid; content: Buffer; blobs: Oid[] }) => Promise<void>,
    otherSlow = false,
    versions: readonly Buffer[] = [pseudoRandomBytes(48 * MiB, 'big-slow')],
  ): Promise<void> {
    const content = versions[0] as Buffer;
    const { gitDir, blobs } = await committedWithGit(versions);
    const served = await objectServer(gitDir);
    const infoHash = Buffer.alloc(20, 9);
    // The server's ends, in the order the clients connect.
    const ids = ['bb', 'cc'] as NodeId[];
    const server = createServer(serverOptions(identity, trust), (socket) => {
      new SwarmConnection(socket, ids.shift() as NodeId, { infoHash, selfId: identity.nodeId, initiator: false, pool: new BlockPool(8) }, { onMessage: (conn, m) => served.server.handle(conn, m), onClose: (conn) => served.server.forget(conn) });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = async (slow: { pace: boolean }): Promise<Client> => {
      const socket = await new Promise<TLSSocket>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...clientOptions(identity, trust) }, () => resolve(s));
        s.once('error', reject);
      });
      const got: SwarmMessage[] = [];
      const conn = new SwarmConnection(socket, SERVER, { infoHash, selfId: identity.nodeId, initiator: true, pool: new BlockPool(8) }, {
        onMessage: (c, m) => {
          got.push(m);
          if (slow.pace && (m.kind === 'part' || (m.kind === 'objects' && m.objects.length > 0))) c.pauseWhile(sleep(3000));
        },
        onClose: () => undefined,
      });
      return { conn, got };
    };
    const slowPace = { pace: true };
    const otherPace = { pace: otherSlow };
    const slow = await client(slowPace);
    const other = await client(otherPace);
    try {
      await run({ slow, other, slowPace, otherPace, big: blobs[0] as Oid, content, blobs });
    } finally {
      slow.conn.close('done');
      other.conn.close('done');
      server.close();
      await served.close();
    }
  }

  interface Client {
    readonly conn: SwarmConnection;
    readonly got: SwarmMessage[];
  }
  const told = (who: Client, what: string, ms: number, which: (m: SwarmMessage) => boolean): Promise<true> =>
    waitFor(what, ms, () => (who.got.some(which) ? true : undefined), { everyMs: 20, detail: () => who.got.map((m) => m.kind).join(' ') });
  const busy = (request: number) => (m: SwarmMessage) => m.kind === 'reject' && m.request === request && m.reason === 'busy';
  const wantOf = (big: Oid, request: number): SwarmMessage => ({ kind: 'want', request, want: 'blobs', oids: [big], ahead: false });

  /** Asks `who` for `big` from request `first` on, as a fetch does: again 100 ms after each busy; the request being asked. */
  function askUntilServed(who: Client, big: Oid, first: number): { readonly request: () => number; stop(): void } {
    let request = first;
    who.conn.send(wantOf(big, request));
    const timer = setInterval(() => {
      if (!who.got.some(busy(request))) return;
      request++;
      who.conn.send(wantOf(big, request));
    }, 100);
    return { request: () => request, stop: () => clearInterval(timer) };
  }

  it('a receiver too slow for a blob in parts while another peer waits for the upload slot is told busy, and the slot passes to the one waiting, which gets the blob whole', async () => {
    await slowAndOther(async ({ slow, other, slowPace, big, content }) => {
      slow.conn.send(wantOf(big, 1));
      await told(slow, 'the first part', 10_000, (m) => m.kind === 'part');
      // The other asks as a fetch does: again 100 ms after each busy, until it is served.
      const asking = askUntilServed(other, big, 1);
      try {
        // Yielded after ~15 s: the parts the sockets took at first count as paced.
        await told(other, 'free: the slot yielded', CONTENDED_WINDOW_MS + 20_000, (m) => m.kind === 'free');
        await told(other, 'a whole answer', 60_000, (m) => m.kind === 'objects' && m.done && other.got.some((p) => p.kind === 'part' && p.request === m.request));
      } finally {
        asking.stop();
      }
      const served = other.got.find((m) => m.kind === 'objects' && m.done) as Extract<SwarmMessage, { kind: 'objects' }>;
      const parts = other.got.flatMap((m) => (m.kind === 'part' && m.request === served.request ? [m] : []));
      assert.equal(parts.at(-1)?.last, true);
      assert.ok(inflateSync(Buffer.concat(parts.map((p) => p.zlib))).equals(content), 'the waiting peer got the blob whole');
      // The slow one's link recovers: it reads the parts still on their way, then `busy`, and never the last part.
      slowPace.pace = false;
      await told(slow, 'busy: its send stopped', 30_000, busy(1));
      assert.ok(!slow.got.some((m) => m.kind === 'part' && m.last), 'the slow one never had the last part');
    });
  });

  it('a receiver too slow for a want of whole blobs (1 MiB each) while another peer waits for the upload slot is told busy for the rest, and the slot passes to the one waiting', async () => {
    const versions = Array.from({ length: 40 }, (_, i) => pseudoRandomBytes(MiB, `whole ${i}`));
    await slowAndOther(
      async ({ slow, other, slowPace, blobs }) => {
        const last = blobs.at(-1) as Oid;
        slow.conn.send({ kind: 'want', request: 1, want: 'blobs', oids: blobs, ahead: false });
        await told(slow, 'the first objects', 10_000, (m) => m.kind === 'objects' && m.objects.length > 0);
        const asking = askUntilServed(other, last, 1);
        try {
          await told(other, 'free: the slot yielded', CONTENDED_WINDOW_MS + 20_000, (m) => m.kind === 'free');
          await told(other, 'the blob', 30_000, (m) => m.kind === 'objects' && m.objects.some((o) => o.oid === last));
        } finally {
          asking.stop();
        }
        slowPace.pace = false;
        await told(slow, 'busy for the rest', 30_000, busy(1));
        const got = new Set(slow.got.flatMap((m) => (m.kind === 'objects' && m.request === 1 ? m.objects.map((o) => o.oid) : [])));
        assert.ok(got.size > 0 && got.size < blobs.length, `the slow one had ${got.size} of ${blobs.length} blobs before the slot passed on`);
      },
      false,
      versions,
    );
  });

  it('a slow receiver keeps the slot when the peer once turned away asks no more (it found the blob elsewhere)', async () => {
    await slowAndOther(async ({ slow, other, slowPace, big }) => {
      slow.conn.send(wantOf(big, 1));
      await told(slow, 'the first part', 10_000, (m) => m.kind === 'part');
      other.conn.send(wantOf(big, 1));
      await told(other, 'busy', 10_000, busy(1));
      // Past the window and the parts the sockets took at first (~15 s), at a third of the pace.
      await sleep(CONTENDED_WINDOW_MS + 8_000);
      slowPace.pace = false;
      await told(slow, 'the last part', 30_000, (m) => m.kind === 'part' && m.last);
      assert.ok(!slow.got.some(busy(1)), 'the slot was not yielded');
    });
  });

  it('two slow receivers do not take the slot from each other for ever: the one that yielded waits, asking, while the other is served whole', async () => {
    await slowAndOther(async ({ slow, other, slowPace, otherPace, big }) => {
      const first = askUntilServed(slow, big, 1);
      await told(slow, 'the first part', 10_000, (m) => m.kind === 'part');
      const second = askUntilServed(other, big, 1);
      try {
        // The first yields to the second (~15 s); its link recovers, so its busy comes at once and it
        // asks on every 100 ms while the second, as slow as before, is served.
        await told(other, 'a part: the slot is its', CONTENDED_WINDOW_MS + 20_000, (m) => m.kind === 'part');
        const served = second.request();
        slowPace.pace = false;
        await told(slow, 'busy: it yielded', 30_000, busy(1));
        await sleep(CONTENDED_WINDOW_MS + 8_000);
        otherPace.pace = false;
        await told(other, 'the last part', 60_000, (m) => m.kind === 'part' && m.request === served && m.last);
        assert.ok(!other.got.some(busy(served)), 'the second kept the slot while the first asked');
        await told(slow, 'the last part, once the slot was free again', 60_000, (m) => m.kind === 'part' && m.last);
      } finally {
        first.stop();
        second.stop();
      }
    }, true);
  });
});
