/**
 * What a node whose branch is at `mine` does when handed `theirs`, as the swarm decides it
 * (src/swarm/swarm.ts `moveBranch`, `merge`): stays where its head holds it, takes it where it
 * holds `mine`, else keeps one of two merges of the same writes or writes their merge. And two
 * models of gossip built on it, for the merge tests and bench/merge-gossip.ts: heads handed
 * between random nodes (any order at all), and rounds in which every node takes up the newest
 * head it has not passed, at once (the daemon's choice). No network: one repository stands for
 * every node.
 */
import { reaches } from '../../src/objects/commit-ancestry.js';
import type { Oid } from '../../src/objects/oid.js';
import { readCommit } from '../../src/files/tree-reader.js';
import { MERGE_BASE_LIMIT, planMerge, writeMerge } from '../../src/repo/merge-heads.js';
import type { Repository } from '../../src/repo/repository.js';

export interface HandedOver {
  readonly head: Oid;
  /** `merged`: merge commits were written (`merges` of them); `kept`: one of two merges of the same writes was kept (`Kept`). */
  readonly by: 'stayed' | 'took' | 'kept' | 'merged';
  readonly merges?: number;
}

/** `pairwise`: merges the two heads as they are, as a gitfs before joins did (merge-heads.ts). */
export async function handOver(repo: Repository, mine: Oid, theirs: Oid, pairwise = false): Promise<HandedOver> {
  const content = async (oid: Oid): Promise<Buffer | undefined> => ((await repo.objects.has(oid)) ? (await repo.objects.read(oid)).content : undefined);
  if (await reaches(content, mine, theirs, MERGE_BASE_LIMIT)) return { head: mine, by: 'stayed' };
  if (await reaches(content, theirs, mine, MERGE_BASE_LIMIT)) return { head: theirs, by: 'took' };
  const plan = await planMerge(repo, mine, theirs);
  if (typeof plan === 'string') throw new Error(`${mine} and ${theirs} are not merged: ${plan}`);
  if ('keep' in plan) return { head: plan.keep, by: 'kept' };
  const { commit, merges } = await writeMerge(repo, pairwise ? { ...plan, join: undefined } : plan);
  return { head: commit, by: 'merged', merges };
}

export interface Gossip {
  /** Each node's head at the end. */
  readonly nodes: readonly Oid[];
  /** Hand-overs made (`handOver` calls). */
  readonly steps: number;
  /** Merge commits written (the same commit written by two hand-overs counts twice), and the heads hand-overs that merged moved to, each counted once. */
  readonly merged: number;
  readonly distinct: number;
  readonly kept: number;
}

/**
 * Nodes starting at `start` (one head each) hand their heads to each other at random, seeded
 * (Park-Miller: 1 to 2^31 - 2), each handed head taken up by `handOver`, until every node holds
 * one head or after `maxSteps` hand-overs.
 */
export async function gossip(repo: Repository, start: readonly Oid[], seed: number, maxSteps: number, pairwise = false): Promise<Gossip> {
  if (!Number.isInteger(seed) || seed < 1 || seed >= 2147483647) throw new RangeError(`seed must be an integer from 1 to 2147483646, not ${seed}`);
  let state = seed;
  const random = (n: number): number => {
    state = (state * 48271) % 2147483647;
    return Math.floor((state / 2147483647) * n);
  };
  const nodes = [...start];
  const tally = new Tally();
  let steps = 0;
  while (steps < maxSteps && new Set(nodes).size > 1) {
    const [a, b] = [random(nodes.length), random(nodes.length)];
    if (a === b) continue;
    steps++;
    const next = await handOver(repo, nodes[a] as Oid, nodes[b] as Oid, pairwise);
    tally.add(next);
    nodes[a] = next.head;
  }
  return { nodes, steps, ...tally.counts() };
}

/**
 * Rounds as the daemons gossip (src/swarm/policy.ts `newestHead`): in each, every node takes up,
 * from the heads all held at the round's start, the newest (by committer time, then the greater
 * id) that is not its own and that it has not passed (its head held it, or one of two merges
 * alike was its own); all at once, as nodes that hear one announcement fetch at once. `all`:
 * every such head instead, newest first, one after another from its own. Until every node holds
 * one head, a round moves none, or after `maxRounds`. `steps` counts hand-overs.
 */
export async function rounds(repo: Repository, start: readonly Oid[], maxRounds: number, o: { pairwise?: boolean; all?: boolean } = {}): Promise<Gossip & { readonly rounds: number }> {
  const times = new Map<Oid, number>();
  const timeOf = async (oid: Oid): Promise<number> => times.get(oid) ?? times.set(oid, (await readCommit(repo.objects, oid)).committer.timestamp).get(oid) ?? 0;
  const passed = new Set<string>();
  const nodes = [...start];
  const tally = new Tally();
  let [round, steps] = [0, 0];
  for (let moved = true; moved && round < maxRounds && new Set(nodes).size > 1; round++) {
    moved = false;
    const ranked: { oid: Oid; time: number }[] = [];
    for (const oid of new Set(nodes)) ranked.push({ oid, time: await timeOf(oid) });
    ranked.sort((a, b) => b.time - a.time || (a.oid > b.oid ? -1 : 1));
    // Each from its head at the round's start: one after another here, as if at once.
    const next = [...nodes];
    for (const [i, mine] of nodes.entries()) {
      const targets = ranked.filter((h) => h.oid !== mine && !passed.has(`${mine}>${h.oid}`));
      let head = mine;
      for (const target of o.all === true ? targets : targets.slice(0, 1)) {
        const handed = await handOver(repo, head, target.oid, o.pairwise);
        steps++;
        tally.add(handed);
        if (handed.head === head) passed.add(`${head}>${target.oid}`);
        head = handed.head;
      }
      next[i] = head;
      moved ||= head !== mine;
    }
    nodes.splice(0, nodes.length, ...next);
  }
  return { nodes, steps, ...tally.counts(), rounds: round };
}

/** What hand-overs did: merge commits written, the heads they moved to, and merges of the same writes kept. */
class Tally {
  private merged = 0;
  private kept = 0;
  private readonly heads = new Set<Oid>();

  add(next: HandedOver): void {
    if (next.by === 'kept') this.kept++;
    if (next.by !== 'merged') return;
    this.merged += next.merges ?? 1;
    this.heads.add(next.head);
  }

  counts(): Pick<Gossip, 'merged' | 'distinct' | 'kept'> {
    return { merged: this.merged, distinct: this.heads.size, kept: this.kept };
  }
}
