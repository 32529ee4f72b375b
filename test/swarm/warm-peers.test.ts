import assert from 'node:assert/strict';
import { peersToDial, WARM_RADIUS } from '../../src/swarm/warm-peers.js';

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => i.toString(16).padStart(16, '0'));

/** Every pair that some node dials: each at most once, as [dialler, dialled]. */
function dialled(all: readonly string[], radius?: number): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const self of all) {
    for (const to of peersToDial(self, all.filter((p) => p !== self), radius)) {
      const key = [self, to].sort().join('-');
      assert.equal(pairs.has(key), false, `${key} dialled twice`);
      pairs.set(key, self);
    }
  }
  return pairs;
}

describe('warm connections (warm-peers.ts)', () => {
  it('connects every pair of a small cluster once, the smaller id dialling', () => {
    for (const n of [2, 3, 8, 17]) {
      const all = ids(n);
      const pairs = dialled(all);
      assert.equal(pairs.size, (n * (n - 1)) / 2, `${n} nodes: a full mesh`);
      for (const [key, from] of pairs) assert.equal(from, key.split('-')[0]);
    }
  });

  it('bounds a large cluster to the neighbours within the radius, both ways round the order', () => {
    const all = ids(256);
    const pairs = dialled(all);
    assert.equal(pairs.size, 256 * WARM_RADIUS, 'each node has exactly 2 × radius neighbours');
    const degree = new Map<string, number>();
    for (const key of pairs.keys()) for (const id of key.split('-')) degree.set(id, (degree.get(id) ?? 0) + 1);
    assert.deepEqual(new Set(degree.values()), new Set([2 * WARM_RADIUS]));
    // The first node's neighbours wrap round to the end of the order; it dials those after it only.
    assert.deepEqual(peersToDial(all[0] as string, all.slice(1)), all.slice(1, 1 + WARM_RADIUS).concat(all.slice(-WARM_RADIUS)).sort());
    assert.deepEqual(peersToDial(all[255] as string, all.slice(0, 255)), []);
  });

  it('takes the peers as given: duplicates and self among them change nothing', () => {
    const all = ids(5);
    assert.deepEqual(peersToDial(all[1] as string, [...all, ...all], 1), [all[2]]);
    assert.deepEqual(peersToDial(all[0] as string, [], 3), []);
  });
});
