/**
 * The rollout agent of one node for one channel, as a pure state machine:
 * `step(state, event, now) → { state, actions }`. The caller (the agent process) runs hooks,
 * moves refs and talks to the cluster; this file only decides.
 *
 * Contract (write-ahead): the caller stores the returned state durably BEFORE it carries out
 * the actions, then feeds each outcome back as an event. So a crash at any moment leaves a
 * stored phase that says what may have been under way, and `crash-recovery` (sent at every
 * start of the agent, planned reboots included) decides what to do about it.
 *
 * Phases and the good path:
 *   idle ─release-seen→ verifying ─verified→ staged ─apply-started→ applying ─applied→ checking
 *        ─health-ok→ idle (blessed = the release, previous = the release before)
 * `apply-started` is the caller saying the node's wave is open (waves.ts mayApply); a node may
 * fetch and verify before that. It records the check deadline before the apply hook runs
 * (kernel-images/README.md: "the agent must record health pending … deadline T before calling
 * apply"), so an apply that restarts the host and never returns is followed by the health check
 * after the restart, if the channel says its apply may do that (`restartingApply`). A restart in
 * checking resumes the check until the deadline. Health hooks must confirm that the release is
 * what actually runs (the kernel hooks read /proc/cmdline).
 *
 * Tries (default 3 per release commit). A try is counted as failed, in failedVersions, when
 * its verification fails, its apply hook fails, its health check fails or reports after the
 * deadline, or the agent restarts in `applying` (without `restartingApply`: the apply may have
 * done anything, so it is undone) or in `applying`/`checking` past the deadline. A failed
 * apply or check is rolled back (to the blessed release, or to nothing if none) and, if tries
 * remain, the release goes back to staged to be applied again when the caller says so; a
 * release that has failed `maxTries` times is never tried again. Counts are never cleared
 * (a blessed release keeps its count: the cluster halts on any failure, success later or not).
 *
 * Halts and requests. `halted` (the cluster stopped this rollout) and `rollback-requested` (an
 * operator: go back one release) never interrupt a running hook: during apply they are
 * remembered and the release is rolled back once the hook returns; during the health check the
 * rollback starts at once (the caller cancels the check; its late result is ignored). A halted
 * or rolled-back-from release is given up: never applied again automatically. A halt does not
 * roll back a node that has already blessed the release.
 *
 * Events that do not fit the current phase or release (late hook results, repeated
 * announcements) leave the state unchanged and say why in `ignored`. failedVersions, givenUp
 * and history are bounded; the oldest entries go first.
 */
import { isBranchName } from '../branches/ref-name.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import { isReleaseVersion } from './manifest.js';
import type { NodeRolloutState } from './waves.js';

export const AGENT_STATE_FORMAT = 1;
export const AGENT_PHASES = ['idle', 'verifying', 'staged', 'applying', 'checking', 'rolling-back', 'stuck'] as const;
export type AgentPhase = (typeof AGENT_PHASES)[number];

export interface Release {
  readonly commit: Oid;
  readonly version: string;
}

export interface PendingRelease extends Release {
  /** maxTries minus the failed tries of this commit. */
  readonly triesLeft: number;
}

export type RollbackReason = 'failed' | 'halted' | 'requested';

export interface Rollback {
  readonly from: Release;
  /** What runs afterwards; null when nothing was blessed before (the hook removes the release). */
  readonly to: Release | null;
  readonly reason: RollbackReason;
  /** How many times the rollback hook has failed for it so far. */
  readonly failedAttempts: number;
}

/** Rollback hook runs per rollback before the node gives up and waits for an operator (phase stuck). */
export const MAX_ROLLBACK_ATTEMPTS = 3;

export interface Transition {
  readonly at: number;
  readonly event: AgentEvent['type'];
  readonly from: AgentPhase;
  readonly to: AgentPhase;
  readonly commit?: string;
  readonly note?: string;
}

export interface AgentState {
  readonly format: typeof AGENT_STATE_FORMAT;
  readonly channel: string;
  readonly phase: AgentPhase;
  readonly blessed: Release | null;
  /** The release blessed before `blessed`: where rollback-requested goes. */
  readonly previous: Release | null;
  /** The release being verified, staged, applied or checked (kept while a failed try rolls back). */
  readonly pending: PendingRelease | null;
  /** When the health check must have passed (phases applying and checking). */
  readonly checkDeadline: number | null;
  /** A halt or rollback request that arrived while the apply hook ran (phase applying). */
  readonly stopAfterApply: 'halted' | 'requested' | null;
  /** Phase rolling-back: from what, to what, why. */
  readonly rollback: Rollback | null;
  /** Failed tries by commit, oldest first. */
  readonly failedVersions: Readonly<Record<string, number>>;
  /** Commits halted or rolled back from by request, oldest first: never applied again automatically. */
  readonly givenUp: readonly string[];
  readonly history: readonly Transition[];
}

export type AgentEvent =
  | { readonly type: 'release-seen'; readonly commit: Oid; readonly version: string }
  | { readonly type: 'verified'; readonly commit: Oid }
  | { readonly type: 'verify-failed'; readonly commit: Oid; readonly reason: string }
  | { readonly type: 'apply-started'; readonly commit: Oid }
  | { readonly type: 'applied'; readonly commit: Oid }
  | { readonly type: 'apply-failed'; readonly commit: Oid; readonly reason: string }
  | { readonly type: 'health-ok'; readonly commit: Oid }
  | { readonly type: 'health-failed'; readonly commit: Oid; readonly reason: string }
  | { readonly type: 'rollback-done'; readonly commit: Oid }
  | { readonly type: 'rollback-failed'; readonly commit: Oid; readonly reason: string }
  | { readonly type: 'halted'; readonly commit: Oid }
  | { readonly type: 'rollback-requested' }
  | { readonly type: 'crash-recovery' };

export type AgentAction =
  /** Fetch the release commit, check its signature, manifest and payload; answer verified or verify-failed. */
  | { readonly type: 'verify'; readonly release: Release }
  | { readonly type: 'run-apply-hook'; readonly release: Release }
  | { readonly type: 'run-health-hook'; readonly release: Release; readonly deadline: number }
  | { readonly type: 'run-rollback-hook'; readonly from: Release; readonly to: Release | null }
  /** Point the channel's pending or blessed ref at a commit, or delete it (null). */
  | { readonly type: 'set-ref'; readonly ref: ReleaseRef; readonly commit: Oid | null }
  /** Tell the cluster how this node stands on a release (its rollout report; waves.ts reads it). */
  | { readonly type: 'announce'; readonly commit: Oid; readonly version: string; readonly state: NodeRolloutState; readonly failures: number };

export interface StepResult {
  readonly state: AgentState;
  readonly actions: readonly AgentAction[];
  /** Set when the event did not apply (state unchanged): why. */
  readonly ignored?: string;
}

export interface AgentConfig {
  readonly maxTries: number;
  /**
   * How long the health check may take to pass, from the end of the apply; from its start when
   * the apply restarts the host (then it covers the apply, the restart and the check).
   */
  readonly healthTimeoutMs: number;
  /**
   * The channel's apply hook may restart the host and never return (kernel hooks with
   * GITFS_REBOOT=1): a restart in `applying` then goes on to the health check instead of
   * rolling back. Off by default: an apply cut short is undone.
   */
  readonly restartingApply: boolean;
}

export const AGENT_DEFAULTS: AgentConfig = { maxTries: 3, healthTimeoutMs: 300_000, restartingApply: false };
export const MAX_HISTORY = 50;
export const MAX_REMEMBERED = 64;
export const MAX_NOTE = 200;

function badArgument(message: string): GitfsError {
  return new GitfsError(ErrorCodes.BAD_ARGUMENT, `rollout agent: ${message}`);
}

export function initialAgentState(channel: string): AgentState {
  if (!isBranchName(channel)) throw badArgument(`a channel is a branch name, not ${JSON.stringify(String(channel).slice(0, 64))}`);
  return { format: AGENT_STATE_FORMAT, channel, phase: 'idle', blessed: null, previous: null, pending: null, checkDeadline: null, stopAfterApply: null, rollback: null, failedVersions: {}, givenUp: [], history: [] };
}

const release = (r: Release): Release => ({ commit: r.commit, version: r.version });
const failuresOf = (s: AgentState, commit: string): number => (Object.hasOwn(s.failedVersions, commit) ? (s.failedVersions[commit] as number) : 0);
const announce = (s: AgentState, r: Release, state: NodeRolloutState): AgentAction => ({ type: 'announce', commit: r.commit, version: r.version, state, failures: failuresOf(s, r.commit) });

function withFailure(s: AgentState, commit: string): Readonly<Record<string, number>> {
  const next: Record<string, number> = {};
  const keys = Object.keys(s.failedVersions).filter((k) => k !== commit);
  for (const k of keys.slice(Math.max(0, keys.length - (MAX_REMEMBERED - 1)))) next[k] = s.failedVersions[k] as number;
  next[commit] = failuresOf(s, commit) + 1;
  return next;
}

function withGivenUp(s: AgentState, commit: string): readonly string[] {
  return [...s.givenUp.filter((c) => c !== commit), commit].slice(-MAX_REMEMBERED);
}

/** Counts a failed try of the pending release and starts rolling it back to the blessed release. */
function failPending(s: AgentState, why: string): { state: AgentState; actions: AgentAction[]; note: string } {
  const p = s.pending as PendingRelease;
  const failedVersions = withFailure(s, p.commit);
  const stop = s.stopAfterApply;
  const triesLeft = p.triesLeft - 1;
  // A stop that came during the apply gives the release up; otherwise it stays pending for a retry.
  const pending = stop === null && triesLeft > 0 ? { ...release(p), triesLeft } : null;
  const givenUp = stop === null ? s.givenUp : withGivenUp(s, p.commit);
  const rollback: Rollback = { from: release(p), to: s.blessed, reason: stop ?? 'failed', failedAttempts: 0 };
  const state: AgentState = { ...s, phase: 'rolling-back', pending, checkDeadline: null, stopAfterApply: null, rollback, failedVersions, givenUp };
  return { state, actions: [{ type: 'run-rollback-hook', from: rollback.from, to: rollback.to }, announce(state, p, 'failed')], note: `${why}; ${triesLeft > 0 ? `${triesLeft} tries left` : 'no tries left'}` };
}

/** Gives the pending release up (halt or request) and rolls it back to the blessed release. */
function stopPending(s: AgentState, reason: 'halted' | 'requested'): { state: AgentState; actions: AgentAction[] } {
  const p = s.pending as PendingRelease;
  const rollback: Rollback = { from: release(p), to: s.blessed, reason, failedAttempts: 0 };
  const state: AgentState = { ...s, phase: 'rolling-back', pending: null, checkDeadline: null, stopAfterApply: null, rollback, givenUp: withGivenUp(s, p.commit) };
  return { state, actions: [{ type: 'run-rollback-hook', from: rollback.from, to: rollback.to }] };
}

/** Drops a pending release that was only being verified or waiting (nothing applied). */
function dropPending(s: AgentState): { state: AgentState; actions: AgentAction[] } {
  const p = s.pending as PendingRelease;
  const state: AgentState = { ...s, phase: 'idle', pending: null, givenUp: withGivenUp(s, p.commit) };
  return { state, actions: [{ type: 'set-ref', ref: 'pending', commit: null }, announce(state, p, 'stopped')] };
}

function rollbackBlessed(s: AgentState): { state: AgentState; actions: AgentAction[] } | string {
  if (s.blessed === null) return 'nothing is blessed';
  if (s.previous === null) return 'no previous release to go back to';
  const rollback: Rollback = { from: s.blessed, to: s.previous, reason: 'requested', failedAttempts: 0 };
  const state: AgentState = { ...s, phase: 'rolling-back', rollback, givenUp: withGivenUp(s, s.blessed.commit) };
  return { state, actions: [{ type: 'run-rollback-hook', from: rollback.from, to: rollback.to }] };
}

type Outcome = { state: AgentState; actions: AgentAction[]; note?: string } | string;

function decide(s: AgentState, e: AgentEvent, now: number, config: AgentConfig): Outcome {
  const p = s.pending;
  const isPending = (commit: Oid): boolean => p !== null && p.commit === commit;
  if (s.phase === 'stuck' && e.type !== 'rollback-requested' && e.type !== 'crash-recovery') {
    return `stuck: the rollback from ${s.rollback?.from.commit} failed; \`gitfs rollout rollback\` runs it again`;
  }
  switch (e.type) {
    case 'release-seen': {
      if (s.blessed?.commit === e.commit) return 'already blessed';
      if (s.givenUp.includes(e.commit)) return 'given up (halted or rolled back from)';
      const failures = failuresOf(s, e.commit);
      if (failures >= config.maxTries) return `failed ${failures} times; never tried again`;
      if (s.phase !== 'idle' && s.phase !== 'verifying' && s.phase !== 'staged') return `busy ${s.phase} ${p?.commit ?? s.rollback?.from.commit}; send it again when idle`;
      if (isPending(e.commit)) return 'already in progress';
      const next: PendingRelease = { commit: e.commit, version: e.version, triesLeft: config.maxTries - failures };
      const state: AgentState = { ...s, phase: 'verifying', pending: next };
      const note = p === null ? undefined : `supersedes ${p.commit}`;
      return { state, actions: [{ type: 'set-ref', ref: 'pending', commit: e.commit }, announce(state, next, 'fetching'), { type: 'verify', release: release(next) }], ...(note === undefined ? {} : { note }) };
    }
    case 'verified': {
      if (s.phase !== 'verifying' || !isPending(e.commit)) return 'not verifying this release';
      const state: AgentState = { ...s, phase: 'staged' };
      return { state, actions: [announce(state, p as PendingRelease, 'staged')] };
    }
    case 'verify-failed': {
      if (s.phase !== 'verifying' || !isPending(e.commit)) return 'not verifying this release';
      const state: AgentState = { ...s, phase: 'idle', pending: null, failedVersions: withFailure(s, e.commit) };
      return { state, actions: [{ type: 'set-ref', ref: 'pending', commit: null }, announce(state, p as PendingRelease, 'failed')], note: e.reason };
    }
    case 'apply-started': {
      if (s.phase !== 'staged' || !isPending(e.commit)) return 'no staged release with this commit';
      const state: AgentState = { ...s, phase: 'applying', checkDeadline: now + config.healthTimeoutMs };
      return { state, actions: [announce(state, p as PendingRelease, 'applying'), { type: 'run-apply-hook', release: release(p as PendingRelease) }] };
    }
    case 'applied': {
      if (s.phase !== 'applying' || !isPending(e.commit)) return 'not applying this release';
      if (s.stopAfterApply !== null) return stopPending(s, s.stopAfterApply);
      // The apply returned: the check gets its whole time from now.
      const deadline = now + config.healthTimeoutMs;
      const state: AgentState = { ...s, phase: 'checking', checkDeadline: deadline };
      const r = release(p as PendingRelease);
      return { state, actions: [announce(state, r, 'checking'), { type: 'run-health-hook', release: r, deadline }] };
    }
    case 'apply-failed':
      if (s.phase !== 'applying' || !isPending(e.commit)) return 'not applying this release';
      return failPending(s, `apply failed: ${e.reason}`);
    case 'health-ok': {
      if (s.phase !== 'checking' || !isPending(e.commit)) return 'not checking this release';
      if (now > (s.checkDeadline as number)) return failPending(s, 'health check passed after its deadline');
      const blessed = release(p as PendingRelease);
      const state: AgentState = { ...s, phase: 'idle', blessed, previous: s.blessed, pending: null, checkDeadline: null };
      // The release blessed until now pinned as previous before the blessed ref leaves it: prune never finds it unnamed.
      const pin: AgentAction = { type: 'set-ref', ref: 'previous', commit: s.blessed?.commit ?? null };
      return { state, actions: [pin, { type: 'set-ref', ref: 'blessed', commit: blessed.commit }, { type: 'set-ref', ref: 'pending', commit: null }, announce(state, blessed, 'blessed')] };
    }
    case 'health-failed':
      if (s.phase !== 'checking' || !isPending(e.commit)) return 'not checking this release';
      return failPending(s, `health check failed: ${e.reason}`);
    case 'rollback-done': {
      const rb = s.rollback;
      if (s.phase !== 'rolling-back' || rb === null || rb.from.commit !== e.commit) return 'not rolling back from this release';
      const base: AgentState = { ...s, rollback: null };
      if (rb.reason === 'requested' && s.blessed?.commit === rb.from.commit) {
        // Back one release: what was previous is blessed again, and there is nothing before it.
        const state: AgentState = { ...base, phase: 'idle', blessed: rb.to, previous: null };
        return { state, actions: [{ type: 'set-ref', ref: 'blessed', commit: rb.to?.commit ?? null }, { type: 'set-ref', ref: 'previous', commit: null }, announce(state, rb.from, 'stopped')] };
      }
      if (p !== null) {
        const state: AgentState = { ...base, phase: 'staged' };
        return { state, actions: [announce(state, rb.from, 'rolled-back')], note: `staged again, ${p.triesLeft} tries left` };
      }
      const state: AgentState = { ...base, phase: 'idle' };
      return { state, actions: [{ type: 'set-ref', ref: 'pending', commit: null }, announce(state, rb.from, rb.reason === 'failed' ? 'rolled-back' : 'stopped')] };
    }
    case 'rollback-failed': {
      const rb = s.rollback;
      if (s.phase !== 'rolling-back' || rb === null || rb.from.commit !== e.commit) return 'not rolling back from this release';
      const failedAttempts = rb.failedAttempts + 1;
      if (failedAttempts < MAX_ROLLBACK_ATTEMPTS) {
        const state: AgentState = { ...s, rollback: { ...rb, failedAttempts } };
        return { state, actions: [{ type: 'run-rollback-hook', from: rb.from, to: rb.to }], note: `rollback hook failed (${e.reason}); run ${failedAttempts + 1} of ${MAX_ROLLBACK_ATTEMPTS}` };
      }
      // What runs here now is unknown: stop, tell the cluster the release failed (it halts), and
      // wait for an operator. The release is given up; nothing new is applied over a broken node.
      const state: AgentState = { ...s, phase: 'stuck', pending: null, rollback: { ...rb, failedAttempts }, givenUp: withGivenUp(s, rb.from.commit) };
      return {
        state,
        actions: [{ type: 'set-ref', ref: 'pending', commit: null }, announce(state, rb.from, 'failed')],
        note: `rollback hook failed ${failedAttempts} times (${e.reason}); stuck until an operator runs gitfs rollout rollback`,
      };
    }
    case 'halted': {
      if (s.blessed?.commit === e.commit) return 'already blessed here; a halt does not roll back blessed nodes';
      if (!isPending(e.commit)) {
        if (s.givenUp.includes(e.commit)) return 'given up already';
        // Heard before the release itself (or after this node finished with it): never start it.
        return { state: { ...s, givenUp: withGivenUp(s, e.commit) }, actions: [] };
      }
      if (s.phase === 'verifying' || s.phase === 'staged') return dropPending(s);
      if (s.phase === 'applying') {
        if (s.stopAfterApply !== null) return 'a stop is already waiting for the apply to end';
        return { state: { ...s, stopAfterApply: 'halted', givenUp: withGivenUp(s, e.commit) }, actions: [], note: 'rolls back once the apply hook returns' };
      }
      if (s.phase === 'checking') return stopPending(s, 'halted');
      // rolling-back a failed try: no retry afterwards.
      return { state: { ...s, pending: null, givenUp: withGivenUp(s, e.commit) }, actions: [] };
    }
    case 'rollback-requested': {
      if (s.phase === 'rolling-back') return 'already rolling back';
      if (s.phase === 'stuck') {
        const rb = s.rollback as Rollback;
        const state: AgentState = { ...s, phase: 'rolling-back', rollback: { ...rb, failedAttempts: 0 } };
        return { state, actions: [{ type: 'run-rollback-hook', from: rb.from, to: rb.to }], note: 'an operator asked: roll back again' };
      }
      if (s.phase === 'applying') {
        if (s.stopAfterApply !== null) return 'a stop is already waiting for the apply to end';
        return { state: { ...s, stopAfterApply: 'requested', givenUp: withGivenUp(s, (p as PendingRelease).commit) }, actions: [], note: 'rolls back once the apply hook returns' };
      }
      if (s.phase === 'checking') return stopPending(s, 'requested');
      if (s.phase === 'verifying' || s.phase === 'staged') {
        const dropped = dropPending(s);
        const back = rollbackBlessed(dropped.state);
        return typeof back === 'string' ? { ...dropped, note: `release given up; ${back}` } : { state: back.state, actions: [...dropped.actions, ...back.actions] };
      }
      return rollbackBlessed(s);
    }
    case 'crash-recovery':
      return recover(s, now, config);
  }
}

/** The refs the agent keeps (refs/gitfs/<ref>/<channel>): what prune and git gc keep of a channel beside its branch. */
export type ReleaseRef = 'pending' | 'blessed' | 'previous';

/**
 * What the release refs name once every `set-ref` of the steps that led to `s` is done: the
 * blessed release, the one before it (where a rollback by request goes), and the pending one.
 * While a release given up rolls back, the pending ref may still name it or not, depending on the
 * way there (undefined: either). The agent restores them at start: a kill between storing a state
 * and moving its refs leaves them behind it.
 */
export function releaseRefsOf(s: AgentState): Readonly<Record<ReleaseRef, Oid | null | undefined>> {
  // Rolling back a release that was pending, its ref may still name it until the rollback is done;
  // rolling back from the blessed one (an operator's), nothing is pending.
  const pending = s.pending !== null ? s.pending.commit : s.phase === 'rolling-back' && s.rollback?.from.commit !== s.blessed?.commit ? undefined : null;
  return { pending, blessed: s.blessed?.commit ?? null, previous: s.previous?.commit ?? null };
}

/**
 * The order in which to point the release refs from `now` to `target` (a ref absent from
 * `target` is left as it is) so that no release named before is named by none midway: a ref
 * whose release another ref is to take is moved after that one (after a health check, previous
 * takes the old blessed release before blessed moves on). Where refs trade releases no order
 * keeps every one named; the refs that end naming one go first then.
 */
export function refOrder(now: Readonly<Record<ReleaseRef, Oid | null>>, target: Partial<Readonly<Record<ReleaseRef, Oid | null>>>): ReleaseRef[] {
  const moving = RELEASE_REFS.filter((r) => target[r] !== undefined && target[r] !== now[r]).sort((x, y) => Number(target[x] === null) - Number(target[y] === null));
  // r after s whenever s is to take the release r names now.
  const safe = (order: readonly ReleaseRef[]): boolean => order.every((r, i) => now[r] === null || !order.slice(i + 1).some((s) => target[s] === now[r]));
  return permutations(moving).find(safe) ?? moving;
}

const RELEASE_REFS: readonly ReleaseRef[] = ['pending', 'blessed', 'previous'];

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [x, ...rest]));
}

function recover(s: AgentState, now: number, config: AgentConfig): Outcome {
  const p = s.pending;
  switch (s.phase) {
    case 'idle':
      return { state: s, actions: [] };
    case 'verifying':
      return { state: s, actions: [{ type: 'verify', release: release(p as PendingRelease) }], note: 'verify again' };
    case 'staged':
      // Verified by the last run, under the keys it trusted: an operator may have removed one since.
      return { state: { ...s, phase: 'verifying' }, actions: [{ type: 'verify', release: release(p as PendingRelease) }], note: 'verify again' };
    case 'applying': {
      // A stop asked for during the apply wins. An apply that may restart the host has probably
      // done so: the health check says whether the release runs. Any other apply cut short may
      // have done anything: undo it.
      if (s.stopAfterApply !== null) return stopPending(s, s.stopAfterApply);
      if (!config.restartingApply) return failPending(s, 'restarted while applying');
      if (now > (s.checkDeadline as number)) return failPending(s, 'restarted while applying, after the health check deadline');
      const r = release(p as PendingRelease);
      const state: AgentState = { ...s, phase: 'checking' };
      return { state, actions: [announce(state, r, 'checking'), { type: 'run-health-hook', release: r, deadline: s.checkDeadline as number }], note: 'apply restarted the host: check' };
    }
    case 'checking':
      if (now <= (s.checkDeadline as number)) {
        const r = release(p as PendingRelease);
        return { state: s, actions: [announce(s, r, 'checking'), { type: 'run-health-hook', release: r, deadline: s.checkDeadline as number }], note: 'check resumed' };
      }
      return failPending(s, 'restarted after the health check deadline');
    case 'rolling-back': {
      const rb = s.rollback as Rollback;
      return { state: s, actions: [{ type: 'run-rollback-hook', from: rb.from, to: rb.to }], note: 'roll back again' };
    }
    case 'stuck':
      return { state: s, actions: [announce(s, (s.rollback as Rollback).from, 'failed')], note: 'still stuck: the rollback hook failed' };
  }
}

function checkEvent(e: AgentEvent, now: number, config: AgentConfig): void {
  if (!Number.isFinite(now)) throw badArgument('now must be a finite number');
  if (!Number.isSafeInteger(config.maxTries) || config.maxTries < 1 || config.maxTries > 1000) throw badArgument('maxTries must be an integer from 1 to 1000');
  if (!Number.isSafeInteger(config.healthTimeoutMs) || config.healthTimeoutMs < 0) throw badArgument('healthTimeoutMs must be a non-negative integer');
  if (typeof config.restartingApply !== 'boolean') throw badArgument('restartingApply must be true or false');
  if ('commit' in e && !isOid(e.commit)) throw badArgument(`${e.type}: not a commit id: ${JSON.stringify(String(e.commit).slice(0, 64))}`);
  if (e.type === 'release-seen' && !isReleaseVersion(e.version)) throw badArgument(`release-seen: bad version ${JSON.stringify(String(e.version).slice(0, 64))}`);
}

/** One event: the next state and what the caller must do (store the state first). Throws GITFS_BAD_ARGUMENT for a malformed event. */
export function step(state: AgentState, event: AgentEvent, now: number, config: AgentConfig = AGENT_DEFAULTS): StepResult {
  checkEvent(event, now, config);
  const outcome = decide(state, event, now, config);
  if (typeof outcome === 'string') return { state, actions: [], ignored: outcome };
  const commit = 'commit' in event ? event.commit : (state.pending?.commit ?? state.rollback?.from.commit ?? outcome.state.rollback?.from.commit);
  const reason = 'reason' in event ? event.reason : undefined;
  const note = (outcome.note ?? reason)?.slice(0, MAX_NOTE);
  const t: Transition = { at: now, event: event.type, from: state.phase, to: outcome.state.phase, ...(commit === undefined ? {} : { commit }), ...(note === undefined ? {} : { note }) };
  return { state: { ...outcome.state, history: boundedHistory([...state.history, t]) }, actions: outcome.actions };
}

/**
 * The newest MAX_HISTORY transitions, but the newest that names a release is kept in the first
 * place when no later one names one: it is what the node reports after a restart (a release that
 * failed here keeps its halt visible), and a start that recovers nothing adds a transition naming
 * none, so 50 restarts used to drop it.
 */
function boundedHistory(history: readonly Transition[]): Transition[] {
  const kept = history.slice(-MAX_HISTORY);
  if (history.length <= MAX_HISTORY || kept.some((t) => t.commit !== undefined)) return kept;
  const named = history.findLast((t) => t.commit !== undefined);
  return named === undefined ? kept : [named, ...kept.slice(1)];
}
