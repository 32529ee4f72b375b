/**
 * Rounds the swarm schedule needs to bring P pieces from one seed to N nodes (src/swarm/simulate.ts),
 * against the pipelined bound P + ceil(log2 N) and against whole-object doubling, P × ceil(log2 N)
 * (every holder passes the whole object on each time, log2 N transfer times of P pieces each).
 * Prints a markdown table. Usage (after `make build`): node dist/bench/schedule.js [N,N,...] [P,P,...]
 */
import { ceilLog2 } from '../src/swarm/schedule.js';
import { simulate } from '../src/swarm/simulate.js';

const list = (arg: string | undefined, fallback: number[]): number[] => (arg === undefined ? fallback : arg.split(',').map(Number));
const nodeCounts = list(process.argv[2], [2, 3, 4, 5, 8, 16, 17, 32, 64, 100, 128, 200, 256]);
const pieceCounts = list(process.argv[3], [1, 64, 512]);

const rows: string[] = [
  '| N | P | rounds | P + ⌈log2 N⌉ | rounds − (P + ⌈log2 N⌉) | P × ⌈log2 N⌉ | rounds ÷ (P × ⌈log2 N⌉) | seed uploads | max per piece | ms |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];
let worst = -Infinity;
for (const pieces of pieceCounts) {
  for (const nodes of nodeCounts) {
    const started = performance.now();
    const r = simulate({ nodes, pieces });
    const ms = performance.now() - started;
    const pipelined = pieces + ceilLog2(nodes);
    const doubling = pieces * ceilLog2(nodes);
    worst = Math.max(worst, r.rounds - pipelined);
    const perPiece = r.seedUploadsPerPiece.reduce((a, b) => Math.max(a, b), 0);
    rows.push(`| ${nodes} | ${pieces} | ${r.rounds} | ${pipelined} | ${r.rounds - pipelined} | ${doubling} | ${(r.rounds / doubling).toFixed(3)} | ${r.seedUploads} | ${perPiece} | ${ms.toFixed(0)} |`);
  }
}
console.log(rows.join('\n'));
console.log(`\nworst rounds − (P + ⌈log2 N⌉): ${worst}`);
