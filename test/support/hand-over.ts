/**
 * What a node whose branch is at `mine` does when handed `theirs`, as the swarm decides it
 * (src/swarm/swarm.ts `moveBranch`, `merge`): stays where its head holds it, takes it where it
 * holds `mine`, else keeps one of two merges of the same writes or writes their merge. A model of
 * gossip for the merge tests and bench/merge-gossip.ts: no network, one repository for every node.
 */
import { reaches } from '../../src/objects/commit-ancestry.js';
import type { Oid } from '../../src/objects/oid.js';
import { MERGE_BASE_LIMIT, planMerge, writeMerge } from '../../src/repo/merge-heads.js';
import type { Repository } from '../../src/repo/repository.js';

export interface HandedOver {
  readonly head: Oid;
  /** `merged`: a merge commit was written; `kept`: one of two merges of the same writes was kept (`Kept`). */
  readonly by: 'stayed' | 'took' | 'kept' | 'merged';
}

export async function handOver(repo: Repository, mine: Oid, theirs: Oid): Promise<HandedOver> {
  const content = async (oid: Oid): Promise<Buffer | undefined> => ((await repo.objects.has(oid)) ? (await repo.objects.read(oid)).content : undefined);
  if (await reaches(content, mine, theirs, MERGE_BASE_LIMIT)) return { head: mine, by: 'stayed' };
  if (await reaches(content, theirs, mine, MERGE_BASE_LIMIT)) return { head: theirs, by: 'took' };
  const plan = await planMerge(repo, mine, theirs);
  if (typeof plan === 'string') throw new Error(`${mine} and ${theirs} are not merged: ${plan}`);
  if ('keep' in plan) return { head: plan.keep, by: 'kept' };
  return { head: (await writeMerge(repo, plan)).commit, by: 'merged' };
}

export interface Gossip {
  /** Each node's head at the end. */
  readonly nodes: readonly Oid[];
  /** Hand-overs made (pairs of one node drawn twice are not counted). */
  readonly steps: number;
  readonly merged: number;
  readonly kept: number;
}

/**
 * Nodes starting at `start` (one head each) hand their heads to each other at random, seeded
 * (Park-Miller), each handed head taken up by `handOver`, until every node holds one head or
 * after `maxSteps` hand-overs.
 */
export async function gossip(repo: Repository, start: readonly Oid[], seed: number, maxSteps: number): Promise<Gossip> {
  let state = seed;
  const random = (n: number): number => {
    state = (state * 48271) % 2147483647;
    return Math.floor((state / 2147483647) * n);
  };
  const nodes = [...start];
  let [steps, merged, kept] = [0, 0, 0];
  while (steps < maxSteps && new Set(nodes).size > 1) {
    const [a, b] = [random(nodes.length), random(nodes.length)];
    if (a === b) continue;
    steps++;
    const next = await handOver(repo, nodes[a] as Oid, nodes[b] as Oid);
    if (next.by === 'merged') merged++;
    if (next.by === 'kept') kept++;
    nodes[a] = next.head;
  }
  return { nodes, steps, merged, kept };
}
