import { readThroughDaemon } from '../../node/object-socket.js';
import { spawn } from 'node:child_process';
import { fstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, GitfsError, isErrorCode } from '../../errors.js';
import { askMount } from '../../mount/control.js';
import { MountSession } from '../../mount/session.js';
import { Repository } from '../../repo/repository.js';
import { parse, positionals, repoPath, type Command, type CommandContext } from '../context.js';
import { gitfsProcessEnv, NODE_FLAGS } from '../node-flags.js';

const usage = 'gitfs mount [--repo R] [--background] [--allow-other] MNT';
const READY_TIMEOUT_MS = 30_000;

export const mount: Command = {
  summary: 'mount the repository: branches writable, history browsable (foreground unless --background)',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { background: { type: 'boolean' }, 'allow-other': { type: 'boolean' } }, usage);
    const allowOther = values['allow-other'] === true;
    const [mnt] = positionals(rest, 1, 1, usage) as [string];
    const mountpoint = resolve(ctx.cwd, mnt);
    const repoDir = resolve(ctx.cwd, repoPath(ctx, values.repo));
    if (values.background === true) return background(ctx, repoDir, mountpoint, allowOther);
    const repo = await Repository.open(repoDir, { env: ctx.env });
    readThroughDaemon(repo);
    try {
      const log = (line: string): void => void ctx.stderr.write(`${line}\n`);
      const session = await MountSession.start(repo, mountpoint, log, { allowOther });
      const stop = (): void => void session.stop().catch((e: unknown) => log(`gitfs mount: stopping: ${(e as Error).message}`));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      await ctx.stdout.write(`gitfs: ${repo.gitDir} mounted at ${session.mountpoint}\n`);
      await session.wait();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await ctx.stdout.write(`gitfs: unmounted ${session.mountpoint}\n`);
      return 0;
    } finally {
      await repo.close();
    }
  },
};

/** Starts the mount as a detached process and returns once it answers on its control socket. */
async function background(ctx: CommandContext, repoDir: string, mountpoint: string, allowOther: boolean): Promise<number> {
  const repo = await Repository.open(repoDir, { env: ctx.env });
  const gitDir = repo.gitDir;
  await repo.close();
  const logPath = join(gitDir, 'gitfs', 'mount.log');
  mkdirSync(join(gitDir, 'gitfs'), { recursive: true });
  const log = openSync(logPath, 'a');
  // The log is appended to across runs: a failure quotes this run's lines only.
  const from = fstatSync(log).size;
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  const args = [...NODE_FLAGS, main, 'mount', '--repo', gitDir, ...(allowOther ? ['--allow-other'] : []), mountpoint];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log], env: gitfsProcessEnv(ctx.env) });
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  const until = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < until && exited === undefined) {
    const pong = (await askMount(gitDir, { op: 'ping' }).catch(() => undefined)) as { mountpoint?: string; pid?: number } | undefined;
    if (pong !== undefined && pong.pid === child.pid) {
      child.unref();
      await ctx.stdout.write(`gitfs: ${gitDir} mounted at ${pong.mountpoint ?? mountpoint} (pid ${child.pid}, log ${logPath})\n`);
      return 0;
    }
    await sleep(50);
  }
  if (exited === undefined) child.kill('SIGTERM');
  const lines = readFileSync(logPath).subarray(from).toString('utf8').trim().split('\n');
  // The mount's own refusal (its last line, as main.ts prints one) is this command's, as the mount in the foreground says it.
  const refused = exited === undefined ? undefined : /^gitfs mount: (.*) \[(GITFS_[A-Z_]+)\]$/.exec(lines.at(-1) ?? '');
  const [, message, code] = refused ?? [];
  if (message !== undefined && code !== undefined && isErrorCode(code)) throw new GitfsError(code, message);
  throw new GitfsError(ErrorCodes.MOUNT_FAILED, `the mount did not come up${exited === undefined ? ` within ${READY_TIMEOUT_MS / 1000} s` : ''}:\n${lines.slice(-5).join('\n')}`);
}
