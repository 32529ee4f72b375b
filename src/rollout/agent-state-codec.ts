/**
 * The agent state as stored durably: JSON, keys in a fixed order, a final newline.
 * decodeAgentState trusts nothing in the file: every field is checked, and so are the links
 * between phase and fields (a phase `checking` without a deadline would make crash-recovery
 * guess), so a damaged or hand-edited file is refused with GITFS_BAD_AGENT_STATE instead of
 * driving hooks. A `format` other than 1 is refused too: it was written by a newer gitfs.
 */
import { isBranchName } from '../branches/ref-name.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import { AGENT_PHASES, AGENT_STATE_FORMAT, MAX_HISTORY, MAX_ROLLBACK_ATTEMPTS, MAX_NOTE, MAX_REMEMBERED, type AgentEvent, type AgentPhase, type AgentState, type PendingRelease, type Release, type Rollback, type Transition } from './agent-state.js';
import { isReleaseVersion } from './manifest.js';

export const MAX_AGENT_STATE_BYTES = 256 * 1024;
const MAX_TRIES = 1000;

const EVENT_TYPES: ReadonlySet<string> = new Set<AgentEvent['type']>([
  'release-seen', 'verified', 'verify-failed', 'apply-started', 'applied', 'apply-failed',
  'health-ok', 'health-failed', 'rollback-done', 'rollback-failed', 'halted', 'rollback-requested', 'crash-recovery',
]);

export function encodeAgentState(s: AgentState): string {
  const ordered = {
    format: s.format,
    channel: s.channel,
    phase: s.phase,
    blessed: s.blessed,
    previous: s.previous,
    pending: s.pending,
    checkDeadline: s.checkDeadline,
    stopAfterApply: s.stopAfterApply,
    rollback: s.rollback,
    failedVersions: s.failedVersions,
    givenUp: s.givenUp,
    history: s.history,
  };
  return `${JSON.stringify(ordered, null, 1)}\n`;
}

class Bad extends Error {}

function fail(where: string, what: string): never {
  throw new Bad(`${where} must be ${what}`);
}

function object(v: unknown, where: string, keys: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, 'an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!keys.includes(k) && !optional.includes(k)) fail(`${where}.${k.slice(0, 40)}`, 'absent (unknown key)');
  for (const k of keys) if (!Object.hasOwn(o, k)) fail(`${where}.${k}`, 'present');
  return o;
}

const oid = (v: unknown, where: string): Oid => (typeof v === 'string' && isOid(v) ? v : fail(where, 'a commit id'));
const int = (v: unknown, where: string, min: number, max: number): number => (Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : fail(where, `an integer from ${min} to ${max}`));
const time = (v: unknown, where: string): number => (typeof v === 'number' && Number.isFinite(v) ? v : fail(where, 'a finite number'));
const phase = (v: unknown, where: string): AgentPhase => ((AGENT_PHASES as readonly unknown[]).includes(v) ? (v as AgentPhase) : fail(where, `one of ${AGENT_PHASES.join(', ')}`));

function releaseOf(v: unknown, where: string): Release {
  const o = object(v, where, ['commit', 'version']);
  if (!isReleaseVersion(o['version'])) fail(`${where}.version`, 'a release version');
  return { commit: oid(o['commit'], `${where}.commit`), version: o['version'] };
}

const orNull = <T>(v: unknown, read: (v: unknown) => T): T | null => (v === null ? null : read(v));

function pendingOf(v: unknown): PendingRelease {
  const o = object(v, 'pending', ['commit', 'version', 'triesLeft']);
  return { ...releaseOf({ commit: o['commit'], version: o['version'] }, 'pending'), triesLeft: int(o['triesLeft'], 'pending.triesLeft', 1, MAX_TRIES) };
}

function rollbackOf(v: unknown): Rollback {
  // failedAttempts came later: a state written before it has none (no failed run then).
  const o = object(v, 'rollback', ['from', 'to', 'reason'], ['failedAttempts']);
  const reason = o['reason'];
  if (reason !== 'failed' && reason !== 'halted' && reason !== 'requested') fail('rollback.reason', 'failed, halted or requested');
  const failedAttempts = o['failedAttempts'] === undefined ? 0 : int(o['failedAttempts'], 'rollback.failedAttempts', 0, MAX_ROLLBACK_ATTEMPTS);
  return { from: releaseOf(o['from'], 'rollback.from'), to: orNull(o['to'], (t) => releaseOf(t, 'rollback.to')), reason, failedAttempts };
}

function failedOf(v: unknown): Record<string, number> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('failedVersions', 'an object');
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length > MAX_REMEMBERED) fail('failedVersions', `at most ${MAX_REMEMBERED} entries`);
  const out: Record<string, number> = {};
  for (const k of keys) out[oid(k, 'a failedVersions key')] = int(o[k], `failedVersions[${k}]`, 1, MAX_TRIES);
  return out;
}

function givenUpOf(v: unknown): string[] {
  if (!Array.isArray(v) || v.length > MAX_REMEMBERED) fail('givenUp', `a list of at most ${MAX_REMEMBERED} commit ids`);
  const out = v.map((c, i) => oid(c, `givenUp[${i}]`));
  if (new Set(out).size !== out.length) fail('givenUp', 'free of duplicates');
  return out;
}

function historyOf(v: unknown): Transition[] {
  if (!Array.isArray(v) || v.length > MAX_HISTORY) fail('history', `a list of at most ${MAX_HISTORY} transitions`);
  return v.map((t, i): Transition => {
    const where = `history[${i}]`;
    const o = object(t, where, ['at', 'event', 'from', 'to'], ['commit', 'note']);
    if (!EVENT_TYPES.has(o['event'] as string)) fail(`${where}.event`, 'an event type');
    const note = o['note'];
    if (note !== undefined && (typeof note !== 'string' || note.length > MAX_NOTE)) fail(`${where}.note`, `text of at most ${MAX_NOTE} characters`);
    return {
      at: time(o['at'], `${where}.at`),
      event: o['event'] as AgentEvent['type'],
      from: phase(o['from'], `${where}.from`),
      to: phase(o['to'], `${where}.to`),
      ...(o['commit'] === undefined ? {} : { commit: oid(o['commit'], `${where}.commit`) }),
      ...(note === undefined ? {} : { note: note as string }),
    };
  });
}

/** What each phase needs, and what it must not have: the same invariants step() keeps. */
function checkPhase(s: AgentState): void {
  const busy = s.phase === 'verifying' || s.phase === 'staged' || s.phase === 'applying' || s.phase === 'checking';
  if (busy !== (s.pending !== null) && s.phase !== 'rolling-back') fail('pending', busy ? `present in phase ${s.phase}` : `null in phase ${s.phase}`);
  if ((s.phase === 'applying' || s.phase === 'checking') !== (s.checkDeadline !== null)) fail('checkDeadline', 'set exactly in phases applying and checking');
  if (s.stopAfterApply !== null && s.phase !== 'applying') fail('stopAfterApply', 'null outside phase applying');
  if ((s.phase === 'rolling-back' || s.phase === 'stuck') !== (s.rollback !== null)) fail('rollback', 'set exactly in phases rolling-back and stuck');
  if (s.phase === 'stuck' && s.pending !== null) fail('pending', 'null in phase stuck');
  if (s.rollback !== null && (s.phase === 'stuck') !== (s.rollback.failedAttempts === MAX_ROLLBACK_ATTEMPTS)) {
    fail('rollback.failedAttempts', `${MAX_ROLLBACK_ATTEMPTS} in phase stuck, fewer in rolling-back`);
  }
  // While rolling back, a release stays pending only to be retried after a failed try.
  if (s.rollback !== null && s.pending !== null && (s.rollback.reason !== 'failed' || s.pending.commit !== s.rollback.from.commit)) fail('pending', 'null, or the failed release being rolled back');
}

/** Reads a stored agent state. Throws GITFS_BAD_AGENT_STATE naming the first bad field. */
export function decodeAgentState(text: string | Uint8Array): AgentState {
  const bad = (why: string): GitfsError => new GitfsError(ErrorCodes.BAD_AGENT_STATE, `rollout agent state: ${why}`, { reason: why });
  if (text.length > MAX_AGENT_STATE_BYTES) throw bad(`larger than ${MAX_AGENT_STATE_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: true }).decode(text));
  } catch {
    throw bad('not UTF-8 JSON');
  }
  try {
    const o = object(value, 'the state', ['format', 'channel', 'phase', 'blessed', 'previous', 'pending', 'checkDeadline', 'stopAfterApply', 'rollback', 'failedVersions', 'givenUp', 'history']);
    if (o['format'] !== AGENT_STATE_FORMAT) fail('format', `${AGENT_STATE_FORMAT} (this build reads no other)`);
    if (typeof o['channel'] !== 'string' || !isBranchName(o['channel'])) fail('channel', 'a branch name');
    const stop = o['stopAfterApply'];
    if (stop !== null && stop !== 'halted' && stop !== 'requested') fail('stopAfterApply', 'null, halted or requested');
    const s: AgentState = {
      format: AGENT_STATE_FORMAT,
      channel: o['channel'],
      phase: phase(o['phase'], 'phase'),
      blessed: orNull(o['blessed'], (v) => releaseOf(v, 'blessed')),
      previous: orNull(o['previous'], (v) => releaseOf(v, 'previous')),
      pending: orNull(o['pending'], pendingOf),
      checkDeadline: orNull(o['checkDeadline'], (v) => time(v, 'checkDeadline')),
      stopAfterApply: stop,
      rollback: orNull(o['rollback'], rollbackOf),
      failedVersions: failedOf(o['failedVersions']),
      givenUp: givenUpOf(o['givenUp']),
      history: historyOf(o['history']),
    };
    checkPhase(s);
    return s;
  } catch (e) {
    if (e instanceof Bad) throw bad(e.message);
    throw e;
  }
}
