/**
 * Head verdicts: ancestry against claimed commit times. A head here is judged at once by the local
 * commits (an ancestor or a fork is passed, a descendant is ahead); one that is not here and claims
 * an older time is probed through peers in the background, up to PROBE_LIMIT commits back; a probe
 * that cannot get the head's commit is tried again only after PROBE_RETRY_MS; a head whose fetch
 * failed stays failing for FAILING_MS.
 */
import assert from 'node:assert/strict';
import { encodeCommit } from '../../src/objects/commit.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { FAILING_MS, HeadVerdicts, PROBE_LIMIT, PROBE_RETRY_MS } from '../../src/swarm/head-verdicts.js';
import { silentLogger } from '../../src/util/log.js';
import { TestClock } from '../multicast/fixture.js';

const TREE = hashObject('tree', Buffer.alloc(0));

/** A commit graph: `here` this node's commits, `remote` those only peers have. */
class Graph {
  readonly here = new Map<Oid, Buffer>();
  readonly remote = new Map<Oid, Buffer>();
  peerAsks = 0;

  commit(message: string, parents: readonly Oid[], where: 'here' | 'remote', time = 1_000): Oid {
    const who = { name: 'n', email: 'n@example.invalid', timestamp: time, tzOffsetMinutes: 0 };
    const content = encodeCommit({ tree: TREE, parents, author: who, committer: who, extraHeaders: [], message });
    const oid = hashObject('commit', content);
    this[where].set(oid, content);
    return oid;
  }

  chain(from: Oid, length: number, where: 'here' | 'remote'): Oid {
    let at = from;
    for (let i = 0; i < length; i++) at = this.commit(`${where} ${i}`, [at], where);
    return at;
  }

  verdicts(clock = new TestClock(0)): HeadVerdicts {
    return new HeadVerdicts(
      {
        here: async (oid) => this.here.get(oid),
        anywhere: async (oid) => {
          if (this.here.has(oid)) return this.here.get(oid);
          this.peerAsks++;
          return this.remote.get(oid);
        },
      },
      clock,
      silentLogger,
    );
  }
}

/** Waits (bounded) for the background probe of `head` to give a verdict. */
async function settled(v: HeadVerdicts, mine: Oid, head: Oid): Promise<string | undefined> {
  for (let i = 0; i < 200 && v.get(mine, head) === undefined; i++) await new Promise((r) => setImmediate(r));
  return v.get(mine, head);
}

describe('swarm/head-verdicts', () => {
  it('judges heads that are here at once: ancestors and forks passed, descendants ahead', async () => {
    const g = new Graph();
    const root = g.commit('root', [], 'here');
    const old = g.chain(root, 3, 'here');
    const mine = g.chain(old, 2, 'here');
    const fork = g.commit('fork', [old], 'here');
    const later = g.chain(mine, 2, 'here');
    const v = g.verdicts();
    for (const head of [root, old, fork, later]) await v.judge(mine, head, false);
    assert.deepEqual([v.get(mine, root), v.get(mine, old), v.get(mine, fork), v.get(mine, later)], ['passed', 'passed', 'passed', 'ahead']);
    assert.equal(g.peerAsks, 0, 'nothing was asked of peers');
  });

  it('probes an absent head that claims an older time through peers: a commit made on a node whose clock runs behind is ahead', async () => {
    const g = new Graph();
    const mine = g.chain(g.commit('root', [], 'here'), 2, 'here');
    const next = g.chain(mine, 5, 'remote');
    const v = g.verdicts();
    await v.judge(mine, next, false);
    assert.equal(v.get(mine, next), undefined, 'a head claiming a later time is left to the fetch it becomes');
    assert.equal(g.peerAsks, 0);
    await v.judge(mine, next, true);
    assert.equal(await settled(v, mine, next), 'ahead');
    assert.equal(g.peerAsks, 5, 'its five commits were asked of peers, one each');
  });

  it('passes an absent head whose last PROBE_LIMIT commits do not lead to this node\'s head (an old head, or a fork)', async () => {
    const g = new Graph();
    const base = g.commit('base', [], 'remote');
    const far = g.chain(base, PROBE_LIMIT, 'remote');
    const mine = g.commit('mine', [base], 'here');
    const v = g.verdicts();
    await v.judge(mine, far, true);
    assert.equal(await settled(v, mine, far), 'passed');
    assert.equal(g.peerAsks, PROBE_LIMIT, 'the walk stopped at PROBE_LIMIT commits');
    // One more commit within reach would have made it ahead: the limit is where it is.
    const near = g.chain(mine, PROBE_LIMIT - 1, 'remote');
    await v.judge(mine, near, true);
    assert.equal(await settled(v, mine, near), 'ahead');
  });

  it('keeps a head whose fetch failed failing for FAILING_MS, whatever this node\'s head', () => {
    const g = new Graph();
    const clock = new TestClock(0);
    const v = g.verdicts(clock);
    const head = g.commit('unservable', [], 'remote');
    assert.equal(v.failing(head), false);
    v.failed(head);
    assert.equal(v.failing(head), true);
    clock.ms += FAILING_MS - 1;
    assert.equal(v.failing(head), true);
    clock.ms += 1;
    assert.equal(v.failing(head), false);
  });

  it('asks again for a head no peer has only after PROBE_RETRY_MS, and judges each pair once', async () => {
    const g = new Graph();
    const mine = g.commit('mine', [], 'here');
    const clock = new TestClock(0);
    const v = g.verdicts(clock);
    const ghost = hashObject('commit', Buffer.from('nobody has this'));
    await v.judge(mine, ghost, true);
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    assert.equal(v.get(mine, ghost), undefined);
    assert.equal(g.peerAsks, 1);
    await v.judge(mine, ghost, true);
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    assert.equal(g.peerAsks, 1, 'not asked again before the retry time');
    clock.ms += PROBE_RETRY_MS;
    const next = g.commit('next', [mine], 'remote');
    g.remote.set(ghost, g.remote.get(next) as Buffer); // the peer now answers (content checked elsewhere: here it just parses)
    await v.judge(mine, ghost, true);
    assert.equal(await settled(v, mine, ghost), 'ahead');
    const asked = g.peerAsks;
    await v.judge(mine, ghost, true);
    assert.equal(g.peerAsks, asked, 'a judged pair is not probed again');
    // A verdict is against this node's head: another head of the branch is judged anew.
    const moved = g.commit('moved', [mine], 'here');
    assert.equal(v.get(moved, ghost), undefined);
  });
});
