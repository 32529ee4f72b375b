/**
 * Replication policies: parsing (defaults, every refusal naming the index and key) and
 * evaluation (replicas N gives exactly N holders by rendezvous order, a holder silent past graceMs
 * is replaced by the next in order and takes its place back when it returns, 'all' is every live
 * member, the target is the newest head that ancestry does not rule out, the states, first match wins, history passes through).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseBranchName, type BranchName } from '../../src/branches/ref-name.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import type { Peer } from '../../src/multicast/peer-table.js';
import type { Oid } from '../../src/objects/oid.js';
import type { Failing, HeadStanding } from '../../src/swarm/head-verdicts.js';
import { evaluatePolicies, parsePolicies, POLICY_DEFAULTS, type BranchDecision, type MemberHeads, type Policy } from '../../src/swarm/policy.js';
import { rendezvousOrder } from '../../src/swarm/rendezvous.js';

// A PeerTable entry is a member as evaluatePolicies reads it.
const peerIsMember = (p: Peer): MemberHeads => p;
void peerIsMember;

const nodeId = (i: number): NodeId => createHash('sha256').update(`node ${i}`).digest('hex').slice(0, 16) as NodeId;
const oid = (s: string): Oid => createHash('sha1').update(s).digest('hex') as Oid;
const B = (s: string): BranchName => parseBranchName(s);
const SELF = nodeId(0);
const OTHERS = [1, 2, 3, 4].map(nodeId);
const NOW = 1_000_000;

const EXAMPLE = [
  { branches: 'kernel/*', replicas: 'all', history: 'all', fetch: 'eager' },
  { branches: 'backups/**', replicas: 3, history: 5, fetch: 'on-demand', graceMs: 60000 },
];

function member(id: NodeId, heads: Record<string, [Oid, number]>, lastSeen = NOW): MemberHeads {
  return { nodeId: id, lastSeen, heads: new Map(Object.entries(heads).map(([b, [o, t]]) => [B(b), { oid: o, commitTime: t }])) };
}

function decide(
  policies: readonly Policy[],
  members: readonly MemberHeads[],
  local: Record<string, Oid> = {},
  localTimes: Record<string, number> = {},
  verdicts: Record<Oid, HeadStanding> = {},
  failing: (branch: BranchName, head: Oid, announcers: readonly NodeId[]) => Failing | undefined = () => undefined,
): BranchDecision[] {
  const times = new Map(Object.entries(localTimes).map(([b, t]) => [B(b), t]));
  const verdict = (_branch: BranchName, head: Oid): HeadStanding | undefined => verdicts[head];
  return evaluatePolicies({ self: SELF, policies, members, local: new Map(Object.entries(local).map(([b, o]) => [B(b), o])), localTimes: times, verdict, failing, now: NOW });
}

function only(ds: BranchDecision[], branch: string): BranchDecision {
  const d = ds.find((x) => x.branch === branch);
  assert.ok(d !== undefined, `no decision for ${branch}`);
  return d;
}

const isBadConfig =
  (key: string, index?: number) =>
  (e: unknown): boolean =>
    isGitfsError(e, ErrorCodes.BAD_CONFIG) && e.data['key'] === key && e.data['index'] === index && e.data['source'] === 'node.json' && e.message.includes(key);

describe('swarm/policy', () => {
  describe('parsePolicies', () => {
    it('reads the example and fills in defaults', () => {
      const ps = parsePolicies(EXAMPLE, 'node.json');
      assert.deepEqual(ps, [
        { branches: 'kernel/*', replicas: 'all', history: 'all', fetch: 'eager', graceMs: 60000 },
        { branches: 'backups/**', replicas: 3, history: 5, fetch: 'on-demand', graceMs: 60000 },
      ]);
      assert.deepEqual(parsePolicies([{ branches: '**' }], 'node.json'), [{ branches: '**', ...POLICY_DEFAULTS }]);
      assert.deepEqual(POLICY_DEFAULTS, { replicas: 'all', history: 'all', fetch: 'eager', graceMs: 60000 });
      assert.deepEqual(parsePolicies([], 'node.json'), []);
    });

    it('refuses what is not a list of objects', () => {
      assert.throws(() => parsePolicies({ branches: '*' }, 'node.json'), isBadConfig('policies'));
      assert.throws(() => parsePolicies('kernel/*', 'node.json'), isBadConfig('policies'));
      assert.throws(() => parsePolicies(Array.from({ length: 257 }, () => ({ branches: '*' })), 'node.json'), isBadConfig('policies'));
      assert.throws(() => parsePolicies([{ branches: '*' }, null], 'node.json'), isBadConfig('policies[1]', 1));
      assert.throws(() => parsePolicies([['*']], 'node.json'), isBadConfig('policies[0]', 0));
    });

    it('names the index and key of every bad value', () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{}, 'branches'],
        [{ branches: '' }, 'branches'],
        [{ branches: 7 }, 'branches'],
        [{ branches: 'a b' }, 'branches'],
        [{ branches: 'kernel//*' }, 'branches'],
        [{ branches: '***' }, 'branches'],
        [{ branches: '*', replicas: 0 }, 'replicas'],
        [{ branches: '*', replicas: -1 }, 'replicas'],
        [{ branches: '*', replicas: 1.5 }, 'replicas'],
        [{ branches: '*', replicas: 'some' }, 'replicas'],
        [{ branches: '*', replicas: '3' }, 'replicas'],
        [{ branches: '*', history: 0 }, 'history'],
        [{ branches: '*', history: 'none' }, 'history'],
        [{ branches: '*', fetch: 'lazy' }, 'fetch'],
        [{ branches: '*', graceMs: -1 }, 'graceMs'],
        [{ branches: '*', graceMs: '60s' }, 'graceMs'],
        [{ branches: '*', graceMs: 1e12 }, 'graceMs'],
        [{ branches: '*', replica: 3 }, 'replica'],
      ];
      for (const [bad, key] of cases) {
        assert.throws(() => parsePolicies([{ branches: 'ok/*' }, bad], 'node.json'), isBadConfig(`policies[1].${key}`, 1), JSON.stringify(bad));
      }
      assert.throws(() => parsePolicies(JSON.parse('[{"branches":"*","constructor":1}]'), 'node.json'), isBadConfig('policies[0].constructor', 0));
      assert.throws(() => parsePolicies(JSON.parse('[{"branches":"*","__proto__":{"replicas":2}}]'), 'node.json'), isBadConfig('policies[0].__proto__', 0));
    });
  });

  describe('evaluatePolicies', () => {
    const policies = parsePolicies(EXAMPLE, 'node.json');
    const [kernel, backups] = policies as [Policy, Policy];

    /** A backups branch name whose rendezvous order over self and OTHERS puts self at `position`. */
    function branchWithSelfAt(position: number): BranchName {
      for (let i = 0; ; i++) {
        const b = B(`backups/host-${i}`);
        if (rendezvousOrder(b, [SELF, ...OTHERS]).indexOf(SELF) === position) return b;
      }
    }

    it('gives exactly 3 holders out of 5 members, the top 3 by rendezvous order', () => {
      const members = OTHERS.map((id, i) => member(id, { 'backups/a': [oid('a1'), 100 + i], 'backups/b/c': [oid('b'), 50] }));
      const ds = decide([backups], members);
      assert.deepEqual(ds.map((d) => d.branch), ['backups/a', 'backups/b/c']);
      for (const d of ds) {
        assert.equal(d.holders.length, 3);
        assert.deepEqual(d.holders, rendezvousOrder(d.branch, [SELF, ...OTHERS]).slice(0, 3));
        assert.equal(d.shouldHold, d.holders.includes(SELF));
        assert.equal(d.policy, 0);
        assert.equal(d.history, 5);
        assert.equal(d.fetch, 'on-demand');
      }
    });

    it('replaces a holder silent for longer than graceMs by the next in order, and takes it back when it returns', () => {
      const branch = branchWithSelfAt(3);
      const order = rendezvousOrder(branch, [SELF, ...OTHERS]);
      const top = order[0] as NodeId;
      const heads = { [branch]: [oid('x'), 10] as [Oid, number] };
      const at = (silentFor: number): BranchDecision =>
        only(decide(policies, OTHERS.map((id) => member(id, heads, id === top ? NOW - silentFor : NOW))), branch);

      const all = at(0);
      assert.deepEqual(all.holders, order.slice(0, 3));
      assert.equal(all.shouldHold, false);
      assert.equal(all.state, 'not-wanted');

      const justInGrace = at(backups.graceMs);
      assert.deepEqual(justInGrace.holders, order.slice(0, 3), 'silent for exactly graceMs still counts');

      const gone = at(backups.graceMs + 1);
      assert.deepEqual(gone.holders, order.slice(1, 4), 'the next in order takes its place');
      assert.equal(gone.shouldHold, true);
      assert.equal(gone.state, 'missing');
      assert.deepEqual(gone.target?.from, [...OTHERS].sort(), 'a silent member still counts as announcing what it had');

      const back = at(5);
      assert.deepEqual(back.holders, order.slice(0, 3), 'back in the top 3');
      assert.equal(back.shouldHold, false);
      assert.equal(back.state, 'not-wanted');
    });

    it('keeps self as a candidate whatever the members say, and ignores a member entry for self', () => {
      const branch = branchWithSelfAt(0);
      const ds = decide([backups], [member(SELF, { [branch]: [oid('mine?'), 999] }, 0), member(nodeId(1), { [branch]: [oid('y'), 1] }, 0)]);
      const d = only(ds, branch);
      assert.deepEqual(d.holders, [SELF], 'the only live candidate is self');
      assert.equal(d.target?.oid, oid('y'));
      assert.deepEqual(d.target?.from, [nodeId(1)]);
    });

    it("gives every live member and self for 'all'", () => {
      const members = OTHERS.map((id, i) => member(id, { 'kernel/stable': [oid('k'), 5] }, i === 2 ? NOW - 60_001 : NOW - 60_000));
      const d = only(decide(policies, members), 'kernel/stable');
      assert.equal(d.policy, 0);
      assert.deepEqual([...d.holders].sort(), [SELF, ...OTHERS.filter((_, i) => i !== 2)].sort());
      assert.equal(d.shouldHold, true);
      assert.equal(d.history, 'all');
      assert.equal(d.fetch, 'eager');
      assert.equal(kernel.graceMs, 60_000);
    });

    it('targets the newest head by commit time (ties by the greater oid, as a join orders writes) with the members announcing exactly it', () => {
      const [a, b, c, d] = OTHERS as [NodeId, NodeId, NodeId, NodeId];
      const old = oid('old');
      const newer = oid('newer');
      const members = [member(a, { 'kernel/x': [old, 100] }), member(b, { 'kernel/x': [newer, 200] }), member(c, { 'kernel/x': [newer, 200] }), member(d, {})];
      const t = only(decide(policies, members), 'kernel/x').target;
      assert.deepEqual(t, { oid: newer, commitTime: 200, from: [b, c].sort() });

      const [lo, hi] = [oid('p'), oid('q')].sort() as [Oid, Oid];
      const tie = only(decide(policies, [member(a, { 'kernel/y': [hi, 7] }), member(b, { 'kernel/y': [lo, 7] })]), 'kernel/y').target;
      assert.deepEqual(tie, { oid: hi, commitTime: 7, from: [a] });
      // Two commits in one second: a head other than this node's own wins the tie (so it is fetched, not taken as held).
      const mineTie = only(decide(policies, [member(a, { 'kernel/y': [hi, 7] }), member(b, { 'kernel/y': [lo, 7] })], { 'kernel/y': hi }), 'kernel/y');
      assert.deepEqual([mineTie.target?.oid, mineTie.state], [lo, 'behind']);
      // A commit made here, newer than any a member announces yet: it is the target, held (nothing older is fetched).
      const ahead = only(decide(policies, [member(a, { 'kernel/y': [lo, 7] })], { 'kernel/y': hi }, { 'kernel/y': 8 }), 'kernel/y');
      assert.deepEqual([ahead.target, ahead.state], [{ oid: hi, commitTime: 8, from: [] }, 'held']);
      // In the same second as a member's, it is not taken as newer: the member's head is taken once
      // judged, when ancestry proves neither way (unproven) or proves it ahead.
      const same = (standing: HeadStanding | undefined): BranchDecision =>
        only(decide(policies, [member(a, { 'kernel/y': [lo, 7] })], { 'kernel/y': hi }, { 'kernel/y': 7 }, standing === undefined ? {} : { [lo]: standing }), 'kernel/y');
      assert.deepEqual([same('unproven').target?.oid, same('unproven').state], [lo, 'behind']);
      assert.deepEqual([same('ahead').target?.oid, same('ahead').state], [lo, 'behind']);
      // Not judged yet, it waits: a member back from a stop announces the release before this one,
      // of the same second when the two were made within one.
      assert.deepEqual([same(undefined).target?.oid, same(undefined).state], [hi, 'held']);
      assert.deepEqual([same('passed').target?.oid, same('passed').state], [hi, 'held']);
    });

    it('lets ancestry overrule claimed times: a head judged passed is never the target, one judged ahead or fork always is', () => {
      const [a, b, c] = OTHERS as [NodeId, NodeId, NodeId];
      const [mine, stale, next, fork] = [oid('mine'), oid('stale'), oid('next'), oid('fork')];
      // An old head announced with a time far ahead (a publisher whose clock ran ahead), judged an
      // ancestor of this node's: the newest other head is fetched, not the old one for ever.
      const members = [member(a, { 'kernel/x': [stale, 9_000] }), member(b, { 'kernel/x': [next, 600] }), member(c, { 'kernel/x': [mine, 500] })];
      const past = only(decide(policies, members, { 'kernel/x': mine }, { 'kernel/x': 500 }, { [stale]: 'passed' }), 'kernel/x');
      assert.deepEqual([past.target, past.state], [{ oid: next, commitTime: 600, from: [b] }, 'behind']);
      // Unjudged, it would be the target (the freeze this guards against).
      assert.equal(only(decide(policies, members, { 'kernel/x': mine }, { 'kernel/x': 500 }), 'kernel/x').target?.oid, stale);
      // A commit made on a node whose clock runs behind: older by its time, judged ahead, it is the target.
      const behindClock = [member(a, { 'kernel/x': [next, 400] }), member(c, { 'kernel/x': [mine, 500] })];
      assert.equal(only(decide(policies, behindClock, { 'kernel/x': mine }, { 'kernel/x': 500 }), 'kernel/x').state, 'held', 'unjudged and older: not taken');
      const taken = only(decide(policies, behindClock, { 'kernel/x': mine }, { 'kernel/x': 500 }, { [next]: 'ahead' }), 'kernel/x');
      assert.deepEqual([taken.target, taken.state], [{ oid: next, commitTime: 400, from: [a] }, 'behind']);
      // A fork that claims an older time (written apart from this node's head): the target, to be merged.
      const forked = only(decide(policies, behindClock, { 'kernel/x': mine }, { 'kernel/x': 500 }, { [next]: 'fork' }), 'kernel/x');
      assert.deepEqual([forked.target, forked.state], [{ oid: next, commitTime: 400, from: [a] }, 'behind']);
      // Everything announced passed: this node's own head is the target, with the members announcing it.
      const done = only(decide(policies, [member(a, { 'kernel/x': [fork, 700] }), member(c, { 'kernel/x': [mine, 500] })], { 'kernel/x': mine }, { 'kernel/x': 500 }, { [fork]: 'passed' }), 'kernel/x');
      assert.deepEqual([done.target, done.state], [{ oid: mine, commitTime: 500, from: [c] }, 'held']);
      // A head whose fetch failed lately gives way to another that can be taken, but is still taken alone.
      const ghost = oid('ghost');
      const withGhost = [member(a, { 'kernel/x': [ghost, 9_999] }), member(b, { 'kernel/x': [next, 600] })];
      const ghostFails = (_b: BranchName, h: Oid): Failing | undefined => (h === ghost ? 'head' : undefined);
      assert.equal(only(decide(policies, withGhost, { 'kernel/x': mine }, { 'kernel/x': 500 }, {}, ghostFails), 'kernel/x').target?.oid, next);
      assert.equal(only(decide(policies, [member(a, { 'kernel/x': [ghost, 9_999] })], { 'kernel/x': mine }, { 'kernel/x': 500 }, {}, ghostFails), 'kernel/x').target?.oid, ghost);
      // Failing is judged per branch on who announces a head: each head is offered with all its announcers.
      const asked: [BranchName, Oid, readonly NodeId[]][] = [];
      const shared = [member(b, { 'kernel/x': [next, 600] }), member(a, { 'kernel/x': [ghost, 9_999] }), member(c, { 'kernel/x': [next, 650] })];
      const byA = only(decide(policies, shared, { 'kernel/x': mine }, { 'kernel/x': 500 }, {}, (branch, h, from) => (asked.push([branch, h, from]), from.every((id) => id === a) ? 'announcers' : undefined)), 'kernel/x');
      assert.deepEqual(byA.target, { oid: next, commitTime: 650, from: [b, c].sort() }, 'the latest time claimed for a head counts');
      assert.deepEqual(new Map(asked.map(([branch, h, from]) => [h, [branch, from]])), new Map([[ghost, ['kernel/x', [a]]], [next, ['kernel/x', [b, c]]]]));
      // A head whose own fetch failed gives way to one whose announcers' did: the old ghost, newest, goes last.
      const fresh = oid('fresh');
      const three = [member(a, { 'kernel/x': [ghost, 9_999] }), member(b, { 'kernel/x': [fresh, 800] }), member(c, { 'kernel/x': [next, 700] })];
      const ranks = (h: Oid): Failing | undefined => (h === ghost ? 'head' : h === fresh ? 'announcers' : undefined);
      assert.equal(only(decide(policies, three, { 'kernel/x': mine }, { 'kernel/x': 500 }, {}, (_b, h) => ranks(h)), 'kernel/x').target?.oid, next);
      assert.equal(only(decide(policies, three.slice(0, 2), { 'kernel/x': mine }, { 'kernel/x': 500 }, {}, (_b, h) => ranks(h)), 'kernel/x').target?.oid, fresh);
      // A branch this node lacks whose every announced head was refused: no target.
      const refused = only(decide(policies, [member(a, { 'kernel/y': [fork, 700] })], {}, {}, { [fork]: 'passed' }), 'kernel/y');
      assert.deepEqual([refused.target, refused.state], [undefined, 'missing']);
    });

    it("reports held, behind, missing and not-wanted, and this node's own branches", () => {
      const head = oid('head');
      const members = OTHERS.map((id) => member(id, { 'kernel/a': [head, 3], 'kernel/b': [head, 3], 'kernel/c': [head, 3] }));
      const ds = decide(policies, members, { 'kernel/a': head, 'kernel/b': oid('older'), 'kernel/only-here': oid('local'), 'misc/x': oid('z') });
      assert.equal(only(ds, 'kernel/a').state, 'held');
      assert.equal(only(ds, 'kernel/b').state, 'behind');
      assert.equal(only(ds, 'kernel/b').local, oid('older'));
      assert.equal(only(ds, 'kernel/c').state, 'missing');
      assert.equal(only(ds, 'kernel/c').local, undefined);
      const here = only(ds, 'kernel/only-here');
      assert.equal(here.target, undefined);
      assert.equal(here.state, 'held');
      assert.equal(ds.find((x) => x.branch === 'misc/x'), undefined, 'no policy matches: not replicated');

      const notMine = branchWithSelfAt(4);
      const d = only(decide(policies, OTHERS.map((id) => member(id, { [notMine]: [head, 3] })), { [notMine]: head }), notMine);
      assert.equal(d.state, 'not-wanted');
      assert.equal(d.local, head);
    });

    it('uses the first policy that matches and lists decisions by branch name', () => {
      const ps = parsePolicies([{ branches: 'backups/special', replicas: 1, history: 2 }, { branches: 'backups/**', replicas: 3 }, { branches: '**', replicas: 2, history: 9 }], 'node.json');
      const members = [member(nodeId(1), { 'backups/special': [oid('s'), 1], 'backups/other': [oid('o'), 1], zeta: [oid('z'), 1], alpha: [oid('a'), 1] })];
      const ds = decide(ps, members);
      assert.deepEqual(
        ds.map((d) => [d.branch, d.policy, d.history, d.holders.length]),
        [
          ['alpha', 2, 9, 2],
          ['backups/other', 1, 'all', 2],
          ['backups/special', 0, 2, 1],
          ['zeta', 2, 9, 2],
        ],
      );
      assert.deepEqual(decide([], members), []);
    });
  });
});
