/**
 * Renewing node certificates, over real TLS on 127.0.0.1 against the real node service of a CA
 * node made by initCluster: a member in its last days gets a new certificate for the same key
 * (the same node id), stored and taken in memory, and the service presents it to the next
 * connection; a member that does not hold the CA key, a revoked member and a stranger are
 * refused; a certificate that is not a renewal (another key, ending no later, another CA, starting
 * after the asker's clock) is refused with nothing written; a renewal stored by another process is
 * taken from disk; none is due that could not end later than the CA; the CA node
 * renews its own certificate even once it has expired, and an expired node says how to recover.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, type Server } from 'node:tls';
import { adoptRenewal, adoptStoredRenewal, clusterDir, issueNodeCertificate, loadMembership, renewalDue, renewOnAuthority, revokeNode, RENEW_WITHIN_DAYS, saveMembership } from '../../src/cluster/cluster-store.js';
import { clientOptions, serverOptions } from '../../src/cluster/tls.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { fetchRenewal, startNodeService } from '../../src/node/node-service.js';
import { gitfs, gitfsOk } from '../support/cli.js';
import { suiteDirs } from '../support/tmp.js';
import { captureLogger, makeCluster, type CapturedLine, type Member, type TestCluster } from '../multicast/fixture.js';
import { rejectsWith } from '../support/gitfs-error.js';

const DAY = 86_400_000;

describe('cluster/renew: node certificates renewed before they expire', function () {
  this.timeout(60_000);
  const servers: Server[] = [];
  const tmp = suiteDirs(async () => {
    for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
  });
  let cluster: TestCluster;
  const lines: CapturedLine[] = [];

  async function serve(member: Member, issuer: boolean): Promise<{ address: string; port: number; server: Server }> {
    const server = await startNodeService(
      { gitDir: member.gitDir, identity: member.identity, trust: member.trust, clock: { now: () => Date.now() }, log: captureLogger(lines), issuer },
      { address: '127.0.0.1', port: 0 },
    );
    servers.push(server);
    return { address: '127.0.0.1', port: (server.address() as AddressInfo).port, server };
  }

  /** A new gitfs repository (the CLI's cluster commands want one). */
  async function repo(): Promise<string> {
    const dir = tmp.make();
    await gitfsOk(['init', '--repo', dir]);
    return dir;
  }

  /** A member of `c` whose certificate was issued `ageDays` ago (so it ends in 365 - ageDays days). */
  async function memberAged(ageDays: number, c = cluster): Promise<Member> {
    const m = await c.addMember(await repo());
    const pem = issueNodeCertificate(c.authority, m.identity.certificate.publicKey, Date.now() - ageDays * DAY).pem;
    await saveMembership(m.gitDir, { key: m.identity.privateKey, certPem: pem, caPem: c.authority.cert.toString() });
    return { gitDir: m.gitDir, ...(await loadMembership(m.gitDir, Date.now())) };
  }

  /** A certificate for a new key issued by the cluster's CA as if at `ms`. */
  const issueAt = (ms: number): X509Certificate => new X509Certificate(issueNodeCertificate(cluster.authority, generateKeyPairSync('ed25519').publicKey, ms).pem);

  /** The certificate the service at `to` presents to a member. */
  function presented(asker: Member, to: { address: string; port: number }): Promise<X509Certificate> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: to.address, port: to.port, ...clientOptions(asker.identity, asker.trust) });
      socket.once('error', reject);
      socket.once('secureConnect', () => {
        const cert = socket.getPeerX509Certificate();
        socket.destroy();
        if (cert === undefined) reject(new Error('no certificate'));
        else resolve(cert);
      });
    });
  }

  before(async () => {
    cluster = await makeCluster(tmp.make());
  });

  it('a member in its last days gets a certificate for the same key from the CA node: stored, taken in memory, presented to the next connection', async () => {
    const ca = await serve(cluster.ca, true);
    const old = await memberAged(300);
    assert.ok(renewalDue(old.identity.certificate, old.trust.ca, Date.now()), `due within ${RENEW_WITHIN_DAYS} days`);
    assert.ok(!renewalDue((await memberAged(0)).identity.certificate, old.trust.ca, Date.now()), 'a fresh certificate is not due');
    // In the CA's own last days no renewal can end later: not due (it would be refused every time).
    const caEnd = Date.parse(old.trust.ca.validTo);
    assert.ok(!renewalDue(issueAt(caEnd - 30 * DAY), old.trust.ca, caEnd - 30 * DAY), 'one that ends with the CA is not due');
    const own = await serve(old, false);
    const before = await presented(cluster.ca, own);
    assert.equal(before.fingerprint256, old.identity.certificate.fingerprint256);

    const pem = await fetchRenewal(old.identity, old.trust, ca);
    const renewed = await adoptRenewal(old.gitDir, old.identity, old.trust, pem, Date.now());
    assert.equal(renewed.subject, `CN=${old.identity.nodeId}`, 'the same node id');
    assert.ok(renewed.publicKey.equals(createPublicKey(old.identity.privateKey)), 'the same key');
    assert.ok(Date.parse(renewed.validTo) > Date.now() + 364 * DAY, `valid for a year: ${renewed.validTo}`);
    assert.equal(old.identity.certificate.fingerprint256, renewed.fingerprint256, 'taken in memory');
    assert.equal(new X509Certificate(readFileSync(join(clusterDir(old.gitDir), 'node.pem'))).fingerprint256, renewed.fingerprint256, 'stored');
    assert.equal((await loadMembership(old.gitDir, Date.now())).identity.certificate.fingerprint256, renewed.fingerprint256);
    assert.ok(lines.some((l) => l.event === 'node-renewed' && l.fields['nodeId'] === old.identity.nodeId));

    // The service presents what it was started with until told (the daemon's `renewed`), then the renewal.
    assert.equal((await presented(cluster.ca, own)).fingerprint256, before.fingerprint256);
    own.server.setSecureContext(serverOptions(old.identity, old.trust));
    assert.equal((await presented(cluster.ca, own)).fingerprint256, renewed.fingerprint256);
  });

  it('refused: a member without the CA key (GITFS_NOT_IN_CLUSTER), a revoked member and a stranger (no member certificate)', async () => {
    const asker = await memberAged(300);
    const plain = await serve(await memberAged(0), false);
    await assert.rejects(fetchRenewal(asker.identity, asker.trust, plain), rejectsWith(ErrorCodes.NOT_IN_CLUSTER));

    const stranger = await (await makeCluster(tmp.make())).addMember(tmp.make());
    const caDir = tmp.make();
    const other = await makeCluster(caDir);
    const issuer = await serve(other.ca, true);
    await assert.rejects(fetchRenewal(stranger.identity, stranger.trust, issuer), 'a node of another cluster fails the handshake or is refused');

    const victim = await other.addMember(tmp.make());
    const { list } = await revokeNode(caDir, victim.identity.nodeId, Date.now());
    other.ca.trust.adopt(list);
    await assert.rejects(fetchRenewal(victim.identity, victim.trust, issuer), rejectsWith(ErrorCodes.BAD_CERTIFICATE));
    const pemBefore = readFileSync(join(clusterDir(victim.gitDir), 'node.pem'), 'utf8');
    assert.equal(victim.identity.certificatePem, pemBefore, 'nothing changed');
  });

  it('a certificate that is no renewal is refused with GITFS_BAD_CERTIFICATE and nothing written: another key, ending no later, another CA', async () => {
    const m = await memberAged(300);
    const file = join(clusterDir(m.gitDir), 'node.pem');
    const was = readFileSync(file, 'utf8');
    const otherKey = issueNodeCertificate(cluster.authority, generateKeyPairSync('ed25519').publicKey, Date.now()).pem;
    const earlier = issueNodeCertificate(cluster.authority, m.identity.certificate.publicKey, Date.now() - 301 * DAY).pem;
    const foreign = (await (await makeCluster(tmp.make())).addMember(tmp.make())).identity.certificatePem;
    // Issued by a CA node whose clock runs a minute ahead: peers whose clocks lag would refuse it.
    const early = issueNodeCertificate(cluster.authority, m.identity.certificate.publicKey, Date.now() + 11 * 60_000).pem;
    for (const pem of [otherKey, earlier, foreign, early, 'not a certificate']) {
      await assert.rejects(adoptRenewal(m.gitDir, m.identity, m.trust, pem, Date.now()), rejectsWith(ErrorCodes.BAD_CERTIFICATE));
      assert.equal(readFileSync(file, 'utf8'), was);
      assert.equal(m.identity.certificatePem, was);
    }
  });

  it('a renewal another process stored in node.pem is taken from disk; anything else there is left alone', async () => {
    const m = await memberAged(300);
    const file = join(clusterDir(m.gitDir), 'node.pem');
    assert.equal(await adoptStoredRenewal(m.gitDir, m.identity, m.trust, Date.now()), undefined, 'node.pem holds the certificate held');
    const other = await memberAged(300);
    writeFileSync(file, other.identity.certificatePem);
    assert.equal(await adoptStoredRenewal(m.gitDir, m.identity, m.trust, Date.now()), undefined, "another node's certificate");
    const renewed = issueNodeCertificate(cluster.authority, m.identity.certificate.publicKey, Date.now()).pem;
    writeFileSync(file, renewed);
    const taken = await adoptStoredRenewal(m.gitDir, m.identity, m.trust, Date.now());
    assert.equal(taken?.fingerprint256, new X509Certificate(renewed).fingerprint256);
    assert.equal(m.identity.certificatePem, renewed);
  });

  it('the CA node renews its own certificate even once expired (`gitfs cluster renew`); an expired node is told how to recover', async () => {
    const dir = await repo();
    const c = await makeCluster(dir);
    // Its node certificate as if issued 400 days ago: expired a month ago.
    await saveMembership(dir, { key: c.ca.identity.privateKey, certPem: issueNodeCertificate(c.authority, c.ca.identity.certificate.publicKey, Date.now() - 400 * DAY).pem, caPem: c.authority.cert.toString() });
    await assert.rejects(loadMembership(dir, Date.now()), (e: unknown) => {
      assert.ok(isGitfsError(e, ErrorCodes.NOT_IN_CLUSTER));
      assert.match(e.message, /expired on .*gitfs cluster renew/);
      return true;
    });
    const show = await gitfs(['cluster', 'show', '--repo', dir]);
    assert.equal(show.code, 3, show.stderr);
    assert.match(show.stderr, /expired on/);
    const r = await gitfs(['cluster', 'renew', '--repo', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`renewed the certificate of ${c.ca.identity.nodeId}; valid until `));
    const back = await loadMembership(dir, Date.now());
    assert.equal(back.identity.nodeId, c.ca.identity.nodeId);
    assert.ok(Date.parse(back.identity.certificate.validTo) > Date.now() + 364 * DAY);

    // On a node without the CA key, renewOnAuthority is refused and `cluster renew` wants the issuer.
    const m = await c.addMember(await repo());
    await assert.rejects(renewOnAuthority(m.gitDir, Date.now()), rejectsWith(ErrorCodes.NOT_IN_CLUSTER));
    const noIssuer = await gitfs(['cluster', 'renew', '--repo', m.gitDir]);
    assert.equal(noIssuer.code, 2, noIssuer.stderr);
    assert.match(noIssuer.stderr, /--issuer IPV4:PORT/);
    // With the CA node's address, it asks there (its own certificate still valid).
    const aged = await memberAged(300, c);
    const at = await serve({ gitDir: dir, ...back }, true);
    const asked = await gitfs(['cluster', 'renew', '--repo', aged.gitDir, '--issuer', `${at.address}:${at.port}`]);
    assert.equal(asked.code, 0, asked.stderr);
    assert.ok(Date.parse((await loadMembership(aged.gitDir, Date.now())).identity.certificate.validTo) > Date.now() + 364 * DAY);
  });
});
