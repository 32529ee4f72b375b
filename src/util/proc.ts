/**
 * Who a process is, as /proc tells it, so that a record a process left in a file can be told
 * live or stale after a kill -9: a pid alone may be reused, so a record names the pid, the
 * process's start time in clock ticks (field 22 of /proc/PID/stat) and the boot's id. Linux only.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { errnoCode } from '../errors.js';

export interface ProcStat {
  /** One letter: R, S, D, Z (a zombie: ended, not yet reaped), … */
  readonly state: string;
  readonly pgrp: number;
  readonly startTicks: string;
}

/** A process as a record names it. */
export interface ProcessMark {
  readonly pid: number;
  readonly startTicks: string;
  readonly bootId: string;
}

/** /proc/PID/stat, or undefined for no such process. The command name may hold spaces and parentheses: fields count from its last `)`. */
export function procStat(pid: number | string): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state (field 3), ppid, pgrp (5), ..., starttime (22).
  const state = f[0];
  const pgrp = Number(f[2]);
  const startTicks = f[19];
  if (state === undefined || !Number.isSafeInteger(pgrp) || startTicks === undefined) return undefined;
  return { state, pgrp, startTicks };
}

export function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
}

/** This process's mark. */
export function thisProcess(): ProcessMark {
  const own = procStat(process.pid);
  if (own === undefined) throw new Error('/proc/self/stat cannot be read');
  return { pid: process.pid, startTicks: own.startTicks, bootId: bootId() };
}

/** Whether the process `mark` names still runs (this boot, same start time, not a zombie). */
export function isRunning(mark: ProcessMark): boolean {
  if (mark.bootId !== bootId()) return false;
  const now = procStat(mark.pid);
  return now !== undefined && now.state !== 'Z' && now.startTicks === mark.startTicks;
}

/**
 * A record file naming a process (one line of JSON with the mark's fields, and others), read:
 * undefined if it is gone or not JSON, `mark` undefined if it names no process.
 */
export async function readProcessRecord(path: string): Promise<{ readonly mark: ProcessMark | undefined; readonly fields: Record<string, unknown> } | undefined> {
  let record: unknown;
  try {
    record = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || e instanceof SyntaxError) return undefined;
    throw e;
  }
  if (typeof record !== 'object' || record === null) return undefined;
  return { mark: asProcessMark(record), fields: record as Record<string, unknown> };
}

/** A mark read from JSON, or undefined if `v` is not one. */
function asProcessMark(v: unknown): ProcessMark | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { pid, startTicks, bootId: boot } = v as Record<string, unknown>;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid < 1 || typeof startTicks !== 'string' || !/^\d+$/.test(startTicks) || typeof boot !== 'string') return undefined;
  return { pid, startTicks, bootId: boot };
}
