/**
 * Wave planning: sizes for 1, 2, 4, 8 and 100 nodes, a canary that changes per release, waves
 * that open strictly in order in a simulated rollout, a canary failure that halts everything
 * for good, the failure budget of later waves, nodes that go silent, leave or join, argument
 * checks, and the plan's invariants over random reports.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import type { NodeId } from '../../src/cluster/node-id.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { assignWaves, mayApply, NODE_ROLLOUT_STATES, planWaves, type NodeReport, type NodeRolloutState, type WaveInput, type WavePlan } from '../../src/rollout/waves.js';
import { rendezvousOrder } from '../../src/swarm/rendezvous.js';

const nodeId = (i: number): NodeId => createHash('sha256').update(`node ${i}`).digest('hex').slice(0, 16) as NodeId;
const nodes = (n: number): NodeId[] => Array.from({ length: n }, (_, i) => nodeId(i));
const RELEASE = createHash('sha1').update('release 1').digest('hex');

function plan(ns: readonly NodeId[], reports: Record<string, NodeRolloutState | NodeReport>, extra: Partial<WaveInput> = {}): WavePlan {
  const map = new Map(Object.entries(reports).map(([k, v]) => [k as NodeId, typeof v === 'string' ? { state: v } : v]));
  return planWaves({ rolloutId: RELEASE, nodes: ns, reports: map, ...extra });
}

/**
 * A rollout, round by round: every node fetches and stages at once; a node whose wave is open
 * goes staged → applying → checking → blessed (or failed, if `fails` says so), one step a
 * round. Checks at every round that no node started applying before every node of the earlier
 * waves was blessed (or failed within the budget, outside the canary wave). Bounded: stops when done, halted for good, or after `maxRounds`.
 */
function simulate(ns: readonly NodeId[], fails: (n: NodeId) => boolean, extra: Partial<WaveInput> = {}, maxRounds = 200): { opens: number[]; final: WavePlan; reports: Map<NodeId, NodeReport>; rounds: number } {
  const reports = new Map<NodeId, NodeReport>();
  const opens: number[] = [];
  const next: Partial<Record<NodeRolloutState, NodeRolloutState>> = { pending: 'fetching', fetching: 'staged', applying: 'checking' };
  let p = planWaves({ rolloutId: RELEASE, nodes: ns, reports, ...extra });
  for (let round = 0; round < maxRounds; round++) {
    p = planWaves({ rolloutId: RELEASE, nodes: ns, reports, ...extra });
    opens.push(p.open);
    for (const n of ns) {
      const started = ['applying', 'checking', 'blessed', 'failed', 'rolled-back'].includes(reports.get(n)?.state ?? 'pending');
      const wave = p.waveOf.get(n) as number;
      if (!started) continue;
      // Everything before it was blessed, or failed outside the canary wave (within the budget).
      p.waves.slice(0, wave).forEach((w, k) => {
        for (const earlier of w) {
          const s = reports.get(earlier)?.state;
          assert.ok(s === 'blessed' || (k > 0 && s === 'failed'), `${n} (wave ${wave}) started before ${earlier} (wave ${k}) settled: ${s}`);
        }
      });
    }
    if (p.done) return { opens, final: p, reports, rounds: round };
    let moved = false;
    for (const n of ns) {
      const state = reports.get(n)?.state ?? 'pending';
      let to = next[state];
      if (state === 'staged' && mayApply(p, n)) to = 'applying';
      if (state === 'checking') to = fails(n) ? 'failed' : 'blessed';
      if (to !== undefined) {
        reports.set(n, { state: to, failures: to === 'failed' ? 1 : 0 });
        moved = true;
      }
    }
    if (!moved) return { opens, final: p, reports, rounds: round };
  }
  return { opens, final: p, reports, rounds: maxRounds };
}

describe('rollout/waves', () => {
  it('cuts 1, 2, 4, 8 and 100 nodes into a canary wave and cumulative fractions', () => {
    const sizes = (n: number): number[] => assignWaves(RELEASE, nodes(n)).map((w) => w.length);
    assert.deepEqual(sizes(0), []);
    assert.deepEqual(sizes(1), [1]);
    assert.deepEqual(sizes(2), [1, 1]);
    assert.deepEqual(sizes(4), [1, 1, 2]);
    assert.deepEqual(sizes(8), [1, 1, 2, 4]);
    assert.deepEqual(sizes(100), [1, 24, 25, 50]);
    assert.deepEqual(assignWaves(RELEASE, nodes(100), 5, [0.1, 1]).map((w) => w.length), [5, 5, 90]);
    assert.deepEqual(assignWaves(RELEASE, nodes(3), 5).map((w) => w.length), [3], 'a canary count above the node count takes them all');
    for (const n of [1, 2, 4, 8, 100]) {
      const waves = assignWaves(RELEASE, nodes(n));
      assert.deepEqual(waves.flat(), rendezvousOrder(`rollout\0${RELEASE}`, nodes(n)), 'the waves cut the rendezvous order');
    }
    assert.deepEqual(assignWaves(RELEASE, [...nodes(8), ...nodes(8)]).flat().length, 8, 'duplicates dropped');
  });

  it('picks another canary for another release, deterministically', () => {
    const ns = nodes(8);
    const canaries = new Set<NodeId>();
    for (let r = 0; r < 32; r++) {
      const id = createHash('sha1').update(`release ${r}`).digest('hex');
      const first = assignWaves(id, ns)[0]?.[0] as NodeId;
      assert.equal(assignWaves(id, [...ns].reverse())[0]?.[0], first, 'independent of the input order');
      canaries.add(first);
    }
    assert.ok(canaries.size >= 4, `32 releases over 8 nodes used only ${canaries.size} canaries`);
  });

  for (const n of [1, 2, 4, 8, 100]) {
    it(`rolls out to ${n} nodes wave by wave, opening each only when the ones before are blessed`, () => {
      const { opens, final, reports } = simulate(nodes(n), () => false);
      assert.ok(final.done);
      assert.equal(final.halted, undefined);
      for (let i = 1; i < opens.length; i++) assert.ok((opens[i] as number) >= (opens[i - 1] as number), `open went back: ${opens.join(',')}`);
      assert.deepEqual([...new Set(opens)], final.waves.map((_, i) => i), 'every wave opened, in order, none skipped');
      assert.equal(final.open, final.waves.length - 1);
      assert.deepEqual(final.waitingFor, []);
      for (const id of nodes(n)) assert.equal(reports.get(id)?.state, 'blessed');
    });

    it(`halts ${n} nodes for good when the canary fails, and no later wave ever opens`, () => {
      const ns = nodes(n);
      const canary = assignWaves(RELEASE, ns)[0]?.[0] as NodeId;
      const { opens, final, reports } = simulate(ns, (id) => id === canary);
      assert.deepEqual(final.halted?.reason, 'canary-failed');
      assert.deepEqual(final.halted?.nodes, [canary]);
      assert.ok(final.halted?.message.includes(canary));
      assert.equal(final.open, -1);
      assert.ok(opens.every((o) => o <= 0), `a later wave opened: ${opens.join(',')}`);
      for (const id of ns) {
        assert.equal(mayApply(final, id), false);
        if (id !== canary) assert.ok(['staged', 'pending', 'fetching'].includes(reports.get(id)?.state as string), `${id} went past staged`);
      }
      // The canary retries and is blessed: its failure still counts, the halt stays.
      const retried = new Map(reports).set(canary, { state: 'blessed', failures: 1 });
      const after = planWaves({ rolloutId: RELEASE, nodes: ns, reports: retried });
      assert.equal(after.halted?.reason, 'canary-failed');
      assert.equal(after.open, -1);
      assert.equal(plan(ns, { [canary]: 'rolled-back' }).halted?.reason, 'canary-failed');
    });
  }

  it('tolerates maxFailures failed nodes after the canary wave and halts on one more', () => {
    const ns = nodes(100);
    const [, w1 = [], w2 = []] = assignWaves(RELEASE, ns);
    const strict = simulate(ns, (id) => id === w1[3]);
    assert.equal(strict.final.halted?.reason, 'too-many-failures');
    assert.deepEqual(strict.final.halted?.nodes, [w1[3]]);
    assert.ok(strict.opens.every((o) => o <= 1));

    const tolerant = simulate(ns, (id) => id === w1[3], { maxFailures: 1 });
    assert.equal(tolerant.final.halted, undefined);
    assert.equal(tolerant.final.open, 3, 'the failed node counts as settled: later waves open');
    assert.equal(tolerant.final.done, false, 'not done: one node is not blessed');
    assert.equal(tolerant.reports.get(w1[3] as NodeId)?.state, 'failed');

    const twice = simulate(ns, (id) => id === w1[3] || id === w2[0], { maxFailures: 1 });
    assert.equal(twice.final.halted?.reason, 'too-many-failures');
    assert.deepEqual(new Set(twice.final.halted?.nodes), new Set([w1[3], w2[0]]));
    assert.equal(twice.final.open, -1);
  });

  it('waits for nodes still at work, and for silent ones that never report again', () => {
    const ns = nodes(8);
    const [[canary] = [], w1 = [], w2 = []] = assignWaves(RELEASE, ns);
    const c = canary as NodeId;
    for (const state of ['pending', 'fetching', 'staged', 'applying', 'checking'] as const) {
      const p = plan(ns, { [c]: state });
      assert.equal(p.open, 0, state);
      assert.deepEqual(p.waitingFor, [c]);
      assert.equal(mayApply(p, c), true);
      assert.equal(mayApply(p, w1[0] as NodeId), false);
    }
    // A node that stopped (halted, or rolled back by an operator) is no failure, but its wave waits.
    const stopped = plan(ns, { [c]: 'blessed', [w1[0] as NodeId]: 'stopped' });
    assert.deepEqual([stopped.halted, stopped.open, stopped.waitingFor], [undefined, 1, [w1[0]]]);
    // Later waves may fetch ahead without holding anything up.
    const ahead = plan(ns, { [c]: 'blessed', [w2[0] as NodeId]: 'staged' });
    assert.equal(ahead.open, 1);
    assert.deepEqual(ahead.waitingFor, w1);
    assert.equal(mayApply(ahead, w2[0] as NodeId), false);
  });

  it('drops a node that leaves with its report, keeps the others in order, and takes in one that joins', () => {
    const ns = nodes(8);
    const order = assignWaves(RELEASE, ns).flat();
    const canary = order[0] as NodeId;
    // The canary failed and is removed by the operator: the next node in order is the canary now.
    const halted = plan(ns, { [canary]: 'failed' });
    assert.equal(halted.halted?.reason, 'canary-failed');
    const without = ns.filter((n) => n !== canary);
    const resumed = plan(without, { [canary]: 'failed' });
    assert.equal(resumed.halted, undefined);
    assert.deepEqual(resumed.waves.flat(), order.slice(1), 'the others keep their relative order');
    assert.deepEqual(resumed.waves[0], [order[1]]);
    assert.deepEqual(assignWaves(RELEASE, without).map((w) => w.length), [1, 1, 2, 3]);

    // Halfway through, a node joins at the front of the order: it is the canary and may apply at once;
    // every later wave waits for it; nodes already blessed stay blessed.
    const blessedSoFar: Record<string, NodeRolloutState> = Object.fromEntries(order.slice(0, 4).map((n) => [n, 'blessed']));
    assert.equal(plan(ns, blessedSoFar).open, 3);
    let joiner = nodeId(1000);
    for (let i = 1000; i < 1100 && rendezvousOrder(`rollout\0${RELEASE}`, [...ns, joiner])[0] !== joiner; i++) joiner = nodeId(i);
    const joined = plan([...ns, joiner], blessedSoFar);
    assert.deepEqual(joined.waves[0], [joiner]);
    assert.equal(mayApply(joined, joiner), true);
    assert.equal(joined.open, 0);
    assert.deepEqual(joined.waitingFor, [joiner]);
    const caughtUp = plan([...ns, joiner], { ...blessedSoFar, [joiner]: 'blessed' });
    assert.ok(caughtUp.open >= 2, `open ${caughtUp.open}`);
  });

  it('ignores reports of non-members and unknown states, and is done for no nodes', () => {
    const ns = nodes(4);
    const p = plan(ns, { [nodeId(99)]: 'failed', [ns[0] as NodeId]: { state: 'exploded' as NodeRolloutState } });
    assert.equal(p.halted, undefined);
    const empty = plan([], {});
    assert.deepEqual([empty.waves, empty.open, empty.done, empty.waitingFor], [[], -1, true, []]);
    assert.equal(mayApply(empty, nodeId(1)), false);
    assert.equal(mayApply(plan(ns, {}), nodeId(99)), false, 'a non-member never applies');
  });

  it('refuses bad arguments', () => {
    const bad = (extra: Partial<WaveInput>): void => assert.throws(() => plan(nodes(4), {}, extra), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT), JSON.stringify(extra));
    bad({ canary: 0 });
    bad({ canary: 1.5 });
    bad({ maxFailures: -1 });
    bad({ fractions: [] });
    bad({ fractions: [0.5] });
    bad({ fractions: [0.5, 0.5, 1] });
    bad({ fractions: [0.7, 0.5, 1] });
    bad({ fractions: [0, 1] });
    bad({ fractions: [0.5, 1.5] });
    bad({ fractions: [Number.NaN, 1] });
    bad({ rolloutId: '' });
    bad({ fractions: Array.from({ length: 17 }, (_, i) => (i + 1) / 17) });
  });

  it('keeps its invariants over random node sets and reports', () => {
    const reportArb = fc.record({ state: fc.constantFrom(...NODE_ROLLOUT_STATES), failures: fc.nat({ max: 2 }) });
    const inputArb = fc.record({
      n: fc.nat({ max: 40 }),
      reports: fc.array(reportArb, { maxLength: 40 }),
      canary: fc.integer({ min: 1, max: 3 }),
      maxFailures: fc.nat({ max: 2 }),
    });
    fc.assert(
      fc.property(inputArb, ({ n, reports, canary, maxFailures }) => {
        const ns = nodes(n);
        const map = new Map(ns.map((id, i) => [id, reports[i] ?? { state: 'pending' as const, failures: 0 }]));
        const p = planWaves({ rolloutId: RELEASE, nodes: ns, reports: map, canary, maxFailures });
        assert.deepEqual([...p.waves.flat()].sort(), [...ns].sort(), 'the waves partition the nodes');
        assert.ok(p.waves.every((w) => w.length > 0));
        const failed = (id: NodeId): boolean => {
          const r = map.get(id) as NodeReport;
          return r.state === 'failed' || r.state === 'rolled-back' || (r.failures ?? 0) > 0;
        };
        const canaryFailed = (p.waves[0] ?? []).some(failed);
        const laterFailed = p.waves.slice(1).flat().filter(failed).length;
        assert.equal(p.halted !== undefined, canaryFailed || laterFailed > maxFailures);
        const settled = (id: NodeId, k: number): boolean => map.get(id)?.state === 'blessed' || (k > 0 && failed(id));
        if (p.halted !== undefined) {
          assert.equal(p.open, -1);
          assert.ok(ns.every((id) => !mayApply(p, id)));
        } else if (n > 0) {
          for (let k = 0; k < p.open; k++) assert.ok((p.waves[k] as NodeId[]).every((id) => settled(id, k)), `wave ${k} before open ${p.open} is not settled`);
          const atOpen = (p.waves[p.open] as NodeId[]).every((id) => settled(id, p.open));
          assert.ok(!atOpen || p.open === p.waves.length - 1, 'open stops at the first unsettled wave');
          assert.deepEqual(p.waitingFor, p.waves.slice(0, p.open + 1).flatMap((w, k) => w.filter((id) => !settled(id, k))));
        }
        assert.equal(p.done, ns.every((id) => map.get(id)?.state === 'blessed'));
      }),
      { numRuns: 500 },
    );
  });
});
