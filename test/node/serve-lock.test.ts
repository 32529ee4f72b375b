/**
 * One `gitfs serve` per repository (src/node/serve-lock.ts), with real processes: of two started
 * at the same moment exactly one serves, and a daemon killed -9 leaves a lock the next takes over.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { takeServeLock } from '../../src/node/serve-lock.js';
import type { HeldLock } from '../../src/util/process-lock.js';
import { thisProcess } from '../../src/util/proc.js';
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
      // The loser names the winner, also when it met the winner taking over the lock a killed one left.
      assert.match(loser.lines.join('\n'), new RegExp(`already runs .*\\(pid ${winner.child.pid}\\).*GITFS_ALREADY_SERVING`));
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

  it('a lock of a process of another pid namespace holds while it is touched or a daemon answers, and is taken over once neither; a daemon answering without a lock refuses the start too', async () => {
    const gitDir = tmp.make();
    const lock = join(gitDir, 'gitfs', 'serve.lock');
    mkdirSync(dirname(lock), { recursive: true });
    // A process this one cannot look up: its pid namespace is another.
    const record = `${JSON.stringify({ ...thisProcess(), pid: 999_999, pidNs: 'pid:[1]', nonce: 'n' })}\n`;
    const old = (): void => utimesSync(lock, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    let answers = false;
    const take = (): Promise<HeldLock> => takeServeLock(gitDir, () => Promise.resolve(answers));
    writeFileSync(lock, record);
    await assert.rejects(take(), (e: unknown) => isGitfsError(e, ErrorCodes.ALREADY_SERVING) && /already runs .*\(pid 999999\)/.test(e.message), 'touched within a minute: held');
    old();
    answers = true;
    await assert.rejects(take(), (e: unknown) => isGitfsError(e, ErrorCodes.ALREADY_SERVING), 'untouched, but its daemon answers: held');
    answers = false;
    const held = await take();
    assert.notEqual(readFileSync(lock, 'utf8'), record, 'untouched, no daemon answering: taken over');
    await held.release();
    assert.equal(existsSync(lock), false);
    // No lock at all, but a daemon answers (a gitfs without the lock): refused, and no lock is left behind.
    answers = true;
    await assert.rejects(take(), (e: unknown) => isGitfsError(e, ErrorCodes.ALREADY_SERVING) && /a daemon answers on its socket/.test(e.message));
    assert.equal(existsSync(lock), false);
  });
});
