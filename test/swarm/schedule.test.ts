/**
 * The schedule's decision rules. planRound: a property over random have-sets checks every rule of
 * a round (one send and one receive per node, the sender holds the piece, the receiver lacks it,
 * rarest first, the rarest piece doubles, the matching is maximal). choosePiece and chooseSource:
 * rarest first, rotation by offset, forwarders before the seed, busy and avoided peers skipped,
 * undefined when there is nothing to do.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { ceilLog2, choosePiece, chooseSource, nextInOrder, planRound, upstreamOf, upstreamStuck, type ChainLink, type Transfer } from '../../src/swarm/schedule.js';

const sets = (...xs: number[][]): Set<number>[] => xs.map((x) => new Set(x));
const peerMap = (o: Record<string, number[]>): Map<string, Set<number>> => new Map(Object.entries(o).map(([k, v]) => [k, new Set(v)]));
const none = new Set<never>();

/** Random swarms: N nodes, P pieces, each node holding a random subset, and a rotation. */
const swarmArb = fc
  .record({ n: fc.integer({ min: 0, max: 40 }), pieces: fc.integer({ min: 0, max: 24 }), density: fc.double({ min: 0, max: 1, noNaN: true }), rotation: fc.integer({ min: -1000, max: 1000 }) })
  .chain(({ n, pieces, density, rotation }) =>
    fc.record({
      pieces: fc.constant(pieces),
      rotation: fc.constant(rotation),
      have: fc.array(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: pieces, maxLength: pieces }).map((xs) => new Set(xs.flatMap((x, p) => (x < density ? [p] : [])))),
        { minLength: n, maxLength: n },
      ),
    }),
  );

function holdersOf(have: readonly ReadonlySet<number>[], piece: number): number {
  return have.filter((s) => s.has(piece)).length;
}

/** Every rule a round must keep; throws an assertion naming the one broken. */
function checkRules(have: readonly ReadonlySet<number>[], pieces: number, rotation: number, plan: readonly Transfer[]): void {
  const n = have.length;
  const sending = new Map<number, Transfer>();
  const receiving = new Set<number>();
  for (const t of plan) {
    assert.ok(Number.isInteger(t.from) && t.from >= 0 && t.from < n && Number.isInteger(t.to) && t.to >= 0 && t.to < n && t.from !== t.to, `bad pair ${JSON.stringify(t)}`);
    assert.ok(!sending.has(t.from), `node ${t.from} sends twice`);
    assert.ok(!receiving.has(t.to), `node ${t.to} receives twice`);
    assert.ok(have[t.from]?.has(t.piece), `node ${t.from} sends piece ${t.piece} it lacks`);
    assert.ok(!have[t.to]?.has(t.piece), `node ${t.to} receives piece ${t.piece} it has`);
    sending.set(t.from, t);
    receiving.add(t.to);
  }
  const count = Array.from({ length: pieces }, (_, p) => holdersOf(have, p));
  const tie = (p: number): number => (((p - rotation) % pieces) + pieces) % pieces;
  const rarer = (p: number, q: number): boolean => (count[p] as number) < (count[q] as number) || (count[p] === count[q] && tie(p) < tie(q));
  const everyLackerBusy = (p: number): boolean => have.every((s, r) => s.has(p) || receiving.has(r));

  // Maximal: no idle sender holds a piece an idle receiver lacks.
  for (let s = 0; s < n; s++) {
    if (sending.has(s)) continue;
    for (let r = 0; r < n; r++) {
      if (r === s || receiving.has(r)) continue;
      for (const p of have[s] as ReadonlySet<number>) assert.ok(have[r]?.has(p), `idle node ${s} could send piece ${p} to idle node ${r}`);
    }
  }
  // Rarest first: a sender passes over a rarer piece it holds only if no idle node lacked it.
  for (const t of plan) {
    for (const p of have[t.from] as ReadonlySet<number>) {
      if (rarer(p, t.piece)) assert.ok(everyLackerBusy(p), `node ${t.from} sends piece ${t.piece} (${count[t.piece]} holders) while piece ${p} (${count[p]} holders) could go to an idle node`);
    }
    // Unique data: a node holding pieces nobody else has sends one of those.
    const uniques = [...(have[t.from] as ReadonlySet<number>)].filter((p) => count[p] === 1 && !everyLackerBusy(p));
    if (uniques.length > 0) assert.equal(count[t.piece], 1, `node ${t.from} holds unique pieces but sends piece ${t.piece}`);
  }
  // The rarest piece (that someone lacks) doubles: each of its holders sends it while nodes lack it.
  const wanted = [...count.keys()].filter((p) => (count[p] as number) > 0 && (count[p] as number) < n);
  const first = wanted.sort((a, b) => (rarer(a, b) ? -1 : rarer(b, a) ? 1 : 0))[0];
  if (first !== undefined) {
    const got = plan.filter((t) => t.piece === first).length;
    assert.equal(got, Math.min(count[first] as number, n - (count[first] as number)), `rarest piece ${first} did not double`);
  }
}

describe('swarm/schedule', () => {
  describe('planRound', () => {
    it('keeps every rule of a round on random have-sets', () => {
      fc.assert(
        fc.property(swarmArb, ({ have, pieces, rotation }) => {
          checkRules(have, pieces, rotation, planRound(have, pieces, { rotation }));
        }),
        { numRuns: 600 },
      );
    });

    it('keeps the rules on swarms with one seed, after a few rounds of its own schedule', () => {
      fc.assert(
        fc.property(fc.integer({ min: 2, max: 70 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 12 }), (n, pieces, rounds) => {
          const have = Array.from({ length: n }, (_, i) => new Set(i === 0 ? [...Array(pieces).keys()] : []));
          for (let round = 0; round <= rounds; round++) {
            const plan = planRound(have, pieces, { rotation: round });
            checkRules(have, pieces, round, plan);
            for (const t of plan) (have[t.to] as Set<number>).add(t.piece);
          }
        }),
        { numRuns: 150 },
      );
    });

    it('sends the seed’s unique pieces first and doubles each piece after it', () => {
      // Round 0: only the seed holds anything; it sends piece 0 half-way round the ring.
      const have = sets([0, 1, 2, 3], [], [], [], [], [], [], []);
      assert.deepEqual(planRound(have, 4, { rotation: 0 }), [{ from: 0, to: 4, piece: 0 }]);
      // Round 1: piece 0 has 2 holders; the seed sends piece 1 (nobody else has it), node 4 forwards 0.
      (have[4] as Set<number>).add(0);
      const r1 = planRound(have, 4, { rotation: 1 });
      assert.deepEqual(
        r1.map((t) => [t.from, t.piece]),
        [
          [0, 1],
          [4, 0],
        ],
      );
    });

    it('does nothing when everyone is complete, nobody holds anything, or there is one node', () => {
      assert.deepEqual(planRound(sets([0, 1], [0, 1], [0, 1]), 2), []);
      assert.deepEqual(planRound(sets([], [], []), 2), []);
      assert.deepEqual(planRound(sets([0, 1]), 2), []);
      assert.deepEqual(planRound([], 0), []);
      assert.deepEqual(planRound(sets([], []), 0), []);
    });

    it('refuses pieces outside 0..pieces-1 and bad piece counts', () => {
      const isBad = (e: unknown): boolean => isGitfsError(e, ErrorCodes.BAD_ARGUMENT);
      assert.throws(() => planRound(sets([0, 5], []), 5), isBad);
      assert.throws(() => planRound(sets([-1], []), 5), isBad);
      assert.throws(() => planRound(sets([0.5], []), 5), isBad);
      assert.throws(() => planRound(sets([], []), -1), isBad);
      assert.throws(() => planRound(sets([], []), 1.5), isBad);
      assert.throws(() => planRound(sets([0], []), 1, { rotation: 0.5 }), isBad);
      assert.throws(() => planRound(sets([0], []), 1, { rotation: Number.NaN }), isBad);
    });
  });

  describe('ceilLog2', () => {
    it('is the number of doublings from 1 to n', () => {
      assert.deepEqual(
        [1, 2, 3, 4, 5, 8, 9, 16, 17, 255, 256, 257].map(ceilLog2),
        [0, 1, 2, 2, 3, 3, 4, 4, 5, 8, 8, 9],
      );
    });
  });

  describe('choosePiece', () => {
    const peers = peerMap({ a: [0, 1, 2, 3], b: [1, 2, 3], c: [2, 3], d: [3] });

    it('takes the piece the fewest peers hold', () => {
      assert.equal(choosePiece({ mine: none, peers, inFlight: none, pieces: 5, offset: 0 }), 0);
      assert.equal(choosePiece({ mine: new Set([0]), peers, inFlight: none, pieces: 5, offset: 0 }), 1);
      assert.equal(choosePiece({ mine: new Set([0]), peers, inFlight: new Set([1]), pieces: 5, offset: 3 }), 2);
      assert.equal(choosePiece({ mine: new Set([0, 1]), peers, inFlight: new Set([2]), pieces: 5, offset: 0 }), 3);
    });

    it('breaks ties by index rotated by the offset', () => {
      const even = peerMap({ a: [0, 1, 2, 3, 4, 5, 6, 7], b: [0, 1, 2, 3, 4, 5, 6, 7] });
      const pick = (offset: number, mine: number[] = []): number | undefined => choosePiece({ mine: new Set(mine), peers: even, inFlight: none, pieces: 8, offset });
      assert.equal(pick(0), 0);
      assert.equal(pick(5), 5);
      assert.equal(pick(13), 5);
      assert.equal(pick(-1), 7);
      assert.equal(pick(5, [5, 6]), 7);
      assert.equal(pick(6, [6, 7]), 0);
    });

    it('is undefined when no peer has anything this node lacks and is not fetching', () => {
      assert.equal(choosePiece({ mine: new Set([0, 1, 2, 3]), peers, inFlight: none, pieces: 5, offset: 0 }), undefined);
      assert.equal(choosePiece({ mine: new Set([0, 1]), peers, inFlight: new Set([2, 3]), pieces: 5, offset: 0 }), undefined);
      assert.equal(choosePiece({ mine: none, peers: new Map(), inFlight: none, pieces: 5, offset: 0 }), undefined);
      assert.equal(choosePiece({ mine: none, peers, inFlight: none, pieces: 0, offset: 0 }), undefined);
      assert.throws(() => choosePiece({ mine: none, peers, inFlight: none, pieces: 5, offset: 1.5 }), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT));
      assert.throws(() => choosePiece({ mine: none, peers, inFlight: none, pieces: -1, offset: 0 }), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT));
      // Pieces beyond the count are ignored.
      assert.equal(choosePiece({ mine: none, peers: peerMap({ a: [7] }), inFlight: none, pieces: 5, offset: 0 }), undefined);
    });

    it('always picks a rarest candidate, the first from the offset on (property)', () => {
      const arb = fc.record({
        pieces: fc.integer({ min: 1, max: 30 }),
        offset: fc.integer({ min: -100, max: 100 }),
        peers: fc.array(fc.uniqueArray(fc.nat(29)), { maxLength: 6 }),
        mine: fc.uniqueArray(fc.nat(29)),
        inFlight: fc.uniqueArray(fc.nat(29)),
      });
      fc.assert(
        fc.property(arb, ({ pieces, offset, peers: lists, mine, inFlight }) => {
          const ps = new Map(lists.map((l, i) => [`p${i}`, new Set(l)]));
          const count = (p: number): number => lists.filter((l) => l.includes(p)).length;
          const candidates = [...Array(pieces).keys()].filter((p) => count(p) > 0 && !mine.includes(p) && !inFlight.includes(p));
          const got = choosePiece({ mine: new Set(mine), peers: ps, inFlight: new Set(inFlight), pieces, offset });
          if (candidates.length === 0) return got === undefined;
          const least = Math.min(...candidates.map(count));
          const start = ((offset % pieces) + pieces) % pieces;
          const expected = candidates.filter((p) => count(p) === least).sort((a, b) => ((a - start + pieces) % pieces) - ((b - start + pieces) % pieces))[0];
          return got === expected;
        }),
        { numRuns: 500 },
      );
    });
  });

  describe('chooseSource', () => {
    const peers = peerMap({ seed: [0, 1, 2, 3], big: [0, 1, 2], small: [1], other: [1], none: [0, 2] });
    const base = { peers, busy: none as ReadonlySet<string>, avoid: none as ReadonlySet<string>, order: [] as string[] };

    it('prefers forwarders over the seed, then the fewest pieces held, then the given order', () => {
      assert.equal(chooseSource({ ...base, piece: 1, order: ['seed', 'big', 'other', 'small'], pieces: 4 }), 'other');
      assert.equal(chooseSource({ ...base, piece: 1, order: ['seed', 'big', 'small', 'other'], pieces: 4 }), 'small');
      // Not in the order: by id.
      assert.equal(chooseSource({ ...base, piece: 1 }), 'other');
      assert.equal(chooseSource({ ...base, piece: 1, order: ['small'] }), 'small');
      // The seed only when no forwarder holds the piece.
      assert.equal(chooseSource({ ...base, piece: 3, pieces: 4 }), 'seed');
      assert.equal(chooseSource({ ...base, piece: 0, order: ['seed', 'big', 'none'], pieces: 4 }), 'none');
    });

    it('puts a peer holding every piece after forwarders even when a forwarder holds more (stray entries)', () => {
      const odd = peerMap({ seed: [0, 1], fwd: [1, 7, 8, 9] });
      assert.equal(chooseSource({ piece: 1, peers: odd, busy: none, avoid: none, order: [], pieces: 2 }), 'fwd');
      // Without a piece count, fewest pieces decides.
      assert.equal(chooseSource({ piece: 1, peers: odd, busy: none, avoid: none, order: [] }), 'seed');
    });

    it('skips busy and avoided peers', () => {
      assert.equal(chooseSource({ ...base, piece: 1, busy: new Set(['other']), pieces: 4 }), 'small');
      assert.equal(chooseSource({ ...base, piece: 1, busy: new Set(['other']), avoid: new Set(['small']), pieces: 4 }), 'big');
      assert.equal(chooseSource({ ...base, piece: 1, busy: new Set(['other', 'small', 'big']), pieces: 4 }), 'seed');
    });

    it('is undefined when no usable peer holds the piece', () => {
      assert.equal(chooseSource({ ...base, piece: 9, pieces: 4 }), undefined);
      assert.equal(chooseSource({ ...base, piece: 3, busy: new Set(['seed']), pieces: 4 }), undefined);
      assert.equal(chooseSource({ ...base, piece: 3, avoid: new Set(['seed']), pieces: 4 }), undefined);
      assert.equal(chooseSource({ piece: 0, peers: new Map(), busy: none, avoid: none, order: ['x'] }), undefined);
    });
  });

  describe('upstreamOf', () => {
    const order = ['a', 'b', 'c', 'd', 'e'];
    it('is the nearest candidate before this node on the ring', () => {
      assert.equal(upstreamOf({ self: 'c', order, candidates: new Set(['a', 'b', 'd', 'e']) }), 'b');
      assert.equal(upstreamOf({ self: 'c', order, candidates: new Set(['a', 'd']) }), 'a');
      // Wrapping around the ring.
      assert.equal(upstreamOf({ self: 'a', order, candidates: new Set(['b', 'e']) }), 'e');
      assert.equal(upstreamOf({ self: 'b', order, candidates: new Set(['c']) }), 'c');
    });

    it('is undefined without candidates, and refuses a node outside the order', () => {
      assert.equal(upstreamOf({ self: 'c', order, candidates: new Set() }), undefined);
      assert.equal(upstreamOf({ self: 'c', order, candidates: new Set(['c', 'x']) }), undefined);
      assert.throws(() => upstreamOf({ self: 'x', order, candidates: new Set(['a']) }), (e) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT));
    });
  });

  describe('nextInOrder', () => {
    it('is the lowest piece the source holds that this node lacks and is not fetching', () => {
      assert.equal(nextInOrder({ mine: new Set([0, 1]), source: new Set([5, 0, 1, 3, 2]), inFlight: new Set([2]) }), 3);
      assert.equal(nextInOrder({ mine: new Set([0, 1]), source: new Set([0, 1]), inFlight: none }), undefined);
      assert.equal(nextInOrder({ mine: none, source: none, inFlight: none }), undefined);
    });
  });

  describe('upstreamStuck', () => {
    const link = (pieces: number[], idleMs: number, heldMs = pieces.length > 0 ? 60_000 : 0, waitMs = 5000): ChainLink => ({ pieces: new Set(pieces), idleMs, heldMs, waitMs });
    it('waits while some node up the chain keeps gaining pieces, or while the chain above is still filling', () => {
      assert.equal(upstreamStuck([link([0], 4999), link([0, 1, 2], 0)]), false, 'the upstream is idle, but not long');
      assert.equal(upstreamStuck([link([], 9000), link([], 9000), link([0], 100, 100), link([0, 1, 2], 9000, Infinity)]), false, 'a long chain starting: the third node up just took its first piece');
      assert.equal(upstreamStuck([link([], 9000, 0, 15_000), link([0, 1], 9000)]), false, 'an upstream still learning the closure has longer');
    });

    it('gives up on a node idle that long although the node above has held pieces it lacks that long, or on a chain that ends with nothing to give', () => {
      assert.equal(upstreamStuck([link([0], 5000), link([0, 1], 0)]), true, 'the upstream does not take what its upstream holds');
      assert.equal(upstreamStuck([link([], 9000), link([], 9000), link([0, 1], 9000, Infinity)]), true, 'two nodes that never fetch (on demand) between us and the holder');
      assert.equal(upstreamStuck([link([], 9000)]), true, 'nobody above it');
      assert.equal(upstreamStuck([]), true, 'no upstream');
    });
  });

  describe('the relay chain (upstreamOf + nextInOrder, played in rounds)', () => {
    /**
     * Every node but the seeds takes, each round, the next piece in order from its upstream (all
     * nodes taking part from the start). Returns the rounds until all hold all, checking that
     * nobody sends or receives more than once a round and that seeds send each piece once per chain.
     */
    function relay(n: number, pieces: number, seeds: readonly number[]): { rounds: number; seedSends: number } {
      const ids = Array.from({ length: n }, (_, i) => `n${String(i).padStart(3, '0')}`);
      const have = ids.map((_, i) => new Set<number>(seeds.includes(i) ? Array.from({ length: pieces }, (_, p) => p) : []));
      const up = ids.map((self) => upstreamOf({ self, order: ids, candidates: new Set(ids.filter((id) => id !== self)) }));
      let seedSends = 0;
      for (let round = 1; round <= pieces * n + 10; round++) {
        const plan: { to: number; from: number; piece: number }[] = [];
        for (let i = 0; i < n; i++) {
          if (seeds.includes(i)) continue;
          const from = ids.indexOf(up[i] as string);
          const piece = nextInOrder({ mine: have[i] as Set<number>, source: have[from] as Set<number>, inFlight: none });
          if (piece !== undefined) plan.push({ to: i, from, piece });
        }
        const senders = plan.map((t) => t.from);
        assert.equal(new Set(senders).size, senders.length, `round ${round}: a node sends twice`);
        for (const t of plan) {
          (have[t.to] as Set<number>).add(t.piece);
          if (seeds.includes(t.from)) seedSends++;
        }
        if (have.every((h) => h.size === pieces)) return { rounds: round, seedSends };
      }
      throw new Error('the chain never completed');
    }

    it('takes P + N - 2 rounds from one seed, the seed sending every piece once', () => {
      for (const [n, pieces] of [[2, 1], [2, 10], [4, 64], [8, 512], [16, 100], [33, 7]] as const) {
        assert.deepEqual(relay(n, pieces, [0]), { rounds: pieces + n - 2, seedSends: pieces }, `${n} nodes, ${pieces} pieces`);
      }
    });

    it('runs one chain per seed when several hold everything', () => {
      // Seeds 0 and 4 of 8: chains 0→1→2→3 and 4→5→6→7, each P + 3 - 1 rounds long.
      assert.deepEqual(relay(8, 50, [0, 4]), { rounds: 50 + 2, seedSends: 100 });
    });
  });
});
