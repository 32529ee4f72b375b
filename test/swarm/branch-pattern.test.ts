/** Branch patterns: a table of matches (`*` within one segment, `**` across segments, the rest literal), refused patterns, and a property against a reference matcher. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { branchPatternProblem, compileBranchPattern } from '../../src/swarm/branch-pattern.js';

const TABLE: Array<[pattern: string, matching: string[], notMatching: string[]]> = [
  ['kernel/*', ['kernel/stable', 'kernel/x', 'kernel/v6.1-rc1'], ['kernel', 'kernel/a/b', 'kernelx/stable', 'xkernel/stable', 'other/stable']],
  ['backups/**', ['backups/a', 'backups/a/b', 'backups/a/b/c.d'], ['backups', 'backupsx/a', 'x/backups/a']],
  ['main', ['main'], ['main2', 'xmain', 'main/x', 'Main']],
  ['*', ['main', 'a.b', 'x-1'], ['a/b', 'kernel/stable']],
  ['**', ['main', 'a/b', 'a/b/c'], []],
  ['release-*', ['release-1', 'release-', 'release-2.0'], ['release', 'release/1', 'xrelease-1']],
  ['*/stable', ['kernel/stable', 'x/stable'], ['stable', 'a/b/stable', 'kernel/stable2']],
  ['**/stable', ['a/stable', 'a/b/stable'], ['stable', 'a/stablex']],
  ['a*b', ['ab', 'axxb'], ['a/b', 'axb/c']],
  ['a**b', ['ab', 'a/b', 'ax/y/zb'], ['a/bc']],
  ['v1.0', ['v1.0'], ['v1x0', 'v1.00']],
  ['x+y(z)', ['x+y(z)'], ['xxy(z)', 'x+yz']],
  ['team/*/feature-*', ['team/a/feature-1'], ['team/a/b/feature-1', 'team/a/bugfix-1']],
  ['日本/*', ['日本/語', '日本/😀'], ['日本', '日/本']],
];

/** Reference: segment-by-segment backtracking matcher, independent of the regular expression. */
function reference(pattern: string, name: string): boolean {
  const go = (pi: number, ni: number): boolean => {
    if (pi === pattern.length) return ni === name.length;
    if (pattern.startsWith('**', pi)) {
      for (let k = ni; k <= name.length; k++) if (go(pi + 2, k)) return true;
      return false;
    }
    if (pattern[pi] === '*') {
      for (let k = ni; k <= name.length; k++) {
        if (go(pi + 1, k)) return true;
        if (name[k] === '/') return false;
      }
      return false;
    }
    return ni < name.length && pattern[pi] === name[ni] && go(pi + 1, ni + 1);
  };
  return go(0, 0);
}

describe('swarm/branch-pattern', () => {
  for (const [pattern, yes, no] of TABLE) {
    it(`${pattern} matches ${yes.join(', ') || 'everything listed'}${no.length > 0 ? `, not ${no.join(', ')}` : ''}`, () => {
      const p = compileBranchPattern(pattern);
      assert.equal(p.source, pattern);
      for (const name of yes) assert.equal(p.matches(name), true, `${pattern} should match ${name}`);
      for (const name of no) assert.equal(p.matches(name), false, `${pattern} should not match ${name}`);
    });
  }

  it('refuses empty and malformed patterns with GITFS_BAD_CONFIG', () => {
    for (const bad of ['', '***', 'a/***', '/kernel/*', 'kernel/*/', 'kernel//*', 'a b', 'a?b', 'a[b]', 'a\\b', 'a~b', 'a^b', 'a:b', '.hidden/*', '*.lock', 'a..b', '-*', 'HEAD', '@', 'x\u0000', 'a.']) {
      assert.notEqual(branchPatternProblem(bad), undefined, JSON.stringify(bad));
      assert.throws(
        () => compileBranchPattern(bad),
        (e: unknown) => isGitfsError(e, ErrorCodes.BAD_CONFIG) && e.data['pattern'] === bad && typeof e.data['reason'] === 'string',
        JSON.stringify(bad),
      );
    }
    assert.equal(branchPatternProblem(42 as unknown as string), 'is not a string');
  });

  it('agrees with a reference matcher (property)', () => {
    const unit = fc.constantFrom('a', 'b', '/', '.', '-');
    const patternArb = fc.array(fc.oneof(unit, fc.constantFrom('*', '**')), { minLength: 1, maxLength: 8 }).map((xs) => xs.join('')).filter((p) => branchPatternProblem(p) === undefined);
    const nameArb = fc.array(unit, { maxLength: 10 }).map((xs) => xs.join(''));
    fc.assert(
      fc.property(patternArb, nameArb, (pattern, name) => compileBranchPattern(pattern).matches(name) === reference(pattern, name)),
      { numRuns: 3000 },
    );
  });
});
