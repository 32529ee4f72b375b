/** The `gitfs` command line: dispatch, error reporting, exit codes. The only place that prints. */
import { isGitfsError } from '../errors.js';
import { branch } from './commands/branch.js';
import { cat } from './commands/cat.js';
import { cluster } from './commands/cluster.js';
import { commit } from './commands/commit.js';
import { diff } from './commands/diff.js';
import { exportCommand } from './commands/export.js';
import { fetch } from './commands/fetch.js';
import { fsck } from './commands/fsck.js';
import { init } from './commands/init.js';
import { key } from './commands/key.js';
import { log } from './commands/log.js';
import { mount } from './commands/mount.js';
import { reset } from './commands/reset.js';
import { rollout } from './commands/rollout.js';
import { status } from './commands/status.js';
import { umount } from './commands/umount.js';
import { ls } from './commands/ls.js';
import { peers } from './commands/peers.js';
import { policy } from './commands/policy.js';
import { serve } from './commands/serve.js';
import { show } from './commands/show.js';
import { stats } from './commands/stats.js';
import type { Command, CommandContext, Output } from './context.js';
import { exitCodeFor, ExitCodes } from './exit-codes.js';

const COMMANDS: Record<string, Command> = { init, commit, status, reset, mount, umount, ls, cat, export: exportCommand, log, show, diff, branch, stats, fsck, cluster, serve, peers, policy, fetch, key, rollout };

function streamOutput(stream: NodeJS.WriteStream): Output {
  return {
    write: (text) =>
      new Promise((resolve, reject) => {
        stream.write(text, (err) => (err ? reject(err) : resolve()));
      }),
  };
}

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return `usage: gitfs <command> [options]   (--repo DIR, or GITFS_REPO, or the current directory)\n\n${Object.entries(COMMANDS)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}\n  ${' '.repeat(width)}  ${c.usage}`)
    .join('\n')}\n`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  const stdout = streamOutput(process.stdout);
  const stderr = streamOutput(process.stderr);
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    await (name === undefined ? stderr : stdout).write(help());
    return name === undefined ? ExitCodes.USAGE : ExitCodes.OK;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    await stderr.write(`gitfs: unknown command ${JSON.stringify(name)}\n\n${help()}`);
    return ExitCodes.USAGE;
  }
  const ctx: CommandContext = { argv: rest, stdout, stderr, env: process.env, cwd: process.cwd() };
  try {
    return await command.run(ctx);
  } catch (e) {
    if (isGitfsError(e)) {
      await stderr.write(`gitfs ${name}: ${e.message} [${e.code}]\n`);
      return exitCodeFor(e.code);
    }
    if (typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'EPIPE') return ExitCodes.OK;
    await stderr.write(`gitfs ${name}: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
    return ExitCodes.FAILURE;
  }
}

process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
});
process.exitCode = await main(process.argv.slice(2));
