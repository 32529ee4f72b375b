/**
 * The kernel reads ahead only 128 KiB on a FUSE mount by default, one or two requests in flight;
 * 1 MiB keeps several requests in flight for a prefetching reader. Set through the mount's
 * backing device in sysfs, which needs root; without it the default stays.
 */
import { stat, writeFile } from 'node:fs/promises';

export const READ_AHEAD_KB = 1024;

/** Widens the read-ahead of the file system mounted at `mountpoint` (stat asynchronously: never from the thread that answers it). */
export async function widenReadAhead(mountpoint: string, kb = READ_AHEAD_KB): Promise<void> {
  const st = await stat(mountpoint);
  const dev = `${Math.floor(st.dev / 256) & 0xfff}:${(st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)}`;
  await writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, `${kb}\n`).catch(() => undefined);
}
