/**
 * Summarises V8 CPU profiles (the `.cpuprofile` files `node --cpu-prof` writes, e.g. from
 * `node dist/bench/swarm.js --cpu-prof DIR`): per file, the time sampled, the time not idle,
 * and the functions with the most self time. Usage: node dist/bench/cpu-profile.js FILE... [--top N]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Profile {
  readonly nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  readonly samples: number[];
  readonly startTime: number;
  readonly endTime: number;
}

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '20' } }, allowPositionals: true });
for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const frames = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const perSampleUs = (p.endTime - p.startTime) / Math.max(1, p.samples.length);
  const self = new Map<string, number>();
  for (const id of p.samples) {
    const f = frames.get(id);
    const key = f === undefined ? '?' : `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + perSampleUs);
  }
  const total = (p.endTime - p.startTime) / 1e6;
  const idle = [...self].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0) / 1e6;
  process.stdout.write(`== ${file}: ${total.toFixed(2)} s sampled, ${(total - idle).toFixed(2)} s busy\n`);
  for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) process.stdout.write(`${(us / 1000).toFixed(0).padStart(7)} ms  ${k}\n`);
}
