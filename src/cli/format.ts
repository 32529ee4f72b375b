/** Human-readable renderings shared by commands, and the parsing of sizes. */
import { ErrorCodes, GitfsError } from '../errors.js';
import type { Signature } from '../objects/commit.js';
import type { DirEntry } from '../objects/entry-names.js';

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(n)} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

/** `65536`, `64K`, `64k`, `64KiB` or `1M`/`1MiB` as bytes (binary units). */
export function parseByteSize(text: string, what: string): number {
  const m = /^(\d{1,12})(?:([KkMmGg])(?:i?B)?)?$/.exec(text);
  if (m === null) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${what} must be a size such as 65536, 64K or 64KiB, not ${JSON.stringify(text)}`);
  const shift = { k: 10, m: 20, g: 30 }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 0;
  return Number(m[1]) * 2 ** shift;
}

export function modeString(e: DirEntry): string {
  if (e.kind === 'dir') return 'drwxr-xr-x';
  if (e.kind === 'symlink') return 'lrwxrwxrwx';
  if (e.kind === 'gitlink') return 'm---------'; // a submodule, as gitweb shows one
  return e.executable ? '-rwxr-xr-x' : '-rw-r--r--';
}

/** `2026-11-22 03:29:26` for seconds since the epoch; `@<seconds>` past the year 9999 (git takes any digits). */
export function formatSeconds(seconds: number): string {
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) || d.getUTCFullYear() > 9999 || d.getUTCFullYear() < 0 ? `@${seconds}` : d.toISOString().replace('T', ' ').slice(0, 19);
}

/** `2026-11-22 03:29:26 UTC` (or with the signature's own offset). */
export function formatDate(s: Signature): string {
  const iso = formatSeconds(s.timestamp + s.tzOffsetMinutes * 60);
  if (s.tzOffsetMinutes === 0) return `${iso} UTC`;
  const sign = s.tzOffsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(s.tzOffsetMinutes);
  return `${iso} ${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
}

/**
 * `text` with control characters shown as `\xNN`, and the marks that reorder a line (bidirectional
 * controls) as `\uNNNN`, a backslash doubled: a reason that quotes what a peer or a writer sent
 * must not drive the terminal, nor pass for an escape.
 */
export function printable(text: string): string {
  return text.replace(/[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return c === '\\' ? '\\\\' : code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

export function firstLine(message: string): string {
  return message.split('\n')[0] ?? '';
}

/** `90s`, `15m`, `1h`, `7d` (or plain milliseconds) as milliseconds; GITFS_BAD_ARGUMENT otherwise. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d{1,9})(ms|s|m|h|d)?$/.exec(text);
  if (m === null) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `--${option} needs a duration such as 90s, 15m, 1h or 7d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms'] ?? 1;
  return Number(m[1]) * unit;
}

/** `3.2s ago`, `12m ago`: how long ago, for people. */
export function humanAgo(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s ago`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m ago`;
  return `${Math.round(ms / 3_600_000)}h ago`;
}
