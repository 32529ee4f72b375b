/**
 * A real `gitfs serve` process for node tests on loopback: spawned with a clean environment
 * (no inherited GITFS_*), its JSON log lines on stderr collected, every wait bounded, and
 * stopped with SIGTERM (SIGKILL if it does not exit in time).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { GITFS_BIN } from '../support/cli.js';

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GITFS_')) env[k] = v;
  return { ...env, GITFS_AUTHOR_NAME: 'Test Author', GITFS_AUTHOR_EMAIL: 'test@example.invalid', ...extra };
}

/** A UDP port free on 127.0.0.1 a moment ago. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A TCP port free on 127.0.0.1 a moment ago. */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `p` settles within `ms` (the timer is cleared either way, so it keeps nothing alive). */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface LogLine {
  readonly level: string;
  readonly ns: string;
  readonly event: string;
  readonly [field: string]: unknown;
}

export class ServeProcess {
  readonly lines: string[] = [];
  readonly events: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private partial = '';

  private constructor(
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
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      const parts = (this.partial + d).split('\n');
      this.partial = parts.pop() ?? '';
      for (const line of parts) {
        if (line === '') continue;
        this.lines.push(line);
        try {
          const e = JSON.parse(line) as LogLine;
          if (typeof e.event === 'string') this.events.push(e);
        } catch {
          // not a log line; kept in `lines`
        }
      }
    });
  }

  /** Starts `gitfs serve --repo REPO` and waits (bounded) for its `serving` line. */
  static async start(label: string, repo: string, env: Record<string, string>, timeoutMs = 20_000): Promise<ServeProcess> {
    const child = spawn(process.execPath, [GITFS_BIN, 'serve', '--repo', repo], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new ServeProcess(label, child);
    await p.waitFor(() => p.events.some((e) => e.event === 'serving'), timeoutMs, 'the serving line');
    return p;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  async waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (!this.running) throw new Error(`${this.label}: exited while waiting for ${what}\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.label}: no ${what} within ${timeoutMs} ms\n${this.tail()}`);
      await sleep(20);
    }
  }

  /** SIGTERM, then (bounded) SIGKILL. Never throws. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    if (!(await within(this.exited, timeoutMs))) {
      this.child.kill('SIGKILL');
      await within(this.exited, 5000);
    }
  }

  tail(n = 30): string {
    const state = this.exit === undefined ? 'running' : `exited code=${this.exit.code} signal=${this.exit.signal}`;
    return `--- ${this.label} (pid ${this.child.pid}, ${state}), last stderr lines:\n${this.lines.slice(-n).join('\n')}`;
  }
}
