/**
 * Cluster benchmark: head propagation latency and announcement traffic on N real node daemons,
 * each in its own network namespace on one bridge (test/support/netns.ts), multicast TTL 1.
 *
 *   1. `gitfs init` + one commit on `main` in every node's repository; node 0 makes the cluster
 *      (`cluster init`, `serve`); every other node joins with a one-time token (`cluster token`
 *      on node 0, `cluster join` on node k, both inside the nodes' namespaces) and serves.
 *      The daemons run with the default announce settings (interval 30 s ±20 %, repeats
 *      200/600/1400/3000 ms, debounce 50 ms) unless --interval-ms is given.
 *   2. Waits until every daemon lists every other (peer-up events, then `gitfs peers --json`).
 *   3. Latency, no loss: --trials commits, round-robin over the nodes. t0 = Date.now() just
 *      before `gitfs commit` is spawned in the committing node's namespace; t1 = the latest `t`
 *      of the `head` events for that commit's oid in the other nodes' stderr (the same machine
 *      clock). Latency = t1 - t0; it includes the commit process, which is also reported alone.
 *      A trial not seen everywhere within --timeout-intervals intervals is a failure (timeout).
 *   4. The same with --loss % of incoming UDP dropped in every namespace (nftables).
 *   5. Traffic, no loss: node 0 gets --branches branches in all (main plus `gitfs branch create`),
 *      the others keep 1; once every node lists them and the repeats are over, stats.sent of
 *      every daemon is read twice, --window-s apart (default 2 × interval × 1.2: at least two
 *      periodic announcements per node whatever the jitter).
 *
 * Prints a markdown report and writes it to --out (default bench/results/cluster-latest.md).
 * Progress goes to stderr. Needs root (ip netns, nft). Usage (after `make build`):
 *   node dist/bench/cluster.js [--trials 50] [--nodes 8] [--loss 20] [--branches 100]
 *                              [--interval-ms MS] [--window-s S] [--timeout-intervals 3] [--out FILE]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { DEFAULT_CONFIG, MIN_ANNOUNCE_INTERVAL_MS } from '../src/node/config.js';
import type { NodeSnapshot } from '../src/node/snapshot.js';
import { GITFS_BIN } from '../test/support/cli.js';
import { createNetnsCluster, netnsSupported, type NetnsCluster, type NetnsNode } from '../test/support/netns.js';
import { benchLog, gitfsEnv, machineLine, shownArgs, until, writeReport } from './netns-bench.js';
import { NODE_FLAGS } from '../src/cli/node-flags.js';

const log = benchLog('cluster-bench');

// ---------------------------------------------------------------- options
const { values: opt } = parseArgs({
  options: {
    trials: { type: 'string', default: '50' },
    nodes: { type: 'string', default: '8' },
    loss: { type: 'string', default: '20' },
    branches: { type: 'string', default: '100' },
    'interval-ms': { type: 'string' },
    'window-s': { type: 'string' },
    'timeout-intervals': { type: 'string', default: '3' },
    out: { type: 'string', default: fileURLToPath(new URL('../../bench/results/cluster-latest.md', import.meta.url)) },
  },
  strict: true,
});

function intOption(name: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`cluster bench: --${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}

const TRIALS = intOption('trials', opt.trials, 1, 10_000);
const NODES = intOption('nodes', opt.nodes, 2, 50);
const LOSS = intOption('loss', opt.loss, 0, 99);
const BRANCHES = intOption('branches', opt.branches, 1, 2000);
const INTERVAL_OVERRIDE = opt['interval-ms'] === undefined ? undefined : intOption('interval-ms', opt['interval-ms'], MIN_ANNOUNCE_INTERVAL_MS, 3_600_000);
const INTERVAL_MS = INTERVAL_OVERRIDE ?? DEFAULT_CONFIG.announce.intervalMs;
const JITTER = DEFAULT_CONFIG.announce.jitter;
const REPEATS = DEFAULT_CONFIG.announce.repeatMs;
const WINDOW_MS = opt['window-s'] === undefined ? Math.ceil(2 * INTERVAL_MS * (1 + JITTER)) : 1000 * intOption('window-s', opt['window-s'], 1, 86_400);
const TIMEOUT_MS = intOption('timeout-intervals', opt['timeout-intervals'], 1, 100) * INTERVAL_MS;
const OUT = opt.out;

/** Between trials, so the next commit does not land in the same RefWatcher poll. */
const TRIAL_GAP_MS = 300;
/** A phase stops after this many timeouts in a row (something is broken; the rest would each wait TIMEOUT_MS). */
const MAX_CONSECUTIVE_TIMEOUTS = 3;
/** After the last branch is created: ref relisting (1 s) + debounce + the last repeat (3 s), with margin. */
const QUIET_MS = 1000 + DEFAULT_CONFIG.announce.debounceMs + (REPEATS[REPEATS.length - 1] ?? 0) + 1500;
const CLI_TIMEOUT_MS = 60_000;


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- daemons and their logs
interface LogLine {
  t?: number;
  level?: string;
  event?: string;
  nodeId?: string;
  branch?: string;
  oid?: string;
  [key: string]: unknown;
}

class Daemon {
  nodeId: string | undefined;
  readonly peers = new Set<string>();
  /** oid → `t` of the first `head` event naming it (any sender). */
  readonly firstSeen = new Map<string, number>();
  /** sender nodeId → its branches as this node lists them. */
  readonly branchesOf = new Map<string, Set<string>>();
  readonly warnings = new Map<string, number>();
  readonly tail: string[] = [];
  exit: string | undefined;
  private partial = '';

  constructor(
    readonly index: number,
    readonly node: NetnsNode,
    readonly repo: string,
    readonly child: ChildProcess,
  ) {
    child.stderr?.setEncoding('utf8').on('data', (d: string) => this.data(d));
    child.on('exit', (code, signal) => (this.exit = `exited ${code ?? signal}`));
    child.on('error', (e) => (this.exit = `failed: ${e.message}`));
  }

  private data(d: string): void {
    const lines = (this.partial + d).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  private line(text: string): void {
    if (text.trim() === '') return;
    this.tail.push(text);
    if (this.tail.length > 30) this.tail.shift();
    let l: LogLine;
    try {
      l = JSON.parse(text) as LogLine;
    } catch {
      this.count('non-JSON stderr');
      return;
    }
    if (l.level === 'warn' || l.level === 'error') this.count(`${l.level} ${l.event ?? '?'}${typeof l.reason === 'string' ? ` (${l.reason})` : ''}`);
    switch (l.event) {
      case 'serving':
        this.nodeId = l.nodeId;
        break;
      case 'peer-up':
      case 'peer-restart':
        if (l.nodeId !== undefined) this.peers.add(l.nodeId);
        break;
      case 'peer-down':
        if (l.nodeId !== undefined) this.peers.delete(l.nodeId);
        break;
      case 'head':
        if (l.oid !== undefined && typeof l.t === 'number' && !this.firstSeen.has(l.oid)) this.firstSeen.set(l.oid, l.t);
        if (l.nodeId !== undefined && l.branch !== undefined) this.branches(l.nodeId).add(l.branch);
        break;
      case 'head-removed':
        if (l.nodeId !== undefined && l.branch !== undefined) this.branches(l.nodeId).delete(l.branch);
        break;
    }
  }

  private branches(sender: string): Set<string> {
    let s = this.branchesOf.get(sender);
    if (s === undefined) this.branchesOf.set(sender, (s = new Set()));
    return s;
  }

  private count(key: string): void {
    this.warnings.set(key, (this.warnings.get(key) ?? 0) + 1);
  }
}

// ---------------------------------------------------------------- helpers
async function gitfsIn(node: NetnsNode, args: string[], timeoutMs = CLI_TIMEOUT_MS): Promise<string> {
  const r = await node.exec(process.execPath, [...NODE_FLAGS, GITFS_BIN, ...args], { env: gitfsEnv(), timeoutMs });
  if (r.code !== 0) throw new Error(`gitfs ${args.join(' ')} in ${node.ns} exited ${r.code}: ${r.stderr.trim().slice(-800)}`);
  return r.stdout;
}

async function snapshotOf(d: Daemon): Promise<NodeSnapshot> {
  return JSON.parse(await gitfsIn(d.node, ['peers', '--repo', d.repo, '--json'])) as NodeSnapshot;
}

function checkAlive(daemons: readonly Daemon[]): void {
  for (const d of daemons) {
    if (d.exit !== undefined) throw new Error(`daemon of node ${d.index} ${d.exit}; last stderr:\n${d.tail.join('\n')}`);
  }
}

/** Runs `f` over `items` with at most `limit` at once. */
async function pool<T>(items: readonly T[], limit: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await f(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// ---------------------------------------------------------------- trials
interface Trial {
  readonly index: number;
  readonly node: number;
  oid?: string;
  /** Spawn of `gitfs commit` to its exit, ms. */
  commitMs?: number;
  /** t0 to the last other node's head event, ms. */
  latencyMs?: number;
  /** Exit of `gitfs commit` to the last other node's head event, ms. */
  afterExitMs?: number;
  /** Which node listed it last. */
  slowest?: number;
  reached: number;
  error?: string;
}

interface Phase {
  readonly name: string;
  readonly loss: number;
  readonly trials: Trial[];
  aborted?: string;
}

async function runTrials(name: string, loss: number, daemons: readonly Daemon[], work: string): Promise<Phase> {
  const phase: Phase = { name, loss, trials: [] };
  let timeoutsInRow = 0;
  for (let i = 0; i < TRIALS; i++) {
    checkAlive(daemons);
    const k = i % daemons.length;
    const d = daemons[k] as Daemon;
    const others = daemons.filter((x) => x !== d);
    const trial: Trial = { index: i, node: k, reached: 0 };
    phase.trials.push(trial);
    const src = join(work, `src${k}`);
    await writeFile(join(src, 'trial.txt'), `${name} trial ${i} ${Math.random()}\n`);
    const t0 = Date.now();
    const r = await d.node.exec(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'commit', '--repo', d.repo, '--branch', 'main', '--from', src, '-m', `${name} ${i}`, '--json'], {
      env: gitfsEnv(),
      timeoutMs: CLI_TIMEOUT_MS,
    });
    const tExit = Date.now();
    trial.commitMs = tExit - t0;
    let oid: string | undefined;
    try {
      oid = (JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { commit?: string | null }).commit ?? undefined;
    } catch {
      oid = undefined;
    }
    if (r.code !== 0 || oid === undefined) {
      trial.error = `gitfs commit exited ${r.code}: ${r.stderr.trim().slice(-300) || r.stdout.trim().slice(-300)}`;
      log(`${name} #${i} node ${k}: ${trial.error}`);
      continue;
    }
    trial.oid = oid;
    const seen = (): number => others.filter((x) => x.firstSeen.has(oid)).length;
    const all = await until(() => seen() === others.length || daemons.some((x) => x.exit !== undefined), t0 + TIMEOUT_MS);
    checkAlive(daemons);
    trial.reached = seen();
    if (!all) {
      const missing = others.filter((x) => !x.firstSeen.has(oid)).map((x) => x.index);
      trial.error = `timeout: ${trial.reached} of ${others.length} nodes listed it within ${TIMEOUT_MS / 1000} s (missing: nodes ${missing.join(', ')})`;
      log(`${name} #${i} node ${k}: ${trial.error}`);
      if (++timeoutsInRow >= MAX_CONSECUTIVE_TIMEOUTS) {
        phase.aborted = `stopped after ${MAX_CONSECUTIVE_TIMEOUTS} timeouts in a row (${phase.trials.length} of ${TRIALS} trials run)`;
        log(`${name}: ${phase.aborted}`);
        break;
      }
      continue;
    }
    timeoutsInRow = 0;
    let t1 = -Infinity;
    for (const x of others) {
      const t = x.firstSeen.get(oid) as number;
      if (t > t1) {
        t1 = t;
        trial.slowest = x.index;
      }
    }
    trial.latencyMs = t1 - t0;
    trial.afterExitMs = t1 - tExit;
    log(`${name} #${i} node ${k}: ${trial.latencyMs} ms (commit process ${trial.commitMs} ms, then ${trial.afterExitMs} ms; last: node ${trial.slowest})`);
    await sleep(TRIAL_GAP_MS);
  }
  return phase;
}

// ---------------------------------------------------------------- traffic
interface Traffic {
  readonly index: number;
  readonly branches: number;
  readonly windowMs: number;
  readonly announcements: number;
  readonly packets: number;
  readonly bytes: number;
  readonly received: number;
}

async function measureTraffic(daemons: readonly Daemon[], branchesOf: (d: Daemon) => number): Promise<Traffic[]> {
  const before: { t: number; s: NodeSnapshot }[] = [];
  for (const d of daemons) {
    const a = Date.now();
    const s = await snapshotOf(d);
    before.push({ t: (a + Date.now()) / 2, s });
  }
  log(`traffic: measuring for ${(WINDOW_MS / 1000).toFixed(0)} s`);
  await sleep(WINDOW_MS);
  checkAlive(daemons);
  const out: Traffic[] = [];
  for (const d of daemons) {
    const a = Date.now();
    const s = await snapshotOf(d);
    const t = (a + Date.now()) / 2;
    const b = before[d.index] as { t: number; s: NodeSnapshot };
    const s0 = b.s.stats.sent;
    const s1 = s.stats.sent;
    if (s0 === null || s1 === null) throw new Error(`node ${d.index} reports no send statistics`);
    out.push({
      index: d.index,
      branches: branchesOf(d),
      windowMs: t - b.t,
      announcements: s1.announcements - s0.announcements,
      packets: s1.packets - s0.packets,
      bytes: s1.bytes - s0.bytes,
      received: (s.stats.received?.received ?? 0) - (b.s.stats.received?.received ?? 0),
    });
  }
  return out;
}

// ---------------------------------------------------------------- report
const nearestRank = (sorted: readonly number[], p: number): number => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;

interface Summary {
  readonly n: number;
  readonly failed: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly under1s: number;
  readonly underInterval: number;
}

/** Percentiles by nearest rank over every trial run; a failed trial counts as +Infinity. */
function summarize(values: readonly (number | undefined)[]): Summary {
  const xs = values.map((v) => v ?? Infinity).sort((a, b) => a - b);
  return {
    n: xs.length,
    failed: xs.filter((x) => x === Infinity).length,
    p50: nearestRank(xs, 50),
    p90: nearestRank(xs, 90),
    p99: nearestRank(xs, 99),
    max: xs[xs.length - 1] ?? Infinity,
    under1s: xs.filter((x) => x < 1000).length,
    underInterval: xs.filter((x) => x < INTERVAL_MS).length,
  };
}

const ms = (x: number): string => (x === Infinity ? 'failed' : String(Math.round(x)));
const pct = (k: number, n: number): string => (n === 0 ? '–' : `${((100 * k) / n).toFixed(0)}% (${k}/${n})`);
const sec = (msv: number): string => `${(msv / 1000).toFixed(msv % 1000 === 0 ? 0 : 1)} s`;

function latencyRows(p: Phase): string[] {
  const rows: string[] = [];
  const add = (what: string, s: Summary): void => {
    rows.push(`| ${p.name} | ${what} | ${s.n} | ${s.failed} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} | ${ms(s.max)} | ${pct(s.under1s, s.n)} | ${pct(s.underInterval, s.n)} |`);
  };
  add('**commit start → every other node lists the head**', summarize(p.trials.map((t) => t.latencyMs)));
  add('`gitfs commit` process alone', summarize(p.trials.map((t) => t.commitMs)));
  add('commit exit → every other node lists the head', summarize(p.trials.map((t) => t.afterExitMs)));
  return rows;
}

function trafficRow(label: string, ts: readonly Traffic[]): string {
  const sum = (f: (t: Traffic) => number): number => ts.reduce((a, t) => a + f(t), 0);
  const ann = sum((t) => t.announcements);
  const packets = sum((t) => t.packets);
  const bytes = sum((t) => t.bytes);
  const windowS = sum((t) => t.windowMs) / 1000;
  const perAnn = ann === 0 ? NaN : bytes / ann;
  const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '–');
  return `| ${label} | ${ts[0]?.branches ?? '–'} | ${f(windowS / ts.length, 1)} | ${ann} | ${f(ann === 0 ? NaN : packets / ann, 2)} | ${f(perAnn)} | ${f(packets === 0 ? NaN : bytes / packets)} | ${f(bytes / windowS, 1)} | ${f(perAnn / (INTERVAL_MS / 1000), 1)} |`;
}

interface Report {
  started: Date;
  loadBefore: number[];
  loadAfter?: number[];
  setupMs?: number;
  convergeMs?: number;
  phases: Phase[];
  traffic?: Traffic[];
  branchNames?: string;
  warnings: Map<string, number>;
  error?: string;
  totalMs?: number;
}

function render(r: Report): string {
  const o: string[] = [];
  o.push(`# gitfs cluster benchmark (${r.started.toISOString().slice(0, 16)}Z)`, '');
  o.push(
    machineLine(r.loadBefore, r.loadAfter),
  );
  o.push(
    `${NODES} nodes, each a \`gitfs serve\` daemon in its own network namespace on one bridge (test/support/netns.ts), multicast TTL 1. ` +
      `Announce interval **${sec(INTERVAL_MS)}** ±${(JITTER * 100).toFixed(0)} % (${INTERVAL_OVERRIDE === undefined ? 'the default' : 'set by --interval-ms; the default is ' + sec(DEFAULT_CONFIG.announce.intervalMs)}), ` +
      `repeats ${REPEATS.join('/')} ms after each change, debounce ${DEFAULT_CONFIG.announce.debounceMs} ms; every node runs the same machine clock.`,
  );
  if (r.setupMs !== undefined) o.push(`Setup (init, cluster init, ${NODES - 1} joins, daemons started) ${sec(r.setupMs)}; every node listed every other ${r.convergeMs === undefined ? '–' : sec(r.convergeMs)} after the last daemon started.`);
  o.push('');
  if (r.error !== undefined) o.push(`**The run failed:** ${r.error}`, '');

  const noLoss = r.phases.find((p) => p.loss === 0);
  const lossy = r.phases.find((p) => p.loss > 0);
  o.push('## Targets', '', '| target | this run | |', '|---|---|---|');
  if (noLoss) {
    const s = summarize(noLoss.trials.map((t) => t.latencyMs));
    o.push(`| commit → all ${NODES - 1} other nodes list the head, no loss: p99 < 1 s | p99 ${ms(s.p99)} ms, p50 ${ms(s.p50)} ms | ${s.p99 < 1000 && !noLoss.aborted && s.n === TRIALS ? 'met' : '**not met**'} |`);
  }
  if (lossy) {
    const s = summarize(lossy.trials.map((t) => t.latencyMs));
    o.push(`| the same with ${lossy.loss} % of UDP dropped: p99 < 1 interval (${sec(INTERVAL_MS)}) | p99 ${ms(s.p99)} ms, p50 ${ms(s.p50)} ms | ${s.p99 < INTERVAL_MS && !lossy.aborted && s.n === TRIALS ? 'met' : '**not met**'} |`);
  }
  if (r.traffic) {
    const rate = (ts: readonly Traffic[]): string => {
      const sum = (f: (t: Traffic) => number): number => ts.reduce((a, t) => a + f(t), 0);
      const perAnn = sum((t) => t.bytes) / sum((t) => t.announcements);
      return `${(perAnn / (INTERVAL_MS / 1000)).toFixed(1)} B/s (${perAnn.toFixed(0)} B per announcement ÷ ${sec(INTERVAL_MS)}); measured ${(sum((t) => t.bytes) / (sum((t) => t.windowMs) / 1000)).toFixed(1)} B/s`;
    };
    o.push(`| announcement traffic sent per node, ${BRANCHES} branches | ${rate(r.traffic.filter((t) => t.index === 0))} | (no target) |`);
    o.push(`| the same, 1 branch | ${rate(r.traffic.filter((t) => t.index !== 0))} | (no target) |`);
  }
  o.push('');

  if (r.phases.length > 0) {
    o.push('## Head propagation latency', '');
    o.push(
      `${TRIALS} trials per condition, the committing node round-robin. t0 = \`Date.now()\` just before \`gitfs commit --from DIR --branch main\` is spawned in the committing node's namespace ` +
        `(through \`ip netns exec\`); t1 = the latest \`t\` of the \`head\` log events for that commit in the other ${NODES - 1} daemons. ` +
        `The latency includes the commit process (a fresh Node process: start-up, commit, exit), shown alone in the second row of each condition, and the daemon noticing the ref (it polls every 100 ms). ` +
        `Each change is announced once and repeated ${REPEATS.length} times (${REPEATS.join('/')} ms later), so with loss a node misses a head until the next periodic announcement only if all ${REPEATS.length + 1} datagrams are lost. ` +
        `A trial not listed everywhere within ${sec(TIMEOUT_MS)} is a failure and counts as infinitely slow. ` +
        `Percentiles are nearest-rank${TRIALS < 100 ? `; with ${TRIALS} trials p99 is the maximum` : ''}. Times in ms.`,
      '',
    );
    o.push('| condition | measured | trials | failed | p50 | p90 | p99 | max | < 1 s | < 1 interval |', '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const p of r.phases) o.push(...latencyRows(p));
    o.push('');
    for (const p of r.phases) {
      if (p.aborted) o.push(`- ${p.name}: ${p.aborted}.`);
      for (const t of p.trials) if (t.error !== undefined) o.push(`- ${p.name} trial ${t.index} (node ${t.node}): ${t.error}`);
    }
    o.push('');
  }

  if (r.traffic) {
    o.push('## Announcement traffic at steady state', '');
    o.push(
      `No loss, no changes for at least ${sec(QUIET_MS)} before the window (repeats over). Node 0 holds ${BRANCHES} branches (${r.branchNames ?? ''}), the others 1 (\`main\`). ` +
        `Bytes are \`gitfs peers --json\` stats.sent.bytes: datagram payload put on the wire, counted once per destination (here 1: the multicast group; UDP/IP/Ethernet headers not included). ` +
        `Over a window of ${sec(WINDOW_MS)} a node sends 2 or 3 periodic announcements depending on the jitter, so the measured rate is coarse; ` +
        `bytes per announcement ÷ the mean interval is the steady rate. Each node receives what the ${NODES - 1} others send.`,
      '',
    );
    o.push(
      '| node | branches | window s (per node) | announcements | packets / announcement | bytes / announcement | bytes / packet | B/s measured | B/s at the mean interval |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    o.push(trafficRow('node 0', r.traffic.filter((t) => t.index === 0)));
    o.push(trafficRow(`nodes 1–${NODES - 1} (per node, summed over them)`, r.traffic.filter((t) => t.index !== 0)));
    o.push('');
    o.push('<details><summary>Per node</summary>', '');
    o.push('| node | branches | window s (per node) | announcements | packets | bytes | packets received (own included: multicast loops back) |', '|---:|---:|---:|---:|---:|---:|---:|');
    for (const t of r.traffic) o.push(`| ${t.index} | ${t.branches} | ${(t.windowMs / 1000).toFixed(1)} | ${t.announcements} | ${t.packets} | ${t.bytes} | ${t.received} |`);
    o.push('', '</details>', '');
  }

  if (r.warnings.size > 0) {
    o.push('Warnings and errors the daemons logged over the run (all nodes): ' + [...r.warnings].map(([k, v]) => `${k} × ${v}`).join(', ') + '.', '');
  }

  if (r.phases.some((p) => p.trials.length > 0)) {
    o.push('<details><summary>Every trial</summary>', '');
    o.push('| condition | trial | node | latency ms | commit process ms | after exit ms | last to list it |', '|---|---:|---:|---:|---:|---:|---:|');
    for (const p of r.phases) {
      for (const t of p.trials) {
        o.push(`| ${p.name} | ${t.index} | ${t.node} | ${t.latencyMs ?? 'failed'} | ${t.commitMs ?? '–'} | ${t.afterExitMs ?? '–'} | ${t.slowest ?? '–'} |`);
      }
    }
    o.push('', '</details>', '');
  }
  o.push(`Command: \`node dist/bench/cluster.js ${shownArgs().join(' ')}\`${r.totalMs === undefined ? '' : `; total time ${sec(Math.round(r.totalMs / 100) * 100)}`}.`);
  return `${o.join('\n')}\n`;
}

// ---------------------------------------------------------------- main
async function main(): Promise<number> {
  if (!netnsSupported()) {
    process.stderr.write('cluster bench: needs root and a working `ip netns`\n');
    return 2;
  }
  const report: Report = { started: new Date(), loadBefore: loadavg(), phases: [], warnings: new Map() };
  const t00 = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'gfsb-'));
  const removeWork = (): void => rmSync(work, { recursive: true, force: true });
  process.on('exit', removeWork);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)));

  let cluster: NetnsCluster | undefined;
  const daemons: Daemon[] = [];
  let status = 0;
  try {
    log(`${NODES} namespaces; interval ${INTERVAL_MS} ms${INTERVAL_OVERRIDE === undefined ? ' (default)' : ''}; work directory ${work}`);
    cluster = await createNetnsCluster(NODES, { label: 'bench' });
    const nodes = cluster.nodes;

    // Repositories with one commit each, made before any daemon runs.
    const repos = nodes.map((n) => join(work, `n${n.index}`));
    await pool(nodes, 2, async (n) => {
      const repo = repos[n.index] as string;
      const src = join(work, `src${n.index}`);
      mkdirSync(src);
      await writeFile(join(src, 'trial.txt'), `node ${n.index} initial\n`);
      await gitfsIn(n, ['init', '--repo', repo]);
      await gitfsIn(n, ['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'initial']);
    });

    const serve = async (n: NetnsNode): Promise<Daemon> => {
      const repo = repos[n.index] as string;
      const env = gitfsEnv({ GITFS_NODE_NAME: `bench-n${n.index}`, ...(INTERVAL_OVERRIDE === undefined ? {} : { GITFS_ANNOUNCE_INTERVAL_MS: String(INTERVAL_OVERRIDE) }) });
      const d = new Daemon(n.index, n, repo, n.spawn(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'serve', '--repo', repo], { env, stdio: ['ignore', 'ignore', 'pipe'] }));
      daemons.push(d);
      if (!(await until(() => d.nodeId !== undefined || d.exit !== undefined, Date.now() + 30_000, 20)) || d.nodeId === undefined) {
        throw new Error(`daemon of node ${n.index} did not start (${d.exit ?? 'no "serving" within 30 s'}); stderr:\n${d.tail.join('\n')}`);
      }
      return d;
    };

    const first = nodes[0] as NetnsNode;
    await gitfsIn(first, ['cluster', 'init', '--repo', repos[0] as string]);
    await serve(first);
    for (const n of nodes.slice(1)) {
      const token = (await gitfsIn(first, ['cluster', 'token', '--repo', repos[0] as string])).trim();
      await gitfsIn(n, ['cluster', 'join', '--repo', repos[n.index] as string, token]);
      await serve(n);
      log(`node ${n.index} joined and serves`);
    }
    report.setupMs = Date.now() - t00;

    // Everyone lists everyone, with their main.
    const started = Date.now();
    const ids = daemons.map((d) => d.nodeId as string);
    const converged = await until(
      () => daemons.every((d) => ids.every((id) => id === d.nodeId || (d.peers.has(id) && (d.branchesOf.get(id)?.has('main') ?? false)))) || daemons.some((d) => d.exit !== undefined),
      started + 2 * INTERVAL_MS + 10_000,
      20,
    );
    checkAlive(daemons);
    if (!converged) {
      const lacking = daemons.map((d) => `node ${d.index} lists ${d.peers.size}`).join(', ');
      throw new Error(`the nodes did not all list each other within ${sec(2 * INTERVAL_MS + 10_000)}: ${lacking}`);
    }
    report.convergeMs = Date.now() - started;
    for (const d of daemons) {
      const s = await snapshotOf(d);
      if (s.peers.length !== NODES - 1) throw new Error(`gitfs peers on node ${d.index} lists ${s.peers.length} peers, not ${NODES - 1}`);
    }
    log(`every node lists the other ${NODES - 1} (${report.convergeMs} ms after the last daemon started)`);

    // Latency without and with loss.
    report.phases.push(await runTrials('no loss', 0, daemons, work));
    if (LOSS > 0) {
      await cluster.dropUdp(LOSS);
      log(`dropping ${LOSS} % of incoming UDP in every namespace`);
      report.phases.push(await runTrials(`${LOSS} % UDP loss`, LOSS, daemons, work));
      await cluster.dropUdp(0);
    }

    // Traffic: node 0 with BRANCHES branches in all, the others with main alone.
    const d0 = daemons[0] as Daemon;
    const names = Array.from({ length: BRANCHES - 1 }, (_, i) => `branch-${String(i + 1).padStart(3, '0')}`);
    report.branchNames = BRANCHES === 1 ? '`main`' : `\`main\`, \`${names[0]}\` … \`${names[names.length - 1]}\``;
    log(`traffic: creating ${names.length} branches on node 0`);
    await pool(names, 3, async (name) => void (await gitfsIn(d0.node, ['branch', 'create', '--repo', d0.repo, name, 'main'])));
    const lastChange = Date.now();
    const listed = await until(
      () => daemons.every((d) => d === d0 || (d.branchesOf.get(d0.nodeId as string)?.size ?? 0) === BRANCHES) || daemons.some((d) => d.exit !== undefined),
      lastChange + 2 * INTERVAL_MS + 10_000,
      50,
    );
    checkAlive(daemons);
    if (!listed) {
      throw new Error(`not every node lists node 0's ${BRANCHES} branches: ${daemons.map((d) => d.branchesOf.get(d0.nodeId as string)?.size ?? 0).join(' ')}`);
    }
    await sleep(Math.max(0, lastChange + QUIET_MS - Date.now()));
    report.traffic = await measureTraffic(daemons, (d) => (d === d0 ? BRANCHES : 1));
  } catch (e) {
    report.error = (e as Error).message;
    log(`error: ${(e as Error).stack ?? String(e)}`);
    status = 1;
  } finally {
    for (const d of daemons) for (const [k, v] of d.warnings) report.warnings.set(k, (report.warnings.get(k) ?? 0) + v);
    report.loadAfter = loadavg();
    if (cluster !== undefined) await cluster.cleanup();
    removeWork();
  }
  report.totalMs = Date.now() - t00;
  writeReport(OUT, render(report), log);
  return status;
}

process.exitCode = await main();
