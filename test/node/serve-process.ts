/**
 * A real `gitfs serve` process for node tests on loopback: spawned with a clean environment
 * (no inherited GITFS_*), its JSON log lines on stderr collected, every wait bounded, and
 * stopped with SIGTERM (SIGKILL if it does not exit in time). Free ports for its sockets.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { GITFS_BIN } from '../support/cli.js';
import { cleanEnv, Daemon, sleep } from '../support/cluster-nodes.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

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

/** A `gitfs serve` on loopback (the log collection is cluster-nodes.ts's Daemon). */
export class ServeProcess extends Daemon {
  /** Starts `gitfs serve --repo REPO` and waits (bounded) for its `serving` line. */
  static async start(label: string, repo: string, env: Record<string, string>, timeoutMs = 20_000): Promise<ServeProcess> {
    const p = ServeProcess.spawn(label, repo, env);
    try {
      await p.waitFor(() => p.events.some((e) => e.event === 'serving'), timeoutMs, 'the serving line');
    } catch (e) {
      // The caller never gets it to stop: a daemon left running keeps mocha from ever exiting.
      await p.stop();
      throw e;
    }
    return p;
  }

  /** Starts `gitfs serve --repo REPO`, not waiting for anything. */
  static spawn(label: string, repo: string, env: Record<string, string>): ServeProcess {
    return new ServeProcess(label, spawn(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'serve', '--repo', repo], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }));
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
}
