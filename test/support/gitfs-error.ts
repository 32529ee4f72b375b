/** For assert.rejects / assert.throws: a matcher that wants a GitfsError with `code`, and says which it got. */
import assert from 'node:assert/strict';
import { isGitfsError, type ErrorCode } from '../../src/errors.js';

export function rejectsWith(code: ErrorCode): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isGitfsError(e), `not a GitfsError: ${String(e)}`);
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    return true;
  };
}
