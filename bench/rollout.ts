/**
 * Rollout benchmark (issue 6): N nodes in network namespaces (test/support/netns.ts), every
 * node's eth0 egress shaped by tbf to --rate-mbit, each running `gitfs serve` with the channel
 * `kernel/bench` replicated to all and applied by a hook that checks the reassembled image is
 * there (apply), passes (health) unless the version is marked bad, and does nothing on rollback,
 * so what is measured is gitfs: the transfer, the verification (signature, SHA-256 of the whole
 * image), the agents and the waves (defaults: canary 1, then 25 %, 50 %, 100 %).
 *
 *   1. v1, an image of --size-mib pseudo-random MiB, published on node 0: time from the end of
 *      `gitfs rollout publish` until every node has blessed it, against S/B (the transfer alone).
 *   2. v2, the same image with --change-mib MiB rewritten: the same time (the swarm moves the delta).
 *   3. `gitfs rollout rollback` on the last node: time until every node has v1 blessed again.
 *   4. v3, marked bad (its health check fails): time from the canary's failed check until every
 *      node has halted the rollout (and no other node ever applied it).
 *
 * Usage (after `make build`, as root): node dist/bench/rollout.js [--nodes 8] [--size-mib 320]
 *   [--rate-mbit 200] [--change-mib 4] [--out FILE]. Prints a markdown report and writes it.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GITFS_BIN } from '../test/support/cli.js';
import { Daemon, type LogEvent } from '../test/support/cluster-nodes.js';
import { createNetnsCluster, netnsSupported, type NetnsCluster, type NetnsNode } from '../test/support/netns.js';
import { benchLog, gitfsEnv, machineLine, shownArgs, until, writeKeystream, writeReport } from './netns-bench.js';
import { NODE_FLAGS } from '../src/cli/node-flags.js';

const log = benchLog('rollout-bench');
const { values: opt } = parseArgs({
  options: {
    nodes: { type: 'string', default: '8' },
    'size-mib': { type: 'string', default: '320' },
    'rate-mbit': { type: 'string', default: '200' },
    'change-mib': { type: 'string', default: '4' },
    out: { type: 'string', default: fileURLToPath(new URL('../../bench/results/rollout-latest.md', import.meta.url)) },
  },
});
const N = Number(opt.nodes);
const SIZE_MIB = Number(opt['size-mib']);
const RATE = Number(opt['rate-mbit']);
const CHANGE_MIB = Number(opt['change-mib']);
const CHANNEL = 'kernel/bench';
const HOOK = `#!/bin/bash
# The benchmark's hook: apply checks the image is there; health fails for versions marked bad.
case "$1" in
  apply) test -s "$GITFS_PAYLOAD" ;;
  health) case "$GITFS_VERSION" in *bad*) exit 1 ;; *) exit 0 ;; esac ;;
  rollback) exit 0 ;;
  *) exit 2 ;;
esac
`;

/** Where node `repo` stands: the release it has blessed on the channel ('' for none). */
function blessed(repo: string): string {
  try {
    return readFileSync(join(repo, 'refs', 'gitfs', 'blessed', CHANNEL), 'utf8').trim();
  } catch {
    return '';
  }
}

async function main(): Promise<void> {
  if (!netnsSupported()) throw new Error('needs root and ip netns');
  const loadBefore = loadavg();
  const work = mkdtempSync(join(tmpdir(), 'gitfs-rollout-bench-'));
  let cluster: NetnsCluster | undefined;
  const daemons: Daemon[] = [];
  try {
    cluster = await createNetnsCluster(N, { label: 'rollout', rateMbit: RATE });
    const nodes = cluster.nodes;
    const image = join(work, 'image.iso');
    writeKeystream(image, 0, SIZE_MIB, 7, true);
    const hook = join(work, 'hook');
    writeFileSync(hook, HOOK);
    chmodSync(hook, 0o755);
    const key = join(work, 'key');
    const first = nodes[0] as NetnsNode;
    const run = async (n: NetnsNode, args: string[], repo?: string): Promise<string> => {
      const r = await n.exec(process.execPath, [...NODE_FLAGS, GITFS_BIN, ...args, ...(repo === undefined ? [] : ['--repo', repo])], { env: gitfsEnv(), timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`gitfs ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await run(first, ['key', 'new', key]);
    const repos = nodes.map((n) => join(work, `n${n.index}`));
    const config = { policies: [{ branches: 'kernel/*' }], rollout: { trustedKeys: [readFileSync(`${key}.pub`, 'utf8').trim()], channels: [{ channel: CHANNEL, apply: hook, healthTimeoutMs: 600_000 }] } };
    for (const n of nodes) {
      await run(n, ['init'], repos[n.index]);
      mkdirSync(join(repos[n.index] as string, 'gitfs'), { recursive: true });
      writeFileSync(join(repos[n.index] as string, 'gitfs', 'node.json'), JSON.stringify(config));
    }
    const serve = async (n: NetnsNode): Promise<void> => {
      const child = n.spawn(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'serve', '--repo', repos[n.index] as string], { env: gitfsEnv({ GITFS_NODE_NAME: `b${n.index}` }), stdio: ['ignore', 'ignore', 'pipe'] });
      const d = new Daemon(`node ${n.index}`, child);
      daemons.push(d);
      if (!(await until(() => d.find('serving').length > 0, Date.now() + 30_000))) throw new Error(`node ${n.index} did not start: ${d.tail()}`);
    };
    await run(first, ['cluster', 'init'], repos[0]);
    await serve(first);
    for (const n of nodes.slice(1)) {
      await run(n, ['cluster', 'join', (await run(first, ['cluster', 'token'], repos[0])).trim()], repos[n.index]);
      await serve(n);
    }
    await until(() => daemons.every((d) => d.find('peer-up').length >= N - 1), Date.now() + 90_000, 50);
    log(`${N} daemons list each other`);

    const publish = async (version: string): Promise<{ commit: string; t0: number }> => {
      const out = await run(first, ['rollout', 'publish', '--channel', CHANNEL, image, '--version', version, '--sign', key, '--json'], repos[0]);
      return { commit: (JSON.parse(out) as { commit: string }).commit, t0: Date.now() };
    };
    const allBlessed = async (commit: string, t0: number, what: string): Promise<number> => {
      if (!(await until(() => repos.every((r) => blessed(r) === commit), t0 + 900_000, 20))) throw new Error(`${what}: not blessed everywhere within 15 min`);
      const ms = Date.now() - t0;
      log(`${what}: every node blessed it ${(ms / 1000).toFixed(2)} s after publish`);
      return ms;
    };
    const sb = (SIZE_MIB * 8 * 1.048576) / RATE;
    const v1 = await publish('1.0');
    const v1Ms = await allBlessed(v1.commit, v1.t0, 'v1');
    writeKeystream(image, Math.floor(SIZE_MIB / 3), CHANGE_MIB, 9, false);
    const v2 = await publish('2.0');
    const v2Ms = await allBlessed(v2.commit, v2.t0, 'v2');
    const last = nodes[N - 1] as NetnsNode;
    const r0 = Date.now();
    await run(last, ['rollout', 'rollback', CHANNEL, '--sign', key], repos[N - 1]);
    const backMs = await allBlessed(v1.commit, r0, 'rollback');
    writeKeystream(image, 1, 1, 11, false);
    const v3 = await publish('3.0-bad');
    const settled = (d: Daemon): LogEvent | undefined => d.find('rollout', { step: 'halted', commit: v3.commit })[0] ?? d.find('rollout', { step: 'rollback-done', commit: v3.commit })[0];
    if (!(await until(() => daemons.every((d) => settled(d) !== undefined), v3.t0 + 600_000, 20))) {
      throw new Error('v3: the rollout did not halt everywhere');
    }
    const failedAt = Math.min(...daemons.flatMap((d) => d.find('rollout', { step: 'health-failed', commit: v3.commit }).map((e) => e.t)));
    const haltedAt = Math.max(...daemons.map((d) => settled(d)?.t ?? NaN));
    const applied = daemons.filter((d) => d.find('hook-start', { action: 'apply', version: '3.0-bad' }).length > 0).length;
    const md = [
      `# gitfs rollout benchmark (${new Date().toISOString().slice(0, 16)}Z)`,
      '',
      machineLine(loadBefore, loadavg()),
      `${N} nodes in network namespaces, every eth0 egress shaped by tbf to **${RATE} Mbit/s**; image **${SIZE_MIB} MiB** of pseudo-random data; hook: apply checks the image is there, health passes unless the version is marked bad (so gitfs is measured, not a boot). Waves: the defaults (canary 1, then 25 %, 50 %, 100 % of the nodes).`,
      '',
      '| phase | time | against |',
      '|---|---:|---|',
      `| v1 (${SIZE_MIB} MiB) published → blessed on all ${N} nodes | ${(v1Ms / 1000).toFixed(2)} s | S/B ${sb.toFixed(2)} s: ${(v1Ms / 1000 / sb).toFixed(2)}× |`,
      `| v2 (${CHANGE_MIB} MiB changed) published → blessed on all | ${(v2Ms / 1000).toFixed(2)} s | |`,
      `| \`gitfs rollout rollback\` → v1 blessed again on all | ${(backMs / 1000).toFixed(2)} s | |`,
      `| v3 (bad): canary's failed health check → halted on all | ${((haltedAt - failedAt) / 1000).toFixed(2)} s | nodes that applied v3: ${applied} (the canary) |`,
      '',
      `Command: \`node dist/bench/rollout.js ${shownArgs().join(' ')}\`.`,
      '',
    ].join('\n');
    process.stdout.write(md);
    writeReport(opt.out as string, md, log);
  } finally {
    for (const d of daemons) d.child.kill('SIGKILL');
    await cluster?.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
