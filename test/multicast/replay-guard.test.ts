/** The replay guard: per node, sequence numbers only grow within an instance, each part counts once, a new instance must be later. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplayGuard } from '../../src/multicast/replay-guard.js';

const WINDOW = 120_000;
const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';
const I1 = '01'.repeat(16);
const I2 = '02'.repeat(16);
const p = (instance: string, seq: number, timeMs: number, part = 0): { instance: string; seq: number; timeMs: number; part: number } => ({ instance, seq, timeMs, part });

describe('multicast/replay-guard', function () {
  it('the first packet from a node is fresh; the same part again is a duplicate', () => {
    const g = new ReplayGuard(WINDOW);
    assert.equal(g.check(A, p(I1, 5, 1000), 1000), 'fresh');
    assert.equal(g.check(A, p(I1, 5, 1000), 1001), 'duplicate');
    assert.equal(g.check(A, p(I1, 5, 1000), 1002), 'duplicate');
  });

  it('other parts of the same announcement are fresh once each', () => {
    const g = new ReplayGuard(WINDOW);
    assert.equal(g.check(A, p(I1, 5, 1000, 0), 1000), 'fresh');
    assert.equal(g.check(A, p(I1, 5, 1000, 2), 1000), 'fresh');
    assert.equal(g.check(A, p(I1, 5, 1000, 1), 1000), 'fresh');
    assert.equal(g.check(A, p(I1, 5, 1000, 2), 1000), 'duplicate');
  });

  it('an older sequence number of the same instance is a replay, a newer one is fresh', () => {
    const g = new ReplayGuard(WINDOW);
    assert.equal(g.check(A, p(I1, 5, 1000), 1000), 'fresh');
    assert.equal(g.check(A, p(I1, 7, 3000), 3000), 'fresh');
    assert.equal(g.check(A, p(I1, 6, 2000), 3001), 'replay');
    assert.equal(g.check(A, p(I1, 5, 1000, 1), 3002), 'replay', 'an unseen part of an old announcement is still a replay');
    assert.equal(g.check(A, p(I1, 7, 3000, 1), 3003), 'fresh');
    assert.equal(g.check(A, p(I1, 7, 3000), 3004), 'duplicate');
  });

  it('a new instance with a later time is a restart; with an older or equal time a replay', () => {
    const g = new ReplayGuard(WINDOW);
    assert.equal(g.check(A, p(I1, 50, 10_000), 10_000), 'fresh');
    assert.equal(g.check(A, p(I2, 1, 9_000), 10_001), 'replay');
    assert.equal(g.check(A, p(I2, 1, 10_000), 10_002), 'replay');
    assert.equal(g.check(A, p(I2, 1, 10_001), 10_003), 'restart');
    assert.equal(g.check(A, p(I2, 1, 10_001, 1), 10_004), 'fresh');
    // The old instance's packets are now replays, even with a higher sequence number.
    assert.equal(g.check(A, p(I1, 51, 10_000), 10_005), 'replay');
    assert.equal(g.check(A, p(I2, 2, 11_000), 11_000), 'fresh');
  });

  it('nodes are independent', () => {
    const g = new ReplayGuard(WINDOW);
    assert.equal(g.check(A, p(I1, 5, 1000), 1000), 'fresh');
    assert.equal(g.check(B, p(I1, 5, 1000), 1000), 'fresh');
    assert.equal(g.check(B, p(I1, 4, 1000), 1000), 'replay');
    assert.equal(g.check(A, p(I1, 6, 1000), 1000), 'fresh');
  });

  it('state older than two windows is forgotten (the window refuses such packets before the guard)', () => {
    const g = new ReplayGuard(WINDOW);
    assert.equal(g.check(A, p(I1, 5, 1000), 1000), 'fresh');
    assert.equal(g.check(A, p(I1, 4, 1000), 1000 + 2 * WINDOW), 'replay');
    assert.equal(g.check(A, p(I1, 4, 1000), 1001 + 2 * WINDOW), 'fresh', 'not seen for more than two windows');
    g.forgetOlderThan(5000 + 2 * WINDOW);
    assert.equal(g.check(A, p(I1, 1, 1000), 5000 + 2 * WINDOW), 'fresh');
  });

  it('within one instance, nothing is accepted twice and sequence numbers accepted never go down (property)', () => {
    const packet = fc.record({ seq: fc.integer({ min: 1, max: 8 }), part: fc.integer({ min: 0, max: 3 }) });
    fc.assert(
      fc.property(fc.array(packet, { maxLength: 60 }), (packets) => {
        const g = new ReplayGuard(WINDOW);
        const accepted = new Set<string>();
        let highest = 0;
        for (const q of packets) {
          const v = g.check(A, p(I1, q.seq, 1000, q.part), 1000);
          const key = `${q.seq}/${q.part}`;
          if (v === 'fresh') {
            assert.ok(!accepted.has(key), `${key} accepted twice`);
            assert.ok(q.seq >= highest, `seq ${q.seq} accepted after ${highest}`);
            accepted.add(key);
            highest = q.seq;
          } else {
            assert.equal(v, accepted.has(key) && q.seq === highest ? 'duplicate' : 'replay');
          }
        }
      }),
    );
  });

  it('refusal() says what check() would refuse, and records nothing (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ node: fc.constantFrom(A, B), instance: fc.constantFrom(I1, I2), seq: fc.integer({ min: 0, max: 4 }), timeMs: fc.integer({ min: 0, max: 4 }), part: fc.integer({ min: 0, max: 2 }), dt: fc.integer({ min: 0, max: 3 * WINDOW }) }), { maxLength: 40 }),
        (packets) => {
          const g = new ReplayGuard(WINDOW);
          const twin = new ReplayGuard(WINDOW);
          let now = 0;
          for (const x of packets) {
            now += x.dt;
            const packet = p(x.instance, x.seq, x.timeMs, x.part);
            // Asked twice first: asking changes nothing.
            const before = [g.refusal(x.node, packet, now), g.refusal(x.node, packet, now)];
            const verdict = g.check(x.node, packet, now);
            assert.equal(twin.check(x.node, packet, now), verdict, 'a guard asked refusal() first decides as one never asked');
            const expected = verdict === 'replay' || verdict === 'duplicate' ? verdict : undefined;
            assert.deepEqual(before, [expected, expected]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
