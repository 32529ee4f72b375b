/**
 * The running hook on record, so that a daemon restarted after a kill -9 stops what the dead
 * one left running before it runs another hook of the channel (a rollback beside a leftover
 * apply would be undone when the apply ends).
 *
 * Every hook run gets a random token in its environment (`GITFS_HOOK_RUN`, inherited by what
 * it starts). The record (`hook.pid` in the channel's directory, one line of JSON) names the
 * token and the boot's id; it is written, by rename, before the hook is spawned, so no kill
 * falls between the start and the record, then rewritten with the hook's process group once
 * it runs (its pid: it runs detached, as the group's leader) and the leader's start time, and
 * removed when the hook ends. It must outlive the daemon's process, not a host crash (which
 * ends the hook too), so it is not fsynced. A leftover is every live process whose environment
 * carries the token, or in the recorded group while its leader is the recorded process (same
 * start time, not a zombie). A record from another boot stops nothing. Linux only (/proc).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode } from '../errors.js';
import type { Logger } from '../util/log.js';
import { bootId, procStat } from '../util/proc.js';

export const HOOK_RECORD_FILE = 'hook.pid';
/** The environment variable naming a hook's run. */
export const HOOK_RUN_VAR = 'GITFS_HOOK_RUN';
/** How long leftovers have after SIGTERM, and again after SIGKILL, to be gone. */
const GRACE_MS = 5000;
const POLL_MS = 50;

interface HookRecord {
  readonly token: string;
  readonly bootId: string;
  readonly pgid?: number;
  readonly startTicks?: string;
}

function write(path: string, record: HookRecord): void {
  writeFileSync(`${path}.tmp`, `${JSON.stringify(record)}\n`);
  renameSync(`${path}.tmp`, path);
}

/** A run about to start: records its token at `path` and returns the environment entry the hook must get. */
export function recordHookRun(path: string): { token: string; env: Record<string, string> } {
  const token = randomBytes(16).toString('hex');
  write(path, { token, bootId: bootId() });
  return { token, env: { [HOOK_RUN_VAR]: token } };
}

/** The run `token` has started as `pid` (detached, so its group's leader). */
export function recordHookGroup(path: string, token: string, pid: number): void {
  const stat = procStat(pid);
  // Gone already: its token still finds what it started.
  if (stat === undefined) return;
  write(path, { token, bootId: bootId(), pgid: pid, startTicks: stat.startTicks });
}

/** Removes the record: the hook has ended. */
export function clearHookRecord(path: string): void {
  rmSync(path, { force: true });
}

function readRecord(path: string): HookRecord | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const v = JSON.parse(text) as Partial<HookRecord>;
    const group = v.pgid === undefined ? v.startTicks === undefined : Number.isSafeInteger(v.pgid) && v.pgid > 1 && typeof v.startTicks === 'string';
    if (typeof v.token === 'string' && /^[0-9a-f]{32}$/.test(v.token) && typeof v.bootId === 'string' && group) return v as HookRecord;
  } catch {
    // Torn or foreign: treated as stale.
  }
  return undefined;
}

/** The live (not zombie) processes of the run: its token in their environment, or in its group. */
function leftovers(record: HookRecord): number[] {
  // The group counts only while its leader is the recorded process: once the leader is gone the
  // number may have been freed and reused by another group (whose members must not be touched),
  // and only the token tells the run's processes.
  const leader = record.pgid === undefined ? undefined : procStat(record.pgid);
  const group = leader !== undefined && leader.state !== 'Z' && leader.startTicks === record.startTicks ? record.pgid : undefined;
  const mark = Buffer.from(`${HOOK_RUN_VAR}=${record.token}\0`);
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const s = procStat(name);
    if (s === undefined || s.state === 'Z') continue;
    let marked = false;
    try {
      marked = readFileSync(`/proc/${name}/environ`).includes(mark);
    } catch {
      // Gone, or not ours to read.
    }
    if (marked || s.pgrp === group) found.push(Number(name));
  }
  return found;
}

function signal(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // Gone meanwhile.
    }
  }
}

async function goneWithin(record: HookRecord, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += POLL_MS) {
    if (leftovers(record).length === 0) return true;
    await sleep(POLL_MS);
  }
  return leftovers(record).length === 0;
}

/**
 * Stops the hook run a previous daemon left going, if the record at `path` names one: SIGTERM to
 * its processes, SIGKILL to those left 5 s later, and returns once none is left (or after 5 s
 * more, logged). Then removes the record.
 */
export async function stopLeftoverHook(path: string, log: Logger, context: Record<string, unknown>): Promise<void> {
  const record = readRecord(path);
  if (record !== undefined && record.bootId === bootId()) {
    const pids = leftovers(record);
    if (pids.length > 0) {
      log.log('warn', 'hook-leftover', { ...context, pids });
      signal(pids, 'SIGTERM');
      if (!(await goneWithin(record, GRACE_MS))) {
        signal(leftovers(record), 'SIGKILL');
        if (!(await goneWithin(record, GRACE_MS))) log.log('error', 'hook-leftover-survived', { ...context, pids: leftovers(record) });
      }
      log.log('info', 'hook-leftover-stopped', { ...context, pids });
    }
  }
  clearHookRecord(path);
}
