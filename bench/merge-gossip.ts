/**
 * Writers apart, then gossip: how many merges nodes write before they hold one head, how many the
 * head they come to holds in its history, and whether every version is then kept once.
 * `--writers` nodes each commit to one branch from a common base (f.txt differently, and a file
 * of their own), within `--spread-s` seconds (each writer's second set by the seed); then
 * `--nodes` nodes (the writers among them, the rest at the base) gossip, each taking up a head as
 * the swarm does (test/support/hand-over.ts: stay, take, keep one of two merges of the same
 * writes, or merge: a join of the writes either holds, or with `--pairwise` the two heads as they
 * are, as gitfs did before joins), by one of three models:
 * - `newest`: in rounds, every node at once takes up the newest head it has not passed (the
 *   daemon's choice: policy.ts `newestHead`);
 * - `all`: in rounds, every node takes up every head it has not passed, newest first;
 * - `random`: heads handed between random nodes, seeded: any order at all.
 * One repository stands for every node and no network is involved: it counts merges, not time.
 * Usage (after `make build`):
 *   node dist/bench/merge-gossip.js [--model newest|all|random] [--pairwise] [--writers 8] [--nodes 16] [--seeds 20] [--spread-s 0]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BranchName } from '../src/branches/ref-name.js';
import type { Oid } from '../src/objects/oid.js';
import { commitDirectory } from '../src/repo/commit-directory.js';
import { Repository } from '../src/repo/repository.js';
import { gossip, rounds, type Gossip } from '../test/support/hand-over.js';

const { values: opt } = parseArgs({
  options: { model: { type: 'string', default: 'newest' }, pairwise: { type: 'boolean', default: false }, writers: { type: 'string', default: '8' }, nodes: { type: 'string', default: '16' }, seeds: { type: 'string', default: '20' }, 'spread-s': { type: 'string', default: '0' } },
  strict: true,
});
const int = (name: string, raw: string, min: number, max: number): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, not ${raw}`);
  return n;
};
const NODES = int('nodes', opt.nodes, 2, 256);
const WRITERS = int('writers', opt.writers, 2, NODES);
const SEEDS = int('seeds', opt.seeds, 1, 1000);
const SPREAD = int('spread-s', opt['spread-s'], 0, 86_400);
const MAX_STEPS = 100 * NODES * WRITERS;
const MODEL = opt.model;
const PAIRWISE = opt.pairwise;
if (MODEL !== 'newest' && MODEL !== 'all' && MODEL !== 'random') throw new Error(`--model must be newest, all or random, not ${MODEL}`);

interface Run {
  readonly seed: number;
  readonly steps: number;
  readonly merged: number;
  readonly distinct: number;
  readonly kept: number;
  readonly rounds: number | undefined;
  readonly heads: number;
  /** Merge commits the final head's history holds (0 where the nodes did not come to one head). */
  readonly inHistory: number;
  readonly eachOnce: boolean;
}

async function run(seed: number, work: string): Promise<Run> {
  let seconds = 1_700_000_000;
  const repo = await Repository.init(join(work, 'repo'), { clock: { now: () => seconds * 1000 } });
  try {
    const src = join(work, 'src');
    const commit = async (branch: string, files: Record<string, string>): Promise<Oid> => {
      rmSync(src, { recursive: true, force: true });
      mkdirSync(src);
      for (const [name, text] of Object.entries(files)) writeFileSync(join(src, name), text);
      const made = await commitDirectory(repo, branch as BranchName, src, { message: branch });
      if (made.commit === undefined) throw new Error(`${branch}: nothing committed`);
      return made.commit;
    };
    const base = await commit('base', { 'f.txt': 'base\n' });
    const heads: Oid[] = [];
    for (let w = 0; w < WRITERS; w++) {
      await repo.refs.update(`w${w}` as BranchName, { expected: null, next: base, message: 'bench' });
      // Spread over the window, in an order the seed sets.
      seconds = 1_700_000_100 + (SPREAD === 0 ? 0 : (seed * 7919 + w * 104_729) % (SPREAD + 1));
      heads.push(await commit(`w${w}`, { 'f.txt': `written by ${w}\n`, [`own-${w}.txt`]: `${w}\n` }));
    }
    const start = [...heads, ...Array<Oid>(NODES - WRITERS).fill(base)];
    // The writers' places among the nodes do not matter to `newest`; to `random`, the seed sets the order.
    const g: Gossip & { rounds?: number } = MODEL !== 'random' ? await rounds(repo, start, MAX_STEPS, { pairwise: PAIRWISE, all: MODEL === 'all' }) : await gossip(repo, start, seed, MAX_STEPS, PAIRWISE);
    const final = new Set(g.nodes);
    const [one] = final;
    let [eachOnce, inHistory] = [false, 0];
    if (final.size === 1 && one !== undefined) {
      inHistory = Number(execFileSync('git', ['--git-dir', repo.gitDir, 'rev-list', '--merges', '--count', one], { encoding: 'utf8' }).trim());
      const listing = execFileSync('git', ['--git-dir', repo.gitDir, 'ls-tree', '--format=%(path) %(objectname)', one], { encoding: 'utf8' }).trim().split('\n');
      const versions = listing.filter((l) => l.startsWith('f.')).map((l) => l.split(' ')[1]);
      const written = heads.map((h) => execFileSync('git', ['--git-dir', repo.gitDir, 'rev-parse', `${h}:f.txt`], { encoding: 'utf8' }).trim());
      eachOnce = versions.length === WRITERS && new Set(versions).size === WRITERS && written.every((v) => versions.includes(v));
    }
    return { seed, steps: g.steps, merged: g.merged, distinct: g.distinct, kept: g.kept, rounds: g.rounds, heads: final.size, inHistory, eachOnce };
  } finally {
    await repo.close();
  }
}

const quantile = (xs: readonly number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0;

const runs: Run[] = [];
for (let seed = 1; seed <= SEEDS; seed++) {
  const work = mkdtempSync(join(tmpdir(), 'gitfs-merge-gossip-'));
  try {
    runs.push(await run(seed, work));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
const converged = runs.filter((r) => r.heads === 1);
const col = (pick: (r: Run) => number): string => `${quantile(runs.map(pick), 0.5)} / ${Math.max(...runs.map(pick))}`;
process.stdout.write(
  `${MODEL}${PAIRWISE ? ', pairwise' : ''}: ${WRITERS} writers within ${SPREAD} s, ${NODES} nodes, ${SEEDS} seeds (at most ${MAX_STEPS} ${MODEL === 'random' ? 'hand-overs' : 'rounds'} each)\n\n` +
    '| converged | each version once | rounds | hand-overs (median / max) | merges written | heads merges moved to | merges in the last head\'s history | merges of the same writes kept |\n|---|---|---|---|---|---|---|---|\n' +
    `| ${converged.length} of ${runs.length} | ${runs.filter((r) => r.eachOnce).length} of ${runs.length} | ${MODEL === 'random' ? '-' : col((r) => r.rounds ?? 0)} | ${col((r) => r.steps)} | ${col((r) => r.merged)} | ${col((r) => r.distinct)} | ${col((r) => r.inHistory)} | ${col((r) => r.kept)} |\n`,
);
if (converged.length < runs.length || runs.some((r) => !r.eachOnce)) process.exitCode = 1;
