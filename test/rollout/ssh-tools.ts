/**
 * The real OpenSSH ssh-keygen for the rollout tests (Debian package openssh-client). A missing
 * ssh-keygen is an error, never a skip.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Ran {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs ssh-keygen with `args` (and `input` on stdin); throws only if it could not run. */
export function sshKeygen(args: readonly string[], input?: Buffer | string): Ran {
  const r = spawnSync('ssh-keygen', args, { input, env: { PATH: process.env['PATH'], HOME: tmpdir() }, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
  if (r.error !== undefined) throw new Error(`could not run ssh-keygen (apt-get install openssh-client): ${r.error.message}`, { cause: r.error });
  if (r.status === null) throw new Error(`ssh-keygen was killed by ${r.signal ?? 'a signal'}`);
  return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

export function sshKeygenOk(args: readonly string[], input?: Buffer | string): string {
  const r = sshKeygen(args, input);
  if (r.status !== 0) throw new Error(`ssh-keygen ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** A new Ed25519 key made by ssh-keygen in `dir`: paths and the texts of both halves. */
export function sshKeygenKey(dir: string, name: string, comment: string, passphrase = ''): { path: string; privateText: string; publicText: string } {
  const path = join(dir, name);
  sshKeygenOk(['-q', '-t', 'ed25519', '-N', passphrase, '-C', comment, '-f', path]);
  return { path, privateText: readFileSync(path, 'utf8'), publicText: readFileSync(`${path}.pub`, 'utf8') };
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** The same base64 with a spare bit set in the last character before the padding (needs padding). */
export function nonCanonical(b64: string): string {
  const i = b64.replace(/=+$/, '').length - 1;
  if (i === b64.length - 1) throw new Error('nonCanonical needs padded base64');
  return b64.slice(0, i) + B64[B64.indexOf(b64[i] as string) + 1] + b64.slice(i + 1);
}
