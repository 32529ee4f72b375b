/**
 * A real `gitfs serve` under a flood of hostile UDP datagrams on loopback. Node A (the CA node)
 * and node B (joined with a token over TLS) serve with multicast off, each the other's static
 * peer; B also sends to a UDP socket of the test, which so captures B's real announcements.
 * The test sends A 12,000 random datagrams and mutations of those captures (and of packets it
 * seals with a foreign CA's and B's own keys), paced by A's own receive counter so the socket
 * buffer does not overflow. Then A is alive, `gitfs peers --json` shows exactly B with B's real
 * heads, every datagram that reached A's socket was counted once, and A logged no error.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createHash, createPublicKey, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { connect as tlsConnect } from 'node:tls';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificatePem, issueCertificate } from '../../src/cluster/certificate.js';
import { loadAuthority, loadMembership } from '../../src/cluster/cluster-store.js';
import { NodeIdentity, type ClusterTrust } from '../../src/cluster/identity.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { encodeAnnouncement, type Announcement } from '../../src/multicast/announcement.js';
import { sealEnvelope } from '../../src/multicast/envelope.js';
import { DROP_REASONS } from '../../src/multicast/packet-error.js';
import { daemonSocketPath } from '../../src/node/daemon.js';
import { clientOptions } from '../../src/cluster/tls.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import { BlockPool } from '../../src/swarm/block-pool.js';
import { SwarmConnection } from '../../src/swarm/connection.js';
import { CONNECTIONS_PER_MEMBER } from '../../src/swarm/swarm.js';
import type { NodeSnapshot } from '../../src/node/snapshot.js';
import { askUnixSocket } from '../../src/util/unix-socket.js';
import { git, gitfs, GITFS_BIN } from '../support/cli.js';
import { run } from '../support/run.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { suiteDirs } from '../support/tmp.js';
import { announcement, head, makeCluster } from '../multicast/fixture.js';
import { fuzzSeed, mutator, prng } from '../multicast/mutations.js';
import { cleanEnv, sleep, snapshotOf } from '../support/cluster-nodes.js';
import { freeTcpPort, freeUdpPort, ServeProcess, within } from './serve-process.js';

const COUNT = 12_000;

async function ok(args: readonly string[]): Promise<string> {
  const r = await gitfs(args, { env: cleanEnv() });
  if (r.code !== 0) throw new Error(`gitfs ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The kernel's drop counter of the IPv4 UDP socket bound to `port` (/proc/net/udp), or 0 if it cannot be read. */
function kernelDrops(port: number): number {
  let text: string;
  try {
    text = readFileSync('/proc/net/udp', 'utf8');
  } catch {
    return 0;
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let drops = 0;
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[1]?.endsWith(`:${hexPort}`)) drops += Number(cols[cols.length - 1] ?? 0);
  }
  return drops;
}

function sortedHeads(heads: readonly { branch: string; oid: string }[]): [string, string][] {
  return heads.map((h): [string, string] => [h.branch, h.oid]).sort((x, y) => (x[0] < y[0] ? -1 : 1));
}

describe('node daemon: a flood of hostile datagrams', function () {
  this.timeout(120_000);
  const processes: ServeProcess[] = [];
  const sockets: Socket[] = [];
  const tmp = suiteDirs(async () => {
    for (const s of sockets) await new Promise<void>((resolve) => s.close(() => resolve()));
    for (const p of processes) await p.stop();
  });

  let repoA = '';
  let repoB = '';
  let udpA = 0;
  let svcA = 0;
  let a: ServeProcess;
  let b: ServeProcess;
  let bIdentity: { identity: NodeIdentity; trust: ClusterTrust };
  let bHeads: [string, string][] = [];
  const captured: Buffer[] = [];

  before(async () => {
    const base = tmp.make();
    repoA = join(base, 'a');
    repoB = join(base, 'b');
    const src = join(base, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'file'), 'content\n');
    [udpA] = [await freeUdpPort()];
    const udpB = await freeUdpPort();
    svcA = await freeTcpPort();
    const svcB = await freeTcpPort();

    const capture = createSocket('udp4');
    sockets.push(capture);
    capture.on('message', (m) => captured.push(m));
    await new Promise<void>((resolve) => capture.bind(0, '127.0.0.1', () => resolve()));
    const udpCapture = capture.address().port;

    await ok(['init', '--repo', repoA]);
    await ok(['cluster', 'init', '--repo', repoA]);
    await ok(['commit', '--repo', repoA, '--branch', 'main', '--from', src, '-m', 'a']);
    const common = { GITFS_MULTICAST: 'off', GITFS_ADVERTISE: '127.0.0.1', GITFS_SERVICE_ADDRESS: '127.0.0.1', GITFS_ANNOUNCE_INTERVAL_MS: '1000' };
    a = await ServeProcess.start('node A', repoA, { ...common, GITFS_NODE_NAME: 'node-a', GITFS_MULTICAST_PORT: String(udpA), GITFS_SERVICE_PORT: String(svcA), GITFS_STATIC_PEERS: `127.0.0.1:${udpB}` });
    processes.push(a);

    const token = (await ok(['cluster', 'token', '--repo', repoA, '--issuer', `127.0.0.1:${svcA}`])).trim();
    await ok(['init', '--repo', repoB]);
    await ok(['cluster', 'join', token, '--repo', repoB]);
    await ok(['commit', '--repo', repoB, '--branch', 'main', '--from', src, '-m', 'b']);
    writeFileSync(join(src, 'file'), 'changed\n');
    await ok(['commit', '--repo', repoB, '--branch', 'feature/x', '--from', src, '-m', 'b2']);
    await ok(['branch', '--repo', repoB, 'create', 'release/2025.1', 'main']);
    bHeads = sortedHeads(
      git(repoB, ['for-each-ref', '--format=%(refname:strip=2) %(objectname)', 'refs/heads'])
        .trim()
        .split('\n')
        .map((l) => ({ branch: l.split(' ')[0] ?? '', oid: l.split(' ')[1] ?? '' })),
    );
    assert.equal(bHeads.length, 3);
    bIdentity = await loadMembership(repoB, Date.now());

    b = await ServeProcess.start('node B', repoB, {
      ...common,
      GITFS_NODE_NAME: 'node-b',
      GITFS_MULTICAST_PORT: String(udpB),
      GITFS_SERVICE_PORT: String(svcB),
      GITFS_STATIC_PEERS: `127.0.0.1:${udpA},127.0.0.1:${udpCapture}`,
    });
    processes.push(b);

    // A knows B with all its heads, and the test holds a few of B's real announcements.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const snap = await snapshotOf(repoA);
      const peer = snap.peers.find((p) => p.nodeId === bIdentity.identity.nodeId);
      if (peer !== undefined && JSON.stringify(sortedHeads(peer.heads)) === JSON.stringify(bHeads) && captured.length >= 4) break;
      if (Date.now() > deadline) throw new Error(`A did not learn B's heads within 20 s: ${JSON.stringify(snap.peers)}, ${captured.length} captured\n${a.tail()}\n${b.tail()}`);
      await sleep(50);
    }
  });

  it(`stays up, keeps exactly the legitimate peer and counts each of ${COUNT} hostile datagrams once`, async () => {
    const seed = fuzzSeed();
    const rnd = prng(seed);
    const foreign = (await makeCluster(tmp.make())).ca;
    const now = Date.now();
    const bSigned = (overrides: Partial<Announcement>): Uint8Array =>
      sealEnvelope(bIdentity.identity, bIdentity.trust, encodeAnnouncement(announcement(bIdentity.identity.nodeId, { timeMs: now, instance: 'ee'.repeat(16), ...overrides })));
    const legit = captured.slice(0, 8);
    const hostile = [
      sealEnvelope(foreign.identity, bIdentity.trust, encodeAnnouncement(announcement(foreign.identity.nodeId, { timeMs: now, heads: [head('main')] }))), // not a member
      sealEnvelope(foreign.identity, foreign.trust, encodeAnnouncement(announcement(foreign.identity.nodeId, { timeMs: now }))), // another cluster
      bSigned({ nodeId: foreign.identity.nodeId, heads: [head('evil')] }), // B's key, another node id
      bSigned({ timeMs: now - 3_600_000, heads: [head('evil')] }), // stale
    ];
    const mutate = mutator(rnd, [...legit, ...hostile], legit);

    const sender = createSocket('udp4');
    sockets.push(sender);
    await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', () => resolve()));

    const before = (await snapshotOf(repoA)).stats.received;
    assert.ok(before !== null);
    const dropsBefore = kernelDrops(udpA);
    const capturedBefore = captured.length;
    let sent = 0;
    let sendErrors = 0;
    // At most ~75 datagrams in flight: far below what A's receive buffer holds even at a page per datagram.
    const BATCH = 25;
    for (let i = 0; i < COUNT; i += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, COUNT - i) }, () => mutate()[0]);
      await Promise.all(
        batch.map(
          (packet) =>
            new Promise<void>((resolve) =>
              sender.send(packet, udpA, '127.0.0.1', (e) => {
                if (e) sendErrors++;
                else sent++;
                resolve();
              }),
            ),
        ),
      );
      await new Promise((resolve) => setImmediate(resolve));
      {
        // Back-pressure: let A's count catch up to within 50 datagrams of what was sent.
        const deadline = Date.now() + 15_000;
        for (;;) {
          const r = (await snapshotOf(repoA)).stats.received;
          if (r === null || r.received - before.received >= sent - 50 - (kernelDrops(udpA) - dropsBefore)) break;
          if (Date.now() > deadline) throw new Error(`A fell behind: ${r.received - before.received} of ${sent} counted\n${a.tail()}`);
          await sleep(5);
        }
      }
    }
    assert.equal(sendErrors, 0, 'datagrams the kernel refused to send');
    assert.equal(sent, COUNT);

    // Everything that reached A's socket gets counted.
    let after = (await snapshotOf(repoA)).stats.received;
    const deadline = Date.now() + 20_000;
    while (after === null || after.received - before.received < sent - (kernelDrops(udpA) - dropsBefore)) {
      if (Date.now() > deadline) throw new Error(`A counted ${after === null ? 'nothing' : after.received - before.received} of ${sent}\n${a.tail()}`);
      await sleep(50);
      after = (await snapshotOf(repoA)).stats.received;
    }
    const lost = kernelDrops(udpA) - dropsBefore;
    const fromB = captured.length - capturedBefore;

    assert.ok(a.running, `A died\n${a.tail()}`);
    const r = await gitfs(['peers', '--json', '--repo', repoA], { env: cleanEnv() });
    assert.equal(r.code, 0, r.stderr);
    const snap = JSON.parse(r.stdout) as NodeSnapshot;
    assert.deepEqual(
      snap.peers.map((p) => p.nodeId),
      [bIdentity.identity.nodeId],
      `A's peers: ${JSON.stringify(snap.peers)}`,
    );
    const peer = snap.peers[0];
    assert.deepEqual(sortedHeads(peer?.heads ?? []), bHeads);
    assert.equal(peer?.restarts, 0, 'a forged packet passed for a restart of B');
    assert.equal(peer?.name, 'node-b');

    const stats = snap.stats.received;
    assert.ok(stats !== null);
    const drops = DROP_REASONS.reduce((n, reason) => n + stats[reason], 0);
    assert.equal(stats.received, stats.accepted + drops, `every datagram counted once: ${JSON.stringify(stats)}`);
    assert.equal(lost, 0, `the kernel dropped ${lost} datagrams at A's socket: the pacing failed`);
    const counted = stats.received - before.received;
    assert.ok(counted >= sent - lost, `A counted ${counted} datagrams, ${sent - lost} of the fuzz arrived`);
    // Only B's own announcements (each also sent to the capture socket) and copies of them can be accepted.
    const accepted = stats.accepted - before.accepted;
    assert.ok(accepted <= fromB + 20, `${accepted} accepted during the fuzz, B sent ${fromB}; seed ${seed}`);
    assert.ok(counted <= sent + fromB + 20, `A counted ${counted}: more than arrived (${sent} + ${fromB} from B)`);
    // Past the budget for checking packets of sources no member was heard from, they are dropped unchecked; B's still count.
    assert.ok(stats.throttled - before.throttled > 0, `none throttled: ${JSON.stringify(stats)}`);
    for (const reason of ['oversized', 'malformed', 'not_member', 'foreign_cluster', 'bad_signature', 'identity_mismatch', 'stale'] as const) {
      assert.ok(stats[reason] - before[reason] > 0, `no datagram dropped as ${reason}: ${JSON.stringify(stats)}; seed ${seed}`);
    }

    const errors = a.events.filter((e) => e.level === 'error');
    assert.deepEqual(errors, [], `A logged errors\n${a.tail()}`);
    assert.deepEqual(
      a.lines.filter((l) => !l.startsWith('{')),
      [],
      'A wrote something other than log lines',
    );
    assert.ok(
      a.events.some((e) => e.event === 'packet-dropped' && e.level === 'warn'),
      'drops are reported (rate-limited) as warnings',
    );
    // B is unaffected and still sees A.
    assert.ok(b.running, b.tail());
    const fromBView = await snapshotOf(repoB);
    assert.deepEqual(
      fromBView.peers.map((p) => p.nodeId),
      [snap.self.nodeId],
    );
  });

  it('a second `gitfs serve` on the same repository is refused (exit 5) and the first keeps serving', async () => {
    const second = await run(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'serve', '--repo', repoA], cleanEnv(), 30_000);
    assert.equal(second.code, 5, second.stderr);
    assert.match(second.stderr, /GITFS_ALREADY_SERVING/);
    assert.ok(a.running, a.tail());
    const r = await gitfs(['peers', '--json', '--repo', repoA], { env: cleanEnv() });
    assert.equal(r.code, 0, r.stderr);
  });

  it('rollout commands on a node that applies no channel: status says so, a named channel is unknown (exit 4)', async () => {
    const status = await gitfs(['rollout', 'status', '--repo', repoA], { env: cleanEnv() });
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /no channel is applied here/);
    for (const args of [['status', 'site/prod'], ['pause', 'site/prod'], ['rollback', 'site/prod']]) {
      const r = await gitfs(['rollout', ...args, '--repo', repoA], { env: cleanEnv() });
      assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /GITFS_UNKNOWN_BRANCH/);
    }
    assert.ok(a.running, a.tail());
  });

  it('control requests of odd shape are GITFS_BAD_ARGUMENT, and the daemon answers on', async () => {
    const ask = (req: unknown): Promise<unknown> => askUnixSocket(daemonSocketPath(repoA), req, { timeoutMs: 10_000, peer: 'the node daemon', failCode: ErrorCodes.NOT_SERVING });
    // A missing branch became the branch "undefined"; an array, its one element; null, a TypeError.
    for (const req of [null, [1], 'peers', { op: 'fetch' }, { op: 'fetch', branch: ['main'] }, { op: 'rollout-status', channel: null }, { op: 'rollout-pause', channel: 'site/prod' }, { op: 'rollout-rollback', channel: 'site/prod', signature: 'AAAA' }, { op: 'rollout-rollback', channel: 'site/prod', release: 'x', signature: 'AAAA' }, { op: 'rollout-rollback', channel: 'site/prod', release: 'a'.repeat(40), signature: 'not base64!' }]) {
      await assert.rejects(ask(req), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT) || assert.fail(`${JSON.stringify(req)}: ${String(e)}`));
    }
    assert.ok(((await ask({ op: 'ping' })) as { pid: number }).pid > 0);
    assert.ok(a.running, a.tail());
  });

  it(`keeps at most ${CONNECTIONS_PER_MEMBER} swarm connections with one member: a member dialling again and again has its oldest closed`, async () => {
    const { identity, trust } = bIdentity;
    const aId = (await snapshotOf(repoA)).self.nodeId as NodeId;
    const infoHash = createHash('sha1').update(`gitfs-swarm-v1\0${trust.clusterId}`).digest();
    const closed: number[] = [];
    const conns: SwarmConnection[] = [];
    try {
      for (let i = 0; i < 2 * CONNECTIONS_PER_MEMBER; i++) {
        const socket = tlsConnect({ host: '127.0.0.1', port: svcA, ...clientOptions(identity, trust) });
        await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
        const conn = new SwarmConnection(socket, aId, { infoHash, selfId: identity.nodeId, initiator: true, pool: new BlockPool(2) }, { onMessage: () => undefined, onClose: () => void closed.push(i) });
        conns.push(conn);
        await within(conn.drained(Infinity), 10_000);
        assert.ok(conn.isOpen, `connection ${i} got no handshake\n${a.tail()}`);
      }
      const deadline = Date.now() + 10_000;
      while (closed.length < CONNECTIONS_PER_MEMBER && Date.now() < deadline) await sleep(20);
      // B's own daemon may hold connections with A too: they count. The oldest go first, but for the one A's fetches use.
      const open = conns.flatMap((c, i) => (c.isOpen ? [i] : []));
      assert.ok(open.length <= CONNECTIONS_PER_MEMBER, `${open.length} open: ${JSON.stringify(open)}`);
      assert.ok(open.includes(conns.length - 1), 'the newest stays open');
      const kept = open.filter((i) => closed.some((c) => c > i));
      assert.ok(kept.length <= 1, `only the connection A uses may outlive newer ones: open ${JSON.stringify(open)}, closed ${JSON.stringify(closed)}`);
      assert.ok(a.events.some((e) => e.event === 'swarm-connections-over-limit' && e['peer'] === identity.nodeId), a.tail());
      assert.ok(a.running, a.tail());
    } finally {
      for (const c of conns) c.close('test over');
    }
  });

  it("closes a member's swarm connection once its certificate expires (the handshake alone checked it), long before it is idle", async () => {
    const { identity, trust } = bIdentity;
    const authority = await loadAuthority(repoA);
    // X.509 times are whole seconds: this one ends within 5 to 6 s.
    const notAfter = (Math.floor(Date.now() / 1000) + 6) * 1000;
    const serial = randomBytes(16);
    serial[0] = ((serial[0] as number) & 0x7f) | 0x01;
    const der = issueCertificate({
      serial,
      subject: identity.nodeId,
      issuer: authority.cert.subject.replace(/^CN=/, ''),
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(notAfter),
      publicKey: createPublicKey(identity.privateKey),
      signingKey: authority.key,
      issuerPublicKey: authority.cert.publicKey,
      ca: false,
    });
    const shortLived = new NodeIdentity(identity.nodeId, identity.privateKey, new X509Certificate(der), certificatePem(der));
    const aId = (await snapshotOf(repoA)).self.nodeId as NodeId;
    const infoHash = createHash('sha1').update(`gitfs-swarm-v1\0${trust.clusterId}`).digest();
    const socket = tlsConnect({ host: '127.0.0.1', port: svcA, ...clientOptions(shortLived, trust) });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    let closedAt: number | undefined;
    const conn = new SwarmConnection(socket, aId, { infoHash, selfId: identity.nodeId, initiator: true, pool: new BlockPool(2) }, { onMessage: () => undefined, onClose: () => void (closedAt = Date.now()) });
    try {
      await within(conn.drained(Infinity), 10_000);
      assert.ok(conn.isOpen, `no handshake\n${a.tail()}`);
      // Within 20 s: a connection is closed as idle only after 120 s.
      for (let i = 0; i < 100 && closedAt === undefined; i++) await sleep(200);
      assert.ok(closedAt !== undefined, `still open 20 s on, its certificate expired at ${new Date(notAfter).toISOString()}\n${a.tail()}`);
      assert.ok(closedAt >= notAfter - 1000, `closed ${notAfter - closedAt} ms before its certificate expired`);
      assert.ok(a.running, a.tail());
    } finally {
      conn.close('test over');
    }
  });
});
