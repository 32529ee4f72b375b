/** Text the command line prints that quotes what others sent: control characters shown, never sent to the terminal. */
import assert from 'node:assert/strict';
import { printable } from '../../src/cli/format.js';

describe('cli/format: printable', () => {
  it('shows C0 and C1 control characters and DEL as \\xNN, the marks that reorder a line as \\uNNNN, a backslash doubled, and leaves the rest (UTF-8 text too) as it is', () => {
    assert.equal(printable('url: -\u001b[2K\rheld fsck/modules all fine\u001b[8m'), 'url: -\\x1b[2K\\x0dheld fsck/modules all fine\\x1b[8m');
    assert.equal(printable('a\nb\tc\u007f\u009bd'), 'a\\x0ab\\x09c\\x7f\\x9bd');
    assert.equal(printable('evil\u202etxt.exe \u2066x\u2069'), 'evil\\u202etxt.exe \\u2066x\\u2069');
    assert.equal(printable('a literal \\x1b'), 'a literal \\\\x1b', 'not to be taken for an escaped control character');
    assert.equal(printable('Grüße, 日本 ✓ [ok] 😀'), 'Grüße, 日本 ✓ [ok] 😀');
  });
});
