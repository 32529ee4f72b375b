/**
 * Runs a channel's hook (kernel-images/README.md "The hook contract"): `HOOK apply|health|
 * rollback` with the GITFS_* environment, its output logged line by line (at most
 * MAX_LOGGED_LINES a run, then only counted). Health may answer 75 ("not yet"): it is asked
 * again every second until the deadline. A hook still running at its deadline, or when the
 * caller aborts it, is killed (its process group: SIGTERM, then SIGKILL 5 s later) and counts as
 * failed, whatever it exits with; the result comes once it is gone, with every process of the
 * run. A hook that ends by itself keeps what it started: its result comes when its own process
 * exits (and its output so far is read, for up to DRAIN_MS), never held up by a service it left
 * holding its output pipes; what that service writes there later is read and dropped. While a hook runs,
 * it is on record (hook-record.ts: a token in its environment, its process group) for a daemon
 * restarted after a kill -9.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Logger } from '../util/log.js';
import { clearHookRecord, recordHookGroup, recordHookRun, stopLeftoverHook } from './hook-record.js';

export type HookAction = 'apply' | 'health' | 'rollback';

export interface HookResult {
  readonly ok: boolean;
  /** Why not, for the agent's history. */
  readonly reason: string;
}

const NOT_YET = 75;
const RETRY_MS = 1000;
const KILL_GRACE_MS = 5000;
/** Output lines kept for the reason of a failure. */
const TAIL_LINES = 5;
/** Output lines of one run that are logged; the rest are counted (a chatty hook must not flood the daemon). */
export const MAX_LOGGED_LINES = 200;
/** A line longer than this is logged in parts. */
const LONG_LINE = 4096;
/** The longest delay a timer takes (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long output still in the pipes is read after the hook's process exited. */
const DRAIN_MS = 500;

export interface HookCall {
  readonly hook: string;
  readonly action: HookAction;
  readonly env: Readonly<Record<string, string>>;
  /** Wall-clock ms by which it must have succeeded. */
  readonly deadline: number;
  readonly now: () => number;
  readonly log: Logger;
  /** Aborting kills the hook (a rollback must not run beside a health check). */
  readonly signal?: AbortSignal;
  /** Where the running hook's process group is recorded. */
  readonly record: string;
}

export async function runHook(call: HookCall): Promise<HookResult> {
  for (;;) {
    if (call.signal?.aborted === true) return { ok: false, reason: `${call.action} cancelled` };
    const left = call.deadline - call.now();
    if (left <= 0) return { ok: false, reason: `${call.action} did not succeed before its deadline` };
    const { code, tail, killed } = await runOnce(call, left);
    if (killed !== undefined) return { ok: false, reason: `${call.action} killed: ${killed}${tail === '' ? '' : `: ${tail}`}` };
    if (code === 0) return { ok: true, reason: '' };
    if (code !== NOT_YET || call.action !== 'health') return { ok: false, reason: `${call.action} exited ${code ?? 'on a signal'}${tail === '' ? '' : `: ${tail}`}` };
    await new Promise((r) => setTimeout(r, Math.min(RETRY_MS, Math.max(0, call.deadline - call.now()))));
  }
}

/** How one run ended: its exit code (null on a signal), the last lines of its output, and why it was killed, if it was. */
interface RunEnd {
  readonly code: number | null;
  readonly tail: string;
  readonly killed?: string;
}

function runOnce(call: HookCall, timeoutMs: number): Promise<RunEnd> {
  return new Promise((resolve) => {
    const recordFailed = (e: unknown): undefined => void call.log.log('warn', 'hook-record-failed', { action: call.action, record: call.record, error: (e as Error).message });
    let run: ReturnType<typeof recordHookRun> | undefined;
    try {
      run = recordHookRun(call.record);
    } catch (e) {
      recordFailed(e);
    }
    const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...call.env, ...run?.env };
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(call.hook, [call.action], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (e) {
      // Some failures to start are thrown, not emitted (ETXTBSY: the hook rewritten in place;
      // E2BIG, ENOMEM): a hook that cannot start, like one that is missing.
      if (run !== undefined) {
        try {
          clearHookRecord(call.record);
        } catch (e2) {
          recordFailed(e2);
        }
      }
      return resolve({ code: 127, tail: `cannot start ${call.hook}: ${(e as Error).message}` });
    }
    if (run !== undefined && child.pid !== undefined) {
      try {
        recordHookGroup(call.record, run.token, child.pid);
      } catch (e) {
        recordFailed(e);
      }
    }
    const tail: string[] = [];
    let lines = 0;
    /** Set once the run ended: what a process it left writes afterwards is dropped. */
    let done = false;
    const take = (stream: string, line: string): void => {
      if (done || line.trim() === '') return;
      if (++lines <= MAX_LOGGED_LINES) call.log.log('info', 'hook-output', { action: call.action, stream, line: line.slice(0, 500) });
      tail.push(line.slice(0, 200));
      if (tail.length > TAIL_LINES) tail.shift();
    };
    // Lines are whole across reads (a line longer than LONG_LINE is taken in parts).
    const partial = { stdout: '', stderr: '' };
    const onData = (stream: 'stdout' | 'stderr') => (text: string) => {
      const parts = (partial[stream] + text).split('\n');
      partial[stream] = parts.pop() ?? '';
      if (partial[stream].length > LONG_LINE) {
        parts.push(partial[stream]);
        partial[stream] = '';
      }
      for (const line of parts) take(stream, line);
    };
    child.stdout.setEncoding('utf8').on('data', onData('stdout'));
    child.stderr.setEncoding('utf8').on('data', onData('stderr'));
    const killGroup = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // Gone already.
      }
    };
    let hard: NodeJS.Timeout | undefined;
    let killed: string | undefined;
    const kill = (why: string): void => {
      killed = why;
      call.log.log('warn', 'hook-killed', { action: call.action, hook: call.hook, why });
      killGroup('SIGTERM');
      hard = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    // Past 2^31 - 1 ms a timer fires at once: no run is given longer (callers bound it far lower).
    const timer = setTimeout(() => kill(`deadline (${timeoutMs} ms)`), Math.min(timeoutMs, MAX_TIMER_MS));
    const onAbort = (): void => kill('cancelled');
    call.signal?.addEventListener('abort', onAbort, { once: true });
    let ended = false;
    const end = (code: number | null): Promise<void> => {
      if (ended) return Promise.resolve();
      ended = true;
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
      // Output still in the pipes is read for a moment; a process left in the background that
      // holds them open is not waited for. Its later output is read and dropped (closed pipes
      // would kill it with SIGPIPE at its next write), and holds no event loop open.
      let drainTimer: NodeJS.Timeout | undefined;
      const drained = new Promise<void>((done) => {
        child.once('close', () => done());
        drainTimer = setTimeout(done, DRAIN_MS);
      });
      return drained.then(() => {
        clearTimeout(drainTimer);
        for (const stream of ['stdout', 'stderr'] as const) take(stream, partial[stream]);
        done = true;
        for (const stream of [child.stdout, child.stderr]) (stream as Socket).unref();
        if (lines > MAX_LOGGED_LINES) call.log.log('warn', 'hook-output-dropped', { action: call.action, lines: lines - MAX_LOGGED_LINES });
        // A killed run ends only when all of it has: what it left in the background is stopped
        // too (never two hooks of a channel at once). A run that ended by itself keeps what it
        // started (a hook may start a service or a VM).
        const stopped = killed !== undefined ? stopLeftoverHook(call.record, call.log, { action: call.action }) : Promise.resolve().then(() => clearHookRecord(call.record));
        return stopped.catch(recordFailed).finally(() => {
          clearTimeout(hard);
          resolve({ code, tail: tail.join(' | '), ...(killed === undefined ? {} : { killed }) });
        });
      });
    };
    // A hook that cannot start (missing, not executable) gives 'error' and never 'exit'.
    child.on('error', (e) => {
      tail.push(e.message);
      void end(127);
    });
    child.on('exit', (code) => void end(code));
  });
}
