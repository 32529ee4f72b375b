/**
 * Who a process is, as /proc tells it, so that a record a process left in a file can be told
 * live or stale after a kill -9: a pid alone may be reused, so a record names the pid, the
 * process's start time in clock ticks (field 22 of /proc/PID/stat), the boot's id and the pid
 * namespace the pid belongs to. A process of another namespace (a container beside the host,
 * both writing one repository) cannot be looked up here: it is neither running nor gone, but
 * unknown, and the caller judges its record by age. Linux only.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { textOf } from './if-present.js';

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
  /** `readlink /proc/self/ns/pid`: `pid:[inode]`. */
  readonly pidNs: string;
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

function pidNamespace(): string {
  return readlinkSync('/proc/self/ns/pid');
}

let own: ProcessMark | undefined;

/** This process's mark (read once: none of it changes while it runs). */
export function thisProcess(): ProcessMark {
  if (own?.pid === process.pid) return own;
  const stat = procStat(process.pid);
  if (stat === undefined) throw new Error('/proc/self/stat cannot be read');
  own = { pid: process.pid, startTicks: stat.startTicks, bootId: bootId(), pidNs: pidNamespace() };
  return own;
}

/**
 * Whether the process `mark` names still runs (same start time, not a zombie), is gone (another
 * boot, or no such process), or cannot be told from here (another pid namespace).
 */
export function liveness(mark: ProcessMark): 'running' | 'gone' | 'unknown' {
  const self = thisProcess();
  if (mark.bootId !== self.bootId) return 'gone';
  if (mark.pidNs !== self.pidNs) return 'unknown';
  const now = procStat(mark.pid);
  return now !== undefined && now.state !== 'Z' && now.startTicks === mark.startTicks ? 'running' : 'gone';
}

/** A record naming a process (one line of JSON with the mark's fields, and others), parsed: undefined if it is not JSON, `mark` undefined if it names no process. */
export function parseProcessRecord(text: string): { readonly mark: ProcessMark | undefined; readonly fields: Record<string, unknown> } | undefined {
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof record !== 'object' || record === null) return undefined;
  return { mark: asProcessMark(record), fields: record as Record<string, unknown> };
}

/** The record file at `path`, read and parsed; undefined if it is gone or not JSON. */
export async function readProcessRecord(path: string): Promise<ReturnType<typeof parseProcessRecord>> {
  const text = await textOf(path);
  return text === undefined ? undefined : parseProcessRecord(text);
}

/** A mark read from JSON, or undefined if `v` is not one. */
function asProcessMark(v: unknown): ProcessMark | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { pid, startTicks, bootId: boot, pidNs } = v as Record<string, unknown>;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid < 1 || typeof startTicks !== 'string' || !/^\d+$/.test(startTicks) || typeof boot !== 'string' || typeof pidNs !== 'string') return undefined;
  return { pid, startTicks, bootId: boot, pidNs };
}
