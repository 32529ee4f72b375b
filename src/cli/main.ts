/** The `gitfs` command line: dispatch, error reporting, exit codes. The only place that prints. */
import { ErrorCodes, isGitfsError } from '../errors.js';
import type { Command, CommandContext, Output } from './context.js';
import { exitCodeFor, ExitCodes } from './exit-codes.js';

/**
 * Each command's module is loaded only when it runs (or for help): loading all of them, with the
 * libraries behind them (FUSE, TLS, protobuf), cost every invocation ~0.2 s.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  init: async () => (await import('./commands/init.js')).init,
  commit: async () => (await import('./commands/commit.js')).commit,
  status: async () => (await import('./commands/status.js')).status,
  reset: async () => (await import('./commands/reset.js')).reset,
  mount: async () => (await import('./commands/mount.js')).mount,
  umount: async () => (await import('./commands/umount.js')).umount,
  ls: async () => (await import('./commands/ls.js')).ls,
  cat: async () => (await import('./commands/cat.js')).cat,
  export: async () => (await import('./commands/export.js')).exportCommand,
  log: async () => (await import('./commands/log.js')).log,
  show: async () => (await import('./commands/show.js')).show,
  diff: async () => (await import('./commands/diff.js')).diff,
  branch: async () => (await import('./commands/branch.js')).branch,
  stats: async () => (await import('./commands/stats.js')).stats,
  fsck: async () => (await import('./commands/fsck.js')).fsck,
  prune: async () => (await import('./commands/prune.js')).prune,
  cluster: async () => (await import('./commands/cluster.js')).cluster,
  serve: async () => (await import('./commands/serve.js')).serve,
  peers: async () => (await import('./commands/peers.js')).peers,
  policy: async () => (await import('./commands/policy.js')).policy,
  fetch: async () => (await import('./commands/fetch.js')).fetch,
  key: async () => (await import('./commands/key.js')).key,
  rollout: async () => (await import('./commands/rollout.js')).rollout,
};

function streamOutput(stream: NodeJS.WriteStream): Output {
  return {
    write: (text) =>
      new Promise((resolve, reject) => {
        stream.write(text, (err) => (err ? reject(err) : resolve()));
      }),
  };
}

async function help(): Promise<string> {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const commands = await Promise.all(Object.entries(COMMANDS).map(async ([name, load]) => [name, await load()] as const));
  return `usage: gitfs <command> [options]   (--repo DIR, or GITFS_REPO, or the current directory)\n\n${commands
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}\n  ${' '.repeat(width)}  ${c.usage}`)
    .join('\n')}\n`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  const stdout = streamOutput(process.stdout);
  const stderr = streamOutput(process.stderr);
  if (name === undefined || ((name === 'help' || name === '--help' || name === '-h') && rest.length === 0)) {
    await (name === undefined ? stderr : stdout).write(await help());
    return name === undefined ? ExitCodes.USAGE : ExitCodes.OK;
  }
  // `gitfs help CMD` and `gitfs CMD --help`: that command's summary and usage.
  const asked = name === 'help' ? rest[0] : rest.includes('--help') || rest.includes('-h') ? name : undefined;
  if (asked !== undefined && Object.hasOwn(COMMANDS, asked)) {
    const c = await (COMMANDS[asked] as () => Promise<Command>)();
    await stdout.write(`${c.summary}\nusage: ${c.usage}   (--repo DIR, or GITFS_REPO, or the current directory)\n`);
    return ExitCodes.OK;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (load === undefined) {
    // `gitfs help NAME` of no command: NAME is the unknown one, not `help`.
    await stderr.write(`gitfs: unknown command ${JSON.stringify(asked ?? name)} [${ErrorCodes.BAD_ARGUMENT}]\n\n${await help()}`);
    return ExitCodes.USAGE;
  }
  const command = await load();
  const ctx: CommandContext = { argv: rest, stdout, stderr, env: process.env, cwd: process.cwd() };
  try {
    return await command.run(ctx);
  } catch (e) {
    if (isGitfsError(e)) {
      await stderr.write(`gitfs ${name}: ${e.message} [${e.code}]\n`);
      return exitCodeFor(e.code);
    }
    const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
    if (code === 'EPIPE') return ExitCodes.OK;
    // A system call's failure not turned into a GitfsError (standard output on a full disk: ENOSPC) is I/O, not a bug.
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) {
      await stderr.write(`gitfs ${name}: ${(e as Error).message} [${ErrorCodes.IO}]\n`).catch(() => undefined);
      return exitCodeFor(ErrorCodes.IO);
    }
    await stderr.write(`gitfs ${name}: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
    return ExitCodes.FAILURE;
  }
}

process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
});
process.exitCode = await main(process.argv.slice(2));
