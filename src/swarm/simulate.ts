/**
 * Runs the idealised schedule (`planRound`) round after round until every node holds every
 * piece, checking each round's rules as it goes, and counts what it took. Used by the tests and
 * by bench/schedule.ts to compare the rounds with P + ceil(log2 N). Pure and deterministic.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { planRound, type Transfer } from './schedule.js';

export interface SimulationInput {
  readonly nodes: number;
  readonly pieces: number;
  /** The nodes that start with every piece; the others start with none. Default [0]. */
  readonly seeds?: readonly number[];
}

export interface SimulationResult {
  readonly rounds: number;
  /** Pieces sent in all. */
  readonly transfers: number;
  /** Checked every round: no node ever sends more than one piece in a round. */
  readonly maxSendsPerRound: 1;
  /** Pieces sent by seeds in all. */
  readonly seedUploads: number;
  /** For each piece, how many times a seed sent it. */
  readonly seedUploadsPerPiece: number[];
  /** For each node, how many pieces it sent. */
  readonly perNodeSends: number[];
}

function bad(message: string, data: Record<string, unknown>): GitfsError {
  return new GitfsError(ErrorCodes.BAD_ARGUMENT, message, data);
}

/** Checks one round against the rules; throws (a bug in the schedule) on any breach. */
export function checkRound(have: readonly ReadonlySet<number>[], transfers: readonly Transfer[]): void {
  const senders = new Set<number>();
  const receivers = new Set<number>();
  for (const t of transfers) {
    const from = have[t.from];
    const to = have[t.to];
    if (from === undefined || to === undefined || t.from === t.to) throw new Error(`schedule broke a rule: transfer ${JSON.stringify(t)} names no pair of nodes`);
    if (senders.has(t.from)) throw new Error(`schedule broke a rule: node ${t.from} sends twice in a round`);
    if (receivers.has(t.to)) throw new Error(`schedule broke a rule: node ${t.to} receives twice in a round`);
    if (!from.has(t.piece)) throw new Error(`schedule broke a rule: node ${t.from} sends piece ${t.piece} it does not hold`);
    if (to.has(t.piece)) throw new Error(`schedule broke a rule: node ${t.to} receives piece ${t.piece} it holds already`);
    senders.add(t.from);
    receivers.add(t.to);
  }
}

/**
 * Plays `planRound` (rotation = round number) until every node holds every piece. Throws if a
 * round makes no progress or the rounds exceed pieces × nodes, which would be a bug.
 */
export function simulate(input: SimulationInput): SimulationResult {
  const { nodes, pieces } = input;
  const seeds = input.seeds ?? [0];
  if (!Number.isSafeInteger(nodes) || nodes < 1) throw bad(`node count must be a positive integer, not ${String(nodes)}`, { nodes });
  if (!Number.isSafeInteger(pieces) || pieces < 0) throw bad(`piece count must be a non-negative integer, not ${String(pieces)}`, { pieces });
  if (seeds.length === 0) throw bad('at least one seed is needed', {});
  for (const s of seeds) if (!Number.isSafeInteger(s) || s < 0 || s >= nodes) throw bad(`seed ${String(s)} is not a node (0..${nodes - 1})`, { seed: s });

  const isSeed = new Set(seeds);
  const all = Array.from({ length: pieces }, (_, p) => p);
  const have = Array.from({ length: nodes }, (_, i) => new Set<number>(isSeed.has(i) ? all : []));
  const perNodeSends = new Array<number>(nodes).fill(0);
  const seedUploadsPerPiece = new Array<number>(pieces).fill(0);
  let missing = (nodes - isSeed.size) * pieces;
  let rounds = 0;
  let transfers = 0;
  let seedUploads = 0;
  const limit = pieces * nodes;

  while (missing > 0) {
    if (rounds >= limit) throw new Error(`schedule did not finish within ${limit} rounds (${nodes} nodes, ${pieces} pieces)`);
    const plan = planRound(have, pieces, { rotation: rounds });
    if (plan.length === 0) throw new Error(`schedule made no progress in round ${rounds} (${nodes} nodes, ${pieces} pieces, ${missing} pieces missing)`);
    checkRound(have, plan);
    for (const t of plan) {
      (have[t.to] as Set<number>).add(t.piece);
      perNodeSends[t.from] = (perNodeSends[t.from] as number) + 1;
      if (isSeed.has(t.from)) {
        seedUploads++;
        seedUploadsPerPiece[t.piece] = (seedUploadsPerPiece[t.piece] as number) + 1;
      }
    }
    transfers += plan.length;
    missing -= plan.length;
    rounds++;
  }
  return { rounds, transfers, maxSendsPerRound: 1, seedUploads, seedUploadsPerPiece, perNodeSends };
}
