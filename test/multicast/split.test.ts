/**
 * Cutting head lists into datagram-sized parts. The main property runs the real Announcer (real
 * node key and certificate, real envelope) with a transport that keeps what it would send, then
 * opens every datagram as another member would: each fits 1472 bytes, the parts' ranges are
 * contiguous and cover every name once, and together they list exactly the heads. A second
 * property plays lost and reordered parts into a PeerTable and checks it against a model.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { BranchName } from '../../src/branches/ref-name.js';
import { compareNames, decodeAnnouncement, encodeAnnouncement, inRange, MAX_PARTS, type Announcement, type Endpoint, type Head } from '../../src/multicast/announcement.js';
import { Announcer } from '../../src/multicast/announcer.js';
import { EnvelopeOpener, MAX_PACKET_BYTES, envelopeOverhead, sealEnvelope } from '../../src/multicast/envelope.js';
import { PeerTable } from '../../src/multicast/peer-table.js';
import { splitAnnouncement, type PartTemplate } from '../../src/multicast/split.js';
import type { AnnounceTransport } from '../../src/multicast/transport.js';
import type { Oid } from '../../src/objects/oid.js';
import { suiteDirs } from '../support/tmp.js';
import { branchNameArb, endpointArb, headsArb, nodeNameArb, oidArb, rolloutsArb } from './arbitraries.js';
import { captureLogger, makeCluster, TestClock, type Member } from './fixture.js';

class KeepingTransport implements AnnounceTransport {
  readonly packets: Uint8Array[] = [];
  send(packet: Uint8Array): Promise<void> {
    this.packets.push(packet);
    return Promise.resolve();
  }
  destinations(): number {
    return 1;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const byName = (a: { branch: string }, b: { branch: string }): number => compareNames(a.branch, b.branch);

/** The parts' ranges start at '', end unbounded, meet end to start, and are non-empty; each part's heads lie in its range. */
function checkCoverage(parts: readonly Announcement[]): void {
  assert.ok(parts.length >= 1 && parts.length <= MAX_PARTS);
  parts.forEach((p, i) => {
    assert.equal(p.part, i);
    assert.equal(p.parts, parts.length);
    if (i === 0) assert.equal(p.rangeStart, '');
    if (i === parts.length - 1) assert.equal(p.rangeEnd, '');
    else {
      assert.equal(p.rangeEnd, (parts[i + 1] as Announcement).rangeStart);
      assert.ok(compareNames(p.rangeStart, p.rangeEnd) < 0, `part ${i} has an empty range`);
    }
    for (const h of p.heads) assert.ok(inRange(h.branch, p.rangeStart, p.rangeEnd));
  });
}

/** Which part's range holds `name`: exactly one must. */
function coveringPart(parts: readonly Announcement[], name: string): number {
  const holders = parts.filter((p) => inRange(name, p.rangeStart, p.rangeEnd)).map((p) => p.part);
  assert.equal(holders.length, 1, `${name} is covered by parts ${holders.join(',')}`);
  return holders[0] as number;
}

function plainHeads(heads: Iterable<[BranchName, { oid: Oid; commitTime: number }]>): Head[] {
  return [...heads].map(([branch, h]) => ({ branch, oid: h.oid, commitTime: h.commitTime })).sort(byName);
}

describe('multicast/split: head lists cut into datagrams', function () {
  const tmp = suiteDirs();
  let sender: Member;
  let receiver: Member;
  let budget: number;
  const template = (): PartTemplate => ({
    nodeId: sender.identity.nodeId,
    instance: 'ab'.repeat(16),
    seq: Number.MAX_SAFE_INTEGER,
    timeMs: Number.MAX_SAFE_INTEGER,
    name: 'ñ'.repeat(32),
    endpoints: Array.from({ length: 8 }, (_, i): Endpoint => ({ address: `255.255.255.${250 + (i % 5)}`, port: 65535 })),
    revocationVersion: Number.MAX_SAFE_INTEGER,
    intervalMs: 3_600_000,
  });

  before(async () => {
    const cluster = await makeCluster(tmp.make());
    sender = await cluster.addMember(tmp.make());
    receiver = await cluster.addMember(tmp.make());
    // As the announcer computes it.
    const empty = encodeAnnouncement({ ...template(), part: 0, parts: 1, rangeStart: '', rangeEnd: '', heads: [], rollouts: [] }).length;
    budget = MAX_PACKET_BYTES - envelopeOverhead(sender.identity, sender.trust, empty + 1024);
  });

  it('the Announcer sends parts that fit one datagram, open as another member, and list exactly the heads (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        headsArb(500),
        nodeNameArb,
        fc.array(endpointArb, { maxLength: 8 }),
        fc.integer({ min: 100, max: 3_600_000 }),
        async (heads, name, endpoints, intervalMs) => {
          const transport = new KeepingTransport();
          const clock = new TestClock(Date.now());
          const log = captureLogger();
          const announcer = new Announcer(
            { transport, identity: sender.identity, trust: sender.trust, clock, log, heads: () => Promise.resolve(heads) },
            { name, endpoints, intervalMs, jitter: 0, debounceMs: 0, repeatMs: [], greetMs: 0 },
          );
          announcer.start();
          for (let i = 0; i < 100 && announcer.stats.announcements === 0; i++) await new Promise((r) => setImmediate(r));
          for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
          await announcer.stop();
          // With a short interval the periodic announcement may follow the first: only the first (seq 1) is checked.
          assert.ok(announcer.stats.announcements >= 1);
          assert.equal(announcer.stats.skippedHeads, 0);
          assert.deepEqual(log.lines.filter((l) => l.level !== 'debug' && l.level !== 'info'), []);

          const opener = new EnvelopeOpener(receiver.trust, receiver.identity);
          const parts = transport.packets
            .map((packet) => {
              assert.ok(packet.length <= MAX_PACKET_BYTES, `a datagram of ${packet.length} bytes`);
              const { sender: from, body } = opener.open(packet, clock.now());
              assert.equal(from.nodeId, sender.identity.nodeId);
              return decodeAnnouncement(body);
            })
            .filter((p) => p.seq === 1);
          checkCoverage(parts);
          assert.ok(parts.every((p) => p.seq === 1 && p.instance === announcer.instance && p.name === name && p.intervalMs === intervalMs));
          const listed = parts.flatMap((p) => p.heads);
          assert.deepStrictEqual(listed, [...heads].sort(byName));
          for (const h of heads) assert.ok(parts[coveringPart(parts, h.branch)]?.heads.some((x) => x.branch === h.branch));

          const table = new PeerTable({ expireIntervals: 3, maxPeers: 16 });
          for (const p of parts) table.apply(p, clock.now());
          assert.deepStrictEqual(plainHeads(table.get(sender.identity.nodeId)?.heads ?? []), [...heads].sort(byName));
        },
      ),
      // A failure's shrinking re-runs the announcer on hundreds of heads: bounded, so a failure reports rather than hangs.
      { numRuns: 40, interruptAfterTimeLimit: 60_000 },
    );
  });

  /** Every part, sealed, fits one datagram and decodes to itself. */
  const checkSealed = (parts: readonly Announcement[]): void => {
    for (const p of parts) {
      const packet = sealEnvelope(sender.identity, sender.trust, encodeAnnouncement(p));
      assert.ok(packet.length <= MAX_PACKET_BYTES, `part ${p.part}/${p.parts}: ${packet.length} bytes`);
      assert.deepStrictEqual(decodeAnnouncement(encodeAnnouncement(p)), p);
    }
  };

  /** Every part but the last is full: the head opening the next part would not fit in it (sizes add up exactly). */
  const checkFull = (parts: readonly Announcement[]): void => {
    for (const [i, p] of parts.slice(0, -1).entries()) {
      const next = parts[i + 1] as Announcement;
      const end = next.heads[1]?.branch ?? parts[i + 2]?.rangeStart ?? '';
      const grown = encodeAnnouncement({ ...p, part: MAX_PARTS - 1, parts: MAX_PARTS, rangeEnd: end, heads: [...p.heads, next.heads[0] as Head] });
      assert.ok(grown.length > budget, `part ${i} had room for ${next.heads[0]?.branch}: ${grown.length} <= ${budget}`);
    }
  };

  it('splitAnnouncement with the largest template: every sealed part <= 1472 bytes, contiguous, each full, nothing skipped (property)', () => {
    fc.assert(
      fc.property(headsArb(500), (heads) => {
        const { parts, skipped } = splitAnnouncement(template(), heads, [], budget);
        assert.deepEqual(skipped, []);
        checkCoverage(parts);
        checkSealed(parts);
        checkFull(parts);
        assert.deepStrictEqual(parts.flatMap((p) => p.heads), [...heads].sort(byName));
      }),
      { numRuns: 60, interruptAfterTimeLimit: 60_000 },
    );
  });

  it('heads and rollout reports together: every sealed part <= 1472 bytes, each report in the part whose range covers its channel, nothing skipped (property)', () => {
    fc.assert(
      fc.property(headsArb(100), rolloutsArb, (heads, rollouts) => {
        const { parts, skipped, skippedRollouts } = splitAnnouncement(template(), heads, rollouts, budget);
        assert.deepEqual([skipped, skippedRollouts], [[], []]);
        checkCoverage(parts);
        checkSealed(parts);
        assert.deepStrictEqual(parts.flatMap((p) => p.heads), [...heads].sort(byName));
        assert.deepStrictEqual(parts.flatMap((p) => p.rollouts), rollouts);
        const table = new PeerTable({ expireIntervals: 3, maxPeers: 16 });
        for (const p of parts) table.apply(p, 1);
        assert.deepStrictEqual([...(table.get(sender.identity.nodeId)?.rollouts.values() ?? [])].sort((a, b) => compareNames(a.channel, b.channel)), rollouts);
      }),
      { numRuns: 60, interruptAfterTimeLimit: 60_000 },
    );
  });

  it('500 heads with 200-byte names need many parts and each is close to the budget', () => {
    const heads = Array.from({ length: 500 }, (_, i): Head => ({ branch: `${String(i).padStart(3, '0')}${'n'.repeat(197)}` as BranchName, oid: '0'.repeat(40) as Oid, commitTime: i }));
    const { parts } = splitAnnouncement(template(), heads, [], budget);
    checkCoverage(parts);
    assert.ok(parts.length > 100, `${parts.length} parts`);
    for (const p of parts) {
      const size = sealEnvelope(sender.identity, sender.trust, encodeAnnouncement(p)).length;
      assert.ok(size <= MAX_PACKET_BYTES);
    }
  });

  it('lost and reordered parts never delete a listed head nor keep a removed one whose part arrived (property)', () => {
    const plan = fc.record({
      before: headsArb(200),
      fate: fc.array(fc.constantFrom('keep', 'drop', 'move'), { minLength: 200, maxLength: 200 }),
      newOids: fc.array(oidArb, { minLength: 200, maxLength: 200 }),
      added: fc.uniqueArray(branchNameArb, { maxLength: 60 }),
    });
    fc.assert(
      fc.property(plan, fc.gen(), ({ before, fate, newOids, added }, g) => {
        const nodeId = sender.identity.nodeId;
        const known = new Set<string>(before.map((h) => h.branch));
        const after: Head[] = [];
        before.forEach((h, i) => {
          if (fate[i] === 'keep') after.push(h);
          else if (fate[i] === 'move') after.push({ ...h, oid: newOids[i] as Oid });
        });
        added.forEach((b, i) => {
          if (!known.has(b)) after.push({ branch: b, oid: newOids[i] as Oid, commitTime: i });
        });
        const table = new PeerTable({ expireIntervals: 3, maxPeers: 16 });
        const now = 1_000_000;
        const t0 = { ...template(), seq: 1, timeMs: now };
        for (const p of splitAnnouncement(t0, before, [], budget).parts) table.apply(p, now);
        assert.deepStrictEqual(plainHeads(table.get(nodeId)?.heads ?? []), [...before].sort(byName));

        const parts = splitAnnouncement({ ...t0, seq: 2 }, after, [], budget).parts;
        const delivered = g(fc.shuffledSubarray, parts);
        for (const p of delivered) table.apply(p, now + 1);

        const arrived = new Set(delivered.map((p) => p.part));
        const beforeMap = new Map(before.map((h) => [h.branch, h.oid]));
        const afterMap = new Map(after.map((h) => [h.branch, h.oid]));
        const peer = table.get(nodeId);
        assert.ok(peer !== undefined);
        for (const name of new Set([...beforeMap.keys(), ...afterMap.keys()])) {
          const covered = arrived.has(coveringPart(parts, name));
          const want = covered ? afterMap.get(name) : beforeMap.get(name);
          assert.equal(peer.heads.get(name as BranchName)?.oid, want, `${name} (${covered ? 'its part arrived' : 'its part was lost'})`);
          if (afterMap.has(name) && beforeMap.has(name)) assert.ok(peer.heads.has(name as BranchName), `${name} is still listed but was deleted`);
        }
        assert.equal(peer.heads.size, [...new Set([...beforeMap.keys(), ...afterMap.keys()])].filter((n) => (arrived.has(coveringPart(parts, n)) ? afterMap.has(n) : beforeMap.has(n))).length);
      }),
      { numRuns: 150, interruptAfterTimeLimit: 60_000 },
    );
  });
});
