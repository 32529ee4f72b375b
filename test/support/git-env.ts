/**
 * The real `git` CLI for tests, isolated from the user's and the system's config: one hermetic
 * environment and one set of runners. A missing or unrunnable git is an error, never a skip.
 */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';

/** The author and committer of everything git commits in tests. */
const GIT_TEST_IDENTITY = { name: 'Test', email: 'test@example.com' } as const;

/** The author and committer date when a caller asks for fixed dates (reproducible commit ids). */
export const FIXED_GIT_DATE = '1700000000 +0000';

/** The environment git runs in: only PATH from the caller's, no system or global config. */
export function gitEnv(options: { fixedDates?: boolean } = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'],
    HOME: tmpdir(),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: GIT_TEST_IDENTITY.name,
    GIT_AUTHOR_EMAIL: GIT_TEST_IDENTITY.email,
    GIT_COMMITTER_NAME: GIT_TEST_IDENTITY.name,
    GIT_COMMITTER_EMAIL: GIT_TEST_IDENTITY.email,
    ...(options.fixedDates === true ? { GIT_AUTHOR_DATE: FIXED_GIT_DATE, GIT_COMMITTER_DATE: FIXED_GIT_DATE } : {}),
  };
}

export interface GitCall {
  /** Passed as `--git-dir=<gitDir>` before the arguments. */
  readonly gitDir?: string;
  /** Working directory; the system temp dir by default, so no enclosing repository is found. */
  readonly cwd?: string;
  /** Bytes for git's stdin. */
  readonly input?: Buffer | string;
  /** Fixed author and committer dates (FIXED_GIT_DATE). */
  readonly fixedDates?: boolean;
}

function spawnGit(args: readonly string[], call: GitCall): { status: number; stdout: Buffer; stderr: Buffer } {
  const argv = call.gitDir === undefined ? [...args] : [`--git-dir=${call.gitDir}`, ...args];
  const r = spawnSync('git', argv, {
    cwd: call.cwd ?? tmpdir(),
    env: gitEnv({ fixedDates: call.fixedDates ?? false }),
    input: call.input,
    maxBuffer: 1 << 30,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (r.error !== undefined) throw new Error(`could not run git ${argv.join(' ')}: ${r.error.message}`, { cause: r.error });
  if (r.status === null) throw new Error(`git ${argv.join(' ')} was killed by ${r.signal ?? 'a signal'}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs git; returns stdout as bytes; throws with git's stderr unless it exits 0. */
export function gitBytes(args: readonly string[], call: GitCall = {}): Buffer {
  const r = spawnGit(args, call);
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} exited ${r.status}: ${r.stderr.toString('utf8').trimEnd()}`);
  return r.stdout;
}

/** Runs git; returns stdout as text without trailing white space; throws unless it exits 0. */
export function gitText(args: readonly string[], call: GitCall = {}): string {
  return gitBytes(args, call).toString('utf8').trimEnd();
}

/** Runs git and returns its exit status and output (text, trailing white space trimmed), whatever the status; throws only if git could not run. */
export function gitRun(args: readonly string[], call: GitCall = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnGit(args, call);
  return { status: r.status, stdout: r.stdout.toString('utf8').trimEnd(), stderr: r.stderr.toString('utf8').trimEnd() };
}
