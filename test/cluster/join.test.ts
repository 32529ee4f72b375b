/**
 * Joining a cluster over real TLS on 127.0.0.1, against the real node service
 * (startNodeService) of a CA node made by initCluster: a token works once and yields a
 * certificate the CA verifies; a used, expired, re-pinned or secret-altered token fails with
 * its code, writes nothing on the joining node and (where the issuer never checked a proof)
 * leaves the token usable.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Server } from 'node:tls';
import { verifyNodeCertificate } from '../../src/cluster/certificate.js';
import { clusterDir, holdsAuthority, loadMembership } from '../../src/cluster/cluster-store.js';
import { joinCluster } from '../../src/cluster/join.js';
import { createToken, formatToken, parseToken } from '../../src/cluster/token.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { startNodeService } from '../../src/node/node-service.js';
import { gitfs } from '../support/cli.js';
import { suiteDirs } from '../support/tmp.js';
import { captureLogger, makeCluster, TestClock, type CapturedLine, type Member, type TestCluster } from '../multicast/fixture.js';
import { cleanEnv } from '../support/cluster-nodes.js';
import { freeTcpPort } from '../node/serve-process.js';
import { rejectsWith } from '../support/gitfs-error.js';

const HOUR = 3_600_000;

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('cluster/join: joining over TLS with a one-time token', function () {
  this.timeout(60_000);
  const servers: Server[] = [];
  const tmp = suiteDirs(async () => {
    for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
  });
  let cluster: TestCluster;
  let ca: Member;
  let address = '';
  const clock = new TestClock();
  const lines: CapturedLine[] = [];

  async function serve(member: Member, issuer: boolean, serviceClock: { now(): number } = { now: () => Date.now() }): Promise<string> {
    const server = await startNodeService(
      { gitDir: member.gitDir, identity: member.identity, trust: member.trust, clock: serviceClock, log: captureLogger(lines), issuer },
      { address: '127.0.0.1', port: 0 },
    );
    servers.push(server);
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** A new token on the CA node, as `gitfs cluster token` makes it. */
  async function token(overrides: { expiresMs?: number; issuers?: string[] } = {}): Promise<{ text: string; id: string }> {
    const t = await createToken(ca.gitDir, {
      caFingerprint: createHash('sha256').update(cluster.authority.cert.raw).digest('hex'),
      issuers: overrides.issuers ?? [address],
      expiresMs: overrides.expiresMs ?? Date.now() + HOUR,
    });
    return { text: formatToken(t), id: t.id };
  }

  const tokenFile = (id: string): string => join(clusterDir(ca.gitDir), 'tokens', `${id}.json`);

  /** The joining node wrote nothing. */
  function untouched(gitDir: string): void {
    assert.ok(!existsSync(clusterDir(gitDir)), `${clusterDir(gitDir)} was created`);
  }

  before(async () => {
    cluster = await makeCluster(tmp.make());
    ca = cluster.ca;
    clock.ms = Date.now();
    address = await serve(ca, true, { now: () => clock.now() });
  });

  beforeEach(() => {
    clock.ms = Date.now();
  });

  it('a token joins once: the new certificate verifies against the CA, keys are 0600, the token file is gone', async () => {
    const { text, id } = await token();
    assert.ok(existsSync(tokenFile(id)));
    const dir = tmp.make();
    const r = await joinCluster(dir, text, Date.now());
    assert.equal(r.clusterDir, clusterDir(dir));
    const m = await loadMembership(dir, Date.now());
    assert.equal(m.identity.nodeId, r.nodeId);
    const verified = verifyNodeCertificate(m.identity.certificate, cluster.authority.cert, Date.now());
    assert.equal(verified.nodeId, r.nodeId);
    assert.ok(m.identity.certificate.checkIssued(cluster.authority.cert));
    assert.equal(m.trust.clusterId, ca.trust.clusterId);
    assert.equal(new X509Certificate(readFileSync(join(dir, 'gitfs', 'cluster', 'ca.pem'))).fingerprint256, cluster.authority.cert.fingerprint256);
    assert.equal(mode(join(clusterDir(dir), 'node.key')), 0o600);
    assert.equal(mode(clusterDir(dir)), 0o700);
    assert.ok(!existsSync(join(clusterDir(dir), 'ca.key')), 'a joined node never holds the CA key');
    assert.ok(!existsSync(tokenFile(id)), 'the token is used up');
    assert.ok(lines.some((l) => l.event === 'node-joined' && l.fields['nodeId'] === r.nodeId));

    const again = tmp.make();
    await assert.rejects(joinCluster(again, text, Date.now()), rejectsWith(ErrorCodes.BAD_TOKEN));
    untouched(again);
  });

  it('an expired token: refused by the joining node before connecting, and by the issuer by its own clock', async () => {
    const expired = await token({ expiresMs: Date.now() - 1 });
    const dir = tmp.make();
    await assert.rejects(joinCluster(dir, expired.text, Date.now()), rejectsWith(ErrorCodes.BAD_TOKEN));
    untouched(dir);

    // The joining node's clock says valid; the issuer's says expired.
    const t = await token({ expiresMs: Date.now() + HOUR });
    clock.ms = Date.now() + 2 * HOUR;
    await assert.rejects(joinCluster(dir, t.text, Date.now()), rejectsWith(ErrorCodes.BAD_TOKEN));
    untouched(dir);
    clock.ms = Date.now();
    await joinCluster(dir, t.text, Date.now());
    await loadMembership(dir, Date.now());
  });

  it('a token whose CA fingerprint was altered: GITFS_BAD_CERTIFICATE, nothing written, the token still works', async () => {
    const { text, id } = await token();
    const t = parseToken(text);
    const other = (await makeCluster(tmp.make())).authority.cert;
    for (const fp of [createHash('sha256').update(other.raw).digest('hex'), randomBytes(32).toString('hex')]) {
      const dir = tmp.make();
      await assert.rejects(joinCluster(dir, formatToken({ ...t, caFingerprint: fp }), Date.now()), rejectsWith(ErrorCodes.BAD_CERTIFICATE));
      untouched(dir);
    }
    assert.ok(existsSync(tokenFile(id)), 'the issuer never saw a request');
    const dir = tmp.make();
    await joinCluster(dir, text, Date.now());
    await loadMembership(dir, Date.now());
  });

  it('a token pinning this CA but naming another cluster’s node: GITFS_BAD_CERTIFICATE, nothing written', async () => {
    const foreign = await makeCluster(tmp.make());
    const foreignAddress = await serve(foreign.ca, true);
    const { text } = await token({ issuers: [foreignAddress] });
    const dir = tmp.make();
    await assert.rejects(joinCluster(dir, text, Date.now()), rejectsWith(ErrorCodes.BAD_CERTIFICATE));
    untouched(dir);
  });

  it('a token whose secret was altered: GITFS_BAD_TOKEN (the proof fails), the token is not used up', async () => {
    const { text, id } = await token();
    const t = parseToken(text);
    const flipped = Buffer.from(t.secret);
    flipped[0] = (flipped[0] as number) ^ 1;
    for (const secret of [flipped, randomBytes(32)]) {
      const dir = tmp.make();
      await assert.rejects(joinCluster(dir, formatToken({ ...t, secret }), Date.now()), rejectsWith(ErrorCodes.BAD_TOKEN));
      untouched(dir);
      assert.ok(existsSync(tokenFile(id)), 'a failed proof must not use the token up');
    }
    const dir = tmp.make();
    await joinCluster(dir, text, Date.now());
    await loadMembership(dir, Date.now());
    assert.ok(!existsSync(tokenFile(id)));
  });

  it('a token with an unknown id: GITFS_BAD_TOKEN', async () => {
    const t = parseToken((await token()).text);
    const dir = tmp.make();
    await assert.rejects(joinCluster(dir, formatToken({ ...t, id: randomBytes(16).toString('hex') }), Date.now()), rejectsWith(ErrorCodes.BAD_TOKEN));
    untouched(dir);
  });

  it('joining when already a member: GITFS_CLUSTER_EXISTS, and the token is not spent', async () => {
    const { text, id } = await token();
    await assert.rejects(joinCluster(ca.gitDir, text, Date.now()), rejectsWith(ErrorCodes.CLUSTER_EXISTS));
    const member = await cluster.addMember(tmp.make());
    const before = readFileSync(join(clusterDir(member.gitDir), 'node.pem'), 'utf8');
    await assert.rejects(joinCluster(member.gitDir, text, Date.now()), rejectsWith(ErrorCodes.CLUSTER_EXISTS));
    assert.equal(readFileSync(join(clusterDir(member.gitDir), 'node.pem'), 'utf8'), before);
    assert.ok(existsSync(tokenFile(id)));
  });

  it('a member that does not hold the CA key refuses joins: GITFS_BAD_TOKEN', async () => {
    const member = await cluster.addMember(tmp.make());
    const memberAddress = await serve(member, false);
    const { text, id } = await token({ issuers: [memberAddress] });
    const dir = tmp.make();
    await assert.rejects(joinCluster(dir, text, Date.now()), rejectsWith(ErrorCodes.BAD_TOKEN));
    untouched(dir);
    assert.ok(existsSync(tokenFile(id)));
  });

  it('no issuer answering: GITFS_PEER_FAILED; a later issuer in the token is tried', async () => {
    const closed = `127.0.0.1:${await freeTcpPort()}`;
    const dir = tmp.make();
    await assert.rejects(joinCluster(dir, (await token({ issuers: [closed] })).text, Date.now()), rejectsWith(ErrorCodes.PEER_FAILED));
    untouched(dir);
    await joinCluster(dir, (await token({ issuers: [closed, address] })).text, Date.now());
    await loadMembership(dir, Date.now());
  });

  it('two joins racing with one token: exactly one wins', async () => {
    const { text } = await token();
    const [d1, d2] = [tmp.make(), tmp.make()];
    const results = await Promise.allSettled([joinCluster(d1, text, Date.now()), joinCluster(d2, text, Date.now())]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results.map((r) => r.status)));
    const lost = results.find((r) => r.status === 'rejected');
    assert.ok(lost !== undefined && isGitfsError(lost.reason, ErrorCodes.BAD_TOKEN), String(lost?.status === 'rejected' ? lost.reason : ''));
  });

  it('gitfs cluster join (the CLI, a separate process) joins; a second join of the same repository is GITFS_CLUSTER_EXISTS', async () => {
    const env = cleanEnv();
    const repo = join(tmp.make(), 'repo');
    assert.equal((await gitfs(['init', '--repo', repo], { env })).code, 0);
    const { text } = await token();
    const r = await gitfs(['cluster', 'join', text, '--repo', repo], { env });
    assert.equal(r.code, 0, r.stderr);
    const show = JSON.parse((await gitfs(['cluster', 'show', '--json', '--repo', repo], { env })).stdout) as { cluster: string; issuer: boolean; nodeId: string };
    assert.equal(show.cluster, ca.trust.clusterId);
    assert.equal(show.issuer, false);
    assert.match(r.stdout, new RegExp(show.nodeId));
    const again = await gitfs(['cluster', 'join', (await token()).text, '--repo', repo], { env });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /\[GITFS_CLUSTER_EXISTS\]/);
    const garbage = await gitfs(['cluster', 'join', 'gitfs1-nonsense', '--repo', repo], { env });
    assert.notEqual(garbage.code, 0);
    assert.match(garbage.stderr, /\[GITFS_BAD_TOKEN\]/);
  });

  it('gitfs cluster show says the CA node issues joins, and fails with GITFS_BAD_KEY (not "no issuer") when its CA key does not parse', async () => {
    const env = cleanEnv();
    const repo = join(tmp.make(), 'repo');
    assert.equal((await gitfs(['init', '--repo', repo], { env })).code, 0);
    const init = await gitfs(['cluster', 'init', '--repo', repo], { env });
    assert.equal(init.code, 0, init.stderr);
    const show = async (): Promise<{ code: number; stdout: string; stderr: string }> => gitfs(['cluster', 'show', '--json', '--repo', repo], { env });
    assert.equal((JSON.parse((await show()).stdout) as { issuer: boolean }).issuer, true);
    writeFileSync(join(clusterDir(repo), 'ca.key'), '-----BEGIN PRIVATE KEY-----\ntorn\n');
    const torn = await show();
    assert.notEqual(torn.code, 0);
    assert.match(torn.stderr, /\[GITFS_BAD_KEY\]/);
  });

  it("a CA key left by an init cut short: a join or another init there is GITFS_CLUSTER_EXISTS, and a CA key not of ca.pem is GITFS_BAD_KEY (the node does not take itself for the CA)", async () => {
    const env = cleanEnv();
    const repo = join(tmp.make(), 'repo');
    assert.equal((await gitfs(['init', '--repo', repo], { env })).code, 0);
    assert.equal((await gitfs(['cluster', 'init', '--repo', repo], { env })).code, 0);
    // As if the init was killed before node.pem: the CA key alone.
    rmSync(join(clusterDir(repo), 'node.pem'));
    const { text, id } = await token();
    await assert.rejects(joinCluster(repo, text, Date.now()), rejectsWith(ErrorCodes.CLUSTER_EXISTS));
    assert.ok(existsSync(tokenFile(id)), 'the token is not spent');
    const again = await gitfs(['cluster', 'init', '--repo', repo], { env });
    assert.match(again.stderr, /ca\.key holds a cluster CA key.*\[GITFS_CLUSTER_EXISTS\]/);
    // The key of another CA beside this cluster's ca.pem (a join after an init cut short, before this check).
    const member = await cluster.addMember(tmp.make());
    copyFileSync(join(clusterDir(repo), 'ca.key'), join(clusterDir(member.gitDir), 'ca.key'));
    await assert.rejects(holdsAuthority(member.gitDir), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_KEY) && /is not the key of the cluster CA/.test(e.message));
  });

  it('an issuer whose revocation list does not verify refuses the join without spending the token', async () => {
    const list = join(clusterDir(ca.gitDir), 'revocations.bin');
    const saved = existsSync(list) ? readFileSync(list) : undefined;
    writeFileSync(list, 'not a signed list');
    try {
      const { text, id } = await token();
      const dir = tmp.make();
      await assert.rejects(joinCluster(dir, text, Date.now()), rejectsWith(ErrorCodes.BAD_SIGNATURE));
      assert.ok(existsSync(tokenFile(id)), 'the token is not spent');
    } finally {
      if (saved === undefined) rmSync(list);
      else writeFileSync(list, saved);
    }
  });

  it('gitfs cluster join warns when this repository cuts large files otherwise than the issuer\'s, and joins', async () => {
    const env = cleanEnv();
    const issuerConfig = join(ca.gitDir, 'config');
    const joinWith = async (issuerChunkSize: string | undefined): Promise<{ code: number; stderr: string }> => {
      const issuerRepo = join(tmp.make(), 'issuer');
      assert.equal((await gitfs(['init', '--repo', issuerRepo, ...(issuerChunkSize === undefined ? [] : ['--chunk-size', issuerChunkSize])], { env })).code, 0);
      copyFileSync(join(issuerRepo, 'config'), issuerConfig); // the issuer's repository config, as a CA node has it
      const repo = join(tmp.make(), 'repo');
      assert.equal((await gitfs(['init', '--repo', repo], { env })).code, 0);
      const r = await gitfs(['cluster', 'join', (await token()).text, '--repo', repo], { env });
      assert.equal(r.code, 0, r.stderr);
      await loadMembership(repo, Date.now());
      return r;
    };
    try {
      assert.doesNotMatch((await joinWith(undefined)).stderr, /warning/);
      const differs = await joinWith('64K');
      assert.match(differs.stderr, /warning: this repository cuts large files otherwise than the issuer's \(here: \S+ min 2048 avg 8192 max 65536 [^;]*; issuer: \S+ min 16384 avg 65536 max 524288 /);
    } finally {
      rmSync(issuerConfig, { force: true });
    }
  });
});
