/** Branch name validation against git's check-ref-format rules (and git's own verdicts). */
import assert from 'node:assert/strict';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { MAX_BRANCH_NAME_BYTES, branchFromRef, branchRef, isBranchName, parseBranchName } from '../../src/branches/ref-name.js';
import { gitRun } from '../support/git-env.js';

const GOOD = [
  'main',
  'kernel/stable',
  'a/b/c/d',
  'feature-1.2',
  'v1.0',
  'release_2024',
  'a.b',
  'x@y',
  '@a',
  'a@',
  'a{b}',
  'with+plus',
  'émoji-🌲',
  'a.lockx',
  'lock',
  'a/lockless',
  'x'.repeat(MAX_BRANCH_NAME_BYTES),
];

const BAD: Array<[string, string]> = [
  ['', 'empty'],
  ['@', 'single @'],
  ['HEAD', 'HEAD'],
  ['-foo', 'leading dash'],
  ['a..b', 'double dot'],
  ['..', 'double dot alone'],
  ['.hidden', 'leading dot'],
  ['a/.hidden', 'component leading dot'],
  ['a.lock', '.lock suffix'],
  ['a.lock/b', 'component .lock suffix'],
  ['a/b.lock', 'nested .lock suffix'],
  ['a.', 'trailing dot'],
  ['a/', 'trailing slash'],
  ['/a', 'leading slash'],
  ['a//b', 'double slash'],
  ['a b', 'space'],
  ['a\tb', 'tab'],
  ['a\nb', 'newline'],
  ['a\u0000b', 'NUL'],
  ['a\u007fb', 'DEL'],
  ['a\u001fb', 'unit separator'],
  ['a~b', 'tilde'],
  ['a^b', 'caret'],
  ['a:b', 'colon'],
  ['a?b', 'question mark'],
  ['a*b', 'star'],
  ['a[b', 'bracket'],
  ['a\\b', 'backslash'],
  ['a@{b', 'at-brace'],
  ['x'.repeat(MAX_BRANCH_NAME_BYTES + 1), 'too long'],
  ['é'.repeat(MAX_BRANCH_NAME_BYTES / 2 + 1), 'too long in bytes'],
  ['a\ud800b', 'lone surrogate'],
];

describe('branches/ref-name', () => {
  for (const name of GOOD) {
    it(`accepts ${JSON.stringify(name.length > 40 ? `${name.slice(0, 20)}…(${name.length})` : name)}`, () => {
      assert.equal(parseBranchName(name), name);
      assert.equal(isBranchName(name), true);
    });
  }

  for (const [name, why] of BAD) {
    it(`rejects ${why}`, () => {
      assert.equal(isBranchName(name), false);
      assert.throws(
        () => parseBranchName(name),
        (e: unknown) => isGitfsError(e, ErrorCodes.BAD_BRANCH_NAME) && e.data['value'] === name,
      );
    });
  }

  it('maps names to refs and back', () => {
    const n = parseBranchName('kernel/stable');
    assert.equal(branchRef(n), 'refs/heads/kernel/stable');
    assert.equal(branchFromRef('refs/heads/kernel/stable'), n);
    assert.equal(branchFromRef('refs/tags/v1'), undefined);
    assert.equal(branchFromRef('refs/heads/a..b'), undefined);
  });

  it('agrees with `git check-ref-format --branch`', () => {
    // Names git accepts must be accepted; names we reject that git accepts are only our stricter
    // extras (HEAD, leading dash are refused by git branch itself; length; surrogates).
    for (const name of GOOD) {
      const r = gitRun(['check-ref-format', '--branch', name]);
      assert.equal(r.status, 0, `git refused ${JSON.stringify(name)}: ${r.stderr}`);
    }
    for (const [name, why] of BAD) {
      // git expands `@` (and `@{-1}`) before checking; NUL cannot be passed in argv.
      if (name === '@' || name.includes('\u0000') || why.includes('long') || why === 'lone surrogate') continue;
      // gitRun throws if git cannot run at all, so only a refusal by git passes here.
      assert.notEqual(gitRun(['check-ref-format', '--branch', name]).status, 0, `git accepted ${why}`);
    }
  });
});
