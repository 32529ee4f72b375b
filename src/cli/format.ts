/** Human-readable renderings shared by commands. */
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

export function modeString(e: DirEntry): string {
  if (e.kind === 'dir') return 'drwxr-xr-x';
  if (e.kind === 'symlink') return 'lrwxrwxrwx';
  return e.executable ? '-rwxr-xr-x' : '-rw-r--r--';
}

/** `2026-11-22 03:29:26 UTC` (or with the signature's own offset). */
export function formatDate(s: Signature): string {
  const d = new Date((s.timestamp + s.tzOffsetMinutes * 60) * 1000);
  const iso = d.toISOString().replace('T', ' ').slice(0, 19);
  if (s.tzOffsetMinutes === 0) return `${iso} UTC`;
  const sign = s.tzOffsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(s.tzOffsetMinutes);
  return `${iso} ${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
}

export function firstLine(message: string): string {
  return message.split('\n')[0] ?? '';
}
