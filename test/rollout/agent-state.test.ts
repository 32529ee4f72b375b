/**
 * The rollout agent's state machine: the good path with exact actions, an apply that restarts the host,
 * a bad version rolled back and given up after 3 tries, when exactly a try is counted, a crash
 * in every phase, rollback requests with and without a previous release, halts in every phase,
 * stale events, bounds, and the stored form (round trip at every step, refusals, random
 * damage). A random walk checks the invariants over long event sequences.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import type { Oid } from '../../src/objects/oid.js';
import { decodeAgentState, encodeAgentState } from '../../src/rollout/agent-state-codec.js';
import { AGENT_DEFAULTS, initialAgentState, MAX_HISTORY, MAX_REMEMBERED, refOrder, releaseRefsOf, step, type AgentAction, type AgentConfig, type AgentEvent, type AgentState, type Release, type StepResult } from '../../src/rollout/agent-state.js';
import { NODE_ROLLOUT_STATES } from '../../src/rollout/waves.js';

const commit = (s: string): Oid => createHash('sha1').update(s).digest('hex') as Oid;
const R1: Release = { commit: commit('v1'), version: '1.0' };
const R2: Release = { commit: commit('v2'), version: '2.0' };
const R3: Release = { commit: commit('v3'), version: '3.0' };
const T0 = 1_700_000_000_000;
const TIMEOUT = AGENT_DEFAULTS.healthTimeoutMs;

/** Applies events in order, each of which must be accepted; checks the stored form round-trips at every step. */
function drive(state: AgentState, events: readonly AgentEvent[], now = T0, config: AgentConfig = AGENT_DEFAULTS): StepResult {
  let r: StepResult = { state, actions: [] };
  for (const e of events) {
    r = step(r.state, e, now, config);
    assert.equal(r.ignored, undefined, `${e.type} was ignored in ${state.phase}: ${r.ignored}`);
    assert.deepEqual(decodeAgentState(encodeAgentState(r.state)), r.state, `round trip after ${e.type}`);
  }
  return r;
}

const seen = (r: Release): AgentEvent => ({ type: 'release-seen', commit: r.commit, version: r.version });
const goodPath = (r: Release): AgentEvent[] => [seen(r), { type: 'verified', commit: r.commit }, { type: 'apply-started', commit: r.commit }, { type: 'applied', commit: r.commit }, { type: 'health-ok', commit: r.commit }];
const failTry = (r: Release): AgentEvent[] => [{ type: 'apply-started', commit: r.commit }, { type: 'applied', commit: r.commit }, { type: 'health-failed', commit: r.commit, reason: 'http 500' }, { type: 'rollback-done', commit: r.commit }];
const kinds = (actions: readonly AgentAction[]): string[] => actions.map((a) => (a.type === 'set-ref' ? `set-ref ${a.ref}=${a.commit === null ? 'none' : a.commit.slice(0, 4)}` : a.type === 'announce' ? `announce ${a.state}` : a.type));
const short = (r: Release): string => r.commit.slice(0, 4);

/** A state with R1 blessed, R2 blessed over it (so R1 is previous) if `two`. */
function blessedState(two = false): AgentState {
  const one = drive(initialAgentState('kernel/stable'), goodPath(R1)).state;
  return two ? drive(one, goodPath(R2)).state : one;
}

describe('rollout/agent-state', () => {
  it('walks the good path with exactly the actions the caller needs', () => {
    const s0 = initialAgentState('kernel/stable');
    assert.equal(s0.phase, 'idle');
    let r = drive(s0, [seen(R1)], T0);
    assert.equal(r.state.phase, 'verifying');
    assert.deepEqual(r.state.pending, { ...R1, triesLeft: 3 });
    assert.deepEqual(kinds(r.actions), [`set-ref pending=${short(R1)}`, 'announce fetching', 'verify']);
    r = drive(r.state, [{ type: 'verified', commit: R1.commit }]);
    assert.deepEqual([r.state.phase, kinds(r.actions)], ['staged', ['announce staged']]);
    r = drive(r.state, [{ type: 'apply-started', commit: R1.commit }]);
    assert.deepEqual([r.state.phase, kinds(r.actions)], ['applying', ['announce applying', 'run-apply-hook']]);
    assert.equal(r.state.checkDeadline, T0 + TIMEOUT, 'the deadline is on record before the apply hook runs');
    r = drive(r.state, [{ type: 'applied', commit: R1.commit }], T0 + 10);
    assert.deepEqual([r.state.phase, kinds(r.actions), r.state.checkDeadline], ['checking', ['announce checking', 'run-health-hook'], T0 + 10 + TIMEOUT]);
    assert.deepEqual(r.actions[1], { type: 'run-health-hook', release: R1, deadline: T0 + 10 + TIMEOUT });
    r = drive(r.state, [{ type: 'health-ok', commit: R1.commit }], T0 + 20);
    assert.equal(r.state.phase, 'idle');
    assert.deepEqual([r.state.blessed, r.state.previous, r.state.pending, r.state.checkDeadline], [R1, null, null, null]);
    assert.deepEqual(kinds(r.actions), ['set-ref previous=none', `set-ref blessed=${short(R1)}`, 'set-ref pending=none', 'announce blessed']);
    assert.deepEqual(r.actions[3], { type: 'announce', commit: R1.commit, version: '1.0', state: 'blessed', failures: 0 });
    assert.deepEqual(r.state.history.map((t) => `${t.event}:${t.from}>${t.to}`), ['release-seen:idle>verifying', 'verified:verifying>staged', 'apply-started:staged>applying', 'applied:applying>checking', 'health-ok:checking>idle']);
    assert.deepEqual(r.state.history.map((t) => t.at), [T0, T0, T0, T0 + 10, T0 + 20]);

    const next = drive(r.state, goodPath(R2));
    assert.deepEqual([next.state.blessed, next.state.previous], [R2, R1]);
    assert.ok(step(next.state, seen(R2), T0).ignored?.includes('already blessed'));
  });

  it('checks health after the restart when the apply restarts the host (kernel hooks with GITFS_REBOOT=1)', () => {
    const KERNEL: AgentConfig = { ...AGENT_DEFAULTS, restartingApply: true };
    const applying = drive(blessedState(), [seen(R2), { type: 'verified', commit: R2.commit }, { type: 'apply-started', commit: R2.commit }], T0, KERNEL).state;
    // The apply hook never returned: the host went down under it, and the agent starts again.
    const restarted = drive(applying, [{ type: 'crash-recovery' }], T0 + 60_000, KERNEL);
    assert.equal(restarted.state.phase, 'checking');
    assert.deepEqual(restarted.actions, [{ type: 'announce', commit: R2.commit, version: '2.0', state: 'checking', failures: 0 }, { type: 'run-health-hook', release: R2, deadline: T0 + TIMEOUT }], 'the deadline recorded before the apply');
    assert.deepEqual(restarted.state.failedVersions, {});
    const ok = drive(restarted.state, [{ type: 'health-ok', commit: R2.commit }], T0 + 61_000, KERNEL);
    assert.deepEqual([ok.state.blessed, ok.state.previous], [R2, R1]);
    // Back on the old kernel (it panicked, the one-shot boot fell back): health fails, roll back.
    const fell = drive(restarted.state, [{ type: 'health-failed', commit: R2.commit, reason: 'running 1.0' }], T0 + 61_000, KERNEL);
    assert.deepEqual([fell.state.phase, fell.actions[0], fell.state.failedVersions[R2.commit]], ['rolling-back', { type: 'run-rollback-hook', from: R2, to: R1 }, 1]);
    // Still not up by the deadline: a failed try, rolled back.
    const late = drive(applying, [{ type: 'crash-recovery' }], T0 + TIMEOUT + 1, KERNEL);
    assert.deepEqual([late.state.phase, late.state.failedVersions[R2.commit]], ['rolling-back', 1]);
    // A halt heard during the apply still wins after the restart.
    const halted = drive(applying, [{ type: 'halted', commit: R2.commit }, { type: 'crash-recovery' }], T0 + 1000, KERNEL);
    assert.deepEqual([halted.state.phase, halted.state.rollback?.reason], ['rolling-back', 'halted']);
  });

  it('rolls a bad version back, retries it, and never tries it again after 3 failures', () => {
    let r = drive(blessedState(), [seen(R2), { type: 'verified', commit: R2.commit }]);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [start, applied, failed, done] = failTry(R2) as [AgentEvent, AgentEvent, AgentEvent, AgentEvent];
      r = drive(r.state, [start, applied]);
      r = drive(r.state, [failed]);
      assert.equal(r.state.phase, 'rolling-back');
      assert.deepEqual(r.actions[0], { type: 'run-rollback-hook', from: R2, to: R1 });
      assert.deepEqual(r.actions[1], { type: 'announce', commit: R2.commit, version: '2.0', state: 'failed', failures: attempt });
      assert.equal(r.state.failedVersions[R2.commit], attempt);
      r = drive(r.state, [done]);
      assert.deepEqual(r.state.blessed, R1, 'the blessed release never changes');
      if (attempt < 3) {
        assert.equal(r.state.phase, 'staged', 'staged again for the next try');
        assert.equal(r.state.pending?.triesLeft, 3 - attempt);
        assert.deepEqual(kinds(r.actions), ['announce rolled-back']);
      } else {
        assert.equal(r.state.phase, 'idle');
        assert.equal(r.state.pending, null);
        assert.deepEqual(kinds(r.actions), ['set-ref pending=none', 'announce rolled-back']);
      }
    }
    const again = step(r.state, seen(R2), T0);
    assert.ok(again.ignored?.includes('failed 3 times'));
    assert.equal(again.state, r.state);
    // A newer release is still taken.
    assert.equal(drive(r.state, [seen(R3)]).state.pending?.commit, R3.commit);
  });

  it('runs a failed rollback hook again twice, then stops (stuck, the release failed) until an operator rolls back', () => {
    let r = drive(blessedState(), [seen(R2), { type: 'verified', commit: R2.commit }, ...(failTry(R2).slice(0, 3) as AgentEvent[])]);
    assert.equal(r.state.phase, 'rolling-back');
    const hookFailed: AgentEvent = { type: 'rollback-failed', commit: R2.commit, reason: 'exit 1' };
    for (let failed = 1; failed <= 2; failed++) {
      r = drive(r.state, [hookFailed]);
      assert.equal(r.state.phase, 'rolling-back');
      assert.equal(r.state.rollback?.failedAttempts, failed);
      assert.deepEqual(r.actions, [{ type: 'run-rollback-hook', from: R2, to: R1 }]);
    }
    r = drive(r.state, [hookFailed]);
    assert.equal(r.state.phase, 'stuck');
    assert.equal(r.state.pending, null, 'the release is not tried again over a node in an unknown state');
    assert.ok(r.state.givenUp.includes(R2.commit));
    assert.deepEqual(kinds(r.actions), ['set-ref pending=none', 'announce failed']);
    // Stuck: no new release is taken, halts and late hook results change nothing.
    for (const e of [seen(R3), { type: 'halted', commit: R2.commit }, { type: 'rollback-done', commit: R2.commit }, hookFailed] as AgentEvent[]) {
      const x = step(r.state, e, T0);
      assert.ok(x.ignored?.startsWith('stuck'), `${e.type}: ${x.ignored}`);
      assert.equal(x.state, r.state);
    }
    // A restart stays stuck and tells the cluster again.
    const restarted = drive(r.state, [{ type: 'crash-recovery' }]);
    assert.equal(restarted.state.phase, 'stuck');
    assert.deepEqual(kinds(restarted.actions), ['announce failed']);
    // An operator fixed the node: `gitfs rollout rollback` runs the hook again, and now it works.
    r = drive(r.state, [{ type: 'rollback-requested' }]);
    assert.equal(r.state.phase, 'rolling-back');
    assert.equal(r.state.rollback?.failedAttempts, 0);
    assert.deepEqual(r.actions, [{ type: 'run-rollback-hook', from: R2, to: R1 }]);
    r = drive(r.state, [{ type: 'rollback-done', commit: R2.commit }]);
    assert.equal(r.state.phase, 'idle');
    assert.deepEqual(r.state.blessed, R1);
    assert.equal(drive(r.state, [seen(R3)]).state.pending?.commit, R3.commit);
  });

  it('counts a try when verification, the apply or the health check fails, or the check is late', () => {
    const base = blessedState();
    // verify-failed: nothing applied, the pending release is dropped, the count grows; 3 and it is done.
    let s = base;
    for (let i = 1; i <= 3; i++) {
      const r = drive(s, [seen(R2), { type: 'verify-failed', commit: R2.commit, reason: 'bad signature' }]);
      assert.deepEqual([r.state.phase, r.state.pending, r.state.failedVersions[R2.commit]], ['idle', null, i]);
      assert.deepEqual(kinds(r.actions), ['set-ref pending=none', 'announce failed']);
      assert.equal(r.state.history.at(-1)?.note, 'bad signature');
      s = r.state;
    }
    assert.ok(step(s, seen(R2), T0).ignored?.includes('failed 3 times'));

    const staged = drive(base, [seen(R2), { type: 'verified', commit: R2.commit }, { type: 'apply-started', commit: R2.commit }]);
    const applyFailed = drive(staged.state, [{ type: 'apply-failed', commit: R2.commit, reason: 'disk full' }]);
    assert.deepEqual([applyFailed.state.phase, applyFailed.state.failedVersions[R2.commit], applyFailed.state.pending?.triesLeft], ['rolling-back', 1, 2]);
    assert.match(applyFailed.state.history.at(-1)?.note ?? '', /apply failed: disk full; 2 tries left/);

    const checking = drive(staged.state, [{ type: 'applied', commit: R2.commit }], T0);
    const late = drive(checking.state, [{ type: 'health-ok', commit: R2.commit }], T0 + TIMEOUT + 1);
    assert.deepEqual([late.state.phase, late.state.failedVersions[R2.commit], late.state.blessed], ['rolling-back', 1, R1]);
    const onTime = drive(checking.state, [{ type: 'health-ok', commit: R2.commit }], T0 + TIMEOUT);
    assert.deepEqual(onTime.state.blessed, R2, 'exactly at the deadline is on time');
    // Starting a try counts nothing by itself, and success keeps earlier failures on record.
    assert.deepEqual(staged.state.failedVersions, {});
    const afterOneFailure = drive(applyFailed.state, [{ type: 'rollback-done', commit: R2.commit }, ...goodPath(R2).slice(2)]);
    assert.deepEqual([afterOneFailure.state.blessed, afterOneFailure.state.failedVersions[R2.commit]], [R2, 1]);
    assert.equal((afterOneFailure.actions.at(-1) as { failures: number }).failures, 1, 'the cluster hears of the earlier failure');
  });

  describe('crash recovery', () => {
    const recover = (s: AgentState, now = T0): StepResult => drive(s, [{ type: 'crash-recovery' }], now);
    const upTo = (events: AgentEvent[]): AgentState => drive(blessedState(), events).state;
    const [seen2, verified2, started2, applied2] = [seen(R2), { type: 'verified', commit: R2.commit }, { type: 'apply-started', commit: R2.commit }, { type: 'applied', commit: R2.commit }] as AgentEvent[] as [AgentEvent, AgentEvent, AgentEvent, AgentEvent];

    it('does nothing when idle', () => {
      const s = blessedState();
      const r = recover(s);
      assert.deepEqual([r.state.phase, r.actions], ['idle', []]);
      assert.deepEqual({ ...r.state, history: [] }, { ...s, history: [] });
    });

    it('verifies again when it crashed verifying, and when staged (the keys it trusts may have changed since)', () => {
      const v = recover(upTo([seen2]));
      assert.deepEqual([v.state.phase, v.actions], ['verifying', [{ type: 'verify', release: R2 }]]);
      const st = recover(upTo([seen2, verified2]));
      assert.deepEqual([st.state.phase, st.actions], ['verifying', [{ type: 'verify', release: R2 }]]);
      assert.deepEqual(st.state.failedVersions, {});
    });

    it('rolls back, counting the try, when it crashed applying', () => {
      const r = recover(upTo([seen2, verified2, started2]));
      assert.deepEqual([r.state.phase, r.state.failedVersions[R2.commit], r.state.pending?.triesLeft], ['rolling-back', 1, 2]);
      assert.deepEqual(r.actions[0], { type: 'run-rollback-hook', from: R2, to: R1 });
      // Crashing while applying cannot retry forever: the third crash gives the release up.
      let s = r.state;
      for (let i = 2; i <= 3; i++) {
        s = drive(s, [{ type: 'rollback-done', commit: R2.commit }, started2, { type: 'crash-recovery' }]).state;
        assert.equal(s.failedVersions[R2.commit], i);
      }
      const end = drive(s, [{ type: 'rollback-done', commit: R2.commit }]);
      assert.deepEqual([end.state.phase, end.state.pending], ['idle', null]);
      assert.ok(step(end.state, seen2, T0).ignored !== undefined);
    });

    it('resumes the health check before the deadline and rolls back after it', () => {
      const checking = upTo([seen2, verified2, started2, applied2]);
      const resumed = recover(checking, T0 + TIMEOUT);
      assert.deepEqual([resumed.state.phase, resumed.actions[1]], ['checking', { type: 'run-health-hook', release: R2, deadline: T0 + TIMEOUT }]);
      assert.deepEqual(resumed.state.failedVersions, {});
      const expired = recover(checking, T0 + TIMEOUT + 1);
      assert.deepEqual([expired.state.phase, expired.state.failedVersions[R2.commit]], ['rolling-back', 1]);
      assert.deepEqual(expired.actions[0], { type: 'run-rollback-hook', from: R2, to: R1 });
    });

    it('runs the rollback hook again when it crashed rolling back', () => {
      const rolling = recover(upTo([seen2, verified2, started2])).state;
      const again = recover(rolling);
      assert.deepEqual([again.state.phase, again.actions], ['rolling-back', [{ type: 'run-rollback-hook', from: R2, to: R1 }]]);
      assert.equal(again.state.failedVersions[R2.commit], 1, 'not counted twice');
    });

    it('rolls back to nothing when the very first release crashes', () => {
      const first = drive(initialAgentState('site/prod'), [seen(R1), { type: 'verified', commit: R1.commit }, { type: 'apply-started', commit: R1.commit }, { type: 'crash-recovery' }]);
      assert.deepEqual(first.actions[0], { type: 'run-rollback-hook', from: R1, to: null });
      const done = drive(first.state, [{ type: 'rollback-done', commit: R1.commit }]);
      assert.deepEqual([done.state.phase, done.state.blessed, done.state.pending?.triesLeft], ['staged', null, 2]);
    });
  });

  describe('rollback requests', () => {
    it('goes back to the previous blessed release and never returns to the one it left', () => {
      const r = drive(blessedState(true), [{ type: 'rollback-requested' }]);
      assert.deepEqual([r.state.phase, r.actions], ['rolling-back', [{ type: 'run-rollback-hook', from: R2, to: R1 }]]);
      const done = drive(r.state, [{ type: 'rollback-done', commit: R2.commit }]);
      assert.deepEqual([done.state.phase, done.state.blessed, done.state.previous], ['idle', R1, null]);
      assert.deepEqual(kinds(done.actions), [`set-ref blessed=${short(R1)}`, 'set-ref previous=none', 'announce stopped']);
      assert.ok(step(done.state, seen(R2), T0).ignored?.includes('given up'));
      assert.ok(step(done.state, { type: 'rollback-requested' }, T0).ignored?.includes('no previous release'), 'one step back only');
    });

    it('is refused without a previous release, or with nothing blessed', () => {
      const one = blessedState();
      const r = step(one, { type: 'rollback-requested' }, T0);
      assert.ok(r.ignored?.includes('no previous release'));
      assert.equal(r.state, one);
      assert.ok(step(initialAgentState('kernel/stable'), { type: 'rollback-requested' }, T0).ignored?.includes('nothing is blessed'));
    });

    it('gives up a release in flight: at once when verifying, staged or checking, after the apply otherwise', () => {
      const staged = drive(blessedState(true), [seen(R3), { type: 'verified', commit: R3.commit }]).state;
      const fromStaged = drive(staged, [{ type: 'rollback-requested' }]);
      assert.deepEqual(kinds(fromStaged.actions), ['set-ref pending=none', 'announce stopped', 'run-rollback-hook']);
      assert.deepEqual([fromStaged.state.pending, fromStaged.state.rollback?.from, fromStaged.state.rollback?.to], [null, R2, R1]);
      assert.ok(fromStaged.state.givenUp.includes(R3.commit) && fromStaged.state.givenUp.includes(R2.commit));

      const stagedOne = drive(blessedState(), [seen(R2)]).state;
      const noPrevious = drive(stagedOne, [{ type: 'rollback-requested' }]);
      assert.deepEqual([noPrevious.state.phase, noPrevious.state.blessed, noPrevious.state.pending], ['idle', R1, null]);
      assert.match(noPrevious.state.history.at(-1)?.note ?? '', /given up; no previous release/);

      const checking = drive(blessedState(), [seen(R2), { type: 'verified', commit: R2.commit }, { type: 'apply-started', commit: R2.commit }, { type: 'applied', commit: R2.commit }]).state;
      const fromChecking = drive(checking, [{ type: 'rollback-requested' }]);
      assert.deepEqual([fromChecking.state.phase, fromChecking.actions], ['rolling-back', [{ type: 'run-rollback-hook', from: R2, to: R1 }]]);
      assert.ok(step(fromChecking.state, { type: 'health-ok', commit: R2.commit }, T0).ignored !== undefined, 'the cancelled check is ignored');
      const back = drive(fromChecking.state, [{ type: 'rollback-done', commit: R2.commit }]);
      assert.deepEqual([back.state.phase, back.state.blessed, back.state.pending], ['idle', R1, null]);
      assert.deepEqual(back.state.failedVersions, {}, 'a request is not a failure');

      const applying = drive(blessedState(), [seen(R2), { type: 'verified', commit: R2.commit }, { type: 'apply-started', commit: R2.commit }]).state;
      const deferred = drive(applying, [{ type: 'rollback-requested' }]);
      assert.deepEqual([deferred.state.phase, deferred.actions, deferred.state.stopAfterApply], ['applying', [], 'requested']);
      const after = drive(deferred.state, [{ type: 'applied', commit: R2.commit }]);
      assert.deepEqual([after.state.phase, after.actions], ['rolling-back', [{ type: 'run-rollback-hook', from: R2, to: R1 }]], 'no health check');
      assert.ok(step(deferred.state, { type: 'rollback-requested' }, T0).ignored !== undefined);
      assert.ok(step(after.state, { type: 'rollback-requested' }, T0).ignored?.includes('already rolling back'));
    });
  });

  describe('halts', () => {
    const applying = (): AgentState => drive(blessedState(), [seen(R2), { type: 'verified', commit: R2.commit }, { type: 'apply-started', commit: R2.commit }]).state;

    it('lets a running apply finish, then rolls it back without a health check and without counting a failure', () => {
      const halted = drive(applying(), [{ type: 'halted', commit: R2.commit }]);
      assert.deepEqual([halted.state.phase, halted.actions, halted.state.stopAfterApply], ['applying', [], 'halted']);
      const applied = drive(halted.state, [{ type: 'applied', commit: R2.commit }]);
      assert.deepEqual([applied.state.phase, applied.actions], ['rolling-back', [{ type: 'run-rollback-hook', from: R2, to: R1 }]]);
      const done = drive(applied.state, [{ type: 'rollback-done', commit: R2.commit }]);
      assert.deepEqual([done.state.phase, done.state.blessed, done.state.pending, done.state.failedVersions], ['idle', R1, null, {}]);
      assert.deepEqual(kinds(done.actions), ['set-ref pending=none', 'announce stopped']);
      assert.ok(step(done.state, seen(R2), T0).ignored?.includes('given up'));
    });

    it('counts a failed apply during a halt, and gives the release up either way', () => {
      const halted = drive(applying(), [{ type: 'halted', commit: R2.commit }, { type: 'apply-failed', commit: R2.commit, reason: 'x' }]);
      assert.deepEqual([halted.state.phase, halted.state.failedVersions[R2.commit], halted.state.pending], ['rolling-back', 1, null]);
      assert.equal(halted.state.rollback?.reason, 'halted');
      const crashed = drive(applying(), [{ type: 'halted', commit: R2.commit }, { type: 'crash-recovery' }]);
      assert.deepEqual([crashed.state.phase, crashed.state.failedVersions, crashed.state.rollback?.reason], ['rolling-back', {}, 'halted']);
    });

    it('drops a release being verified or staged, and rolls back one being checked at once', () => {
      for (const events of [[seen(R2)], [seen(R2), { type: 'verified', commit: R2.commit } as AgentEvent]]) {
        const r = drive(blessedState(), [...events, { type: 'halted', commit: R2.commit }]);
        assert.deepEqual([r.state.phase, r.state.pending, kinds(r.actions)], ['idle', null, ['set-ref pending=none', 'announce stopped']]);
      }
      const checking = drive(applying(), [{ type: 'applied', commit: R2.commit }]).state;
      const r = drive(checking, [{ type: 'halted', commit: R2.commit }]);
      assert.deepEqual([r.state.phase, r.actions], ['rolling-back', [{ type: 'run-rollback-hook', from: R2, to: R1 }]]);
      assert.ok(step(r.state, { type: 'health-ok', commit: R2.commit }, T0).ignored !== undefined);
    });

    it('stops a retry after a failed try, keeps blessed nodes as they are, and remembers halts heard early', () => {
      const rolling = drive(applying(), [{ type: 'apply-failed', commit: R2.commit, reason: 'x' }]).state;
      const halted = drive(rolling, [{ type: 'halted', commit: R2.commit }]);
      const done = drive(halted.state, [{ type: 'rollback-done', commit: R2.commit }]);
      assert.deepEqual([done.state.phase, done.state.pending], ['idle', null], 'no retry after a halt');

      const blessed = blessedState(true);
      const r = step(blessed, { type: 'halted', commit: R2.commit }, T0);
      assert.ok(r.ignored?.includes('already blessed'));
      assert.deepEqual(r.state.blessed, R2);

      const early = drive(blessedState(), [{ type: 'halted', commit: R3.commit }]);
      assert.deepEqual(early.state.givenUp, [R3.commit]);
      assert.ok(step(early.state, seen(R3), T0).ignored?.includes('given up'));
      assert.ok(step(early.state, { type: 'halted', commit: R3.commit }, T0).ignored?.includes('given up already'));
    });
  });

  it('ignores stale and out-of-place events without changing anything', () => {
    const idle = blessedState();
    const staged = drive(idle, [seen(R2), { type: 'verified', commit: R2.commit }]).state;
    const applying = drive(staged, [{ type: 'apply-started', commit: R2.commit }]).state;
    const cases: Array<[AgentState, AgentEvent]> = [
      [idle, { type: 'verified', commit: R2.commit }],
      [idle, { type: 'health-ok', commit: R1.commit }],
      [idle, { type: 'rollback-done', commit: R1.commit }],
      [idle, { type: 'apply-started', commit: R2.commit }],
      [staged, { type: 'apply-started', commit: R3.commit }],
      [staged, { type: 'applied', commit: R2.commit }],
      [staged, seen(R2)],
      [applying, seen(R3)],
      [applying, { type: 'verified', commit: R2.commit }],
      [applying, { type: 'health-failed', commit: R2.commit, reason: 'late' }],
      [applying, { type: 'applied', commit: R3.commit }],
    ];
    for (const [s, e] of cases) {
      const r = step(s, e, T0);
      assert.ok(r.ignored !== undefined, `${e.type} in ${s.phase}`);
      assert.equal(r.state, s);
      assert.deepEqual(r.actions, []);
    }
    // A newer release supersedes one that is only verifying or staged.
    const superseded = drive(staged, [seen(R3)]);
    assert.deepEqual([superseded.state.phase, superseded.state.pending?.commit], ['verifying', R3.commit]);
    assert.equal(superseded.state.history.at(-1)?.note, `supersedes ${R2.commit}`);
  });

  it('refuses malformed events and channels', () => {
    const s = initialAgentState('kernel/stable');
    const bad = (e: unknown): boolean => isGitfsError(e, ErrorCodes.BAD_ARGUMENT);
    assert.throws(() => step(s, { type: 'release-seen', commit: 'abc' as Oid, version: '1' }, T0), bad);
    assert.throws(() => step(s, { type: 'release-seen', commit: R1.commit, version: '1 0' }, T0), bad);
    assert.throws(() => step(s, { type: 'verified', commit: R1.commit.toUpperCase() as Oid }, T0), bad);
    assert.throws(() => step(s, seen(R1), Number.NaN), bad);
    for (const c of ['', 'a b', '../x', 'kernel/', '-x']) assert.throws(() => initialAgentState(c), bad, c);
    for (const change of [{ maxTries: 0 }, { maxTries: 1.5 }, { healthTimeoutMs: -1 }, { restartingApply: 'yes' }]) {
      assert.throws(() => step(s, seen(R1), T0, { ...AGENT_DEFAULTS, ...change } as AgentConfig), bad, JSON.stringify(change));
    }
    // One try only: the first failure is the last.
    const once: AgentConfig = { maxTries: 1, healthTimeoutMs: 1000, restartingApply: false };
    let r = step(s, seen(R1), T0, once);
    for (const e of [{ type: 'verified', commit: R1.commit }, { type: 'apply-started', commit: R1.commit }, { type: 'apply-failed', commit: R1.commit, reason: 'x' }, { type: 'rollback-done', commit: R1.commit }] as AgentEvent[]) r = step(r.state, e, T0, once);
    assert.deepEqual([r.state.phase, r.state.pending, r.state.failedVersions[R1.commit]], ['idle', null, 1]);
    assert.ok(step(r.state, seen(R1), T0, once).ignored?.includes('failed 1 times'));
  });

  it('keeps failedVersions, givenUp and history bounded', () => {
    let s = blessedState();
    for (let i = 0; i < MAX_REMEMBERED + 10; i++) {
      const c = commit(`bad ${i}`);
      s = drive(s, [{ type: 'release-seen', commit: c, version: `0.${i}` }, { type: 'verify-failed', commit: c, reason: 'x' }, { type: 'halted', commit: commit(`halt ${i}`) }]).state;
    }
    assert.equal(Object.keys(s.failedVersions).length, MAX_REMEMBERED);
    assert.equal(s.failedVersions[commit('bad 0')], undefined, 'the oldest went first');
    assert.equal(s.failedVersions[commit(`bad ${MAX_REMEMBERED + 9}`)], 1);
    assert.equal(s.givenUp.length, MAX_REMEMBERED);
    assert.equal(s.givenUp.at(-1), commit(`halt ${MAX_REMEMBERED + 9}`));
    assert.equal(s.history.length, MAX_HISTORY);
    assert.equal(s.history.at(-1)?.event, 'halted');
    const longReason = drive(blessedState(), [seen(R2), { type: 'verify-failed', commit: R2.commit, reason: 'x'.repeat(1000) }]).state;
    assert.equal(longReason.history.at(-1)?.note?.length, 200);
  });

  it('refOrder: a ref whose release another is to take moves after it; refs ending on none go last; trading refs fall back to that', () => {
    const [NEW, OLD, OLDER] = [R3.commit, R2.commit, R1.commit];
    // Killed after a health check passed: previous takes the old blessed release before blessed moves on, pending goes last.
    assert.deepEqual(refOrder({ pending: NEW, blessed: OLD, previous: OLDER }, { pending: null, blessed: NEW, previous: OLD }), ['previous', 'blessed', 'pending']);
    assert.deepEqual(refOrder({ pending: NEW, blessed: OLD, previous: OLDER }, { blessed: OLD, previous: OLDER }), [], 'nothing to move; pending left as it is');
    assert.deepEqual(refOrder({ pending: null, blessed: OLD, previous: OLDER }, { pending: null, blessed: OLDER, previous: null }), ['blessed', 'previous']);
    assert.deepEqual(refOrder({ pending: null, blessed: OLD, previous: OLDER }, { pending: null, blessed: OLDER, previous: OLD }), ['blessed', 'previous'], 'a trade: no order keeps both named');
  });

  it('releaseRefsOf: an operator rollback (from the blessed release) has nothing pending', () => {
    const s = drive(blessedState(true), [{ type: 'rollback-requested' }]).state;
    assert.equal(s.phase, 'rolling-back');
    assert.equal(releaseRefsOf(s).pending, null);
  });

  it('keeps the newest transition naming a release through any number of starts that name none (what a restarted node reports: a failure here keeps its halt visible)', () => {
    let s = drive(blessedState(), [seen(R2), { type: 'verified', commit: R2.commit }, ...failTry(R2), { type: 'halted', commit: R2.commit }]).state;
    s = drive(s, Array.from({ length: MAX_HISTORY * 2 }, (): AgentEvent => ({ type: 'crash-recovery' }))).state;
    assert.equal(s.history.length, MAX_HISTORY);
    assert.equal(s.history[0]?.commit, R2.commit, 'the halt of R2, first');
    assert.ok(s.history.slice(1).every((t) => t.event === 'crash-recovery'));
    assert.deepEqual(decodeAgentState(encodeAgentState(s)), s, 'and stored so');
    // A later transition naming a release lets it go as usual.
    s = drive(s, [seen(R3)]).state;
    assert.equal(s.history.filter((t) => t.commit === R2.commit).length, 0);
  });

  describe('stored form', () => {
    const sample = drive(blessedState(true), [seen(R3), { type: 'verified', commit: R3.commit }, { type: 'apply-started', commit: R3.commit }, { type: 'applied', commit: R3.commit }]).state;

    it('is JSON with a fixed key order that decodes to the same state', () => {
      const text = encodeAgentState(sample);
      assert.ok(text.endsWith('\n'));
      assert.deepEqual(Object.keys(JSON.parse(text)), ['format', 'channel', 'phase', 'blessed', 'previous', 'pending', 'checkDeadline', 'stopAfterApply', 'rollback', 'failedVersions', 'givenUp', 'history']);
      assert.deepEqual(decodeAgentState(text), sample);
      assert.deepEqual(decodeAgentState(Buffer.from(text)), sample);
      assert.equal(encodeAgentState(decodeAgentState(text)), text);
    });

    it('refuses damaged, inconsistent or newer states with GITFS_BAD_AGENT_STATE', () => {
      const json = JSON.parse(encodeAgentState(sample)) as Record<string, unknown>;
      const refused = (change: (o: Record<string, unknown>) => void, name: string): void => {
        const o = structuredClone(json);
        change(o);
        assert.throws(() => decodeAgentState(JSON.stringify(o)), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_AGENT_STATE), name);
      };
      refused((o) => (o['format'] = 2), 'newer format');
      refused((o) => (o['extra'] = 1), 'unknown key');
      refused((o) => delete o['history'], 'missing key');
      refused((o) => (o['channel'] = 'a b'), 'bad channel');
      refused((o) => (o['phase'] = 'dancing'), 'bad phase');
      refused((o) => (o['checkDeadline'] = null), 'checking without a deadline');
      refused((o) => (o['phase'] = 'idle'), 'idle with a pending release and a deadline');
      refused((o) => (o['pending'] = null), 'checking without a pending release');
      refused((o) => (o['phase'] = 'rolling-back'), 'rolling back without a rollback');
      refused((o) => (o['stopAfterApply'] = 'halted'), 'stopAfterApply outside applying');
      refused((o) => (o['blessed'] = { commit: 'xyz', version: '1' }), 'bad commit id');
      refused((o) => (o['blessed'] = { commit: R1.commit, version: '1', extra: 1 }), 'extra release key');
      refused((o) => ((o['pending'] as Record<string, unknown>)['triesLeft'] = 0), 'no tries left while pending');
      refused((o) => (o['failedVersions'] = { [R1.commit]: 0 }), 'zero failures');
      refused((o) => (o['failedVersions'] = { nope: 1 }), 'bad failedVersions key');
      refused((o) => (o['failedVersions'] = []), 'failedVersions not an object');
      refused((o) => (o['givenUp'] = [R1.commit, R1.commit]), 'duplicate givenUp');
      refused((o) => (o['history'] = Array.from({ length: 51 }, () => (json['history'] as unknown[])[0])), 'history too long');
      refused((o) => ((o['history'] as Array<Record<string, unknown>>)[0] as Record<string, unknown>)['event'] = 'party', 'bad history event');
      refused((o) => ((o['history'] as Array<Record<string, unknown>>)[0] as Record<string, unknown>)['note'] = 'n'.repeat(201), 'long note');
      for (const text of ['', 'null', '[]', '{', 'x'.repeat(300 * 1024)]) assert.throws(() => decodeAgentState(text), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_AGENT_STATE), text.slice(0, 10));
      assert.throws(() => decodeAgentState(Buffer.from([0x7b, 0xff, 0x7d])), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_AGENT_STATE));
    });

    it('never throws anything but GITFS_BAD_AGENT_STATE on a randomly damaged file', () => {
      const text = encodeAgentState(sample);
      fc.assert(
        fc.property(fc.nat(), fc.integer({ min: 32, max: 126 }), fc.boolean(), (at, char, cut) => {
          const i = at % text.length;
          const damaged = cut ? text.slice(0, i) : text.slice(0, i) + String.fromCharCode(char) + text.slice(i + 1);
          try {
            const s = decodeAgentState(damaged);
            assert.deepEqual(decodeAgentState(encodeAgentState(s)), s, 'whatever decodes is a consistent state');
          } catch (e) {
            assert.ok(isGitfsError(e, ErrorCodes.BAD_AGENT_STATE), String(e));
          }
        }),
        { numRuns: 1000 },
      );
    });
  });

  it('keeps its invariants over random event sequences', () => {
    // Ten releases, so the walk does not run out of ones not yet given up; progress events weigh
    // double, and most events name the release in flight, so the walk gets deep into the phases.
    const releases = Array.from({ length: 10 }, (_, i): Release => ({ commit: commit(`walk ${i}`), version: `${i}.0` }));
    const progress = ['release-seen', 'verified', 'apply-started', 'applied', 'health-ok', 'rollback-done'] as const;
    const TYPES = [...progress, ...progress, 'verify-failed', 'apply-failed', 'health-failed', 'rollback-failed', 'halted', 'rollback-requested', 'crash-recovery'] as const;
    const stepArb = fc.record({ type: fc.constantFrom(...TYPES), which: fc.nat({ max: 29 }), dt: fc.oneof({ arbitrary: fc.nat({ max: 1000 }), weight: 5 }, { arbitrary: fc.nat({ max: 2 * TIMEOUT }), weight: 1 }) });
    const reached = new Set<string>();
    const start = blessedState(true);
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.array(stepArb, { minLength: 20, maxLength: 150, size: 'max' }), (twoBlessed, restartingApply, steps) => {
        const config: AgentConfig = { ...AGENT_DEFAULTS, restartingApply };
        // Half the walks start with two releases blessed, so there is one to go back to.
        let s = twoBlessed ? start : initialAgentState('kernel/stable');
        // The release refs as the set-ref actions leave them: releaseRefsOf says the same of every state.
        const refs: { pending: string | null; blessed: string | null; previous: string | null } = { pending: null, blessed: s.blessed?.commit ?? null, previous: s.previous?.commit ?? null };
        let now = T0;
        for (const { type, which, dt } of steps) {
          now += dt;
          const inFlight = s.pending ?? s.rollback?.from;
          const r0 = which >= 10 && inFlight !== null && inFlight !== undefined ? inFlight : (releases[which % 10] as Release);
          const e: AgentEvent =
            type === 'release-seen' ? seen(r0)
            : type === 'verify-failed' || type === 'apply-failed' || type === 'health-failed' || type === 'rollback-failed' ? { type, commit: r0.commit, reason: 'r' }
            : type === 'rollback-requested' || type === 'crash-recovery' ? { type }
            : { type, commit: r0.commit };
          const r = step(s, e, now, config);
          for (const a of r.actions) {
            if (a.type === 'announce') assert.ok((NODE_ROLLOUT_STATES as readonly string[]).includes(a.state), `announces ${a.state}, which announcements refuse`);
            if (a.type === 'set-ref') {
              // The release blessed until now stays named throughout: never a moment prune could take it.
              if (a.ref === 'blessed' && s.blessed !== null && a.commit !== s.blessed.commit && r.state.previous?.commit === s.blessed.commit) assert.equal(refs.previous, s.blessed.commit, 'pinned as previous before the blessed ref leaves it');
              refs[a.ref] = a.commit;
            }
            if (a.type === 'run-apply-hook') {
              assert.ok((s.failedVersions[a.release.commit] ?? 0) < AGENT_DEFAULTS.maxTries, 'never applies a release that failed maxTries times');
              assert.ok(!s.givenUp.includes(a.release.commit), 'never applies a given-up release');
            }
          }
          if (r.ignored === undefined) reached.add(`${s.phase}>${r.state.phase}`);
          s = r.state;
          assert.deepEqual(decodeAgentState(encodeAgentState(s)), s, 'every state satisfies the stored-form invariants');
          if (s.pending !== null) assert.equal(s.pending.triesLeft + (s.failedVersions[s.pending.commit] ?? 0), AGENT_DEFAULTS.maxTries, 'triesLeft is maxTries minus failures');
          if (s.blessed !== null && s.previous !== null) assert.notEqual(s.blessed.commit, s.previous.commit);
          const said = releaseRefsOf(s);
          assert.deepEqual({ ...said, pending: said.pending === undefined ? refs.pending : said.pending }, refs, `release refs after ${type} into ${s.phase}`);
        }
      }),
      { numRuns: 300 },
    );
    // The walk went everywhere the machine can go.
    for (const t of ['idle>verifying', 'verifying>staged', 'staged>applying', 'applying>checking', 'checking>idle', 'checking>rolling-back', 'applying>rolling-back', 'rolling-back>staged', 'rolling-back>idle', 'idle>rolling-back', 'verifying>idle', 'staged>idle', 'rolling-back>stuck', 'stuck>rolling-back']) {
      assert.ok(reached.has(t), `the random walk never took ${t}: ${[...reached].sort().join(' ')}`);
    }
  });
});
