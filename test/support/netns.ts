/**
 * Network-namespace clusters for tests and benchmarks: real node processes on a private L2 segment.
 *
 * Topology of cluster k made by process <pid>:
 *
 *   gfs<pid>-<k>[-label]-hub   bridge br0 (multicast_snooping 0, up) with ports v0, v1, ...
 *   gfs<pid>-<k>[-label]-n<i>  eth0 = veth whose peer v<i> sits in the hub on br0,
 *                              10.a.b.(11+i)/24 (a /24 unique per cluster), lo up,
 *                              route 224.0.0.0/4 dev eth0 (multicast without a default route),
 *                              optional tbf egress shaping (rateMbit), optional TCP
 *                              congestion control (tcpCongestionControl; else the host's)
 *
 * Nothing is created in the root namespace: each veth pair is made inside its node namespace with
 * its peer put straight into the hub (`ip -n <node> link add eth0 type veth peer name v<i> netns <hub>`),
 * so no interface, address or route ever appears there; the only outside trace is /run/netns/<name>.
 * Multicast (TTL 1) and unicast therefore stay on the bridge.
 *
 * Namespaces go away by cleanup(), synchronously on process exit (and SIGINT/SIGTERM/SIGHUP), and,
 * if the creating process was SIGKILLed, by the next createNetnsCluster() of any process.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface NetnsNode {
  readonly index: number;
  /** Namespace name. */
  readonly ns: string;
  /** 'eth0' inside the namespace. */
  readonly iface: string;
  /** IPv4 address of eth0, e.g. 10.201.0.11. */
  readonly address: string;
  /** Runs a command inside the namespace, resolves with code/stdout/stderr, never rejects on non-zero exit; killed after timeoutMs (default 60 s, code 124). */
  exec(cmd: string, args: readonly string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /** Starts a long-running process inside the namespace; it is tracked and killed by cluster.cleanup() or killAll(). */
  spawn(cmd: string, args: readonly string[], opts?: { env?: NodeJS.ProcessEnv; stdio?: StdioOptions }): ChildProcess;
  /** Kills every process this harness started in this namespace (SIGTERM, SIGKILL after 3 s), waiting until they exit. */
  killAll(): Promise<void>;
}

export interface NetnsCluster {
  readonly nodes: readonly NetnsNode[];
  /** e.g. '10.201.0.0/24'. */
  readonly subnet: string;
  /** Adds one more node namespace on the same bridge (for late joiners). Call one at a time. */
  addNode(): Promise<NetnsNode>;
  /** Drops `percent`% (integer 0..100) of incoming UDP packets at random in every node namespace, later ones included; 0 removes the rule. */
  dropUdp(percent: number): Promise<void>;
  /** Kills every tracked process, deletes every namespace made; idempotent, never throws (logs to stderr). */
  cleanup(): Promise<void>;
}

const NAME_RE = /^gfs(\d+)-/;
const KILL_GRACE_MS = 3000;
const MAX_NODES = 200;
const DROP_TABLE = 'gitfs_udp_drop';

let clusterCount = 0;
const live = new Set<Cluster>();
let hooksInstalled = false;

/** True when running as root with a usable `ip netns`. */
export function netnsSupported(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export async function createNetnsCluster(count: number, opts: { label?: string; rateMbit?: number; tcpCongestionControl?: string } = {}): Promise<NetnsCluster> {
  if (!Number.isInteger(count) || count < 0 || count > MAX_NODES) throw new RangeError(`node count must be 0..${MAX_NODES}, got ${count}`);
  if (opts.rateMbit !== undefined && !(opts.rateMbit > 0)) throw new RangeError(`rateMbit must be positive, got ${opts.rateMbit}`);
  if (opts.tcpCongestionControl !== undefined && !/^[a-z0-9_]+$/.test(opts.tcpCongestionControl)) throw new RangeError(`not a congestion control's name: ${JSON.stringify(opts.tcpCongestionControl)}`);
  installHooks();
  await removeStaleNamespaces();
  const k = clusterCount++;
  const label = (opts.label ?? '').toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 12);
  const n = process.pid + k;
  const net = `10.${200 + (Math.floor(n / 256) % 50)}.${n % 256}`;
  const cluster = new Cluster(`gfs${process.pid}-${k}${label ? `-${label}` : ''}`, net, opts.rateMbit, opts.tcpCongestionControl);
  live.add(cluster);
  try {
    await cluster.init();
    for (let i = 0; i < count; i++) await cluster.addNode();
  } catch (err) {
    await cluster.cleanup();
    throw err;
  }
  return cluster;
}

class Node implements NetnsNode {
  readonly iface = 'eth0';
  readonly procs = new Set<ChildProcess>();

  constructor(
    readonly index: number,
    readonly ns: string,
    readonly address: string,
  ) {}

  exec(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.ns, cmd, ...args], opts, this.procs);
  }

  spawn(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; stdio?: StdioOptions } = {}): ChildProcess {
    // `ip netns exec` execs the command in place, so the child's pid is the command's pid.
    const child = spawn('ip', ['netns', 'exec', this.ns, cmd, ...args], { env: opts.env ?? process.env, stdio: opts.stdio ?? 'pipe' });
    track(this.procs, child);
    return child;
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.procs].map(terminate));
  }
}

class Cluster implements NetnsCluster {
  readonly nodes: Node[] = [];
  readonly subnet: string;
  /** Every namespace made, hub first. */
  readonly namespaces: string[] = [];
  private readonly hub: string;
  private nextIndex = 0;
  private dropPercent = 0;
  private cleaning: Promise<void> | undefined;

  constructor(
    private readonly base: string,
    private readonly net: string,
    private readonly rateMbit: number | undefined,
    /** Every node's TCP congestion control (a per-namespace sysctl); the host's when undefined. */
    private readonly tcpCongestionControl: string | undefined,
  ) {
    this.subnet = `${net}.0/24`;
    this.hub = `${base}-hub`;
  }

  async init(): Promise<void> {
    await ip('netns', 'add', this.hub);
    this.namespaces.push(this.hub);
    await ip('-n', this.hub, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    await ip('-n', this.hub, 'link', 'set', 'br0', 'up');
  }

  async addNode(): Promise<NetnsNode> {
    if (this.cleaning) throw new Error(`cluster ${this.base} was cleaned up`);
    const index = this.nextIndex++;
    if (index >= MAX_NODES) throw new RangeError(`at most ${MAX_NODES} nodes per cluster`);
    const node = new Node(index, `${this.base}-n${index}`, `${this.net}.${11 + index}`);
    const { ns } = node;
    await ip('netns', 'add', ns);
    this.namespaces.push(ns);
    await ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${index}`, 'netns', this.hub);
    await ip('-n', this.hub, 'link', 'set', `v${index}`, 'master', 'br0', 'up');
    await ip('-n', ns, 'addr', 'add', `${node.address}/24`, 'dev', 'eth0');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0');
    if (this.rateMbit !== undefined) {
      const burst = Math.max(32 * 1024, Math.ceil((this.rateMbit * 1e6) / 8 / 100)); // >= 10 ms of traffic
      await checked('tc', ['-n', ns, 'qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', `${this.rateMbit}mbit`, 'burst', String(burst), 'latency', '50ms']);
    }
    if (this.tcpCongestionControl !== undefined) await checked('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.tcp_congestion_control=${this.tcpCongestionControl}`]);
    if (this.dropPercent > 0) await applyDrop(node, this.dropPercent);
    this.nodes.push(node);
    return node;
  }

  async dropUdp(percent: number): Promise<void> {
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new RangeError(`percent must be an integer 0..100, got ${percent}`);
    this.dropPercent = percent;
    await Promise.all(this.nodes.map((n) => applyDrop(n, percent)));
  }

  cleanup(): Promise<void> {
    this.cleaning ??= (async () => {
      try {
        await Promise.all(this.nodes.map((n) => n.killAll()));
      } catch (err) {
        console.error(`netns: killing processes of ${this.base}: ${String(err)}`);
      }
      for (const ns of [...this.namespaces].reverse()) await removeNamespace(ns);
      live.delete(this);
    })();
    return this.cleaning;
  }

  /** For process exit: SIGKILL everything in the namespaces and delete them, synchronously. */
  cleanupSync(): void {
    for (const node of this.nodes) for (const child of node.procs) child.kill('SIGKILL');
    for (const ns of [...this.namespaces].reverse()) {
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
        for (const pid of parsePids(pids)) killQuietly(pid);
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 5000 });
      } catch (err) {
        console.error(`netns: could not delete ${ns} at exit: ${String(err)}`);
      }
    }
    live.delete(this);
  }
}

/** Replaces the drop table atomically (`table X` + `delete table X` makes deleting a missing table fine). */
async function applyDrop(node: Node, percent: number): Promise<void> {
  let script = `table inet ${DROP_TABLE}\ndelete table inet ${DROP_TABLE}\n`;
  if (percent > 0) {
    script += `table inet ${DROP_TABLE} {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    meta l4proto udp numgen random mod 100 < ${percent} drop\n  }\n}\n`;
  }
  const r = await node.exec('nft', ['-f', '-'], { input: script, timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`nft in ${node.ns} exited ${r.code}: ${r.stderr.trim()}`);
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const cleanAll = (): void => {
    for (const cluster of [...live]) cluster.cleanupSync();
  };
  process.on('exit', cleanAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanAll();
      // Keep the default behaviour (die by the signal) unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

/** Deletes namespaces named gfs<pid>-... whose pid is no longer alive (left by a killed run). */
async function removeStaleNamespaces(): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list']);
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = Number(NAME_RE.exec(name)?.[1] ?? NaN);
    if (!Number.isInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
    await removeNamespace(name);
  }
}

/** Kills whatever still runs in the namespace (bounded retries), then deletes it; logs instead of throwing. */
async function removeNamespace(ns: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pids = parsePids((await run('ip', ['netns', 'pids', ns])).stdout);
    if (pids.length === 0) break;
    for (const pid of pids) killQuietly(pid);
    await sleep(50);
  }
  const r = await run('ip', ['netns', 'del', ns]);
  if (r.code !== 0 && !r.stderr.includes('No such file')) console.error(`netns: could not delete ${ns}: ${r.stderr.trim()}`);
}

/** Runs a command to completion; never rejects. */
function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}, procs?: Set<ChildProcess>): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    if (procs) track(procs, child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ code: timedOut ? 124 : code, stdout, stderr: timedOut ? `${stderr}[timed out]\n` : stderr });
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => {}); // EPIPE when the command does not read its input
    child.stdin.end(opts.input);
    child.on('error', (err) => {
      stderr += String(err);
      finish(127);
    });
    child.on('close', (code) => finish(code ?? 1));
  });
}

/** Runs a command and fails with its stderr unless it exits 0. */
async function checked(cmd: string, args: readonly string[]): Promise<void> {
  const r = await run(cmd, args, { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
}

function ip(...args: string[]): Promise<void> {
  return checked('ip', args);
}

function track(procs: Set<ChildProcess>, child: ChildProcess): void {
  procs.add(child);
  const forget = (): void => void procs.delete(child);
  child.once('exit', forget);
  child.once('error', forget);
}

/** SIGTERM, then SIGKILL after 3 s; resolves once the process exited (or gave up after another 3 s). */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  if (await within(exited, KILL_GRACE_MS)) return;
  child.kill('SIGKILL');
  await within(exited, KILL_GRACE_MS);
}

async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function parsePids(text: string): number[] {
  return text.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
