/**
 * The kernel reads ahead only 128 KiB on a FUSE mount by default, one or two requests in flight;
 * 1 MiB keeps several requests in flight for a prefetching reader. Set through the mount's
 * backing device in sysfs, which needs root; without it the default stays.
 */
import { writeFile } from 'node:fs/promises';

export const READ_AHEAD_KB = 1024;

/** Widens the read-ahead of the file system mounted on device `dev` (its stat's st_dev). */
export async function widenReadAhead(dev: number, kb = READ_AHEAD_KB): Promise<void> {
  const id = `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
  await writeFile(`/sys/class/bdi/${id}/read_ahead_kb`, `${kb}\n`).catch(() => undefined);
}
