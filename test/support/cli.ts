/** Runs the real `gitfs` CLI (bin/gitfs) and the real `git` as separate processes. */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gitfsProcessEnv, NODE_FLAGS } from '../../src/cli/node-flags.js';

export const GITFS_BIN = fileURLToPath(new URL('../../../bin/gitfs', import.meta.url));

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const TEST_ENV = gitfsProcessEnv({ ...process.env, GITFS_AUTHOR_NAME: 'Test Author', GITFS_AUTHOR_EMAIL: 'test@example.invalid' });

/** Runs `gitfs ARGS`; killed (SIGKILL) after `timeoutMs`, 5 minutes unless given, so no test waits on it for ever. */
export function gitfs(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...NODE_FLAGS, GITFS_BIN, ...args],
      { cwd: options.cwd, env: { ...TEST_ENV, ...options.env }, maxBuffer: 256 << 20, encoding: 'utf8', timeout: options.timeoutMs ?? 300_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Runs gitfs and fails with its stderr unless it exits 0. */
export async function gitfsOk(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await gitfs(args, options);
  if (r.code !== 0) throw new Error(`gitfs ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Runs gitfs and collects stdout as raw bytes. */
export function gitfsBytes(args: readonly string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, GITFS_BIN, ...args], { env: TEST_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: err }));
  });
}

export function git(gitDir: string, args: readonly string[], options: { cwd?: string } = {}): string {
  return execFileSync('git', [`--git-dir=${gitDir}`, ...args], { encoding: 'utf8', cwd: options.cwd, maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
}
