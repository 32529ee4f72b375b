/** The kernel's mount table (/proc/self/mountinfo): is a path a mount point, and of what. */
import { readFile } from 'node:fs/promises';

export interface MountRecord {
  readonly mountpoint: string;
  readonly fstype: string;
  readonly source: string;
  /** The mounted file system's device, `major:minor` (a FUSE mount's minor names its fusectl connection). */
  readonly device: string;
}

/** Undoes mountinfo's octal escapes (\040 for a space, \011, \012, \134). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export async function mountAt(path: string): Promise<MountRecord | undefined> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  let found: MountRecord | undefined;
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0 || fields[4] === undefined) continue;
    const mountpoint = unescape(fields[4]);
    // The last match wins: a later mount on the same point hides the earlier one.
    if (mountpoint === path) found = { mountpoint, fstype: fields[dash + 1] ?? '', source: unescape(fields[dash + 2] ?? ''), device: fields[2] ?? '' };
  }
  return found;
}
