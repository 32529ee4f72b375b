/**
 * The running hook on record: real process groups (bash, sleep) spawned detached with the run's
 * token in their environment, as the hook runner spawns hooks, then stopped as a restarted
 * daemon stops what a killed one left running: by the token (a kill before the group was
 * recorded; a child that left the group), by the group (a child that dropped its environment);
 * stale records (another boot, a group id now naming another process, a torn file) stop nothing.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { clearHookRecord, recordHookGroup, recordHookRun, stopLeftoverHook } from '../../src/rollout/hook-record.js';
import { MAX_LOGGED_LINES, runHook } from '../../src/rollout/hook-runner.js';
import { jsonLogger } from '../../src/util/log.js';
import { systemClock } from '../../src/util/clock.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('rollout/hook-record: a hook left running by a killed daemon', function () {
  this.timeout(60_000);
  const spawned: ChildProcess[] = [];
  const strays: number[] = [];
  let dir = '';
  let path = '';
  let events: Array<Record<string, unknown>> = [];
  const log = jsonLogger((line) => events.push(JSON.parse(line) as Record<string, unknown>), systemClock);

  /** A detached group running `script` in the background under bash; resolves with bash's pid and the background job's. */
  async function group(script: string, env: Record<string, string>): Promise<{ leader: number; child: number }> {
    const c = spawn('bash', ['-c', `${script} & echo $!; wait`], { detached: true, stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
    spawned.push(c);
    const line = await new Promise<string>((resolve) => c.stdout?.once('data', (d: Buffer) => resolve(d.toString().trim())));
    // bash sets traps and the job execs its command: give them a moment.
    await sleep(200);
    strays.push(Number(line));
    return { leader: c.pid as number, child: Number(line) };
  }

  beforeEach(() => {
    dir = tempDir('hook-record');
    path = join(dir, 'hook.pid');
    events = [];
  });
  after(() => {
    for (const pid of [...spawned.map((c) => -(c.pid as number)), ...strays]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
    cleanupTempDirs();
  });

  it('stops every process of a recorded run, then removes the record', async () => {
    const run = recordHookRun(path);
    const g = await group('sleep 300', run.env);
    recordHookGroup(path, run.token, g.leader);
    assert.ok(alive(g.leader) && alive(g.child));
    await stopLeftoverHook(path, log, { channel: 'site/prod' });
    assert.ok(!alive(g.leader), 'leader gone');
    assert.ok(!alive(g.child), 'its child gone');
    assert.ok(!existsSync(path), 'record removed');
    const leftover = events.find((e) => e['event'] === 'hook-leftover');
    assert.deepEqual([...(leftover?.['pids'] as number[])].sort(), [g.leader, g.child].sort());
    assert.equal(leftover?.['channel'], 'site/prod');
    assert.ok(events.some((e) => e['event'] === 'hook-leftover-stopped'));
  });

  it('finds the run by its token: killed before its group was recorded, or a child in a session of its own', async () => {
    const run = recordHookRun(path);
    const g = await group('setsid sleep 300', run.env);
    assert.notEqual(readFileSync(`/proc/${g.child}/stat`, 'latin1').split(') ')[1]?.split(' ')[2], String(g.leader), 'the child left the group');
    await stopLeftoverHook(path, log, {});
    assert.ok(!alive(g.leader) && !alive(g.child));
  });

  it('finds the run by its group: a child that dropped its environment', async () => {
    const run = recordHookRun(path);
    const g = await group('env -i /bin/sleep 300', run.env);
    recordHookGroup(path, run.token, g.leader);
    assert.ok(alive(g.child), 'the child runs');
    assert.ok(!readFileSync(`/proc/${g.child}/environ`, 'latin1').includes('GITFS_HOOK_RUN'), 'without the token');
    await stopLeftoverHook(path, log, {});
    assert.ok(!alive(g.leader) && !alive(g.child));
  });

  it('a run that ignores SIGTERM is killed 5 s later', async () => {
    const run = recordHookRun(path);
    const g = await group("trap '' TERM; sleep 300", run.env);
    recordHookGroup(path, run.token, g.leader);
    const started = Date.now();
    await stopLeftoverHook(path, log, {});
    assert.ok(!alive(g.child), 'the trapping child is gone');
    assert.ok(Date.now() - started >= 4900, `took ${Date.now() - started} ms`);
  });

  it('a recorded group id that now names another group counts no more (a freed id, reused): only the token finds the run', async () => {
    const run = recordHookRun(path);
    // The run: bash and two children, one without the token.
    const g = await group('env -i /bin/sleep 300 & sleep 300', run.env);
    const children = readFileSync(`/proc/${g.leader}/task/${g.leader}/children`, 'latin1').trim().split(' ').map(Number);
    const tokenless = children.find((pid) => pid !== g.child) as number;
    strays.push(tokenless);
    assert.ok(!readFileSync(`/proc/${tokenless}/environ`, 'latin1').includes('GITFS_HOOK_RUN'), 'a child without the token');
    recordHookGroup(path, run.token, g.leader);
    const record = JSON.parse(readFileSync(path, 'utf8')) as { pgid: number };
    const stranger = await group('sleep 300', {});
    // The record's group id now names another group, whose leader is not the recorded process.
    writeFileSync(path, JSON.stringify({ ...record, pgid: stranger.leader }));
    await stopLeftoverHook(path, log, {});
    assert.ok(alive(stranger.leader) && alive(stranger.child), 'another group is never touched');
    assert.ok(!alive(g.leader) && !alive(g.child), 'the processes of the run with the token are stopped');
    assert.ok(alive(tokenless), 'the one without it is not found: the group is not trusted');
  });

  it('a hook killed at its deadline ends only when what it left in the background has: SIGTERM, then SIGKILL', async () => {
    const hook = join(dir, 'hook');
    const childPid = join(dir, 'child.pid');
    writeFileSync(hook, `#!/bin/bash\n(trap '' TERM; exec sleep 300) >/dev/null 2>&1 &\necho $! >${childPid}\nwait\n`, { mode: 0o755 });
    const started = Date.now();
    const r = await runHook({ hook, action: 'apply', env: {}, deadline: Date.now() + 1000, now: Date.now, log, record: path });
    assert.equal(r.ok, false);
    const child = Number(readFileSync(childPid, 'utf8'));
    strays.push(child);
    assert.ok(!alive(child), 'the background child that ignored SIGTERM is gone');
    assert.ok(!existsSync(path), 'record removed');
    assert.ok(Date.now() - started >= 5900, `took ${Date.now() - started} ms`);
    // A hook that ends by itself keeps what it started (a service, a VM), and its record goes.
    writeFileSync(hook, `#!/bin/bash\nsleep 300 >/dev/null 2>&1 &\necho $! >${childPid}\n`, { mode: 0o755 });
    assert.equal((await runHook({ hook, action: 'apply', env: {}, deadline: Date.now() + 5000, now: Date.now, log, record: path })).ok, true);
    const service = Number(readFileSync(childPid, 'utf8'));
    strays.push(service);
    assert.ok(alive(service), 'what a successful hook started runs on');
    assert.ok(!existsSync(path));
  });

  it('a hook that leaves a service holding its output pipes ends when its own process exits, and the service runs on', async () => {
    const hook = join(dir, 'hook');
    const childPid = join(dir, 'child.pid');
    // A daemon in a session of its own, without the run's token, that keeps the hook's stdout and
    // stderr and writes to them after the hook ended (closed pipes would kill it with SIGPIPE).
    writeFileSync(hook, `#!/bin/bash\nsetsid env -i /bin/bash -c 'sleep 1.5; echo later; exec sleep 300' &\necho $! >${childPid}\necho started\nexit 0\n`, { mode: 0o755 });
    const started = Date.now();
    const r = await runHook({ hook, action: 'apply', env: {}, deadline: Date.now() + 20_000, now: Date.now, log, record: path });
    const service = Number(readFileSync(childPid, 'utf8'));
    strays.push(service);
    assert.equal(r.ok, true, r.reason);
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms: it waited for the service's pipes`);
    await sleep(2500);
    assert.ok(alive(service), 'the service runs on, past its write to the pipe');
    assert.ok(events.some((e) => e.event === 'hook-output' && e.line === 'started'), 'output before the exit is logged');
    assert.ok(!events.some((e) => e.event === 'hook-output' && e.line === 'later'), 'output after it is dropped');
  });

  it('a hook that cannot start (missing) fails at once and leaves no record', async () => {
    const r = await runHook({ hook: join(dir, 'no-such-hook'), action: 'apply', env: {}, deadline: Date.now() + 5000, now: Date.now, log, record: path });
    assert.equal(r.ok, false);
    assert.match(r.reason, /apply exited 127: .*ENOENT/);
    assert.ok(!existsSync(path), 'record removed');
  });

  it('a hook whose start throws (E2BIG: an environment past what exec takes; ENOTDIR) fails like a missing one, and leaves no record', async () => {
    const hook = join(dir, 'hook');
    writeFileSync(hook, '#!/bin/bash\nexit 0\n', { mode: 0o755 });
    const big = await runHook({ hook, action: 'apply', env: { HUGE: 'x'.repeat(200_000) }, deadline: Date.now() + 5000, now: Date.now, log, record: path });
    assert.equal(big.ok, false);
    assert.match(big.reason, /apply exited 127: cannot start .*E2BIG/);
    assert.ok(!existsSync(path), 'record removed');
    const notDir = await runHook({ hook: join(hook, 'below'), action: 'health', env: {}, deadline: Date.now() + 5000, now: Date.now, log, record: path });
    assert.equal(notDir.ok, false);
    assert.match(notDir.reason, /health exited 127: .*ENOTDIR/);
    assert.ok(!existsSync(path), 'record removed');
  });

  it('a deadline past the longest timer (2^31 - 1 ms, 40 days here) does not kill the hook at once', async () => {
    const hook = join(dir, 'hook');
    writeFileSync(hook, '#!/bin/bash\nsleep 0.3\nexit 0\n', { mode: 0o755 });
    const r = await runHook({ hook, action: 'health', env: {}, deadline: Date.now() + 40 * 86_400_000, now: Date.now, log, record: path });
    assert.deepEqual(r, { ok: true, reason: '' });
  });

  it('a hook killed at its deadline counts as failed even when it exits 0 on SIGTERM', async () => {
    const hook = join(dir, 'hook');
    writeFileSync(hook, `#!/bin/bash\ntrap 'exit 0' TERM\nsleep 300 >/dev/null 2>&1 &\nwait\n`, { mode: 0o755 });
    const r = await runHook({ hook, action: 'apply', env: {}, deadline: Date.now() + 1000, now: Date.now, log, record: path });
    assert.equal(r.ok, false);
    assert.match(r.reason, /apply killed: deadline/);
  });

  it('a chatty hook has at most MAX_LOGGED_LINES lines logged a run, the rest counted', async () => {
    const hook = join(dir, 'hook');
    writeFileSync(hook, `#!/bin/bash\nfor i in $(seq 1 5000); do echo "line $i"; done\necho last >&2\nexit 3\n`, { mode: 0o755 });
    const r = await runHook({ hook, action: 'apply', env: {}, deadline: Date.now() + 20_000, now: Date.now, log, record: path });
    assert.equal(r.ok, false);
    assert.match(r.reason, /exited 3: .*last/, 'the tail still has the last lines');
    assert.equal(events.filter((e) => e.event === 'hook-output').length, MAX_LOGGED_LINES);
    assert.deepEqual(events.filter((e) => e.event === 'hook-output-dropped').map((e) => e.lines), [5001 - MAX_LOGGED_LINES]);
  });

  it('stale records stop nothing: another boot, a group id now naming another process, a torn file', async () => {
    // A group without the token (so only the group could find it).
    const g = await group('sleep 300', {});
    recordHookGroup(path, recordHookRun(path).token, g.leader);
    const record = JSON.parse(readFileSync(path, 'utf8')) as { token: string; bootId: string; pgid: number; startTicks: string };
    const stale = [
      { ...record, bootId: '00000000-0000-0000-0000-000000000000' },
      { ...record, startTicks: String(Number(record.startTicks) + 1) },
    ];
    for (const r of stale) {
      writeFileSync(path, JSON.stringify(r));
      await stopLeftoverHook(path, log, {});
      assert.ok(alive(g.leader) && alive(g.child), JSON.stringify(r));
      assert.ok(!existsSync(path));
    }
    const torn = ['{"token": "', JSON.stringify({ ...record, pgid: 1 }), JSON.stringify({ ...record, token: 'x' }), JSON.stringify({ token: record.token, bootId: record.bootId, pgid: record.pgid }), ''];
    for (const text of torn) {
      writeFileSync(path, text);
      await stopLeftoverHook(path, log, {});
      assert.ok(alive(g.leader) && alive(g.child), text);
      assert.ok(!existsSync(path));
    }
    assert.equal(events.length, 0);
    // The same group on a valid record is stopped: the checks above were what spared it.
    writeFileSync(path, JSON.stringify(record));
    await stopLeftoverHook(path, log, {});
    assert.ok(!alive(g.leader) && !alive(g.child));
    // No record at all: nothing to do.
    await stopLeftoverHook(path, log, {});
    clearHookRecord(path);
  });
});
