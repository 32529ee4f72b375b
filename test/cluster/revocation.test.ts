/**
 * Revocation lists: signed by the CA key, refused (GITFS_BAD_SIGNATURE) if any bit changed or
 * another CA signed them, adopted only when newer; `gitfs cluster revoke` bumps the version;
 * the node service hands the list to members only (real mutual TLS on 127.0.0.1).
 */
import assert from 'node:assert/strict';
import { unlinkSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { RevocationsOnDisk, clusterDir, loadMembership, mergeOnAuthority, revokeNode, saveRevocations, storedRevocations } from '../../src/cluster/cluster-store.js';
import { ClusterTrust } from '../../src/cluster/identity.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import { MAX_LIST_BYTES, mergeRevocations, openRevocations, signRevocations } from '../../src/cluster/revocation.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { fetchRevocations, MAX_CONNECTIONS_PER_ADDRESS, MAX_PENDING_CONNECTIONS, startNodeService } from '../../src/node/node-service.js';
import { askOneLine } from '../../src/util/json-line.js';
import { gitfs } from '../support/cli.js';
import { suiteDirs } from '../support/tmp.js';
import { captureLogger, makeCluster, type Member, type TestCluster } from '../multicast/fixture.js';
import { cleanEnv, sleep } from '../support/cluster-nodes.js';
import { rejectsWith } from '../support/gitfs-error.js';

const ID1 = '1111111111111111' as NodeId;
const ID2 = '2222222222222222' as NodeId;
const ID3 = '3333333333333333' as NodeId;

describe('cluster/revocation: signed revocation lists', function () {
  this.timeout(60_000);
  const servers: Server[] = [];
  const tmp = suiteDirs(async () => {
    for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
  });
  let cluster: TestCluster;
  let other: TestCluster;

  before(async () => {
    cluster = await makeCluster(tmp.make());
    other = await makeCluster(tmp.make());
  });

  it('round-trips: version, issue time, sorted node ids, the exact encoding', () => {
    const list = signRevocations(cluster.authority.key, 3, 1_700_000_000_123, [ID3, ID1, ID2]);
    assert.deepEqual(list.nodeIds, [ID1, ID2, ID3]);
    const opened = openRevocations(list.encoded, cluster.authority.cert.publicKey);
    assert.equal(opened.version, 3);
    assert.equal(opened.issuedMs, 1_700_000_000_123);
    assert.deepEqual(opened.nodeIds, [ID1, ID2, ID3]);
    assert.deepEqual(opened.encoded, list.encoded);
    assert.deepEqual(openRevocations(signRevocations(cluster.authority.key, 1, 1, []).encoded, cluster.authority.cert.publicKey).nodeIds, []);
  });

  it('any single flipped bit is GITFS_BAD_SIGNATURE', () => {
    const list = signRevocations(cluster.authority.key, 2, Date.now(), [ID1, ID2]);
    for (let i = 0; i < list.encoded.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const tampered = Buffer.from(list.encoded);
        tampered[i] = (tampered[i] as number) ^ (1 << bit);
        assert.throws(() => openRevocations(tampered, cluster.authority.cert.publicKey), rejectsWith(ErrorCodes.BAD_SIGNATURE), `byte ${i} bit ${bit}`);
      }
    }
  });

  it('truncated, extended, empty, garbage and oversized lists are GITFS_BAD_SIGNATURE', () => {
    const list = signRevocations(cluster.authority.key, 2, Date.now(), [ID1]);
    const key = cluster.authority.cert.publicKey;
    for (const bad of [list.encoded.subarray(0, list.encoded.length - 1), list.encoded.subarray(0, 10), Buffer.alloc(0), Buffer.alloc(64, 0xff), Buffer.alloc((1 << 20) + 1)]) {
      assert.throws(() => openRevocations(bad, key), rejectsWith(ErrorCodes.BAD_SIGNATURE));
    }
    // A second signature field replaces the first: only a valid signature over the body passes.
    const extended = Buffer.concat([list.encoded, Buffer.from([0x12, 0x40]), Buffer.alloc(64, 1)]);
    assert.throws(() => openRevocations(extended, key), rejectsWith(ErrorCodes.BAD_SIGNATURE));
  });

  it('a list larger than MAX_LIST_BYTES is not signed (it would fit no answer of the node service)', () => {
    const ids = Array.from({ length: 40_000 }, (_, i) => i.toString(16).padStart(16, '0') as NodeId);
    assert.throws(() => signRevocations(cluster.authority.key, 1, Date.now(), ids), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT));
    assert.ok(signRevocations(cluster.authority.key, 1, Date.now(), ids.slice(0, 30_000)).encoded.length <= MAX_LIST_BYTES);
  });

  it('a list signed by another CA, or with a node key, is GITFS_BAD_SIGNATURE', async () => {
    const foreign = signRevocations(other.authority.key, 5, Date.now(), [ID1]);
    assert.throws(() => openRevocations(foreign.encoded, cluster.authority.cert.publicKey), rejectsWith(ErrorCodes.BAD_SIGNATURE));
    const byNode = signRevocations(cluster.ca.identity.privateKey, 5, Date.now(), [ID1]);
    assert.throws(() => openRevocations(byNode.encoded, cluster.authority.cert.publicKey), rejectsWith(ErrorCodes.BAD_SIGNATURE));
    const member = await cluster.addMember(tmp.make());
    assert.throws(() => openRevocations(foreign.encoded, member.trust.ca.publicKey), rejectsWith(ErrorCodes.BAD_SIGNATURE));
  });

  it('validly signed but meaningless lists are refused: version 0, a malformed node id', () => {
    const key = cluster.authority.cert.publicKey;
    assert.throws(() => openRevocations(signRevocations(cluster.authority.key, 0, 1, [ID1]).encoded, key), rejectsWith(ErrorCodes.BAD_SIGNATURE));
    assert.throws(() => openRevocations(signRevocations(cluster.authority.key, 1, 1, ['NOT-A-NODE' as NodeId]).encoded, key), rejectsWith(ErrorCodes.BAD_SIGNATURE));
  });

  it('ClusterTrust adopts only newer versions', () => {
    const trust = new ClusterTrust(cluster.authority.cert, cluster.authority.cert.toString());
    assert.equal(trust.revocationVersion, 0);
    const v2 = signRevocations(cluster.authority.key, 2, 2, [ID1, ID2]);
    assert.equal(trust.adopt(v2), true);
    assert.equal(trust.revocationVersion, 2);
    assert.ok(trust.isRevoked(ID1) && trust.isRevoked(ID2) && !trust.isRevoked(ID3));
    assert.equal(trust.adopt(signRevocations(cluster.authority.key, 1, 3, [ID3])), false, 'an older list');
    assert.equal(trust.adopt(signRevocations(cluster.authority.key, 2, 4, [ID3])), false, 'another list of the same version');
    assert.equal(trust.revocationVersion, 2);
    assert.equal(trust.revocations, v2);
    assert.ok(!trust.isRevoked(ID3) && trust.isRevoked(ID1));
    assert.equal(trust.adopt(signRevocations(cluster.authority.key, 3, 5, [ID3])), true);
    assert.ok(trust.isRevoked(ID3) && !trust.isRevoked(ID1), 'the newer list replaces the older one whole');
  });

  it('revokeNode bumps the version and keeps earlier entries, leaves a list that has the id as it is, refuses the CA node itself; a tampered stored list refuses to load', async () => {
    const c = await makeCluster(tmp.make());
    const { list: l1 } = await revokeNode(c.ca.gitDir, ID1, Date.now());
    const { list: l2 } = await revokeNode(c.ca.gitDir, ID2, Date.now());
    const again = await revokeNode(c.ca.gitDir, ID2, Date.now());
    const l3 = again.list;
    assert.equal(again.changed, false);
    assert.deepEqual([l1.version, l2.version, l3.version], [1, 2, 2]);
    assert.deepEqual(l3.nodeIds, [ID1, ID2]);
    assert.equal((await storedRevocations(c.ca.gitDir, c.authority.cert.publicKey))?.version, 2);
    assert.equal((await loadMembership(c.ca.gitDir, Date.now())).trust.revocationVersion, 2);
    // Revoked, the CA node would be dropped by every member: no later list would reach them.
    const self = (await loadMembership(c.ca.gitDir, Date.now())).identity.nodeId;
    await assert.rejects(revokeNode(c.ca.gitDir, self, Date.now()), rejectsWith(ErrorCodes.BAD_ARGUMENT));
    assert.equal((await storedRevocations(c.ca.gitDir, c.authority.cert.publicKey))?.version, 2);
    const member = await c.addMember(tmp.make());
    await assert.rejects(revokeNode(member.gitDir, ID1, Date.now()), rejectsWith(ErrorCodes.NOT_IN_CLUSTER));

    const tampered = Buffer.from(l3.encoded);
    tampered[5] = (tampered[5] as number) ^ 0x10;
    writeFileSync(join(clusterDir(c.ca.gitDir), 'revocations.bin'), tampered);
    await assert.rejects(loadMembership(c.ca.gitDir, Date.now()), rejectsWith(ErrorCodes.BAD_SIGNATURE));
  });

  it('a list no newer than the stored one is not written over it (a daemon storing what a peer sent while revoke ran)', async () => {
    const c = await makeCluster(tmp.make());
    const { list: l1 } = await revokeNode(c.ca.gitDir, ID1, Date.now());
    await revokeNode(c.ca.gitDir, ID2, Date.now());
    await saveRevocations(c.ca.gitDir, l1, c.authority.cert.publicKey);
    const stored = await storedRevocations(c.ca.gitDir, c.authority.cert.publicKey);
    assert.equal(stored?.version, 2);
    assert.deepEqual(stored?.nodeIds, [ID1, ID2]);
  });

  it('mergeRevocations: the newer superset is taken, an older subset left, anything else merged one version above both', () => {
    const key = cluster.authority.key;
    const list = (version: number, ids: NodeId[]): ReturnType<typeof signRevocations> => signRevocations(key, version, Date.now(), ids);
    assert.deepEqual(mergeRevocations(undefined, list(1, [ID1])), { take: 'theirs' });
    assert.deepEqual(mergeRevocations(list(1, [ID1]), list(2, [ID1, ID2])), { take: 'theirs' });
    assert.deepEqual(mergeRevocations(list(2, [ID1, ID2]), list(1, [ID1])), { take: 'ours' });
    assert.deepEqual(mergeRevocations(list(2, [ID1, ID2]), list(2, [ID1, ID2])), { take: 'ours' });
    // revocations.bin lost on the CA node, then a revoke: version 1 with the new id alone, beside a member's 3.
    assert.deepEqual(mergeRevocations(list(1, [ID3]), list(3, [ID1, ID2])), { take: 'union', version: 4, nodeIds: [ID1, ID2, ID3] });
    assert.deepEqual(mergeRevocations(list(3, [ID1, ID2]), list(1, [ID3])), { take: 'union', version: 4, nodeIds: [ID1, ID2, ID3] });
    // A newer list that dropped one of ours never wins.
    assert.deepEqual(mergeRevocations(list(2, [ID1, ID2]), list(5, [ID1])), { take: 'union', version: 6, nodeIds: [ID1, ID2] });
  });

  it('mergeOnAuthority: the CA node that lost revocations.bin and revoked again merges a member\'s older list in, stored one version above both; a member merges nothing', async () => {
    const c = await makeCluster(tmp.make());
    await revokeNode(c.ca.gitDir, ID1, Date.now());
    const { list: members } = await revokeNode(c.ca.gitDir, ID2, Date.now());
    unlinkSync(join(clusterDir(c.ca.gitDir), 'revocations.bin'));
    const { list: ours } = await revokeNode(c.ca.gitDir, ID3, Date.now());
    assert.equal(ours.version, 1, 'made again from nothing');
    const merged = await mergeOnAuthority(c.ca.gitDir, ours, members, Date.now());
    assert.deepEqual([merged?.version, merged?.nodeIds], [3, [ID1, ID2, ID3]]);
    const stored = await storedRevocations(c.ca.gitDir, c.authority.cert.publicKey);
    assert.deepEqual([stored?.version, stored?.nodeIds], [3, [ID1, ID2, ID3]]);
    const trust = new ClusterTrust(c.authority.cert, c.authority.cert.toString(), members);
    assert.equal(trust.adopt(merged as NonNullable<typeof merged>), true, 'a member holding version 2 adopts it');
    const member = await c.addMember(tmp.make());
    assert.equal(await mergeOnAuthority(member.gitDir, ours, members, Date.now()), undefined);
  });

  it('RevocationsOnDisk reads the list only when the file changed, and reports a bad one once', async () => {
    const c = await makeCluster(tmp.make());
    const disk = new RevocationsOnDisk(c.ca.gitDir, c.authority.cert.publicKey);
    const path = join(clusterDir(c.ca.gitDir), 'revocations.bin');
    assert.equal(await disk.changed(), undefined, 'no list yet');
    await revokeNode(c.ca.gitDir, ID1, Date.now());
    assert.equal((await disk.changed())?.version, 1);
    assert.equal(await disk.changed(), undefined, 'unchanged since the last look');
    const { list: l2 } = await revokeNode(c.ca.gitDir, ID2, Date.now());
    assert.equal((await disk.changed())?.version, 2);

    // Written in place (same inode, same size), a change shows only in the file's times, which
    // the kernel may advance by a clock tick of a few ms: each in-place write waits past one.
    const tick = (): Promise<void> => sleep(20);
    const tampered = Buffer.from(l2.encoded);
    tampered[5] = (tampered[5] as number) ^ 0x10;
    await tick();
    writeFileSync(path, tampered);
    await assert.rejects(disk.changed(), rejectsWith(ErrorCodes.BAD_SIGNATURE));
    assert.equal(await disk.changed(), undefined, 'a bad list is reported once until the file changes');
    await tick();
    writeFileSync(path, l2.encoded);
    assert.equal((await disk.changed())?.version, 2, 'rewritten in place, same size: seen again');

    unlinkSync(path);
    assert.equal(await disk.changed(), undefined);
    writeFileSync(path, l2.encoded);
    assert.equal((await disk.changed())?.version, 2, 'gone, then back');
  });

  it('RevocationsOnDisk reads the list again after again() (a list from disk whose merge failed is taken at the next look)', async () => {
    const c = await makeCluster(tmp.make());
    await revokeNode(c.ca.gitDir, ID1, Date.now());
    const disk = new RevocationsOnDisk(c.ca.gitDir, c.authority.cert.publicKey);
    assert.equal((await disk.changed())?.version, 1);
    assert.equal(await disk.changed(), undefined);
    disk.again();
    assert.equal((await disk.changed())?.version, 1);
  });

  it('gitfs cluster revoke bumps the version that gitfs cluster show reports', async () => {
    const env = cleanEnv();
    const repo = join(tmp.make(), 'repo');
    assert.equal((await gitfs(['init', '--repo', repo], { env })).code, 0);
    assert.equal((await gitfs(['cluster', 'init', '--repo', repo], { env })).code, 0);
    const show = async (): Promise<[number, string[]]> => {
      const r = await gitfs(['cluster', 'show', '--json', '--repo', repo], { env });
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout) as { revocationVersion: number; revoked: string[] };
      return [j.revocationVersion, j.revoked];
    };
    assert.deepEqual(await show(), [0, []]);
    const r1 = await gitfs(['cluster', 'revoke', ID2, '--repo', repo], { env });
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, /version 1\b/);
    assert.deepEqual(await show(), [1, [ID2]]);
    assert.equal((await gitfs(['cluster', 'revoke', ID1, '--repo', repo], { env })).code, 0);
    assert.deepEqual(await show(), [2, [ID1, ID2]]);
    const bad = await gitfs(['cluster', 'revoke', 'not-a-node', '--repo', repo], { env });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /\[GITFS_BAD_ARGUMENT\]/);
    assert.deepEqual(await show(), [2, [ID1, ID2]]);
  });

  it('concurrent gitfs cluster revoke commands lose no revocation (they take turns on the list)', async () => {
    const env = cleanEnv();
    const repo = join(tmp.make(), 'repo');
    assert.equal((await gitfs(['init', '--repo', repo], { env })).code, 0);
    assert.equal((await gitfs(['cluster', 'init', '--repo', repo], { env })).code, 0);
    const ids = Array.from({ length: 8 }, (_, i) => `${i + 1}`.repeat(16));
    const runs = await Promise.all(ids.map((id) => gitfs(['cluster', 'revoke', id, '--repo', repo], { env })));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const shown = await gitfs(['cluster', 'show', '--json', '--repo', repo], { env });
    assert.equal(shown.code, 0, shown.stderr);
    const j = JSON.parse(shown.stdout) as { revocationVersion: number; revoked: string[] };
    assert.deepEqual([j.revocationVersion, j.revoked], [ids.length, ids]);
  });

  describe('the node service hands the list to members only', function () {
    let service: Member;
    let member: Member;
    let revoked: Member;
    let port = 0;

    before(async () => {
      service = await cluster.addMember(tmp.make());
      member = await cluster.addMember(tmp.make());
      revoked = await cluster.addMember(tmp.make());
      assert.ok(service.trust.adopt(signRevocations(cluster.authority.key, 4, Date.now(), [revoked.identity.nodeId, ID1])));
      const server = await startNodeService(
        { gitDir: service.gitDir, identity: service.identity, trust: service.trust, clock: { now: () => Date.now() }, log: captureLogger(), issuer: false },
        { address: '127.0.0.1', port: 0 },
      );
      servers.push(server);
      port = (server.address() as AddressInfo).port;
    });

    /** Asks for the list over TLS with `client`'s key and certificate (or none), trusting whatever the server presents. */
    function askAs(client: Member | undefined): Promise<unknown> {
      return new Promise((resolve, reject) => {
        const socket = connect({
          host: '127.0.0.1',
          port,
          rejectUnauthorized: false,
          minVersion: 'TLSv1.3',
          ...(client === undefined ? {} : { key: client.identity.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: client.identity.certificatePem }),
        });
        socket.setTimeout(10_000, () => socket.destroy(new Error('timed out')));
        socket.once('error', reject);
        socket.once('secureConnect', () => askOneLine(socket, { op: 'revocations' }, 'service', ErrorCodes.PEER_FAILED).then(resolve, reject));
      });
    }

    it('one address holding MAX_CONNECTIONS_PER_ADDRESS connections gets no more (closed before any handshake); another address does; a handshake not finished in time is closed; a member is served once they close', async function () {
      this.timeout(40_000);
      const open = (localAddress: string): Promise<Socket> =>
        new Promise((resolve, reject) => {
          const s = netConnect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
          s.once('error', reject);
        });
      const closesWithin = (s: Socket, ms: number): Promise<boolean> =>
        new Promise((resolve) => {
          const timer = setTimeout(() => resolve(false), ms);
          s.once('close', () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
      const held = await Promise.all(Array.from({ length: MAX_CONNECTIONS_PER_ADDRESS }, () => open('127.0.0.1')));
      try {
        const more = await open('127.0.0.1');
        held.push(more);
        assert.equal(await closesWithin(more, 3000), true, 'one more from the same address is closed at once');
        const other = await open('127.0.0.2');
        held.push(other);
        assert.equal(await closesWithin(other, 1000), false, 'another address is let in');
        assert.deepEqual(await Promise.all(held.slice(0, 3).map((h) => closesWithin(h, 10))), [false, false, false], 'those held stay');
        // Until their handshake times out (10 s): then each is closed, and its place freed (Node leaves such a socket open).
        assert.equal(await closesWithin(held[0] as Socket, 13_000), true, 'a connection that never finished its handshake is closed');
      } finally {
        for (const h of held) h.destroy();
      }
      await sleep(200);
      assert.equal((await fetchRevocations(member.identity, member.trust, { address: '127.0.0.1', port }))?.version, 4);
    });

    it('sixteen addresses holding 64 connections each that never finish a handshake do not keep a member out: the oldest of those is closed past MAX_PENDING_CONNECTIONS', async function () {
      this.timeout(60_000);
      const held: Socket[] = [];
      const open = (localAddress: string): Promise<void> =>
        new Promise((resolve) => {
          const s = netConnect({ host: '127.0.0.1', port, localAddress }, () => resolve());
          s.once('error', () => resolve());
          held.push(s);
        });
      try {
        for (let a = 1; a <= 16; a++) await Promise.all(Array.from({ length: MAX_CONNECTIONS_PER_ADDRESS }, () => open(`127.0.0.${a}`)));
        await sleep(200);
        const stillOpen = held.filter((s) => !s.destroyed && s.readyState === 'open').length;
        assert.ok(stillOpen <= MAX_PENDING_CONNECTIONS + 16, `${stillOpen} of ${held.length} held open`);
        assert.equal((await fetchRevocations(member.identity, member.trust, { address: '127.0.0.1', port }))?.version, 4);
      } finally {
        for (const h of held) h.destroy();
      }
    });

    it('a member fetches it and it verifies against the CA', async () => {
      const list = await fetchRevocations(member.identity, member.trust, { address: '127.0.0.1', port });
      assert.equal(list?.version, 4);
      assert.deepEqual(list?.nodeIds, [revoked.identity.nodeId, ID1].sort());
      assert.equal(member.trust.adopt(list!), true);
      assert.equal(member.trust.isRevoked(revoked.identity.nodeId), true);
    });

    it('a client of another cluster, a client without a certificate, and a revoked member are refused', async () => {
      const stranger = other.ca;
      await assert.rejects(askAs(stranger), rejectsWith(ErrorCodes.BAD_CERTIFICATE));
      await assert.rejects(askAs(undefined), rejectsWith(ErrorCodes.BAD_CERTIFICATE));
      await assert.rejects(askAs(revoked), rejectsWith(ErrorCodes.BAD_CERTIFICATE));
      // The same raw client with a member's certificate gets the list: the refusals are about who asks.
      const answer = (await askAs(member)) as { revocations: string | null };
      assert.equal(openRevocations(Buffer.from(answer.revocations ?? '', 'base64'), cluster.authority.cert.publicKey).version, 4);
    });

    it('a member trickling its answer a byte at a time is cut off within 15 s in all; a fetch stopped is cut off at once', async function () {
      this.timeout(40_000);
      const trickles: NodeJS.Timeout[] = [];
      const accepted: TLSSocket[] = [];
      const slow = createServer({ key: service.identity.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: service.identity.certificatePem, ca: cluster.ca.trust.caPem, requestCert: true, minVersion: 'TLSv1.3' }, (socket) => {
        socket.on('error', () => undefined);
        accepted.push(socket);
        trickles.push(setInterval(() => socket.write(' '), 500));
      });
      await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
      const to = { address: '127.0.0.1', port: (slow.address() as AddressInfo).port };
      try {
        const started = Date.now();
        await assert.rejects(fetchRevocations(member.identity, member.trust, to), /did not answer within 15 s/);
        const ms = Date.now() - started;
        assert.ok(ms >= 14_000 && ms < 20_000, `cut off after ${ms} ms`);
        const stop = new AbortController();
        const stopped = fetchRevocations(member.identity, member.trust, to, { signal: stop.signal });
        setTimeout(() => stop.abort(), 300);
        const t0 = Date.now();
        await assert.rejects(stopped, /stopped/);
        assert.ok(Date.now() - t0 < 2000);
      } finally {
        for (const t of trickles) clearInterval(t);
        for (const socket of accepted) socket.destroy();
        await new Promise<void>((resolve) => slow.close(() => resolve()));
      }
    });

    it('a client of another cluster using fetchRevocations does not accept this cluster’s server', async () => {
      // A server with this cluster's certificate that asks for none and answers anyone: only the
      // client's own check of the server can refuse it (the node service refuses such a client itself).
      const list = signRevocations(cluster.authority.key, 4, Date.now(), [ID1]);
      const open = createServer({ key: service.identity.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: service.identity.certificatePem, minVersion: 'TLSv1.3' }, (socket) => {
        socket.once('data', () => socket.end(`${JSON.stringify({ ok: true, result: { revocations: list.encoded.toString('base64') } })}\n`));
        socket.on('error', () => undefined);
      });
      servers.push(open);
      await new Promise<void>((resolve) => open.listen(0, '127.0.0.1', resolve));
      const to = { address: '127.0.0.1', port: (open.address() as AddressInfo).port };
      assert.equal((await fetchRevocations(member.identity, member.trust, to))?.version, 4, 'a member takes the answer');
      await assert.rejects(fetchRevocations(other.ca.identity, other.ca.trust, to), (e: NodeJS.ErrnoException) => {
        assert.match(String(e.code), /CERT|VERIFY/, `refused for another reason: ${String(e.code)} ${e.message}`);
        return true;
      });
    });

    it('a member asks only a member: not one it knows revoked (whose service still answers), nor another node than the one it meant', async () => {
      const asker = await cluster.addMember(tmp.make());
      assert.ok(asker.trust.adopt(signRevocations(cluster.authority.key, 4, Date.now(), [revoked.identity.nodeId, ID1])));
      const server = await startNodeService(
        { gitDir: revoked.gitDir, identity: revoked.identity, trust: revoked.trust, clock: { now: () => Date.now() }, log: captureLogger(), issuer: false },
        { address: '127.0.0.1', port: 0 },
      );
      servers.push(server);
      const atRevoked = { address: '127.0.0.1', port: (server.address() as AddressInfo).port };
      await assert.rejects(fetchRevocations(asker.identity, asker.trust, atRevoked), (e: unknown) => isGitfsError(e, ErrorCodes.PEER_FAILED) && /no member of this cluster \(or a revoked one\)/.test(e.message));
      const atService = { address: '127.0.0.1', port };
      assert.equal((await fetchRevocations(asker.identity, asker.trust, { ...atService, nodeId: service.identity.nodeId }))?.version, 4);
      await assert.rejects(fetchRevocations(asker.identity, asker.trust, { ...atService, nodeId: member.identity.nodeId }), (e: unknown) => isGitfsError(e, ErrorCodes.PEER_FAILED) && e.message.includes(`${service.identity.nodeId}, not ${member.identity.nodeId}`));
    });
  });
});
