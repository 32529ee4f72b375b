/**
 * gitfs nodes in network namespaces (test/support/netns.ts): a repository per node on the shared
 * filesystem, the real CLI run inside the node's namespace, and `gitfs serve` daemons whose JSON
 * log lines on stderr are collected as events. Every wait is bounded and fails with the daemons'
 * recent log lines.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { NodeSnapshot } from '../../src/node/snapshot.js';
import { daemonSocketPath } from '../../src/node/daemon.js';
import { ErrorCodes } from '../../src/errors.js';
import { askUnixSocket } from '../../src/util/unix-socket.js';
import { GITFS_BIN } from './cli.js';
import type { ExecResult, NetnsNode } from './netns.js';
import { gitfsProcessEnv, NODE_FLAGS } from '../../src/cli/node-flags.js';

/** One JSON line of a daemon's stderr. */
export interface LogEvent {
  readonly t: number;
  readonly level: string;
  readonly ns: string;
  readonly event: string;
  readonly [field: string]: unknown;
}

/** What `gitfs peers --json` prints. */
export type PeersSnapshot = NodeSnapshot;

/** What `gitfs peers --json` prints, asked of the daemon of `repo` on its socket (no process started: milliseconds). */
export function snapshotOf(repo: string): Promise<NodeSnapshot> {
  return askUnixSocket(daemonSocketPath(repo), { op: 'peers' }, { timeoutMs: 10_000, peer: 'the node daemon', failCode: ErrorCodes.NOT_SERVING }) as Promise<NodeSnapshot>;
}

/** What `gitfs cluster show --json` prints. */
export interface ClusterShow {
  readonly cluster: string;
  readonly caFingerprint: string;
  readonly nodeId: string;
  readonly certificateExpires: string;
  readonly issuer: boolean;
  readonly revocationVersion: number;
  readonly revoked: string[];
}

/** The environment every gitfs process of the tests gets: the caller's without GITFS_*, plus `extra`, as gitfs processes are started. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GITFS_')) env[k] = v;
  return gitfsProcessEnv({ ...env, GITFS_AUTHOR_NAME: 'Test Author', GITFS_AUTHOR_EMAIL: 'test@example.invalid', ...extra });
}

/** A running (or exited) `gitfs serve`. */
export class Daemon {
  readonly events: LogEvent[] = [];
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly startedAt = Date.now();
  private partial = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      child.once('error', (e) => {
        this.lines.push(`[spawn error: ${e.message}]`);
        this.exit = { code: 127, signal: null };
        resolve(this.exit);
      });
    });
    child.stdout?.resume();
    child.stderr?.setEncoding('utf8').on('data', (d: string) => this.take(d));
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  private take(data: string): void {
    const parts = (this.partial + data).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line === '') continue;
      this.lines.push(line);
      if (!line.startsWith('{')) continue;
      try {
        const e = JSON.parse(line) as LogEvent;
        if (typeof e.event === 'string') this.events.push(e);
      } catch {
        // not a log line; kept in `lines`
      }
    }
  }

  /** Events named `event` whose fields include `match`. */
  find(event: string, match: Record<string, unknown> = {}): LogEvent[] {
    return this.events.filter((e) => e.event === event && Object.entries(match).every(([k, v]) => e[k] === v));
  }

  /** The last `n` stderr lines, for failure messages. */
  tail(n = 25): string {
    const shown = this.lines.slice(-n);
    const state = this.exit === undefined ? 'running' : `exited code=${this.exit.code} signal=${this.exit.signal}`;
    return `--- ${this.label} (pid ${this.child.pid}, ${state}), last ${shown.length} of ${this.lines.length} stderr lines:\n${shown.join('\n')}${this.partial ? `\n${this.partial}` : ''}`;
  }
}

export class GitfsNode {
  /** Every daemon started for this node, the current one last. */
  readonly daemons: Daemon[] = [];
  nodeId = '';

  constructor(
    readonly net: NetnsNode,
    readonly repo: string,
    readonly name: string,
    private readonly baseEnv: Record<string, string>,
  ) {}

  static make(net: NetnsNode, baseDir: string, name: string, env: Record<string, string>): GitfsNode {
    return new GitfsNode(net, join(baseDir, name), name, { GITFS_NODE_NAME: name, ...env });
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return cleanEnv({ ...this.baseEnv, ...extra });
  }

  get daemon(): Daemon | undefined {
    return this.daemons.at(-1);
  }

  get serving(): boolean {
    return this.daemon?.running === true;
  }

  /** Runs `gitfs ARGS --repo <repo>` inside the namespace. */
  run(args: readonly string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<ExecResult> {
    return this.net.exec(process.execPath, [...NODE_FLAGS, GITFS_BIN, ...args, '--repo', this.repo], { env: this.env(opts.env), timeoutMs: opts.timeoutMs ?? 30_000 });
  }

  /** Like run(), failing with its stderr (and this node's daemon log) unless it exits 0. */
  async ok(args: readonly string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.run(args, opts);
    if (r.code !== 0) throw new Error(`${this.name}: gitfs ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}\n${r.stdout.trim().slice(0, 4000)}${this.daemon ? `\n${this.daemon.tail()}` : ''}`);
    return r.stdout;
  }

  async peers(): Promise<PeersSnapshot> {
    return JSON.parse(await this.ok(['peers', '--json'])) as PeersSnapshot;
  }

  async show(): Promise<ClusterShow> {
    return JSON.parse(await this.ok(['cluster', 'show', '--json'])) as ClusterShow;
  }

  /** Starts `gitfs serve` and waits (bounded) for its `serving` line. */
  async start(extraEnv: Record<string, string> = {}, timeoutMs = 20_000): Promise<Daemon> {
    if (this.serving) throw new Error(`${this.name}: a daemon runs already`);
    const child = this.net.spawn(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'serve', '--repo', this.repo], { env: this.env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
    const d = new Daemon(`${this.name} daemon #${this.daemons.length + 1}`, child);
    this.daemons.push(d);
    const deadline = Date.now() + timeoutMs;
    while (d.find('serving').length === 0) {
      if (!d.running) throw new Error(`${this.name}: gitfs serve exited before serving\n${d.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name}: gitfs serve not serving within ${timeoutMs} ms\n${d.tail()}`);
      await sleep(20);
    }
    return d;
  }

  /** Signals the current daemon and waits (bounded) for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    const d = this.daemon;
    if (d === undefined || !d.running) return;
    d.child.kill(signal);
    const gone = await Promise.race([d.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
    if (!gone) {
      d.child.kill('SIGKILL');
      throw new Error(`${this.name}: gitfs serve did not exit within ${timeoutMs} ms of ${signal}\n${d.tail()}`);
    }
  }

  /** The current daemon's log tail, or a note that there is none. */
  tail(n?: number): string {
    return this.daemon?.tail(n) ?? `--- ${this.name}: no daemon started`;
  }
}

/** All nodes' daemon logs, for failure messages. */
export function logsOf(nodes: readonly GitfsNode[], n?: number): string {
  return nodes.map((x) => x.tail(n)).join('\n');
}

/**
 * Calls `probe` until it returns something other than undefined, at most `timeoutMs`; then fails
 * with `what`, the last probe's error or result (`detail`) and `diag()` (daemon logs). A probe
 * answers `true` or undefined, never `false` (the wait fails at once: a slip that would have
 * passed).
 */
export async function waitFor<T extends object | string | number | true>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
  opts: { diag?: () => string; detail?: () => string; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    let v: T | undefined;
    try {
      v = await probe();
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if ((v as unknown) === false) throw new Error(`the probe for ${what} answered false: it answers true or undefined`);
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      const why = lastError === undefined ? '' : `\nlast probe failed: ${(lastError as Error).message ?? String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${opts.detail ? `\n${opts.detail()}` : ''}${why}${opts.diag ? `\n${opts.diag()}` : ''}`);
    }
    await sleep(opts.everyMs ?? 100);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What keeps `group` from being a full mesh: each node must list exactly the others, and itself as self. */
export function meshProblems(group: readonly GitfsNode[], snaps: readonly PeersSnapshot[], nameOf: (id: string) => string): string[] {
  const problems: string[] = [];
  group.forEach((n, i) => {
    const snap = snaps[i];
    if (snap === undefined) return;
    if (snap.self.nodeId !== n.nodeId) problems.push(`${n.name}: self.nodeId ${snap.self.nodeId}, want ${n.nodeId}`);
    const want = group.filter((o) => o !== n).map((o) => o.nodeId).sort();
    const got = snap.peers.map((p) => p.nodeId).sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${n.name} lists [${got.map(nameOf).join(' ')}], want [${want.map(nameOf).join(' ')}]`);
  });
  return problems;
}

/** Polls `gitfs peers --json` on every node of `group` until each lists exactly the others. */
export async function waitMesh(group: readonly GitfsNode[], timeoutMs: number, what: string, nameOf: (id: string) => string, diag?: () => string): Promise<PeersSnapshot[]> {
  let problems: string[] = [];
  return waitFor(
    what,
    timeoutMs,
    async () => {
      const snaps = await Promise.all(group.map((n) => n.peers()));
      problems = meshProblems(group, snaps, nameOf);
      return problems.length === 0 ? snaps : undefined;
    },
    { everyMs: 200, detail: () => problems.join('\n'), diag: diag ?? (() => logsOf(group)) },
  );
}

/** A suite's members by index, node id and name, with assertions that name what is missing. */
export class Roster {
  /** Node id -> node name, for readable failure messages. */
  readonly names = new Map<string, string>();

  constructor(private readonly all: () => readonly GitfsNode[]) {}

  readonly nameOf = (id: string): string => this.names.get(id) ?? `unknown ${id.slice(0, 16)}`;

  readonly others = (n: GitfsNode, group: readonly GitfsNode[] = this.all()): GitfsNode[] => group.filter((o) => o !== n);

  readonly member = (i: number): GitfsNode => {
    const n = this.all()[i];
    assert.ok(n, `no member ${i}`);
    return n;
  };

  readonly byId = (id: string): GitfsNode => {
    const n = this.all().find((m) => m.nodeId === id);
    assert.ok(n, `no member with id ${id}`);
    return n;
  };

  /** n's daemon, which must be running. */
  readonly current = (n: GitfsNode): Daemon => {
    const d = n.daemon;
    assert.ok(d?.running, `${n.name}: its daemon is not running\n${n.tail()}`);
    return d;
  };
}
