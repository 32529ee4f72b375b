/**
 * Hostile datagrams through the real receive path, wired as src/node/daemon.ts wires it: a
 * Receiver with a real EnvelopeOpener (the cluster CA and node certificates made by
 * initCluster/issueNodeCertificate in temporary repositories), ReplayGuard and PeerTable.
 * Every kind of bad packet is dropped, counted under its reason, and never reaches the table;
 * then a fuzz of random and mutated packets checks that nothing throws, every packet is counted
 * exactly once, and the legitimate peers' entries never change.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { issueCertificate } from '../../src/cluster/certificate.js';
import { loadMembership } from '../../src/cluster/cluster-store.js';
import { NodeIdentity, type ClusterTrust } from '../../src/cluster/identity.js';
import { nodeIdOf } from '../../src/cluster/node-id.js';
import { signRevocations } from '../../src/cluster/revocation.js';
import { encodeAnnouncement, type Announcement, type Head } from '../../src/multicast/announcement.js';
import { EnvelopeOpener, MAX_PACKET_BYTES, envelopeOverhead, sealEnvelope } from '../../src/multicast/envelope.js';
import { DROP_REASONS, type DropReason } from '../../src/multicast/packet-error.js';
import { PeerTable, type PeerEvent } from '../../src/multicast/peer-table.js';
import { Receiver, type ReceiveStats } from '../../src/multicast/receiver.js';
import { ReplayGuard } from '../../src/multicast/replay-guard.js';
import { AnnouncementMessage } from '../../src/multicast/schema.js';
import { splitAnnouncement } from '../../src/multicast/split.js';
import { DEFAULT_RATES, type BudgetRates } from '../../src/multicast/verify-budget.js';
import { suiteDirs } from '../support/tmp.js';
import { announcement, captureLogger, head, makeCluster, TestClock, type CapturedLine, type Member, type TestCluster } from './fixture.js';
import { encodeEnvelope, envelopeFields, fuzzSeed, mutator, prng } from './mutations.js';

const WINDOW = 120_000;
const NOW = Date.now();
const FROM = { address: '127.0.0.1', port: 7419 };

interface Stack {
  readonly receiver: Receiver;
  readonly table: PeerTable;
  readonly clock: TestClock;
  readonly lines: CapturedLine[];
  readonly events: PeerEvent[];
}

/** Rates that never run dry: the checks themselves are under test. */
const UNLIMITED: BudgetRates = { sharedPerSecond: Infinity, sharedBurst: Infinity, sourcePerSecond: Infinity, sourceBurst: Infinity, perPartPerSecond: 0, perPartBurst: 0, sourceMaxPerSecond: Infinity, sourceMaxBurst: Infinity };

function stack(self: Member, trust: ClusterTrust = self.trust, rates: BudgetRates = UNLIMITED): Stack {
  const clock = new TestClock(NOW);
  const log = captureLogger();
  const table = new PeerTable({ expireIntervals: 3, maxPeers: 4096 });
  const events: PeerEvent[] = [];
  const receiver = new Receiver(
    { opener: new EnvelopeOpener(trust, self.identity), guard: new ReplayGuard(WINDOW), table, clock, log: log.child('receive'), onAccepted: (_a, e) => events.push(...e) },
    { windowMs: WINDOW, rates },
  );
  return { receiver, table, clock, lines: log.lines, events };
}

const fields = envelopeFields;
const envelope = encodeEnvelope;

/** `who` signs an announcement (defaults: its own node id, time NOW) inside an envelope tagged for `trust`. */
function signed(who: { identity: NodeIdentity }, trust: ClusterTrust, overrides: Partial<Announcement> = {}): Uint8Array {
  return sealEnvelope(who.identity, trust, encodeAnnouncement(announcement(who.identity.nodeId, { timeMs: NOW, ...overrides })));
}

function total(s: ReceiveStats): number {
  return s.accepted + DROP_REASONS.reduce((n, r) => n + s[r], 0);
}

/** Receives `packet` and checks it was dropped for `reason`, counted once, and changed nothing. */
function expectDrop(s: Stack, packet: Uint8Array, reason: DropReason, what: string = reason): void {
  const before = { ...s.receiver.stats };
  const peers = JSON.stringify(s.table.list(), (_k, v: unknown) => (v instanceof Map ? [...v] : v));
  s.receiver.receive(packet, FROM);
  const after = s.receiver.stats;
  const changed = Object.keys(after).filter((k) => after[k as keyof ReceiveStats] !== before[k as keyof ReceiveStats]);
  assert.deepEqual(changed.sort(), ['received', reason].sort(), `${what}: counters changed: ${changed.join(', ')}`);
  assert.equal(after[reason], before[reason] + 1);
  assert.equal(JSON.stringify(s.table.list(), (_k, v: unknown) => (v instanceof Map ? [...v] : v)), peers, `${what} changed the peer table`);
}

function expectAccepted(s: Stack, packet: Uint8Array): void {
  const before = s.receiver.stats.accepted;
  s.receiver.receive(packet, FROM);
  assert.equal(s.receiver.stats.accepted, before + 1, `not accepted: ${JSON.stringify(s.receiver.stats)}`);
}

describe('multicast/receiver: hostile packets', function () {
  this.timeout(60_000);
  const tmp = suiteDirs();
  let cluster: TestCluster;
  let a: Member; // the receiving node (the CA node)
  let b: Member; // a legitimate member
  let c: Member; // another legitimate member
  let r: Member; // a member revoked where a test says so
  let x: Member; // a member of another cluster

  before(async () => {
    cluster = await makeCluster(tmp.make(), NOW);
    a = cluster.ca;
    b = await cluster.addMember(tmp.make());
    c = await cluster.addMember(tmp.make());
    r = await cluster.addMember(tmp.make());
    x = (await makeCluster(tmp.make(), NOW)).ca;
  });

  it('a member’s announcement is accepted (the baseline every drop below differs from)', () => {
    const s = stack(a);
    expectAccepted(s, signed(b, a.trust, { heads: [head('main')] }));
    assert.deepEqual(
      s.table.list().map((p) => p.nodeId),
      [b.identity.nodeId],
    );
    assert.deepEqual(s.events.map((e) => e.kind), ['peer-up', 'head']);
  });

  describe('each kind of bad packet is dropped and counted under its reason', function () {
    it('not_member: a certificate from another CA, tagged with this cluster', () => {
      expectDrop(stack(a), signed(x, a.trust), 'not_member');
    });

    it('not_member: a self-signed node certificate', () => {
      const keys = generateKeyPairSync('ed25519');
      const id = nodeIdOf(keys.publicKey);
      const der = issueCertificate({
        serial: randomBytes(8).fill(1, 0, 1),
        subject: id,
        issuer: id,
        notBefore: new Date(NOW - 60_000),
        notAfter: new Date(NOW + 86_400_000),
        publicKey: keys.publicKey,
        signingKey: keys.privateKey,
        issuerPublicKey: keys.publicKey,
        ca: false,
      });
      const cert = new X509Certificate(der);
      const self = new NodeIdentity(id, keys.privateKey, cert, cert.toString());
      expectDrop(stack(a), signed({ identity: self }, a.trust), 'not_member');
    });

    it('bad_certificate: the cluster CA certificate itself, even signed with the CA key', () => {
      const caAsNode = new NodeIdentity(b.identity.nodeId, cluster.authority.key, cluster.authority.cert, b.identity.certificatePem);
      expectDrop(stack(a), signed({ identity: caAsNode }, a.trust), 'bad_certificate');
    });

    it('bad_certificate: an expired member certificate', () => {
      const keys = generateKeyPairSync('ed25519');
      const der = issueCertificate({
        serial: randomBytes(8).fill(1, 0, 1),
        subject: nodeIdOf(keys.publicKey),
        issuer: cluster.authority.cert.subject.replace(/^CN=/, ''),
        notBefore: new Date(NOW - 2 * 86_400_000),
        notAfter: new Date(NOW - 86_400_000),
        publicKey: keys.publicKey,
        signingKey: cluster.authority.key,
        issuerPublicKey: cluster.authority.cert.publicKey,
        ca: false,
      });
      const cert = new X509Certificate(der);
      const expired = new NodeIdentity(nodeIdOf(keys.publicKey), keys.privateKey, cert, cert.toString());
      expectDrop(stack(a), signed({ identity: expired }, a.trust), 'bad_certificate');
    });

    it('bad_signature: body bytes flipped, signature bytes flipped, a short signature, another member’s signature', () => {
      const s = stack(a);
      const good = fields(signed(b, a.trust, { heads: [head('main')] }));
      for (const i of [0, 5, good.body.length - 1]) {
        const body = Buffer.from(good.body);
        body[i] = (body[i] as number) ^ 0x01;
        expectDrop(s, envelope({ ...good, body }), 'bad_signature', `body byte ${i} flipped`);
      }
      const sig = Buffer.from(good.signature);
      sig[10] = (sig[10] as number) ^ 0x80;
      expectDrop(s, envelope({ ...good, signature: sig }), 'bad_signature', 'signature flipped');
      expectDrop(s, envelope({ ...good, signature: good.signature.subarray(0, 63) }), 'bad_signature', 'signature of 63 bytes');
      expectDrop(s, envelope({ ...good, signature: Buffer.alloc(0) }), 'bad_signature', 'no signature');
      expectDrop(s, envelope({ ...good, signature: fields(signed(c, a.trust)).signature }), 'bad_signature', 'another signature');
      const byC = fields(sealEnvelope(c.identity, a.trust, good.body));
      expectDrop(s, envelope({ ...good, signature: byC.signature }), 'bad_signature', 'the same body signed by another member');
      // The untouched packet is still good: the drops above were about the changes.
      expectAccepted(s, envelope(good));
    });

    it('identity_mismatch: member B’s certificate and signature on a body claiming to be node C', () => {
      const s = stack(a);
      expectDrop(s, signed(b, a.trust, { nodeId: c.identity.nodeId, heads: [head('main')] }), 'identity_mismatch');
      assert.equal(s.table.get(c.identity.nodeId), undefined);
      assert.equal(s.table.get(b.identity.nodeId), undefined);
    });

    it('revoked: a member on the adopted revocation list, before and after it was accepted', async () => {
      const { trust } = await loadMembership(a.gitDir, NOW);
      const s = stack(a, trust);
      expectAccepted(s, signed(r, a.trust, { seq: 1, heads: [head('main')] }));
      assert.ok(trust.adopt(signRevocations(cluster.authority.key, 1, NOW, [r.identity.nodeId])));
      assert.deepEqual(s.table.dropRevoked((id) => trust.isRevoked(id)).map((e) => e.kind), ['peer-down']);
      expectDrop(s, signed(r, a.trust, { seq: 2, heads: [head('main')] }), 'revoked');
      assert.equal(s.table.get(r.identity.nodeId), undefined);
      expectAccepted(s, signed(b, a.trust));
    });

    it('duplicate and replay: the same packet twice, an older sequence number, an older instance', () => {
      const s = stack(a);
      const first = signed(b, a.trust, { seq: 5, heads: [head('main')] });
      expectAccepted(s, first);
      expectDrop(s, first, 'duplicate');
      expectAccepted(s, signed(b, a.trust, { seq: 6, heads: [head('main')] }));
      expectDrop(s, signed(b, a.trust, { seq: 4 }), 'replay', 'older sequence number');
      expectDrop(s, first, 'replay', 'the first packet again, after a newer one');
      expectDrop(s, signed(b, a.trust, { seq: 100, instance: '22'.repeat(16), timeMs: NOW - 1 }), 'replay', 'another instance with an older time');
      expectAccepted(s, signed(b, a.trust, { seq: 1, instance: '22'.repeat(16), timeMs: NOW + 1 }));
      assert.equal(s.table.get(b.identity.nodeId)?.restarts, 1);
    });

    it('stale: a time outside the window either way; the window’s edges are inside', () => {
      const s = stack(a);
      expectDrop(s, signed(b, a.trust, { seq: 1, timeMs: NOW - WINDOW - 1 }), 'stale', 'too old');
      expectDrop(s, signed(b, a.trust, { seq: 2, timeMs: NOW + WINDOW + 1 }), 'stale', 'from the future');
      expectAccepted(s, signed(b, a.trust, { seq: 3, timeMs: NOW - WINDOW }));
      expectAccepted(s, signed(b, a.trust, { seq: 4, timeMs: NOW + WINDOW }));
    });

    it('malformed: every truncation of a good packet is dropped; cut inside the signature it is malformed', () => {
      const s = stack(a);
      const good = signed(b, a.trust, { heads: [head('main'), head('next')] });
      for (let n = 0; n < good.length; n++) {
        const before = total(s.receiver.stats);
        s.receiver.receive(good.subarray(0, n), FROM);
        assert.equal(total(s.receiver.stats), before + 1);
      }
      assert.equal(s.receiver.stats.accepted, 0);
      assert.deepEqual(s.table.list(), []);
      expectDrop(s, good.subarray(0, good.length - 1), 'malformed', 'last byte cut');
      expectDrop(s, good.subarray(0, good.length - 40), 'malformed', 'cut inside the signature');
      expectAccepted(s, good);
    });

    it('oversized: more than 1472 bytes, even validly signed', () => {
      const s = stack(a);
      expectDrop(s, randomBytes(MAX_PACKET_BYTES + 1), 'oversized', 'random bytes');
      const heads: Head[] = Array.from({ length: 40 }, (_, i) => head(`branch-${String(i).padStart(3, '0')}`));
      const big = signed(b, a.trust, { heads });
      assert.ok(big.length > MAX_PACKET_BYTES);
      expectDrop(s, big, 'oversized', 'signed and oversized');
      expectDrop(s, new Uint8Array(65_507), 'oversized', 'largest UDP payload');
    });

    it('malformed: garbage, an empty certificate, a signed body that is not an announcement', () => {
      const s = stack(a);
      expectDrop(s, Buffer.alloc(200, 0xff), 'malformed', '0xff bytes');
      expectDrop(s, Buffer.from([0x22, 0x7f, 0x01]), 'malformed', 'a body whose length runs past the end');
      const good = fields(signed(b, a.trust));
      expectDrop(s, envelope({ ...good, certificate: Buffer.alloc(0) }), 'malformed', 'no certificate');
      expectDrop(s, envelope({ ...good, certificate: randomBytes(300) }), 'malformed', 'a certificate of random bytes');
      expectDrop(s, sealEnvelope(b.identity, a.trust, randomBytes(50).fill(0xff, 0, 1)), 'malformed', 'signed garbage body');
      expectDrop(s, sealEnvelope(b.identity, a.trust, new Uint8Array(0)), 'malformed', 'signed empty body');
    });

    it('unsupported_version and foreign_cluster', () => {
      const s = stack(a);
      const good = fields(signed(b, a.trust));
      expectDrop(s, envelope({ ...good, version: 2 }), 'unsupported_version', 'version 2');
      expectDrop(s, envelope({ ...good, version: 0 }), 'unsupported_version', 'version 0');
      expectDrop(s, new Uint8Array(0), 'unsupported_version', 'the empty datagram (all defaults)');
      expectDrop(s, signed(b, x.trust), 'foreign_cluster', 'a member’s packet tagged for another cluster');
      expectDrop(s, signed(x, x.trust), 'foreign_cluster', 'another cluster’s packet');
      expectDrop(s, envelope({ ...good, cluster: Buffer.alloc(0) }), 'foreign_cluster', 'no tag');
    });

    it('own: this node’s own packets, also with its certificate spelled otherwise (a byte appended: malformed, never a peer)', () => {
      const s = stack(a);
      expectDrop(s, signed(a, a.trust), 'own');
      const mine = fields(signed(a, a.trust));
      expectDrop(s, envelope({ ...mine, certificate: Buffer.concat([mine.certificate, Buffer.from([0])]) }), 'malformed', 'padded certificate');
      assert.deepEqual(s.table.list(), [], 'this node never lists itself as a peer');
    });

    it('a member’s certificate spelled otherwise is refused as malformed', () => {
      const good = fields(signed(b, a.trust));
      expectDrop(stack(a), envelope({ ...good, certificate: Buffer.concat([good.certificate, Buffer.from([0])]) }), 'malformed', 'padded certificate');
    });

    it('drops are logged as warnings, at most one per reason per 10 s, never as errors', () => {
      const s = stack(a);
      for (let i = 0; i < 50; i++) s.receiver.receive(randomBytes(MAX_PACKET_BYTES + 1), FROM);
      const warned = s.lines.filter((l) => l.event === 'packet-dropped');
      assert.equal(warned.length, 1);
      assert.equal(warned[0]?.level, 'warn');
      s.clock.ms += 10_000;
      s.receiver.receive(randomBytes(MAX_PACKET_BYTES + 1), FROM);
      assert.equal(s.lines.filter((l) => l.event === 'packet-dropped').length, 2);
      assert.deepEqual(s.lines.filter((l) => l.level === 'error'), []);
    });
  });

  it('checks forged packets within a budget: past it they are dropped unchecked (throttled); a source a member was heard from has a bucket of its own, copies of taken packets cost nothing, and time refills the buckets', () => {
    const rates: BudgetRates = { sharedPerSecond: 10, sharedBurst: 20, sourcePerSecond: 1, sourceBurst: 4, perPartPerSecond: 0, perPartBurst: 0, sourceMaxPerSecond: 1, sourceMaxBurst: 4 };
    const s = stack(a, a.trust, rates);
    const fromB = { address: '10.0.0.2', port: 7419 };
    const count = (reason: DropReason): number => s.receiver.stats[reason];
    const seq2 = signed(b, a.trust, { seq: 2 });
    s.receiver.receive(signed(b, a.trust, { seq: 1 }), fromB);
    assert.equal(s.receiver.stats.accepted, 1, 'B heard: its source has a bucket of its own now');
    // A flood of forgeries from as many addresses: 19 tokens are left of the shared burst.
    const forged = signed(x, a.trust);
    for (let i = 0; i < 100; i++) s.receiver.receive(forged, { address: `10.1.${i}.1`, port: 7419 });
    assert.deepEqual([count('not_member'), count('throttled')], [19, 81]);
    // Noise is dropped before any token is asked for.
    s.receiver.receive(signed(x, x.trust), { address: '10.2.0.1', port: 7419 });
    assert.deepEqual([count('foreign_cluster'), count('throttled')], [1, 81]);
    // B is heard through the flood, from its own bucket (4, now 3).
    s.receiver.receive(seq2, fromB);
    assert.equal(s.receiver.stats.accepted, 2);
    // Copies of a packet taken, from B's source or any other, are refused as the replay guard would, unchecked: no token.
    for (let i = 0; i < 50; i++) s.receiver.receive(seq2, i % 2 === 0 ? fromB : { address: `10.3.${i}.1`, port: 7419 });
    assert.deepEqual([count('duplicate'), count('throttled'), count('bad_signature')], [50, 81, 0]);
    // Forgeries spoofing B's own source spend B's own bucket (3 left), then are throttled, and B with them...
    const bad = Buffer.from(signed(b, a.trust, { seq: 3 }));
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
    for (let i = 0; i < 10; i++) s.receiver.receive(bad, fromB);
    assert.deepEqual([count('bad_signature'), count('throttled')], [3, 88]);
    s.receiver.receive(signed(b, a.trust, { seq: 4 }), fromB);
    assert.deepEqual([s.receiver.stats.accepted, count('throttled')], [2, 89], "B is not heard while its bucket is dry");
    // ... until a second refills it.
    s.clock.ms += 1000;
    s.receiver.receive(signed(b, a.trust, { seq: 5 }), fromB);
    assert.equal(s.receiver.stats.accepted, 3, 'a second later, a token: B is heard again');
  });

  it("sizes a member's own bucket by the parts of its announcements: one of 100 parts, sent five times at once after a change, is taken whole while a flood keeps the shared bucket dry", () => {
    const s = stack(a, a.trust, DEFAULT_RATES);
    const fromB = { address: '10.0.0.2', port: 7419 };
    const forged = signed(x, a.trust);
    const flood = (n: number): void => {
      for (let i = 0; i < n; i++) s.receiver.receive(forged, { address: `10.1.${i >> 8}.${i & 255}`, port: 7419 });
    };
    const heads = Array.from({ length: 1800 }, (_, i) => head(`feature/${String(i).padStart(4, '0')}-${'x'.repeat(40)}`));
    const room = MAX_PACKET_BYTES - envelopeOverhead(b.identity, a.trust, 1200);
    let seq = 0;
    const send = (): number => {
      const parts = splitAnnouncement({ ...announcement(b.identity.nodeId, { timeMs: NOW }), seq: ++seq }, heads, [], room).parts;
      for (const p of parts) s.receiver.receive(sealEnvelope(b.identity, a.trust, encodeAnnouncement(p)), fromB);
      return parts.length;
    };
    flood(DEFAULT_RATES.sharedBurst);
    assert.equal(s.receiver.stats.throttled, 0);
    s.clock.ms += 1000;
    // First heard (the shared bucket refilled a little), then the flood again: the shared bucket is dry.
    const parts = send();
    assert.ok(parts >= 100, `${parts} parts`);
    flood(DEFAULT_RATES.sharedBurst);
    const accepted = s.receiver.stats.accepted;
    for (let round = 0; round < 4; round++) send();
    assert.equal(s.receiver.stats.accepted - accepted, 4 * parts, `the repeats taken: ${JSON.stringify(s.receiver.stats)}`);
    assert.equal(s.table.get(b.identity.nodeId)?.heads.size, heads.length);
  });

  it('reads only the header of a body before its token: a throttled forgery’s heads are never decoded, and a body malformed past its header is dropped as stale unchecked', () => {
    const none: BudgetRates = { sharedPerSecond: 0, sharedBurst: 0, sourcePerSecond: 0, sourceBurst: 0, perPartPerSecond: 0, perPartBurst: 0, sourceMaxPerSecond: 0, sourceMaxBurst: 0 };
    const s = stack(a, a.trust, none);
    const decode = AnnouncementMessage.decode;
    let decoded = 0;
    AnnouncementMessage.decode = function (this: unknown, ...args: Parameters<typeof decode>) {
      decoded++;
      return decode.apply(this, args);
    };
    try {
      // A datagram as full as a forger makes it: 26 heads, a bad signature, from a new address each time.
      const forged = Buffer.from(signed(b, a.trust, { heads: Array.from({ length: 26 }, (_, i) => head(`h${String(i).padStart(2, '0')}`)) }));
      assert.ok(forged.length > 1400 && forged.length <= MAX_PACKET_BYTES, `${forged.length} bytes`);
      forged[forged.length - 1] = (forged[forged.length - 1] ?? 0) ^ 1;
      for (let i = 0; i < 100; i++) s.receiver.receive(forged, { address: `10.1.0.${i}`, port: 7419 });
      assert.equal(s.receiver.stats.throttled, 100);
      assert.equal(decoded, 0, 'the whole announcement was decoded before its token');
      // A head field that does not decode, after a good header: an hour old, stale before any token; fresh, it needs one.
      const badHeads = (timeMs: number): Uint8Array =>
        sealEnvelope(b.identity, a.trust, Buffer.concat([encodeAnnouncement(announcement(b.identity.nodeId, { seq: 7, timeMs })), Buffer.from([0x5a, 0x03, 0xff, 0xff, 0xff])]));
      expectDrop(s, badHeads(NOW - 3_600_000), 'stale', 'stale, its heads malformed');
      expectDrop(s, badHeads(NOW), 'throttled', 'fresh, its heads malformed');
      assert.equal(decoded, 0);
    } finally {
      AnnouncementMessage.decode = decode;
    }
    // With a token it is checked, then decoded whole: malformed.
    expectDrop(stack(a), sealEnvelope(b.identity, a.trust, Buffer.concat([encodeAnnouncement(announcement(b.identity.nodeId, { timeMs: NOW })), Buffer.from([0x5a, 0x03, 0xff, 0xff, 0xff])])), 'malformed', 'checked, its heads malformed');
  });

  it('fuzz: 12,000 random and mutated packets never throw, are each counted once, and change no legitimate entry', async () => {
    const seed = fuzzSeed();
    const rnd = prng(seed);
    const why = (i: number, how: string): string => `packet ${i} (${how}), seed ${seed} (rerun with GITFS_FUZZ_SEED=${seed})`;

    const { trust } = await loadMembership(a.gitDir, NOW);
    trust.adopt(signRevocations(cluster.authority.key, 1, NOW, [r.identity.nodeId]));
    const s = stack(a, trust);

    // Legitimate traffic first: B in several parts (seq 1 with one head list, seq 2 with another), C in one.
    const budget = MAX_PACKET_BYTES - envelopeOverhead(b.identity, a.trust, 1200);
    const headsOf = (tag: string): Head[] => Array.from({ length: 30 }, (_, i) => head(`feature/${tag}-${String(i).padStart(2, '0')}-${'x'.repeat(20)}`));
    const template = { ...announcement(b.identity.nodeId, { timeMs: NOW }) };
    const seq1 = splitAnnouncement({ ...template, seq: 1 }, headsOf('one'), [], budget).parts;
    const finalHeads = headsOf('two');
    const seq2 = splitAnnouncement({ ...template, seq: 2 }, finalHeads, [], budget).parts;
    assert.ok(seq1.length > 1 && seq2.length > 1, 'the legitimate announcements have several parts');
    const legit = [...seq1, ...seq2].map((p) => sealEnvelope(b.identity, a.trust, encodeAnnouncement(p)));
    const cHeads = [head('main'), head('release/1')];
    const fromC = signed(c, a.trust, { heads: cHeads });
    for (const p of [...legit, fromC]) expectAccepted(s, p);

    const expected = JSON.stringify(s.table.list(), (_k, v: unknown) => (v instanceof Map ? [...v] : v));
    const peers = s.table.list();
    assert.deepEqual(peers.map((p) => p.nodeId).sort(), [b.identity.nodeId, c.identity.nodeId].sort());
    assert.deepEqual(
      [...(s.table.get(b.identity.nodeId)?.heads.keys() ?? [])].sort(),
      finalHeads.map((h) => h.branch).sort(),
    );

    // Bases to mutate: the legitimate packets (now replays or duplicates) and signed hostile ones.
    const hostile: Uint8Array[] = [
      signed(x, a.trust, { heads: [head('main')] }), // not a member
      signed(x, x.trust), // foreign cluster
      signed(r, a.trust, { seq: 99, heads: [head('main')] }), // revoked
      signed(a, a.trust), // own
      signed(b, a.trust, { seq: 1000, nodeId: c.identity.nodeId, heads: [head('evil')] }), // identity mismatch
      signed(b, a.trust, { seq: 1001, timeMs: NOW - 2 * WINDOW, heads: [head('evil')] }), // stale
      signed(b, a.trust, { seq: 1002, timeMs: NOW + 2 * WINDOW, heads: [head('evil')] }), // stale
      sealEnvelope(b.identity, a.trust, randomBytes(80)), // signed, not an announcement
    ];
    const mutate = mutator(rnd, [...legit, fromC, ...hostile], legit);

    const COUNT = 12_000;
    const accepted = s.receiver.stats.accepted;
    const eventsBefore = s.events.length;
    for (let i = 0; i < COUNT; i++) {
      const [packet, how] = mutate();
      const received = s.receiver.stats.received;
      const counted = total(s.receiver.stats);
      assert.doesNotThrow(() => s.receiver.receive(packet, { address: `10.0.${rnd.int(256)}.${rnd.int(256)}`, port: 1 + rnd.int(65535) }), why(i, how));
      assert.equal(s.receiver.stats.received, received + 1, why(i, how));
      assert.equal(total(s.receiver.stats), counted + 1, why(i, how));
      assert.equal(s.receiver.stats.accepted, accepted, `accepted: ${why(i, how)}`);
      if (i % 100 === 0) assert.equal(JSON.stringify(s.table.list(), (_k, v: unknown) => (v instanceof Map ? [...v] : v)), expected, why(i, how));
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
    }
    const stats = s.receiver.stats;
    assert.equal(stats.received, total(stats));
    assert.equal(JSON.stringify(s.table.list(), (_k, v: unknown) => (v instanceof Map ? [...v] : v)), expected);
    assert.equal(s.events.length, eventsBefore, 'no peer event from the fuzz');
    assert.deepEqual(s.lines.filter((l) => l.level === 'error'), [], 'a packet made the receive path fail unexpectedly');
    // The fuzz reached every check (so it is not all bounced by the first one); its budget never runs dry.
    for (const reason of DROP_REASONS.filter((r) => r !== 'throttled')) assert.ok(stats[reason] > 0, `no packet was dropped as ${reason} (seed ${seed}): ${JSON.stringify(stats)}`);
  });
});
