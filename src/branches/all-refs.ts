/**
 * Every ref of a repository, whoever wrote it (gitfs's branches and own refs, git's tags, notes,
 * stashes, remotes), and every reflog: what keeps objects alive when a repository is pruned
 * (src/repo/prune.ts). Loose refs win over packed ones of the same name, as in git; lock files and
 * dot-names (git's and gitfs's temporaries) are skipped; a symbolic ref names another ref, which
 * is listed in its own right.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import { LOCK_SUFFIX } from './lock-file.js';
import { readPackedRefs } from './packed-refs.js';

export interface NamedRef {
  /** Full name: `refs/heads/main`, `refs/tags/v1`, or `HEAD` when it is detached. */
  readonly ref: string;
  readonly oid: Oid;
}

/** Every ref holding an object id, and `HEAD` when it holds one (detached). */
export async function listAllRefs(gitDir: string): Promise<NamedRef[]> {
  const loose = new Map<string, Oid | 'symbolic'>();
  await walk(join(gitDir, 'refs'), 'refs/', async (path, ref) => {
    const value = await readRefFile(path);
    if (value !== undefined) loose.set(ref, value);
  });
  const out: NamedRef[] = [];
  for (const [ref, value] of loose) if (value !== 'symbolic') out.push({ ref, oid: value });
  for (const { ref, oid } of (await readPackedRefs(gitDir)).refs) if (!loose.has(ref)) out.push({ ref, oid });
  const head = await readRefFile(join(gitDir, 'HEAD'));
  if (head !== undefined && head !== 'symbolic') out.push({ ref: 'HEAD', oid: head });
  return out;
}

/** The refs that have a reflog (`HEAD`, `refs/heads/main`, …), by their names under logs/. */
export async function listReflogs(gitDir: string): Promise<string[]> {
  const out: string[] = [];
  const logs = join(gitDir, 'logs');
  const head = await stat(join(logs, 'HEAD')).catch((e: unknown) => (errnoCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
  if (head?.isFile() === true) out.push('HEAD');
  await walk(join(logs, 'refs'), 'refs/', async (_path, ref) => void out.push(ref));
  return out;
}

/** Where a ref's reflog lies. */
export function reflogPath(gitDir: string, ref: string): string {
  return join(gitDir, 'logs', ...ref.split('/'));
}

/** Where a ref's loose file lies (and its lock, with LOCK_SUFFIX). */
export function refPath(gitDir: string, ref: string): string {
  return join(gitDir, ...ref.split('/'));
}

/** Calls `visit` for every file under `dir` but lock files and dot-names, with its ref name. */
async function walk(dir: string, prefix: string, visit: (path: string, ref: string) => Promise<void>): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return;
    throw new GitfsError(ErrorCodes.IO, `cannot list ${dir}: ${errnoCode(e) ?? String(e)}`, { path: dir }, { cause: e });
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.') || entry.name.endsWith(LOCK_SUFFIX)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, `${prefix}${entry.name}/`, visit);
    else if (entry.isFile()) await visit(path, prefix + entry.name);
  }
}

/**
 * A loose ref's value: its object id, 'symbolic' (`ref: …`), or undefined when it is gone. Any
 * other content is GITFS_IO: a ref whose target cannot be told would let a prune remove what it names.
 */
async function readRefFile(path: string): Promise<Oid | 'symbolic' | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw new GitfsError(ErrorCodes.IO, `cannot read ${path}: ${errnoCode(e) ?? String(e)}`, { path }, { cause: e });
  }
  if (text.startsWith('ref:')) return 'symbolic';
  const oid = text.trim();
  if (isOid(oid)) return oid;
  throw new GitfsError(ErrorCodes.IO, `${path} does not hold an object id: ${JSON.stringify(text.slice(0, 64))} (what it names cannot be told, so nothing is pruned: gitfs fsck lists such branches, gitfs branch delete removes one)`, { path });
}
