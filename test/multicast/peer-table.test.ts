/** The peer table: events for peers and heads, range-replacing parts, restarts, expiry by each peer's own interval, revocation. */
import assert from 'node:assert/strict';
import type { BranchName } from '../../src/branches/ref-name.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import type { RolloutReport } from '../../src/multicast/announcement.js';
import { PEER_LIMITS, PeerTable, type PeerEvent } from '../../src/multicast/peer-table.js';
import type { Oid } from '../../src/objects/oid.js';
import { announcement, head, randomOid } from './fixture.js';

const A = 'aaaaaaaaaaaaaaaa' as NodeId;
const B = 'bbbbbbbbbbbbbbbb' as NodeId;
const C = 'cccccccccccccccc' as NodeId;
const I1 = '01'.repeat(16);
const I2 = '02'.repeat(16);

const table = (maxPeers = 16): PeerTable => new PeerTable({ expireIntervals: 3, maxPeers });
const oids = (t: PeerTable, id: NodeId): Record<string, Oid> => Object.fromEntries([...(t.get(id)?.heads ?? [])].map(([b, h]) => [b, h.oid]));
const kinds = (events: readonly PeerEvent[]): string[] => events.map((e) => e.kind);

describe('multicast/peer-table', function () {
  it('a first announcement brings the peer up with its heads', () => {
    const t = table();
    const x = randomOid();
    const events = t.apply(announcement(A, { instance: I1, name: 'alpha', heads: [head('main', x, 123)] }), 1000);
    assert.deepStrictEqual(events, [
      { kind: 'peer-up', nodeId: A, name: 'alpha', instance: I1 },
      { kind: 'head', nodeId: A, branch: 'main', oid: x, previous: null },
    ]);
    const p = t.get(A);
    assert.ok(p !== undefined);
    assert.equal(p.name, 'alpha');
    assert.equal(p.firstSeen, 1000);
    assert.equal(p.lastSeen, 1000);
    assert.equal(p.restarts, 0);
    assert.deepStrictEqual(p.heads.get('main' as BranchName), { oid: x, commitTime: 123, seenAt: 1000 });
  });

  it('a moved head is one head event with the previous id; an unchanged one is none', () => {
    const t = table();
    const [x, y, z] = [randomOid(), randomOid(), randomOid()];
    t.apply(announcement(A, { heads: [head('a', x), head('b', y)] }), 1000);
    const events = t.apply(announcement(A, { seq: 2, heads: [head('a', x), head('b', z)] }), 2000);
    assert.deepStrictEqual(events, [{ kind: 'head', nodeId: A, branch: 'b', oid: z, previous: y }]);
    assert.deepEqual(oids(t, A), { a: x, b: z });
    assert.equal(t.get(A)?.heads.get('a' as BranchName)?.seenAt, 1000, 'an unchanged head keeps when it was first seen');
    assert.equal(t.get(A)?.lastSeen, 2000);
  });

  it('a head missing from the part whose range holds it is removed; heads outside the range stay', () => {
    const t = table();
    const [a, m, z] = [randomOid(), randomOid(), randomOid()];
    t.apply(announcement(A, { heads: [head('a', a), head('m', m), head('z', z)] }), 1000);
    // Part 1 of 2 covers [k, ''): it lists z only, so m is gone; a (in part 0's range) is untouched.
    const events = t.apply(announcement(A, { seq: 2, part: 1, parts: 2, rangeStart: 'k', rangeEnd: '', heads: [head('z', z)] }), 2000);
    assert.deepStrictEqual(events, [{ kind: 'head-removed', nodeId: A, branch: 'm', previous: m }]);
    assert.deepEqual(oids(t, A), { a, z });
    // Part 0 of 2 covers ['', k) and lists nothing: a goes.
    assert.deepStrictEqual(kinds(t.apply(announcement(A, { seq: 2, part: 0, parts: 2, rangeStart: '', rangeEnd: 'k', heads: [] }), 2001)), ['head-removed']);
    assert.deepEqual(oids(t, A), { z });
  });

  it('range ends are exclusive and starts inclusive, in UTF-8 byte order', () => {
    const t = table();
    const [k, u, e] = [randomOid(), randomOid(), randomOid()];
    t.apply(announcement(A, { heads: [head('k', k), head('\uFF71', u), head('\u{1F600}', e)] }), 1000);
    // [k, 😀) holds k and U+FF71 (UTF-8 EF BD B1 < F0 9F 98 80) but not 😀 itself.
    t.apply(announcement(A, { seq: 2, part: 0, parts: 1, rangeStart: 'k', rangeEnd: '\u{1F600}', heads: [] }), 2000);
    assert.deepEqual(oids(t, A), { '\u{1F600}': e });
  });

  it('a new instance is a restart: counted, reported with the previous instance, heads merged as usual', () => {
    const t = table();
    const x = randomOid();
    t.apply(announcement(A, { instance: I1, heads: [head('main', x)] }), 1000);
    const events = t.apply(announcement(A, { instance: I2, seq: 1, heads: [head('main', x)] }), 5000);
    assert.deepStrictEqual(events, [{ kind: 'peer-restart', nodeId: A, instance: I2, previous: I1 }]);
    const p = t.get(A);
    assert.equal(p?.instance, I2);
    assert.equal(p?.restarts, 1);
    assert.equal(p?.firstSeen, 1000);
    assert.deepStrictEqual(kinds(t.apply(announcement(A, { instance: I1, seq: 9 }), 6000)), ['peer-restart', 'head-removed']);
    assert.equal(t.get(A)?.restarts, 2);
  });

  it('name, endpoints, interval and revocation version follow the latest part', () => {
    const t = table();
    t.apply(announcement(A, { name: 'old', endpoints: [{ address: '10.0.0.1', port: 1 }], intervalMs: 1000, revocationVersion: 0 }), 1000);
    t.apply(announcement(A, { seq: 2, name: 'new', endpoints: [{ address: '10.0.0.2', port: 2 }], intervalMs: 5000, revocationVersion: 7 }), 2000);
    const p = t.get(A);
    assert.equal(p?.name, 'new');
    assert.deepEqual(p?.endpoints, [{ address: '10.0.0.2', port: 2 }]);
    assert.equal(p?.intervalMs, 5000);
    assert.equal(p?.revocationVersion, 7);
  });

  it('expires each peer after expireIntervals of its own interval, not before', () => {
    const t = table();
    t.apply(announcement(A, { intervalMs: 1000 }), 10_000);
    t.apply(announcement(B, { intervalMs: 10_000 }), 10_000);
    assert.deepEqual(t.expire(13_000), [], 'exactly 3 intervals of silence is not yet too long');
    assert.deepStrictEqual(t.expire(13_001), [{ kind: 'peer-down', nodeId: A, reason: 'expired', silentMs: 3001 }]);
    assert.equal(t.get(A), undefined);
    assert.ok(t.get(B) !== undefined);
    assert.deepEqual(t.expire(40_000), []);
    assert.deepStrictEqual(kinds(t.expire(40_001)), ['peer-down']);
    assert.deepEqual(t.list(), []);
  });

  it('hearing from a peer postpones its expiry; a peer that comes back after expiry is up again', () => {
    const t = table();
    t.apply(announcement(A, { intervalMs: 1000 }), 0 + 1);
    t.apply(announcement(A, { seq: 2, intervalMs: 1000 }), 2500);
    assert.deepEqual(t.expire(5500), []);
    assert.equal(t.expire(5501).length, 1);
    assert.deepStrictEqual(kinds(t.apply(announcement(A, { seq: 3, heads: [head('x')] }), 6000)), ['peer-up', 'head']);
  });

  it('an interval announced later is the one expiry uses', () => {
    const t = table();
    t.apply(announcement(A, { intervalMs: 60_000 }), 0 + 1);
    t.apply(announcement(A, { seq: 2, intervalMs: 100 }), 1000);
    assert.equal(t.expire(1301).length, 1);
  });

  it('dropRevoked removes exactly the revoked peers', () => {
    const t = table();
    for (const id of [A, B, C]) t.apply(announcement(id, { heads: [head('main')] }), 1000);
    const events = t.dropRevoked((id) => id === B || id === 'ffffffffffffffff');
    assert.deepStrictEqual(events, [{ kind: 'peer-down', nodeId: B, reason: 'revoked' }]);
    assert.deepEqual(
      t.list().map((p) => p.nodeId),
      [A, C],
    );
    assert.deepEqual(t.dropRevoked(() => false), []);
  });

  it('holds at most maxPeers peers; known peers still update', () => {
    const t = table(2);
    t.apply(announcement(A), 1000);
    t.apply(announcement(B), 1000);
    assert.deepEqual(t.apply(announcement(C, { heads: [head('x')] }), 1000), []);
    assert.equal(t.get(C), undefined);
    assert.equal(t.apply(announcement(A, { seq: 2, heads: [head('x')] }), 2000).length, 1);
    assert.deepEqual(
      t.list().map((p) => p.nodeId),
      [A, B],
    );
  });

  it('rollout reports merge like heads: an event when one changes, none when repeated, gone when a part covering its channel omits it', () => {
    const t = table();
    const release = randomOid();
    const report = (channel: string, state: RolloutReport['state']): RolloutReport => ({ channel: channel as BranchName, release, version: '1.0', state, failures: 0, blessed: null, blessedVersion: '', paused: false, recalled: null, recallSignature: null });
    t.apply(announcement(A), 1000);
    const first = t.apply(announcement(A, { seq: 2, rollouts: [report('kernel/stable', 'applying'), report('site/prod', 'blessed')] }), 1001);
    assert.deepStrictEqual(first.map((e) => (e.kind === 'rollout' ? [e.channel, e.state] : e.kind)), [['kernel/stable', 'applying'], ['site/prod', 'blessed']]);
    assert.deepEqual(t.apply(announcement(A, { seq: 3, rollouts: [report('kernel/stable', 'applying'), report('site/prod', 'blessed')] }), 1002), []);
    const next = t.apply(announcement(A, { seq: 4, rollouts: [report('kernel/stable', 'checking'), report('site/prod', 'blessed')] }), 1003);
    assert.deepStrictEqual(next.map((e) => (e.kind === 'rollout' ? [e.channel, e.state] : e.kind)), [['kernel/stable', 'checking']]);
    // A part for [k, s) that lists nothing there: kernel/stable's report is gone, site/prod's stays.
    t.apply(announcement(A, { seq: 5, part: 0, parts: 2, rangeStart: 'k', rangeEnd: 's', rollouts: [] }), 1004);
    assert.deepEqual([...(t.get(A)?.rollouts.keys() ?? [])], ['site/prod']);
  });

  it('a peer of 30 000 branches in parts of 17: each part costs its own range only (a round cost every receiver ~30 s of CPU)', () => {
    const t = table();
    const names = Array.from({ length: 30_000 }, (_, i) => `b${String(i).padStart(5, '0')}` as BranchName);
    const heads = names.map((n) => head(n, randomOid()));
    const round = (seq: number, list: typeof heads): PeerEvent[] => {
      const events: PeerEvent[] = [];
      const parts = Math.ceil(names.length / 17);
      for (let part = 0; part < parts; part++) {
        const rangeStart = part === 0 ? '' : (names[part * 17] as string);
        const rangeEnd = part === parts - 1 ? '' : (names[(part + 1) * 17] as string);
        const inPart = list.filter((h) => h.branch >= rangeStart && (rangeEnd === '' || h.branch < rangeEnd));
        events.push(...t.apply(announcement(A, { seq, part, parts, rangeStart, rangeEnd, heads: inPart }), 1000 + seq));
      }
      return events;
    };
    assert.equal(round(1, heads).filter((e) => e.kind === 'head').length, names.length);
    // The second round moves one head and drops another, the rest as they were.
    const moved = randomOid();
    const next = heads.filter((h) => h.branch !== 'b20000').map((h) => (h.branch === 'b12345' ? head(h.branch, moved) : h));
    const started = performance.now();
    const events = round(2, next);
    const ms = performance.now() - started;
    assert.deepStrictEqual(
      events.map((e) => [e.kind, 'branch' in e ? e.branch : '']),
      [
        ['head', 'b12345'],
        ['head-removed', 'b20000'],
      ],
    );
    assert.equal(t.get(A)?.heads.size, names.length - 1);
    assert.equal(t.get(A)?.heads.get('b12345' as BranchName)?.oid, moved);
    assert.ok(ms < 3000, `a round of ${Math.ceil(names.length / 17)} parts took ${ms.toFixed(0)} ms`);
  });

  it('keeps at most PEER_LIMITS heads and rollout reports of a peer announcing ranges that never overlap, tells each once', () => {
    const t = table();
    const name = (i: number): string => `n${String(i).padStart(7, '0')}`;
    const over: PeerEvent[] = [];
    const per = 50;
    const parts = Math.ceil((PEER_LIMITS.heads + 5 * per) / per);
    for (let k = 0; k < parts; k++) {
      const heads = Array.from({ length: per }, (_, i) => head(name(k * per + i)));
      over.push(...t.apply(announcement(A, { seq: k + 1, part: 0, parts: 1, rangeStart: name(k * per), rangeEnd: name((k + 1) * per), heads }), 1000 + k).filter((e) => e.kind === 'peer-over-limit'));
    }
    assert.equal(t.get(A)?.heads.size, PEER_LIMITS.heads);
    assert.deepEqual(over, [{ kind: 'peer-over-limit', nodeId: A, what: 'heads', limit: PEER_LIMITS.heads }]);
    // A part covering every name, with one head: the rest are gone, and the next overflow is told again.
    t.apply(announcement(A, { seq: parts + 1, heads: [head('only')] }), 5000);
    assert.equal(t.get(A)?.heads.size, 1);
    const release = randomOid();
    const report = (channel: string): RolloutReport => ({ channel: channel as BranchName, release, version: '1.0', state: 'blessed', failures: 0, blessed: null, blessedVersion: '', paused: false, recalled: null, recallSignature: null });
    const rollouts = Array.from({ length: PEER_LIMITS.rollouts + 3 }, (_, i) => report(name(i)));
    const events = t.apply(announcement(A, { seq: parts + 2, heads: [head('only')], rollouts }), 5001);
    assert.equal(t.get(A)?.rollouts.size, PEER_LIMITS.rollouts);
    assert.deepEqual(events.filter((e) => e.kind === 'peer-over-limit'), [{ kind: 'peer-over-limit', nodeId: A, what: 'rollouts', limit: PEER_LIMITS.rollouts }]);
    assert.deepEqual(t.apply(announcement(A, { seq: parts + 3, heads: [head('only')], rollouts }), 5002).filter((e) => e.kind === 'peer-over-limit'), [], 'told once');
  });
});
