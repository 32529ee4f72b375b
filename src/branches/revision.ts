/**
 * Revision expressions, resolved to commit ids:
 *   BASE        a branch name, `HEAD`, a full id or an abbreviated one (4+ hex digits, unique among commits)
 *   BASE@{N}    the branch's Nth previous value in its reflog (0 = now)
 *   BASE@{T}    the branch's value at time T (ISO 8601, `@<unix seconds>`, `N <unit>s ago`)
 *   …~N  …^N    first-parent ancestor N generations back / the Nth parent
 * `REV:path` (a tree-ish with a path) is split off by the caller with `splitRevPath`.
 */
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import type { ObjectReader } from '../objects/object-store.js';
import { isOid, ZERO_OID, type Oid } from '../objects/oid.js';
import { decodeCommit } from '../objects/commit.js';
import { isBranchName, type BranchName } from './ref-name.js';
import type { RefStore } from './ref-store.js';
import type { ReflogEntry } from './reflog.js';
import type { Clock } from '../util/clock.js';

export interface RevisionContext {
  readonly objects: ObjectReader;
  readonly refs: RefStore;
  readonly clock: Clock;
}

const MAX_ANCESTRY = 1_000_000;

/**
 * The objects an abbreviated id is looked up among: a first look at a few, then, if that came
 * back full, at many (a 4-digit id matches ~150 objects in a repository of 10 M). Past that, the
 * id is ambiguous: a second commit could be among those left out.
 */
const PREFIX_FIRST_LOOK = 64;
const PREFIX_CANDIDATES = 4096;

function badRevision(expr: string, why: string): GitfsError {
  return new GitfsError(ErrorCodes.BAD_REVISION, `bad revision ${JSON.stringify(expr)}: ${why}`, { revision: expr });
}

function unknown(expr: string, why: string): GitfsError {
  return new GitfsError(ErrorCodes.UNKNOWN_REVISION, `unknown revision ${JSON.stringify(expr)}: ${why}`, { revision: expr });
}

/**
 * `REV:path` → [REV, path]; a bare REV gives path ''. Colons inside `@{…}` (times) belong to REV;
 * a `{` elsewhere is part of a branch name (git allows `a{b`).
 */
export function splitRevPath(expr: string): [string, string] {
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === '{' && (depth > 0 || expr[i - 1] === '@')) depth++;
    else if (c === '}' && depth > 0) depth--;
    else if (c === ':' && depth === 0) return [expr.slice(0, i), expr.slice(i + 1)];
  }
  return [expr, ''];
}

export async function resolveRevision(ctx: RevisionContext, expr: string): Promise<Oid> {
  // A branch name may hold `@` (git refuses only `@{` and a lone `@`): the base ends at `@{`, `~` or `^`.
  const m = /^((?:[^~^@]|@(?!\{))+)(?:@\{([^}]*)\})?((?:[~^][0-9]*)*)$/.exec(expr);
  if (m === null) throw badRevision(expr, 'expected BASE[@{…}][~N|^N…]');
  const [, base = '', at, ops = ''] = m;
  let oid: Oid;
  if (at !== undefined) {
    const branch = await branchOf(ctx, expr, base);
    oid = await atReflog(ctx, expr, branch, at);
  } else {
    oid = await resolveBase(ctx, expr, base);
  }
  for (const op of ops.match(/[~^][0-9]*/g) ?? []) {
    const n = op.length > 1 ? Number(op.slice(1)) : 1;
    if (!Number.isSafeInteger(n) || n > MAX_ANCESTRY) throw badRevision(expr, `count ${op.slice(1)} too large`);
    if (op[0] === '~') {
      for (let i = 0; i < n; i++) oid = await parentOf(ctx, expr, oid, 1);
    } else if (n > 0) {
      oid = await parentOf(ctx, expr, oid, n);
    }
  }
  return oid;
}

async function parentOf(ctx: RevisionContext, expr: string, oid: Oid, n: number): Promise<Oid> {
  const commit = decodeCommit((await ctx.objects.read(oid)).content, oid);
  const parent = commit.parents[n - 1];
  if (parent === undefined) throw unknown(expr, `commit ${oid.slice(0, 12)} has no parent ${n}`);
  // A line cut short here (a shallow boundary, history a policy does not keep; or lost): the parent is named, not held.
  if (!(await ctx.objects.has(parent))) throw unknown(expr, `the parent ${parent.slice(0, 12)} of ${oid.slice(0, 12)} is not here (the history kept ends there, or it was lost: gitfs fsck tells)`);
  return parent;
}

async function branchOf(ctx: RevisionContext, expr: string, base: string): Promise<BranchName> {
  if (base === 'HEAD') {
    const head = await ctx.refs.readHead();
    if (head === undefined) throw badRevision(expr, 'HEAD is detached: it has no reflog of a branch');
    return head;
  }
  if (!isBranchName(base)) throw badRevision(expr, `${base} is not a branch name`);
  return base;
}

async function resolveBase(ctx: RevisionContext, expr: string, base: string): Promise<Oid> {
  if (base === 'HEAD') {
    const t = await ctx.refs.headTarget();
    if ('commit' in t) return commitOnly(ctx, expr, t.commit);
  }
  if (base === 'HEAD' || isBranchName(base)) {
    const branch = await branchOf(ctx, expr, base);
    const oid = await ctx.refs.resolve(branch);
    if (oid !== undefined) return oid;
    if (base === 'HEAD') throw unknown(expr, `HEAD points at ${branch}, which has no commits yet`);
  }
  if (isOid(base)) {
    if (await ctx.objects.has(base)) return commitOnly(ctx, expr, base);
    throw unknown(expr, 'no such object');
  }
  if (/^[0-9a-f]{4,39}$/.test(base)) {
    let matches = await ctx.objects.findByPrefix(base, PREFIX_FIRST_LOOK);
    if (matches.length >= PREFIX_FIRST_LOOK) matches = await ctx.objects.findByPrefix(base, PREFIX_CANDIDATES);
    if (matches.length >= PREFIX_CANDIDATES) {
      throw new GitfsError(ErrorCodes.AMBIGUOUS_REVISION, `abbreviated id ${base} matches ${PREFIX_CANDIDATES} objects or more; give more of its digits`, { revision: expr });
    }
    // Typed by their headers (a 250 MiB blob sharing the digits is not read whole); one that
    // cannot be typed (damaged, not fetched, above the read limit) is not the commit meant.
    const typeOf = (oid: Oid): Promise<string> => ctx.objects.typeOf?.(oid) ?? ctx.objects.read(oid).then((o) => o.type);
    const commits: Oid[] = [];
    for (const oid of matches) {
      if ((await typeOf(oid).catch(() => undefined)) === 'commit') commits.push(oid);
    }
    if (commits.length > 1) {
      throw new GitfsError(ErrorCodes.AMBIGUOUS_REVISION, `abbreviated id ${base} matches ${commits.length} commits`, { revision: expr, candidates: commits });
    }
    if (commits[0] !== undefined) return commits[0];
  }
  throw unknown(expr, isBranchName(base) ? `no branch ${base} and no commit with that id` : 'not a branch or commit id');
}

async function commitOnly(ctx: RevisionContext, expr: string, oid: Oid): Promise<Oid> {
  const o = await ctx.objects.read(oid);
  if (o.type !== 'commit') throw new GitfsError(ErrorCodes.WRONG_OBJECT_TYPE, `${expr} is a ${o.type}, not a commit`, { revision: expr, oid });
  return oid;
}

async function atReflog(ctx: RevisionContext, expr: string, branch: BranchName, spec: string): Promise<Oid> {
  // Newest first: the n-th entry back, or the newest made at or before the time.
  let wanted: (e: ReflogEntry, back: number) => boolean;
  let missing: (count: number) => string;
  if (/^[0-9]+$/.test(spec)) {
    const n = Number(spec);
    wanted = (_, back) => back === n;
    missing = (count) => `the reflog of ${branch} has only ${count} entries`;
  } else {
    const when = parseTime(spec, ctx.clock.now());
    if (when === undefined) throw badRevision(expr, `cannot read ${JSON.stringify(spec)} as a time`);
    wanted = (e) => e.timestampSeconds * 1000 <= when;
    missing = () => `branch ${branch} did not exist at ${new Date(when).toISOString()}`;
  }
  let oid: Oid | undefined;
  let count = 0;
  try {
    for await (const e of ctx.refs.reflogNewestFirst(branch)) {
      if (wanted(e, count++)) {
        oid = e.newOid;
        break;
      }
    }
  } catch (e) {
    if (isGitfsError(e, ErrorCodes.UNKNOWN_BRANCH)) throw unknown(expr, `no branch ${branch}`);
    throw e;
  }
  if (count === 0) throw unknown(expr, `branch ${branch} has no reflog`);
  if (oid === undefined) throw unknown(expr, missing(count));
  if (oid === ZERO_OID) throw unknown(expr, `branch ${branch} did not exist then`);
  return oid;
}

const UNITS: Record<string, number> = { second: 1e3, minute: 60e3, hour: 3600e3, day: 86400e3, week: 7 * 86400e3 };

const MAX_TIME_MS = 8.64e15;

/** Milliseconds since the epoch for an absolute or relative time, or undefined (also when out of range). */
export function parseTime(spec: string, nowMs: number): number | undefined {
  const t = parseTimeUnbounded(spec, nowMs);
  return t !== undefined && Math.abs(t) <= MAX_TIME_MS ? t : undefined;
}

function parseTimeUnbounded(spec: string, nowMs: number): number | undefined {
  const s = spec.trim();
  if (s === 'now') return nowMs;
  const unix = /^@([0-9]+)$/.exec(s);
  if (unix !== null) return Number(unix[1]) * 1000;
  const rel = /^([0-9]+)[ .]?(second|minute|hour|day|week)s?[ .]ago$/.exec(s);
  if (rel !== null) return nowMs - Number(rel[1]) * (UNITS[rel[2] as string] as number);
  if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(s)) return undefined;
  const t = Date.parse(/[zZ]|[+-][0-9]{2}:?[0-9]{2}$/.test(s) || s.length === 10 ? s : `${s.replace(' ', 'T')}Z`);
  return Number.isNaN(t) ? undefined : t;
}
