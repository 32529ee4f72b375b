/**
 * One `gitfs serve` per repository (src/node/serve-lock.ts), with real processes: of two started
 * at the same moment exactly one serves, and a daemon killed -9 leaves a lock the next takes over.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitfs } from '../support/cli.js';
import { suiteDirs } from '../support/tmp.js';
import { freeTcpPort, freeUdpPort, ServeProcess, within } from './serve-process.js';

describe('gitfs serve: one per repository (gitfs/serve.lock)', function () {
  this.timeout(120_000);
  const processes: ServeProcess[] = [];
  const tmp = suiteDirs(async () => {
    for (const p of processes) await p.stop();
  });

  const ok = async (args: readonly string[]): Promise<void> => {
    const r = await gitfs(args);
    assert.equal(r.code, 0, r.stderr);
  };
  /** The environment of a daemon on ports of its own. */
  const ports = async (): Promise<Record<string, string>> => ({
    GITFS_MULTICAST: 'off',
    GITFS_ADVERTISE: '127.0.0.1',
    GITFS_SERVICE_ADDRESS: '127.0.0.1',
    GITFS_MULTICAST_PORT: String(await freeUdpPort()),
    GITFS_SERVICE_PORT: String(await freeTcpPort()),
  });

  it('of two started at once exactly one serves and the other is refused (exit 5); after a kill -9 the next takes the lock over', async () => {
    const repo = join(tmp.make(), 'r');
    await ok(['init', '--repo', repo]);
    await ok(['cluster', 'init', '--repo', repo]);
    const lock = join(repo, 'gitfs', 'serve.lock');
    for (let round = 0; round < 3; round++) {
      const envs = [await ports(), await ports()];
      // Spawned in the same tick: each finds no daemon answering yet.
      const pair = envs.map((env, i) => ServeProcess.spawn(`round ${round} daemon ${i}`, repo, env));
      processes.push(...pair);
      // Bounded: each either serves or exits.
      const deadline = Date.now() + 30_000;
      while (pair.some((p) => p.running && !p.events.some((e) => e.event === 'serving')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const serving = pair.filter((p) => p.running);
      assert.equal(serving.length, 1, `exactly one serves in round ${round}:\n${pair.map((p) => p.tail()).join('\n')}`);
      const [winner] = serving;
      const loser = pair.find((p) => p !== winner);
      assert.ok(winner !== undefined && loser !== undefined);
      assert.ok(winner.events.some((e) => e.event === 'serving'), winner.tail());
      assert.equal((await loser.exited).code, 5, loser.tail());
      assert.match(loser.lines.join('\n'), new RegExp(`GITFS_ALREADY_SERVING.*pid ${winner.child.pid}|pid ${winner.child.pid}.*GITFS_ALREADY_SERVING`));
      assert.equal((JSON.parse(readFileSync(lock, 'utf8')) as { pid: number }).pid, winner.child.pid, 'the lock names the daemon that serves');
      if (round < 2) {
        winner.child.kill('SIGKILL');
        assert.ok(await within(winner.exited, 10_000), 'killed');
        assert.ok(existsSync(lock), 'a daemon killed -9 leaves its lock behind');
      } else {
        await winner.stop();
        assert.equal((await winner.exited).code, 0, winner.tail());
        assert.equal(existsSync(lock), false, 'a daemon that stops removes its lock');
      }
    }
  });
});
