/**
 * Where a mount path leads (README.md, "Mount layout"):
 *
 *   /<branch>/…                      the branch, writable (a branch a/b is the directory a/b)
 *   /.history/<branch>/<time>_<id>/  each commit of the branch's first-parent history
 *   /.commits/<id>/                  any commit, by full or abbreviated id
 *   /.objects/<id>                   any blob or chunked file, by id
 *
 * A directory that only holds branch names (`a` for a/b) is a namespace.
 */
import type { BranchName } from '../branches/ref-name.js';

export const HISTORY = '.history';
export const COMMITS = '.commits';
export const OBJECTS = '.objects';
export const SPECIAL_DIRS = [COMMITS, HISTORY, OBJECTS] as const;

export type Route =
  | { readonly kind: 'root' }
  | { readonly kind: 'namespace'; readonly under: 'branches' | 'history'; readonly prefix: string }
  | { readonly kind: 'branch'; readonly branch: BranchName; readonly rel: string }
  | { readonly kind: 'history'; readonly branch: BranchName; readonly entry?: string; readonly rel: string }
  | { readonly kind: 'commits'; readonly id?: string; readonly rel: string }
  | { readonly kind: 'objects'; readonly id?: string; readonly rel: string }
  | { readonly kind: 'missing'; readonly under: 'branches' | 'history'; readonly prefix: string };

/** Routes `path` (absolute, as FUSE passes it) given the branches that exist. */
export function route(path: string, branches: ReadonlySet<string>): Route {
  const parts = path.split('/').filter((p) => p !== '');
  const [first, second] = parts;
  if (first === undefined) return { kind: 'root' };
  if (first === COMMITS) return { kind: 'commits', ...(second === undefined ? {} : { id: second }), rel: parts.slice(2).join('/') };
  if (first === OBJECTS) return { kind: 'objects', ...(second === undefined ? {} : { id: second }), rel: parts.slice(2).join('/') };
  if (first === HISTORY) {
    const rest = parts.slice(1);
    if (rest.length === 0) return { kind: 'namespace', under: 'history', prefix: '' };
    const hit = branchPrefix(rest, branches);
    if (hit === undefined) return namespaceOrMissing(rest.join('/'), branches, 'history');
    const [entry, ...rel] = rest.slice(hit.length);
    return { kind: 'history', branch: hit.branch, ...(entry === undefined ? {} : { entry }), rel: rel.join('/') };
  }
  const hit = branchPrefix(parts, branches);
  if (hit === undefined) return namespaceOrMissing(parts.join('/'), branches, 'branches');
  return { kind: 'branch', branch: hit.branch, rel: parts.slice(hit.length).join('/') };
}

function branchPrefix(parts: readonly string[], branches: ReadonlySet<string>): { branch: BranchName; length: number } | undefined {
  let name = '';
  for (let i = 0; i < parts.length; i++) {
    name = i === 0 ? (parts[0] as string) : `${name}/${parts[i] as string}`;
    if (branches.has(name)) return { branch: name as BranchName, length: i + 1 };
  }
  return undefined;
}

function namespaceOrMissing(prefix: string, branches: ReadonlySet<string>, under: 'branches' | 'history'): Route {
  for (const b of branches) if (b.startsWith(`${prefix}/`)) return { kind: 'namespace', under, prefix };
  return { kind: 'missing', under, prefix };
}

/** Names directly inside a namespace: the next component of every branch below it. */
export function namespaceChildren(prefix: string, branches: Iterable<string>): string[] {
  const names = new Set<string>();
  const lead = prefix === '' ? '' : `${prefix}/`;
  for (const b of branches) {
    if (!b.startsWith(lead)) continue;
    names.add(b.slice(lead.length).split('/')[0] as string);
  }
  return [...names].sort();
}

/** Digits of the count of later commits in one second: enough for the 100 000 commits a history lists (MAX_HISTORY, mount-fs.ts). */
const SAME_SECOND_DIGITS = 5;

/**
 * The `.history` names of a first-parent chain (given newest first), each mapped to its commit:
 * `<UTC time>Z_<short id>`, the time in ISO 8601 basic to the second, as git records it. A commit
 * of the same second as an older one of the chain gets `~00001`, `~00002`, … after the time, so
 * that names sort in commit order and none of them changes when newer commits come.
 */
export function historyNames<C extends string>(chain: readonly { readonly timeMs: number; readonly commit: C }[]): Map<string, C> {
  const seen = new Map<string, number>();
  const names = new Map<string, C>();
  for (let i = chain.length - 1; i >= 0; i--) {
    const { timeMs, commit } = chain[i] as (typeof chain)[number];
    const iso = new Date(timeMs).toISOString(); // 2026-11-22T06:01:02.000Z
    const second = `${iso.slice(0, 10).replaceAll('-', '')}T${iso.slice(11, 19).replaceAll(':', '')}Z`;
    const before = seen.get(second) ?? 0;
    seen.set(second, before + 1);
    const nth = before === 0 ? '' : `~${String(before).padStart(SAME_SECOND_DIGITS, '0')}`;
    names.set(`${second}${nth}_${commit.slice(0, 12)}`, commit);
  }
  return names;
}
