/**
 * Real FUSE mounts for tests: `gitfs mount` runs as a separate process (the test process must
 * never serve its own mount). Every mount started here is unmounted and its process killed by
 * `stopAll()`, which suites call from an `after` hook before removing their directories.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GITFS_BIN } from './cli.js';
import { suiteDirs, type SuiteDirs } from './tmp.js';
import { gitfsProcessEnv, NODE_FLAGS } from '../../src/cli/node-flags.js';
import { mountAt } from '../../src/mount/mount-table.js';

const READY_MS = 30_000;

function mounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === path);
}

/**
 * Aborts the FUSE connection of the mount at `path` (fusectl): every request it has not answered
 * fails at once. A mount process that deadlocked on its own mount cannot exit otherwise, not even
 * on SIGKILL: one of its threads waits in the kernel for an answer only it could give.
 */
async function abortConnection(path: string): Promise<void> {
  const minor = (await mountAt(path))?.device.split(':')[1];
  if (minor === undefined) return;
  const connections = '/sys/fs/fuse/connections';
  if ((await mountAt(connections)) === undefined) execFileSync('mount', ['-t', 'fusectl', 'none', connections], { stdio: 'ignore' });
  // Gone meanwhile: the process ended its connection after all.
  if (existsSync(join(connections, minor))) writeFileSync(join(connections, minor, 'abort'), '1');
}

export class TestMount {
  private output = '';
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly repo: string,
    readonly path: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code) => ((this.exitCode = code), resolve())));
  }

  /** What the mount process printed (its log). */
  get log(): string {
    return this.output;
  }

  get exitStatus(): number | null | undefined {
    return this.exitCode;
  }

  /** `env`: added to the mount process's environment. */
  static async start(repo: string, path: string, extraArgs: readonly string[] = [], env: Readonly<Record<string, string>> = {}): Promise<TestMount> {
    const child = spawn(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'mount', '--repo', repo, ...extraArgs, path], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: gitfsProcessEnv({ ...process.env, GITFS_AUTHOR_NAME: 'Test Author', GITFS_AUTHOR_EMAIL: 'test@example.invalid', ...env }),
    });
    const m = new TestMount(repo, path, child);
    live.add(m);
    const until = Date.now() + READY_MS;
    while (!m.output.includes(' mounted at ')) {
      if (m.exitCode !== undefined) throw new Error(`gitfs mount exited ${m.exitCode}: ${m.output}`);
      if (Date.now() > until) throw new Error(`gitfs mount did not come up: ${m.output}`);
      await sleep(20);
    }
    return m;
  }

  /**
   * Ends the mount process with `signal` and waits for it: SIGKILL after 15 s, and 5 s later its
   * FUSE connection is aborted (a process stuck on its own mount ends no other way). Fails if even
   * that does not end it; it is forgotten either way, so that later suites' stops do not wait on it.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    try {
      if (this.exitCode !== undefined) return;
      this.child.kill(signal);
      if (await this.exitsWithin(15_000)) return;
      await this.killed();
    } finally {
      live.delete(this);
    }
  }

  /** SIGKILL, and its FUSE connection aborted if it has not ended 5 s later (then it fails). */
  private async killed(): Promise<void> {
    this.child.kill('SIGKILL');
    if (await this.exitsWithin(5_000)) return;
    await abortConnection(this.path);
    if (await this.exitsWithin(10_000)) throw new Error(`gitfs mount at ${this.path} ended only once its FUSE connection was aborted: it was stuck on its own mount\n${this.output}`);
    throw new Error(`gitfs mount at ${this.path} (pid ${this.child.pid}) did not exit on SIGKILL, even with its FUSE connection aborted`);
  }

  private exitsWithin(ms: number): Promise<boolean> {
    return Promise.race([this.exited.then(() => true), sleep(ms).then(() => false)]);
  }

  /** kill -9: the mount is left stale, as after a crash. */
  async kill(): Promise<void> {
    try {
      await this.killed();
    } finally {
      live.delete(this);
      killed.add(this.path);
    }
  }

  /** Waits for the process to exit on its own (after `gitfs umount`). */
  async exit(ms = 15_000): Promise<number | null> {
    await Promise.race([this.exited, sleep(ms)]);
    if (this.exitCode === undefined) throw new Error('the mount process did not exit');
    live.delete(this);
    return this.exitCode;
  }
}

const live = new Set<TestMount>();
const killed = new Set<string>();

/** Has stopAllMounts clear a mount at `path` too: one a test expects never to be made. */
export function clearMountAt(path: string): void {
  killed.add(path);
}

/** Stops every mount this module started and clears any mount they left. */
export async function stopAllMounts(): Promise<void> {
  const paths = [...live].map((m) => m.path).concat([...killed]);
  const stopped = await Promise.allSettled([...live].map((m) => m.stop()));
  const failures: unknown[] = stopped.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
  for (const path of paths) {
    try {
      if (mounted(path)) execFileSync('fusermount', ['-uz', path], { stdio: 'ignore' });
    } catch (e) {
      failures.push(e);
    }
  }
  killed.clear();
  // Every mount was tried before the first failure is told.
  if (failures.length > 0) throw failures[0];
}

/** Temporary directories for a suite that mounts (call inside its `describe`): unmounted before removal. */
export function mountSuiteDirs(): SuiteDirs {
  return suiteDirs(stopAllMounts);
}
