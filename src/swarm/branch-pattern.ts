/**
 * Branch patterns for replication policies: `*` matches any characters within one path segment
 * (no `/`), `**` matches any characters including `/`, everything else is literal. A pattern is
 * checked and compiled once; it must read as a valid branch name once each `*` or `**` is
 * replaced by a letter (so it can match something), and three stars in a row are refused.
 */
import { branchNameProblem } from '../branches/ref-name.js';
import { ErrorCodes, GitfsError } from '../errors.js';

export interface BranchPattern {
  /** The pattern as written. */
  readonly source: string;
  /** Whether `name` (a branch name without `refs/heads/`) matches the whole pattern. */
  matches(name: string): boolean;
}

const REGEXP_SPECIAL = /[.*+?^${}()|[\]\\]/g;

/** Why `pattern` is refused, or undefined if it is acceptable. */
export function branchPatternProblem(pattern: string): string | undefined {
  if (typeof pattern !== 'string') return 'is not a string';
  if (pattern.length === 0) return 'is empty';
  if (pattern.includes('***')) return 'has three or more "*" in a row';
  const problem = branchNameProblem(pattern.replace(/\*\*?/g, 'x'));
  return problem === undefined ? undefined : `cannot match a branch: with its wildcards filled in it ${problem}`;
}

/** Checks and compiles `pattern`. Throws GITFS_BAD_CONFIG naming the pattern and the reason. */
export function compileBranchPattern(pattern: string): BranchPattern {
  const problem = branchPatternProblem(pattern);
  if (problem !== undefined) {
    throw new GitfsError(ErrorCodes.BAD_CONFIG, `bad branch pattern ${JSON.stringify(String(pattern).slice(0, 80))}: ${problem}`, { pattern, reason: problem });
  }
  const body = pattern
    .split(/(\*\*?)/)
    .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(REGEXP_SPECIAL, '\\$&')))
    .join('');
  const re = new RegExp(`^${body}$`, 's');
  return { source: pattern, matches: (name: string): boolean => re.test(name) };
}
