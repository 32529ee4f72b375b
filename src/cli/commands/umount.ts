import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, GitfsError } from '../../errors.js';
import { askMount } from '../../mount/control.js';
import { mountAt } from '../../mount/mount-table.js';
import { clearStaleMount, FSTYPE } from '../../mount/session.js';
import { parse, positionals, type Command } from '../context.js';

const usage = 'gitfs umount MNT';
const execFileP = promisify(execFile);
const WAIT_MS = 30_000;

export const umount: Command = {
  summary: 'unmount a gitfs mount (the mount process then exits)',
  usage,
  async run(ctx) {
    const { positionals: rest } = parse(ctx, {}, usage);
    const [mnt] = positionals(rest, 1, 1, usage) as [string];
    const path = resolve(ctx.cwd, mnt);
    if (await clearStaleMount(path)) {
      await ctx.stdout.write(`gitfs: cleared the stale mount at ${path}\n`);
      return 0;
    }
    const m = await mountAt(path);
    if (m === undefined || m.fstype !== FSTYPE) throw new GitfsError(ErrorCodes.MOUNT_FAILED, `no gitfs mount at ${path}`, { path });
    const gitDir = m.source.startsWith('gitfs:') ? m.source.slice('gitfs:'.length) : undefined;
    const asked = gitDir === undefined ? undefined : await askMount(gitDir, { op: 'unmount' });
    if (asked === undefined) {
      try {
        await execFileP('fusermount', ['-u', path]);
      } catch (e) {
        throw new GitfsError(ErrorCodes.MOUNT_FAILED, `cannot unmount ${path}: ${((e as { stderr?: string }).stderr ?? (e as Error).message).trim()}`, { path }, { cause: e });
      }
    }
    // Wait until the mount process has let go of the repository (its control socket stops answering).
    for (const until = Date.now() + WAIT_MS; Date.now() < until; await sleep(50)) {
      const still = (await mountAt(path)) !== undefined || (gitDir !== undefined && (await askMount(gitDir, { op: 'ping' }).catch(() => undefined)) !== undefined);
      if (!still) {
        await ctx.stdout.write(`gitfs: unmounted ${path}\n`);
        return 0;
      }
    }
    throw new GitfsError(ErrorCodes.MOUNT_FAILED, `${path} is still mounted after ${WAIT_MS / 1000} s`, { path });
  },
};
