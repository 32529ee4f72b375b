/** Rendezvous order: deterministic, a permutation, stable when one node leaves or joins (the top N moves by at most that node), and a fair spread of 1000 keys over 10 nodes. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import type { NodeId } from '../../src/cluster/node-id.js';
import { rendezvousOrder, rendezvousWeight } from '../../src/swarm/rendezvous.js';

const nodeId = (i: number): NodeId => createHash('sha256').update(`node ${i}`).digest('hex').slice(0, 16) as NodeId;
const NODES = Array.from({ length: 10 }, (_, i) => nodeId(i));
const idsArb = fc.uniqueArray(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 20 }).map((xs) => xs.map(nodeId));
const keyArb = fc.string({ maxLength: 30 });

describe('swarm/rendezvous', () => {
  it('weighs by SHA-256(nodeId, NUL, key) and orders heaviest first', () => {
    const key = 'kernel/stable';
    const w = rendezvousWeight(key, nodeId(1));
    assert.deepEqual(w, createHash('sha256').update(`${nodeId(1)}\0${key}`).digest());
    const order = rendezvousOrder(key, NODES);
    for (let i = 1; i < order.length; i++) assert.ok(Buffer.compare(rendezvousWeight(key, order[i - 1] as NodeId), rendezvousWeight(key, order[i] as NodeId)) > 0);
  });

  it('is a deterministic permutation, whatever the input order, duplicates dropped', () => {
    const arb = idsArb.chain((ids) => fc.tuple(fc.constant(ids), fc.shuffledSubarray(ids, { minLength: ids.length, maxLength: ids.length })));
    fc.assert(
      fc.property(keyArb, arb, (key, [ids, shuffled]) => {
        const order = rendezvousOrder(key, ids);
        assert.deepEqual([...order].sort(), [...ids].sort());
        assert.deepEqual(rendezvousOrder(key, [...shuffled, ...shuffled]), order);
      }),
    );
    assert.deepEqual(rendezvousOrder('x', []), []);
  });

  it('keeps the others in order when a node leaves: the top N loses at most that node', () => {
    fc.assert(
      fc.property(keyArb, idsArb, fc.nat(), fc.integer({ min: 1, max: 6 }), (key, ids, pick, n) => {
        const order = rendezvousOrder(key, ids);
        const gone = ids[pick % ids.length] as NodeId;
        const without = rendezvousOrder(key, ids.filter((x) => x !== gone));
        assert.deepEqual(without, order.filter((x) => x !== gone));
        const before = new Set(order.slice(0, n));
        const after = new Set(without.slice(0, n));
        const lost = [...before].filter((x) => !after.has(x));
        const gained = [...after].filter((x) => !before.has(x));
        assert.ok(lost.every((x) => x === gone), 'only the node that left drops out');
        assert.ok(gained.length <= lost.length, 'at most one node moves up to take its place');
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the others in order when a node joins: the top N gains at most that node', () => {
    fc.assert(
      fc.property(keyArb, idsArb, fc.integer({ min: 2000, max: 3000 }), fc.integer({ min: 1, max: 6 }), (key, ids, fresh, n) => {
        const added = nodeId(fresh);
        const order = rendezvousOrder(key, ids);
        const withNew = rendezvousOrder(key, [...ids, added]);
        assert.deepEqual(withNew.filter((x) => x !== added), order);
        const before = new Set(order.slice(0, n));
        const after = new Set(withNew.slice(0, n));
        const gained = [...after].filter((x) => !before.has(x));
        const lost = [...before].filter((x) => !after.has(x));
        assert.ok(gained.every((x) => x === added), 'only the new node enters');
        assert.ok(lost.length <= gained.length, 'at most one node is pushed out');
      }),
      { numRuns: 300 },
    );
  });

  it('spreads 1000 keys over 10 nodes fairly (each within ±30 % of its share, for the first and for the top 3)', () => {
    const first = new Map<NodeId, number>();
    const top3 = new Map<NodeId, number>();
    for (let k = 0; k < 1000; k++) {
      const order = rendezvousOrder(`backups/host-${k}`, NODES);
      first.set(order[0] as NodeId, (first.get(order[0] as NodeId) ?? 0) + 1);
      for (const x of order.slice(0, 3)) top3.set(x, (top3.get(x) ?? 0) + 1);
    }
    for (const node of NODES) {
      const f = first.get(node) ?? 0;
      const t = top3.get(node) ?? 0;
      assert.ok(f >= 70 && f <= 130, `${node} is first for ${f} of 1000 keys`);
      assert.ok(t >= 210 && t <= 390, `${node} is in the top 3 for ${t} of 1000 keys`);
    }
  });
});
