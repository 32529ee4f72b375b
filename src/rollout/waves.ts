/**
 * Wave planning for one rollout (one release commit on a channel), pure: every node computes the
 * same plan from the same subscribed nodes and the same reports, with no coordinator.
 *
 * Order: the nodes sorted by rendezvous weight for the rollout id, so each release has another
 * canary. Waves: wave 0 is the first `canary` nodes; after it, wave i ends where ceil(f_i × n)
 * nodes are covered (f = `fractions`, cumulative, the last 1); a wave that would be empty is
 * skipped. 8 nodes with the defaults: 1 | 1 | 2 | 4.
 *
 * Opening: wave 0 is always open; wave k opens when every node of the waves before it has
 * settled: blessed, or (outside the canary wave) failed within the failure budget. Nodes may
 * fetch and verify before their wave opens ("staged"); only applying waits for it (mayApply).
 *
 * Halting: any failure in the canary wave halts the rollout; outside it, more than
 * `maxFailures` failed nodes halt it. A node counts as failed if it reports failed or
 * rolled-back, or reports any failed try (`failures` > 0) — the agent keeps that count durably,
 * so a node that failed and then succeeded on a retry still counts and a halt does not lift
 * by itself. When halted no wave is open and no node may apply.
 *
 * Node set changes (the caller passes the subscribed members, not the ones heard from lately):
 * - A silent node is still a member: its last report stands, so a canary that bricked itself
 *   and went quiet blocks the rollout instead of letting it proceed.
 * - A node that leaves (is no longer subscribed) drops out of the plan with its report: the
 *   waves are recomputed over the rest, whose relative order is unchanged. Removing a dead or
 *   failed node is how an operator unblocks a rollout; nothing else lifts a halt.
 * - A node that joins lands where its weight puts it. Wave boundaries are recomputed, so nodes
 *   can move by one wave; a node already applying or done keeps going. If the newcomer lands in
 *   an already open or passed wave, it may apply at once, and later waves wait for it.
 */
import type { NodeId } from '../cluster/node-id.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import { rendezvousOrder } from '../swarm/rendezvous.js';

/**
 * What a node reports for a rollout:
 * - pending: nothing done yet (also what a node that never reported is taken to be);
 * - fetching: fetching and verifying the release;
 * - staged: fetched and verified, waiting for its wave;
 * - applying, checking: the apply hook, then the health check, are running;
 * - blessed: healthy on the release;
 * - failed: verification, apply or the health check failed (rolling back);
 * - rolled-back: failed and back on its previous release;
 * - stopped: gave the release up because the rollout was halted or an operator rolled the node
 *   back. Not a failure, and not settled either: its wave waits (a halted rollout waits anyway).
 */
export const NODE_ROLLOUT_STATES = ['pending', 'fetching', 'staged', 'applying', 'checking', 'blessed', 'failed', 'rolled-back', 'stopped'] as const;
export type NodeRolloutState = (typeof NODE_ROLLOUT_STATES)[number];

export interface NodeReport {
  readonly state: NodeRolloutState;
  /** Failed tries of this release on this node so far (the agent's failedVersions count); 0 if absent. */
  readonly failures?: number;
}

export interface WaveInput {
  /** The rollout's id, normally the release commit id: the rendezvous key. */
  readonly rolloutId: string;
  /** The subscribed nodes (duplicates dropped). */
  readonly nodes: readonly NodeId[];
  /** Reports by node; a node without one is pending. Reports of non-members are ignored. */
  readonly reports: ReadonlyMap<NodeId, NodeReport>;
  /** Nodes in the canary wave (default 1, at most the node count). */
  readonly canary?: number;
  /** Cumulative shares of all nodes covered after each wave after the canary (default [0.25, 0.5, 1]). */
  readonly fractions?: readonly number[];
  /** Failed nodes outside the canary wave that are tolerated (default 0). */
  readonly maxFailures?: number;
}

export interface Halt {
  readonly reason: 'canary-failed' | 'too-many-failures';
  /** The failed nodes that caused it, in rendezvous order. */
  readonly nodes: readonly NodeId[];
  readonly message: string;
}

export interface WavePlan {
  /** The nodes of each wave, in rendezvous order; wave 0 is the canary wave. */
  readonly waves: readonly (readonly NodeId[])[];
  readonly waveOf: ReadonlyMap<NodeId, number>;
  /** The last open wave (waves 0..open may apply), or -1 when halted or there are no nodes. */
  readonly open: number;
  readonly halted: Halt | undefined;
  /** Every node is blessed (true for no nodes: nothing is left to do). */
  readonly done: boolean;
  /** The nodes of open waves that have not settled: what the next wave waits for. */
  readonly waitingFor: readonly NodeId[];
}

export const WAVE_DEFAULTS = { canary: 1, fractions: [0.25, 0.5, 1], maxFailures: 0 } as const;
export const MAX_FRACTIONS = 16;

function badArgument(message: string): GitfsError {
  return new GitfsError(ErrorCodes.BAD_ARGUMENT, `rollout waves: ${message}`);
}

function checkInput(input: WaveInput): { canary: number; fractions: readonly number[]; maxFailures: number } {
  const { canary = WAVE_DEFAULTS.canary, fractions = WAVE_DEFAULTS.fractions, maxFailures = WAVE_DEFAULTS.maxFailures } = input;
  if (typeof input.rolloutId !== 'string' || input.rolloutId.length === 0 || input.rolloutId.length > 256) throw badArgument('the rollout id must be 1-256 characters');
  if (!Number.isSafeInteger(canary) || canary < 1) throw badArgument(`canary must be a positive integer, not ${canary}`);
  if (!Number.isSafeInteger(maxFailures) || maxFailures < 0) throw badArgument(`maxFailures must be a non-negative integer, not ${maxFailures}`);
  const increasing = fractions.every((f, i) => Number.isFinite(f) && f > 0 && f <= 1 && (i === 0 || f > (fractions[i - 1] as number)));
  if (fractions.length === 0 || fractions.length > MAX_FRACTIONS || !increasing || fractions[fractions.length - 1] !== 1) {
    throw badArgument(`fractions must be 1-${MAX_FRACTIONS} increasing shares in (0, 1] ending with 1, not ${JSON.stringify(fractions)}`);
  }
  return { canary, fractions, maxFailures };
}

/** The waves for `rolloutId` over `nodes`: canary wave, then the cumulative fractions, empty waves skipped. */
export function assignWaves(rolloutId: string, nodes: readonly NodeId[], canary: number = WAVE_DEFAULTS.canary, fractions: readonly number[] = WAVE_DEFAULTS.fractions): NodeId[][] {
  checkInput({ rolloutId, nodes, reports: new Map(), canary, fractions });
  // A prefix keeps this order independent of the replication order of a branch of the same name.
  const order = rendezvousOrder(`rollout\0${rolloutId}`, nodes);
  const waves: NodeId[][] = [];
  let covered = Math.min(canary, order.length);
  if (covered > 0) waves.push(order.slice(0, covered));
  for (const f of fractions) {
    const upTo = Math.min(order.length, Math.ceil(f * order.length));
    if (upTo > covered) {
      waves.push(order.slice(covered, upTo));
      covered = upTo;
    }
  }
  return waves;
}

const FAILED: ReadonlySet<NodeRolloutState> = new Set(['failed', 'rolled-back']);

function hasFailed(r: NodeReport): boolean {
  return FAILED.has(r.state) || (r.failures ?? 0) > 0;
}

export function planWaves(input: WaveInput): WavePlan {
  const { canary, fractions, maxFailures } = checkInput(input);
  const waves = assignWaves(input.rolloutId, input.nodes, canary, fractions);
  const waveOf = new Map<NodeId, number>();
  waves.forEach((w, i) => w.forEach((n) => waveOf.set(n, i)));
  const report = (n: NodeId): NodeReport => {
    const r = input.reports.get(n);
    return r !== undefined && (NODE_ROLLOUT_STATES as readonly string[]).includes(r.state) ? r : { state: 'pending' };
  };

  const canaryFailed = (waves[0] ?? []).filter((n) => hasFailed(report(n)));
  const laterFailed = waves.slice(1).flat().filter((n) => hasFailed(report(n)));
  let halted: Halt | undefined;
  if (canaryFailed.length > 0) {
    halted = { reason: 'canary-failed', nodes: canaryFailed, message: `the canary wave failed on ${canaryFailed.join(', ')}` };
  } else if (laterFailed.length > maxFailures) {
    halted = { reason: 'too-many-failures', nodes: laterFailed, message: `${laterFailed.length} nodes failed (${laterFailed.join(', ')}), more than the ${maxFailures} tolerated` };
  }

  // Only consulted when not halted: then every failure is outside the canary wave and within the
  // budget, so a failed node has settled as much as a blessed one.
  const settled = (n: NodeId): boolean => report(n).state === 'blessed' || hasFailed(report(n));
  let open = -1;
  if (halted === undefined) {
    for (let k = 0; k < waves.length; k++) {
      open = k;
      if (!(waves[k] as NodeId[]).every(settled)) break;
    }
  }
  const waitingFor = waves.slice(0, open + 1).flatMap((w) => w.filter((n) => !settled(n)));
  const done = waves.every((w) => w.every((n) => report(n).state === 'blessed'));
  return { waves, waveOf, open, halted, done, waitingFor };
}

/** Whether `node` may start applying the release now: a member, not halted, its wave open. */
export function mayApply(plan: WavePlan, node: NodeId): boolean {
  const wave = plan.waveOf.get(node);
  return plan.halted === undefined && wave !== undefined && wave <= plan.open;
}
