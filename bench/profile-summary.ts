/** Prints the functions of a V8 .cpuprofile by self time: `node dist/bench/profile-summary.js FILE [TOP]`. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const [file, top = '12'] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: profile-summary FILE [TOP]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const selfMs = new Map<string, number>();
let totalMs = 0;
profile.samples.forEach((id, i) => {
  const ms = (profile.timeDeltas[i] ?? 0) / 1000;
  const f = nodes.get(id)?.callFrame;
  const key = f === undefined ? '?' : `${f.functionName || '(anonymous)'} ${f.url.split('/').pop() ?? ''}:${f.lineNumber}`;
  selfMs.set(key, (selfMs.get(key) ?? 0) + ms);
  totalMs += ms;
});
process.stdout.write(`== ${file.split('/').pop()} (${totalMs.toFixed(0)} ms sampled)\n`);
for (const [key, ms] of [...selfMs].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
  process.stdout.write(`${ms.toFixed(0).padStart(7)} ms  ${key}\n`);
}
