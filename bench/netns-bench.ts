/** What the namespace benchmarks (cluster.ts, swarm.ts, rollout.ts) share: logging, bounded waits, the environment, report headers and output, test images. */
import { createCipheriv } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { cleanEnv } from '../test/support/cluster-nodes.js';

/** A progress logger writing `[NAME HH:MM:SS] message` to stderr. */
export function benchLog(name: string): (msg: string) => void {
  return (msg) => void process.stderr.write(`[${name} ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Polls `cond` until it holds (true) or `deadline` (ms since the epoch) passes (false). */
export async function until(cond: () => boolean | Promise<boolean>, deadline: number, everyMs = 20): Promise<boolean> {
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return cond();
}

const AUTHOR = { GITFS_AUTHOR_NAME: 'Bench', GITFS_AUTHOR_EMAIL: 'bench@example.invalid' };

/** The caller's environment without GITFS_* (the daemons' defaults are what is measured), plus `extra`, as gitfs processes are started. */
export function gitfsEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cleanEnv({ ...AUTHOR, ...extra });
}

/** The command line without --out (the wrapper points it at a temporary name). */
export function shownArgs(): string[] {
  const args = process.argv.slice(2);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--out') i++;
    else if (!a.startsWith('--out=')) out.push(a);
  }
  return out;
}

/** `2 vCPU <model>, 24 GiB RAM, load average before … after …, Linux …, Node ….` */
export function machineLine(loadBefore: readonly number[], loadAfter: readonly number[] | undefined): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const load = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  return (
    `${availableParallelism()} vCPU ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, load average before the run ${load(loadBefore)}` +
    `${loadAfter ? `, after ${load(loadAfter)}` : ''}, Linux ${release()}, Node ${process.version}.`
  );
}

/** Writes the report to `out` (making its directory) and to stdout. */
export function writeReport(out: string, markdown: string, log: (msg: string) => void): void {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, markdown);
  process.stdout.write(markdown);
  log(`report written to ${out}`);
}

/** Writes `mib` MiB of AES-128-CTR keystream (key byte `k`) at `offsetMib` of the file (created or overwritten in place). */
export function writeKeystream(path: string, offsetMib: number, mib: number, k: number, create: boolean): void {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, k), Buffer.alloc(16, 0));
  const zero = Buffer.alloc(1 << 20);
  const fd = openSync(path, create ? 'w' : 'r+');
  try {
    for (let i = 0; i < mib; i++) writeSync(fd, cipher.update(zero), 0, 1 << 20, (offsetMib + i) * (1 << 20));
  } finally {
    closeSync(fd);
  }
}
