/**
 * Head verdicts: ancestry against claimed commit times. A head here is judged by the local commits
 * (an ancestor is passed, a fork is a fork; a descendant is
 * ahead; a gap between them leaves it unproven); one that is not here is passed when a commit of
 * this node's names it as a parent, and otherwise, when it claims an older time, probed through
 * the members announcing it, up to PROBE_LIMIT commits back and PROBE_MS, in a lane of its own; what
 * cannot be proven is unproven and judged again after RETRY_MS; one pair is judged at a time in
 * each lane, at most MAX_PENDING wait, and the owner hears when a queue empties; a head whose fetch failed stays failing for FAILING_MS.
 */
import assert from 'node:assert/strict';
import type { BranchName } from '../../src/branches/ref-name.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import { encodeCommit } from '../../src/objects/commit.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { FAILING_MS, HeadVerdicts, MAX_PENDING, PROBE_LIMIT, PROBE_MS, RETRY_MS } from '../../src/swarm/head-verdicts.js';
import { silentLogger } from '../../src/util/log.js';
import { TestClock } from '../multicast/fixture.js';

const TREE = hashObject('tree', Buffer.alloc(0));
const ANNOUNCER = 'aaaaaaaaaaaaaaaa' as NodeId;

/** A commit graph: `here` this node's commits, `remote` those only peers have. */
class Graph {
  readonly here = new Map<Oid, Buffer>();
  readonly remote = new Map<Oid, Buffer>();
  asks = 0;
  askedOf = new Set<string>();
  inFlight = 0;
  mostInFlight = 0;
  /** Ids a peer fails to give the first time they are asked. */
  readonly flaky = new Set<Oid>();
  /** Ids whose ask waits until `release()`. */
  readonly held = new Set<Oid>();
  private readonly waiting: (() => void)[] = [];
  /** How far each ask moves the clock (a slow announcer). */
  askMs = 0;

  release(): void {
    this.held.clear();
    for (const go of this.waiting.splice(0)) go();
  }

  commit(message: string, parents: readonly Oid[], where: 'here' | 'remote', signed = false): Oid {
    const who = { name: 'n', email: 'n@example.invalid', timestamp: 1_000, tzOffsetMinutes: 0 };
    const extraHeaders: [string, string][] = signed ? [['gpgsig', '-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----']] : [];
    const content = encodeCommit({ tree: TREE, parents, author: who, committer: who, extraHeaders, message });
    const oid = hashObject('commit', content);
    this[where].set(oid, content);
    return oid;
  }

  chain(from: Oid, length: number, where: 'here' | 'remote'): Oid {
    let at = from;
    for (let i = 0; i < length; i++) at = this.commit(`${where} ${i}`, [at], where);
    return at;
  }

  verdicts(clock = new TestClock(0), judged?: () => void): HeadVerdicts {
    return new HeadVerdicts(
      {
        here: async (oid) => this.here.get(oid),
        ask: async (oid, from) => {
          this.asks++;
          for (const id of from) this.askedOf.add(id);
          this.mostInFlight = Math.max(this.mostInFlight, ++this.inFlight);
          await new Promise((r) => setImmediate(r));
          if (this.held.has(oid)) await new Promise<void>((r) => this.waiting.push(r));
          clock.ms += this.askMs;
          this.inFlight--;
          if (this.flaky.delete(oid)) return undefined;
          return this.remote.get(oid) ?? this.here.get(oid);
        },
      },
      clock,
      silentLogger,
      judged,
    );
  }
}

async function judged(v: HeadVerdicts, mine: Oid, head: Oid, claimsOlder = false, wholeHistory = true): Promise<string | undefined> {
  v.consider(mine, head, claimsOlder, [ANNOUNCER], wholeHistory);
  await v.idle();
  return v.get(mine, head);
}

describe('swarm/head-verdicts', () => {
  it('judges heads that are here by the local commits: ancestors passed, descendants ahead, a fork a fork (taken, and merged by its fetch), a gap unproven', async () => {
    const g = new Graph();
    const root = g.commit('root', [], 'here');
    const old = g.chain(root, 3, 'here');
    const mine = g.chain(old, 2, 'here');
    const fork = g.commit('fork', [old], 'here');
    const later = g.chain(mine, 2, 'here');
    const v = g.verdicts();
    assert.deepEqual([await judged(v, mine, root), await judged(v, mine, old), await judged(v, mine, fork), await judged(v, mine, later)], ['passed', 'passed', 'fork', 'ahead']);
    // Unrelated whole histories: never merged, so passed; a signed fork (a release) is no fork.
    assert.equal(await judged(g.verdicts(), mine, g.commit('unrelated', [], 'here')), 'passed');
    assert.equal(await judged(g.verdicts(), mine, g.commit('a release', [old], 'here', true)), 'unproven');
    // A head here two ahead whose parent is not here yet (a fetch storing level by level, or a
    // shallow fetch of another branch): nothing is proven, so nothing is decided.
    const gapParent = g.commit('gap parent', [mine], 'remote');
    const gapHead = g.commit('gap head', [gapParent], 'here');
    assert.equal(await judged(v, mine, gapHead), 'unproven');
    assert.equal(g.asks, 0, 'nothing was asked of peers');
  });

  it('probes an absent head that claims an older time through its announcers only: a commit made on a node whose clock runs behind is ahead', async () => {
    const g = new Graph();
    const mine = g.chain(g.commit('root', [], 'here'), 2, 'here');
    const next = g.chain(mine, 5, 'remote');
    const v = g.verdicts();
    assert.equal(await judged(v, mine, next, false), 'unproven', 'a head claiming a later time is left to the fetch it becomes');
    assert.equal(g.asks, 0);
    const clock = new TestClock(0);
    const w = g.verdicts(clock);
    assert.equal(await judged(w, mine, next, true), 'ahead');
    assert.equal(g.asks, 5, 'its five commits were asked, one each');
    assert.deepEqual([...g.askedOf], [ANNOUNCER]);
  });

  it('finds a fork by probing an absent head that claims an older time: its history meets an ancestor of this node\'s head (not one of another line)', async () => {
    const g = new Graph();
    const root = g.commit('root', [], 'here');
    const mine = g.chain(root, 2, 'here');
    const theirs = g.chain(root, 3, 'remote');
    assert.equal(await judged(g.verdicts(), mine, theirs, true), 'fork');
    assert.equal(g.asks, 3, 'their three commits were asked, the common one read here');
    // Not where no merge could follow: a branch keeping part of its history, a release.
    assert.equal(await judged(g.verdicts(), mine, theirs, true, false), 'unproven');
    assert.equal(await judged(g.verdicts(), mine, g.commit('a release', [g.chain(root, 2, 'remote')], 'remote', true), true), 'unproven');
    // A line of its own here (another branch): met, but no ancestor of this node's head.
    const other = g.commit('another branch', [], 'here');
    const elsewhere = g.chain(other, 2, 'remote');
    assert.equal(await judged(g.verdicts(), mine, elsewhere, true), 'unproven');
  });

  it('leaves unproven, and judges again after RETRY_MS, a head not proven within PROBE_LIMIT commits or whose commits did not come', async () => {
    const g = new Graph();
    const mine = g.commit('mine', [], 'here');
    const clock = new TestClock(0);
    const v = g.verdicts(clock);
    const far = g.chain(mine, PROBE_LIMIT, 'remote');
    assert.equal(await judged(v, mine, far, true), 'unproven', 'beyond the limit: unknown, not passed');
    const near = g.chain(mine, PROBE_LIMIT - 1, 'remote');
    assert.equal(await judged(v, mine, near, true), 'ahead', 'just within the limit');
    // A commit on the way that did not come once: unknown, then ahead when asked again.
    const lost = g.commit('lost once', [g.commit('first', [mine], 'remote')], 'remote');
    const top = g.commit('top', [lost], 'remote');
    g.flaky.add(lost);
    const asked = g.asks;
    assert.equal(await judged(v, mine, top, true), 'unproven');
    assert.equal(await judged(v, mine, top, true), 'unproven', 'not judged again before RETRY_MS');
    assert.ok(g.asks > asked);
    const before = g.asks;
    await judged(v, mine, top, true);
    assert.equal(g.asks, before, 'nothing asked while it waits');
    clock.ms += RETRY_MS;
    assert.equal(await judged(v, mine, top, true), 'ahead');
    // A verdict is against this node's head: another head of the branch is judged anew.
    const moved = g.commit('moved', [mine], 'here');
    assert.equal(v.get(moved, top), undefined);
  });

  it('passes an absent head that a commit of this node names as a parent (a release pruned here, announced by a member back from a stop), asking nobody', async () => {
    const g = new Graph();
    const pruned = g.commit('the release before, pruned here', [], 'remote');
    const mine = g.commit('this release', [pruned], 'here');
    const v = g.verdicts();
    assert.equal(await judged(v, mine, pruned, false), 'passed', 'the same second');
    const older = g.commit('an older one', [], 'remote');
    const between = g.commit('between, pruned', [older], 'remote');
    const top = g.chain(g.commit('kept', [between], 'here'), 2, 'here');
    assert.equal(await judged(v, top, between, true), 'passed', 'three generations back, claiming an older time');
    assert.equal(await judged(v, top, older, true), 'unproven', 'a parent of a commit not here: not named here, and no probe finds this node\'s head');
    assert.equal(g.asks, 1, 'only the head not named here was asked of its announcer');
  });

  it('judges by the local commits while a probe waits on a silent announcer, and gives a probe up after PROBE_MS', async () => {
    const g = new Graph();
    const pruned = g.commit('pruned here', [], 'remote');
    const mine = g.commit('mine', [pruned], 'here');
    const clock = new TestClock(0);
    const v = g.verdicts(clock);
    const silent = g.chain(mine, 3, 'remote');
    g.held.add(silent);
    v.consider(mine, silent, true, [ANNOUNCER]);
    // The same second as this node's head, announced by a member back from a stop.
    v.consider(mine, pruned, false, [ANNOUNCER]);
    for (let i = 0; i < 100 && v.get(mine, pruned) === undefined; i++) await new Promise((r) => setImmediate(r));
    assert.equal(v.get(mine, pruned), 'passed', 'judged while the probe waits');
    assert.equal(v.get(mine, silent), undefined, 'still being probed');
    g.release();
    await v.idle();
    assert.equal(v.get(mine, silent), 'ahead');
    // Each answer takes half of PROBE_MS: the walk back from five commits away runs out of time.
    g.askMs = PROBE_MS / 2;
    const far = g.chain(mine, 5, 'remote');
    const asked = g.asks;
    assert.equal(await judged(v, mine, far, true), 'unproven');
    assert.equal(g.asks - asked, 3, 'asked until the time was up');
  });

  it('tells its owner whenever the pairs queued have all been judged', async () => {
    const g = new Graph();
    const mine = g.commit('mine', [], 'here');
    let told = 0;
    const v = g.verdicts(new TestClock(0), () => told++);
    const heads = [g.commit('a', [mine], 'remote'), g.commit('b', [mine], 'remote')];
    for (const h of heads) v.consider(mine, h, false, [ANNOUNCER]);
    assert.equal(told, 0);
    await v.idle();
    assert.equal(told, 1, 'once for both');
    for (const h of heads) v.consider(mine, h, false, [ANNOUNCER]);
    await v.idle();
    assert.equal(told, 1, 'judged pairs queue nothing, and nothing is told');
    // A pair probed is told of again when the probing lane empties.
    v.consider(mine, g.commit('c', [mine], 'remote'), true, [ANNOUNCER]);
    await v.idle();
    assert.equal(told, 3);
  });

  it('judges one pair at a time, and keeps at most MAX_PENDING waiting', async () => {
    const g = new Graph();
    const mine = g.commit('mine', [], 'here');
    const v = g.verdicts();
    const heads = Array.from({ length: 3 * MAX_PENDING }, (_, i) => g.commit(`head ${i}`, [mine], 'remote'));
    for (const h of heads) v.consider(mine, h, true, [ANNOUNCER]);
    await v.idle();
    assert.equal(g.mostInFlight, 1, 'one ask at a time');
    const done = heads.filter((h) => v.get(mine, h) === 'ahead').length;
    assert.ok(done >= MAX_PENDING && done <= MAX_PENDING + 1, `${done} judged of ${heads.length} offered at once`);
  });

  it('keeps a head whose fetch failed failing for FAILING_MS, and every head of its branch its announcers alone announce, a rank above, until one of theirs comes', () => {
    const g = new Graph();
    const clock = new TestClock(0);
    const v = g.verdicts(clock);
    const head = g.commit('unservable', [], 'remote');
    const other = 'bbbbbbbbbbbbbbbb' as NodeId;
    const fresh = g.commit('another unservable', [], 'remote');
    const [main, side] = ['main' as BranchName, 'side' as BranchName];
    assert.equal(v.failing(main, head, [ANNOUNCER]), undefined);
    v.failed(head, [main], [ANNOUNCER]);
    assert.equal(v.failing(main, head, [other]), 'head');
    assert.equal(v.failing(side, head, []), 'head', 'the head itself, on any branch');
    // A member whose head could not be had: every head of that branch it alone announces gives way too (a fresh id each time must not go first).
    assert.equal(v.failing(main, fresh, [ANNOUNCER]), 'announcers');
    assert.equal(v.failing(main, fresh, [ANNOUNCER, other]), undefined, 'not while another member announces it');
    assert.equal(v.failing(main, fresh, []), undefined);
    assert.equal(v.failing(side, fresh, [ANNOUNCER]), undefined, 'its heads of other branches do not');
    clock.ms += FAILING_MS - 1;
    assert.equal(v.failing(main, head, []), 'head');
    assert.equal(v.failing(main, fresh, [ANNOUNCER]), 'announcers');
    clock.ms += 1;
    assert.equal(v.failing(main, head, []), undefined);
    assert.equal(v.failing(main, fresh, [ANNOUNCER]), undefined);
    // A head that came whole though it gave way for its announcers alone clears their failure; one
    // announced with a member not failing does not (a member would clear its own so).
    v.failed(head, [main], [ANNOUNCER]);
    const honest = g.commit('honest', [], 'remote');
    v.fetched(honest, [main], [ANNOUNCER, other]);
    assert.equal(v.failing(main, fresh, [ANNOUNCER]), 'announcers', 'not cleared by a head another member announced too');
    v.fetched(fresh, [main], [ANNOUNCER]);
    assert.deepEqual([v.failing(main, head, []), v.failing(main, fresh, [ANNOUNCER])], ['head', undefined]);
  });

  it('holds a verdict set for a while (a failed merge) for that long only, then judges the pair anew; a judgement landing meanwhile does not replace it', async () => {
    const g = new Graph();
    const clock = new TestClock(0);
    const v = g.verdicts(clock);
    const base = g.commit('base', [], 'here');
    const [mine, fork] = [g.commit('mine', [base], 'here'), g.commit('fork', [base], 'here')];
    // Queued for judging before the merge failed: the judgement lands after the fetch's verdict.
    v.consider(mine, fork, false, [ANNOUNCER]);
    v.set(mine, fork, 'passed', 10_000);
    await v.idle();
    assert.equal(v.get(mine, fork), 'passed', 'the judgement that landed meanwhile did not replace it');
    assert.equal(await judged(v, mine, fork), 'passed', 'not judged while the verdict holds');
    clock.ms += 9_999;
    assert.equal(v.get(mine, fork), 'passed');
    clock.ms += 1;
    assert.equal(v.get(mine, fork), undefined, 'lapsed: no standing');
    assert.equal(await judged(v, mine, fork), 'fork', 'judged anew');
    // Set for good after set for a while: it holds.
    v.set(mine, fork, 'passed', 10_000);
    v.set(mine, fork, 'passed');
    clock.ms += 10_000;
    assert.equal(v.get(mine, fork), 'passed');
  });
});
