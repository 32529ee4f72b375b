/**
 * Helpers for the branch tests: throwaway directories (removed by `cleanupTempDirs` in after hooks),
 * deterministic fake object ids, a settable clock, and the real `git` CLI isolated from user config.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Oid } from '../../src/objects/oid.js';

const tempDirs: string[] = [];

export function tempDir(label: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `gitfs-branches-${label}-`));
  tempDirs.push(d);
  return d;
}

export function cleanupTempDirs(): void {
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** A well-formed id that names no real object (fine wherever git is not asked to read it). */
export function fakeOid(seed: string): Oid {
  return createHash('sha1').update(seed).digest('hex') as Oid;
}

/** A clock tests move by hand; starts at the real time so file mtimes and it agree. */
export class ManualClock {
  ms: number;
  constructor(ms = Date.now()) {
    this.ms = ms;
  }
  now(): number {
    return this.ms;
  }
}

export const realClock = { now: (): number => Date.now() };

export const IDENTITY = { name: 'Gitfs Test', email: 'gitfs@example.com' } as const;

const gitEnv: NodeJS.ProcessEnv = {
  PATH: process.env['PATH'],
  HOME: os.tmpdir(),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
};

/** Runs git with `--git-dir=<gitDir>` (or in `cwd` when gitDir is undefined); returns trimmed stdout. */
export function git(gitDir: string | undefined, args: readonly string[], input?: string, cwd?: string): string {
  const full = gitDir === undefined ? [...args] : [`--git-dir=${gitDir}`, ...args];
  return execFileSync('git', full, { cwd: cwd ?? os.tmpdir(), env: gitEnv, input, stdio: ['pipe', 'pipe', 'pipe'] })
    .toString('utf8')
    .trimEnd();
}

export function gitAvailable(): boolean {
  try {
    execFileSync('git', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Lists every file below `dir`, relative, sorted (to check no lock or stray file is left). */
export function filesBelow(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        out.push(`${r}/`);
        walk(path.join(d, e.name), r);
      } else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** Runs git and returns everything, failing or not. */
export function gitRun(gitDir: string | undefined, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const full = gitDir === undefined ? [...args] : [`--git-dir=${gitDir}`, ...args];
  const r = spawnSync('git', full, { cwd: os.tmpdir(), env: gitEnv, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout.trimEnd(), stderr: r.stderr.trimEnd() };
}
