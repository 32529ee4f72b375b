/** What every command gets: its arguments, output streams, environment, and repository opening. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ErrorCodes, GitfsError } from '../errors.js';
import { Repository } from '../repo/repository.js';

export interface Output {
  write(text: string | Uint8Array): Promise<void>;
}

export interface CommandContext {
  readonly argv: readonly string[];
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export interface Command {
  readonly summary: string;
  readonly usage: string;
  run(ctx: CommandContext): Promise<number>;
}

export type Options = NonNullable<ParseArgsConfig['options']>;

const REPO_OPTION = { repo: { type: 'string', short: 'C' } } as const;

/** parseArgs with `--repo` added and errors turned into GITFS_BAD_ARGUMENT. */
export function parse<O extends Options>(ctx: CommandContext, options: O, usage: string) {
  try {
    return parseArgs({ args: [...ctx.argv], options: { ...REPO_OPTION, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${(e as Error).message}\nusage: ${usage}`);
  }
}

export function repoPath(ctx: CommandContext, value: string | boolean | undefined): string {
  return typeof value === 'string' ? value : (ctx.env.GITFS_REPO ?? ctx.cwd);
}

export async function withRepo<T>(ctx: CommandContext, value: string | boolean | undefined, body: (repo: Repository) => Promise<T>): Promise<T> {
  const repo = await Repository.open(repoPath(ctx, value), { env: ctx.env });
  try {
    return await body(repo);
  } finally {
    await repo.close();
  }
}

export function positionals(values: readonly string[], min: number, max: number, usage: string): string[] {
  if (values.length < min || values.length > max) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `usage: ${usage}`);
  return [...values];
}

export function integerOption(value: string | boolean | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `--${name} needs a non-negative integer`);
  return n;
}
