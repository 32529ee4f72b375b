/**
 * Replication policies: which branches this node keeps, how many copies the cluster keeps, how
 * much history, and whether to fetch at once or when asked. Configured as a list (first match
 * wins; a branch no policy matches is not replicated), checked once by `parsePolicies`.
 * `evaluatePolicies` is pure: from the members' announced heads, this node's own heads and the
 * time, it says for every known branch who should hold it (everyone, or the top N members by
 * rendezvous order among those heard from within graceMs, self always a candidate), the newest
 * head to hold and where it is, and how this node stands. A holder silent for longer than graceMs
 * drops out and the next node in rendezvous order takes its place; when it returns it is back in
 * the top N and the stand-in's copy is no longer required.
 */
import type { BranchName } from '../branches/ref-name.js';
import type { NodeId } from '../cluster/node-id.js';
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import { compareNames } from '../multicast/announcement.js';
import type { Oid } from '../objects/oid.js';
import { compileBranchPattern, type BranchPattern } from './branch-pattern.js';
import type { Failing, HeadStanding } from './head-verdicts.js';
import { rendezvousOrder } from './rendezvous.js';

export interface Policy {
  /** A branch pattern (src/swarm/branch-pattern.ts). */
  readonly branches: string;
  /** How many nodes keep the branch: every live member, or this many. */
  readonly replicas: 'all' | number;
  /** How many commits of history to keep, counting the head, or all of it. */
  readonly history: 'all' | number;
  /** 'eager': fetch as soon as a new head is announced; 'on-demand': when something reads it. */
  readonly fetch: 'eager' | 'on-demand';
  /** How long a member may be silent and still count as a holder. */
  readonly graceMs: number;
}

/** The depth a fetch under `policy` asks for: 0 for the whole history (none: the whole history too). */
export function historyDepth(policy: Policy | undefined): number {
  return policy === undefined || policy.history === 'all' ? 0 : policy.history;
}

export const POLICY_DEFAULTS: Omit<Policy, 'branches'> = { replicas: 'all', history: 'all', fetch: 'eager', graceMs: 60_000 };

export const MAX_POLICIES = 256;
export const MAX_REPLICAS = 10_000;
export const MAX_HISTORY = 1_000_000;
export const MAX_GRACE_MS = 7 * 86_400_000;

type Check = (v: unknown) => string | undefined;

const allOrInt = (max: number): Check => (v) => (v === 'all' || (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max) ? undefined : `"all" or an integer from 1 to ${max}`);

const CHECKS: Record<keyof Policy, Check> = {
  branches: (v) => (typeof v === 'string' && v.length > 0 ? undefined : 'a branch pattern'),
  replicas: allOrInt(MAX_REPLICAS),
  history: allOrInt(MAX_HISTORY),
  fetch: (v) => (v === 'eager' || v === 'on-demand' ? undefined : '"eager" or "on-demand"'),
  graceMs: (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_GRACE_MS ? undefined : `an integer from 0 to ${MAX_GRACE_MS}`),
};

function fail(source: string, key: string, message: string, index?: number): GitfsError {
  return new GitfsError(ErrorCodes.BAD_CONFIG, `${source}: ${key} ${message}`, index === undefined ? { source, key } : { source, key, index });
}

/** Checks a `policies` list (from `source`, for messages) and fills in defaults. Throws GITFS_BAD_CONFIG naming the index and key. */
export function parsePolicies(raw: unknown, source: string): Policy[] {
  if (!Array.isArray(raw) || raw.length > MAX_POLICIES) throw fail(source, 'policies', `must be a list of at most ${MAX_POLICIES} policies, not ${JSON.stringify(raw)?.slice(0, 80)}`);
  return raw.map((entry: unknown, index): Policy => {
    const at = `policies[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw fail(source, at, `must be an object, not ${JSON.stringify(entry)?.slice(0, 80)}`, index);
    const given = entry as Record<string, unknown>;
    for (const [key, value] of Object.entries(given)) {
      const check = Object.hasOwn(CHECKS, key) ? CHECKS[key as keyof Policy] : undefined;
      if (check === undefined) throw fail(source, `${at}.${key}`, 'is not a policy key (branches, replicas, history, fetch, graceMs)', index);
      const problem = check(value);
      if (problem !== undefined) throw fail(source, `${at}.${key}`, `must be ${problem}, not ${JSON.stringify(value)?.slice(0, 80)}`, index);
    }
    if (!Object.hasOwn(given, 'branches')) throw fail(source, `${at}.branches`, 'is missing', index);
    try {
      compileBranchPattern(given['branches'] as string);
    } catch (e) {
      if (!isGitfsError(e)) throw e;
      throw fail(source, `${at}.branches`, `is refused: ${e.message}`, index);
    }
    return { ...POLICY_DEFAULTS, ...(given as Partial<Policy>) } as Policy;
  });
}

export interface MemberHeads {
  readonly nodeId: NodeId;
  /** When this node last heard from the member (same clock as `now`). */
  readonly lastSeen: number;
  readonly heads: ReadonlyMap<BranchName, { readonly oid: Oid; readonly commitTime: number }>;
}

export interface PolicyInput {
  readonly self: NodeId;
  readonly policies: readonly Policy[];
  /** The other members and what they announce (an entry for `self` is ignored: `local` is this node's truth). */
  readonly members: readonly MemberHeads[];
  /** This node's own branch heads. */
  readonly local: ReadonlyMap<BranchName, Oid>;
  /** The commit times of those heads, where known: a head a member announces with an older time is not taken unless judged ahead. */
  readonly localTimes?: ReadonlyMap<BranchName, number>;
  /** What this node knows of an announced head against its own head of the branch (head-verdicts.ts). */
  readonly verdict?: (branch: BranchName, head: Oid) => HeadStanding | undefined;
  /** Whether an announced head gives way to others (its fetch, or its announcers', failed lately: head-verdicts.ts). */
  readonly failing?: (branch: BranchName, head: Oid, announcers: readonly NodeId[]) => Failing | undefined;
  readonly now: number;
}

export interface BranchTarget {
  readonly oid: Oid;
  readonly commitTime: number;
  /** The members announcing exactly this head, by id. */
  readonly from: NodeId[];
}

/**
 * - held: this node should hold the branch and has the target (or no member announces one);
 * - missing: it should hold the branch and has none of it;
 * - behind: it should hold the branch and has another head than the target (the fetcher moves
 *   the branch to it if it descends from that head, else to their merge, or leaves it);
 * - not-wanted: this node is not among the holders (a copy it has is extra).
 */
export type HoldState = 'held' | 'missing' | 'behind' | 'not-wanted';

export interface BranchDecision {
  readonly branch: BranchName;
  /** Index of the policy that matched. */
  readonly policy: number;
  readonly history: Policy['history'];
  readonly fetch: Policy['fetch'];
  /** The nodes that should hold the branch, in rendezvous order. */
  readonly holders: NodeId[];
  readonly shouldHold: boolean;
  /** The head to hold (newestHead): undefined when no member announces the branch and this node has none. */
  readonly target: BranchTarget | undefined;
  readonly local: Oid | undefined;
  readonly state: HoldState;
  /**
   * The newest head members announce (not the branch's own) that this node's branch stays apart
   * from, and why, as this daemon's fetches found since it started (set by the swarm): refused,
   * whatever the branch's head (its content, or diverged and not to be merged), or its merge with
   * the branch's head failed (until it is tried again).
   */
  readonly apart?: Apart;
}

export interface Apart {
  readonly head: Oid;
  /** The members announcing it, by id. */
  readonly from: readonly NodeId[];
  readonly why: string;
}

const compiled = new WeakMap<Policy, BranchPattern>();

function patternOf(policy: Policy): BranchPattern {
  let p = compiled.get(policy);
  if (p === undefined) {
    p = compileBranchPattern(policy.branches);
    compiled.set(policy, p);
  }
  return p;
}

/** The policy that governs `branch`: the first whose pattern matches it, if any. */
export function policyFor(branch: BranchName, policies: readonly Policy[]): Policy | undefined {
  return policies.find((p) => patternOf(p).matches(branch));
}

/**
 * The head to hold: the newest by the commit time its announcers claim (then the greater id, as a
 * join orders writes: merge-heads.ts) among
 * those this node may take. A head judged 'passed' (head-verdicts.ts: this node's head holds it, or
 * a fetch showed it behind, refused, or diverged and not to be merged) never is; one judged 'ahead' or 'fork' (to be merged by its fetch) always is; an
 * 'unproven' one is when it claims a time no older than this node's head (a second's resolution:
 * two commits in one second must not look held); one not judged yet, only when it claims a later
 * second (one of the same second may be the release before, announced by a member back from a
 * stop: it waits for its judgement, which reads this node's commits first). A head that is
 * `failing` is the target only when there is no other to take: one whose own fetch failed after
 * one whose announcers' did (head-verdicts.ts). With nothing to take, this node's
 * own head is the target, held.
 */
export function newestHead(
  branch: BranchName,
  members: readonly MemberHeads[],
  mine: Oid | undefined,
  mineTime: number | undefined,
  verdict: (head: Oid) => HeadStanding | undefined = () => undefined,
  failing: (head: Oid, announcers: readonly NodeId[]) => Failing | undefined = () => undefined,
): BranchTarget | undefined {
  // Each head announced, with the latest time claimed for it and who announces it.
  const heads = new Map<Oid, { commitTime: number; from: NodeId[] }>();
  for (const m of members) {
    const h = m.heads.get(branch);
    if (h === undefined) continue;
    const seen = heads.get(h.oid);
    if (seen === undefined) heads.set(h.oid, { commitTime: h.commitTime, from: [m.nodeId] });
    else {
      seen.commitTime = Math.max(seen.commitTime, h.commitTime);
      seen.from.push(m.nodeId);
    }
  }
  if (heads.size === 0) return undefined;
  const takes = (oid: Oid, commitTime: number): boolean => {
    if (oid === mine) return false;
    const v = verdict(oid);
    if (v === 'passed') return false;
    if (v === 'ahead' || v === 'fork' || mine === undefined || mineTime === undefined) return true;
    return commitTime > mineTime || (commitTime === mineTime && v === 'unproven');
  };
  // Ranked by: not failing, failing by its announcers, failing itself; then the later time, then the greater id.
  let best: { oid: Oid; rank: [number, number, Oid] } | undefined;
  for (const [oid, { commitTime, from }] of heads) {
    if (!takes(oid, commitTime)) continue;
    const rank: [number, number, Oid] = [FAILING_RANK[failing(oid, from) ?? 'none'], commitTime, oid];
    if (best === undefined || above(rank, best.rank)) best = { oid, rank };
  }
  if (best === undefined && mine === undefined) return undefined;
  const oid = best?.oid ?? (mine as Oid);
  const commitTime = best?.rank[1] ?? mineTime ?? 0;
  return { oid, commitTime, from: [...new Set(heads.get(oid)?.from)].sort() };
}

const FAILING_RANK = { none: 2, announcers: 1, head: 0 } as const;

const above = (a: readonly [number, number, Oid], b: readonly [number, number, Oid]): boolean => (a[0] !== b[0] ? a[0] > b[0] : a[1] !== b[1] ? a[1] > b[1] : a[2] > b[2]);

/** Decisions for every branch a member announces or this node holds that a policy matches, by branch name. */
export function evaluatePolicies(input: PolicyInput): BranchDecision[] {
  const { self, policies, local, now } = input;
  const members = input.members.filter((m) => m.nodeId !== self);
  const names = new Set<BranchName>(local.keys());
  for (const m of members) for (const b of m.heads.keys()) names.add(b);
  const patterns = policies.map(patternOf);
  const liveByGrace = new Map<number, NodeId[]>();
  const liveWithin = (graceMs: number): NodeId[] => {
    let live = liveByGrace.get(graceMs);
    if (live === undefined) {
      live = members.filter((m) => now - m.lastSeen <= graceMs).map((m) => m.nodeId);
      liveByGrace.set(graceMs, live);
    }
    return live;
  };

  const out: BranchDecision[] = [];
  for (const branch of [...names].sort(compareNames)) {
    const index = patterns.findIndex((p) => p.matches(branch));
    const policy = policies[index];
    if (policy === undefined) continue;
    const ranked = rendezvousOrder(branch, [self, ...liveWithin(policy.graceMs)]);
    const holders = policy.replicas === 'all' ? ranked : ranked.slice(0, policy.replicas);
    const shouldHold = holders.includes(self);
    const mine = local.get(branch);
    const { verdict, failing } = input;
    const target = newestHead(branch, members, mine, input.localTimes?.get(branch), verdict === undefined ? undefined : (head) => verdict(branch, head), failing === undefined ? undefined : (head, from) => failing(branch, head, from));
    const state: HoldState = !shouldHold ? 'not-wanted' : mine === undefined ? 'missing' : target === undefined || target.oid === mine ? 'held' : 'behind';
    out.push({ branch, policy: index, history: policy.history, fetch: policy.fetch, holders, shouldHold, target, local: mine, state });
  }
  return out;
}
