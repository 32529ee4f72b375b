/**
 * Branch names: git's `check-ref-format --branch` rules, checked once at the boundary.
 *
 * A BranchName is the part after `refs/heads/` and may hold `/` for hierarchy
 * (`kernel/stable`). Invariants of every BranchName value:
 * - 1..MAX_BRANCH_NAME_BYTES bytes of well-formed UTF-8;
 * - components are non-empty (no leading/trailing `/`, no `//`), none starts with `.`
 *   or ends with `.lock`;
 * - no `..`, no `@{`, not `@`, does not end with `.`;
 * - no ASCII control character, DEL, space, or any of `~ ^ : ? * [ \`;
 * - does not start with `-` and is not `HEAD` (git refuses both as branch names).
 * So a BranchName is always a safe relative path below `refs/heads/` and `logs/refs/heads/`,
 * and never collides with a `*.lock` file.
 */
import { ErrorCodes, GitfsError } from '../errors.js';

export type BranchName = string & { readonly __brand: 'BranchName' };

/** Longest accepted name, in UTF-8 bytes (keeps `<name>.lock` far below NAME_MAX and PATH_MAX). */
export const MAX_BRANCH_NAME_BYTES = 200;

export const BRANCH_REF_PREFIX = 'refs/heads/';

// Control characters (0x00-0x1f), space, DEL and the characters git reserves for revision syntax.
const FORBIDDEN_CHARS_RE = /[\x00-\x20\x7f~^:?*[\\]/;

/** Why `s` is not a branch name, or undefined if it is one. */
export function branchNameProblem(s: string): string | undefined {
  if (s.length === 0) return 'is empty';
  const bytes = Buffer.byteLength(s, 'utf8');
  if (bytes > MAX_BRANCH_NAME_BYTES) return `is longer than ${MAX_BRANCH_NAME_BYTES} bytes`;
  if (Buffer.from(s, 'utf8').toString('utf8') !== s) return 'is not well-formed Unicode';
  if (s === '@') return 'is "@"';
  if (s === 'HEAD') return 'is "HEAD"';
  if (s.startsWith('-')) return 'starts with "-"';
  if (FORBIDDEN_CHARS_RE.test(s)) return 'contains a control character, space, or one of ~^:?*[\\';
  if (s.includes('..')) return 'contains ".."';
  if (s.includes('@{')) return 'contains "@{"';
  if (s.endsWith('.')) return 'ends with "."';
  for (const component of s.split('/')) {
    if (component.length === 0) return 'has an empty path component (leading, trailing or double "/")';
    if (component.startsWith('.')) return 'has a component starting with "."';
    if (component.endsWith('.lock')) return 'has a component ending with ".lock"';
  }
  return undefined;
}

export function isBranchName(s: string): s is BranchName {
  return branchNameProblem(s) === undefined;
}

/** Validates a branch name (without `refs/heads/`). Throws GITFS_BAD_BRANCH_NAME. */
export function parseBranchName(s: string): BranchName {
  if (typeof s !== 'string') {
    throw new GitfsError(ErrorCodes.BAD_BRANCH_NAME, 'branch name is not a string', { value: String(s) });
  }
  const problem = branchNameProblem(s);
  if (problem !== undefined) {
    throw new GitfsError(ErrorCodes.BAD_BRANCH_NAME, `bad branch name ${JSON.stringify(s.slice(0, 64))}: ${problem}`, {
      value: s,
      reason: problem,
    });
  }
  return s as BranchName;
}

/** `refs/heads/<name>`. */
export function branchRef(name: BranchName): string {
  return BRANCH_REF_PREFIX + name;
}

/** The branch a full ref name denotes, or undefined if it is not a valid `refs/heads/...` ref. */
export function branchFromRef(ref: string): BranchName | undefined {
  if (!ref.startsWith(BRANCH_REF_PREFIX)) return undefined;
  const name = ref.slice(BRANCH_REF_PREFIX.length);
  return isBranchName(name) ? name : undefined;
}
