import assert from 'node:assert/strict';
import { ErrorCodes, GitfsError } from '../../src/errors.js';
import { applyDelta } from '../../src/objects/delta.js';
import { makeDelta } from './git-fixture.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof GitfsError, `expected a GitfsError, got ${String(e)}`);
    return e.code;
  }
  return undefined;
}

describe('applyDelta', () => {
  const base = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');

  it('applies copy and insert ops', () => {
    // src 36, target 13; copy base[10..16) = "abcdef"; insert "XYZ"; copy base[0..4) = "0123"
    const delta = Buffer.from([36, 13, 0x91, 10, 6, 3, 0x58, 0x59, 0x5a, 0x90, 4]);
    // 0x91 = copy, offset byte 1, size byte 1 -> offset 10, size 6
    // 0x90 = copy, no offset bytes (0), size byte 1 -> size 4
    const out = applyDelta(base, delta, 1000);
    assert.equal(out.toString(), 'abcdefXYZ0123');
  });

  it('treats copy size 0 as 0x10000', () => {
    const big = Buffer.alloc(0x10000, 7);
    // src = 0x10000 (varint 80 80 04), target = 0x10000
    const delta = Buffer.from([0x80, 0x80, 0x04, 0x80, 0x80, 0x04, 0x80]);
    assert.deepEqual(applyDelta(big, delta, 1 << 20), big);
  });

  it('handles multi-byte offsets and sizes', () => {
    const b = Buffer.alloc(70000);
    for (let i = 0; i < b.length; i++) b[i] = i % 251;
    // copy offset 0x010203 > length? use offset 0x0102 = 258, size 0x0304 = 772
    const delta = Buffer.from([0xf0, 0xa2, 0x04, 0x84, 0x06, 0x80 | 0x01 | 0x02 | 0x10 | 0x20, 0x02, 0x01, 0x04, 0x03]);
    const out = applyDelta(b, delta, 1 << 20);
    assert.deepEqual(out, b.subarray(258, 258 + 772));
  });

  it('round-trips the fixture delta writer', () => {
    const target = Buffer.from('0123 and then something else entirely, long enough to need two inserts'.repeat(3));
    const delta = makeDelta(base, target);
    assert.equal(delta[3], 0xb0, 'after the two sizes (1 + 2 bytes), a copy of the common prefix');
    assert.deepEqual(applyDelta(base, delta, 10000), target);
  });

  it('rejects a source size that does not match the base', () => {
    assert.equal(code(() => applyDelta(base, Buffer.from([35, 1, 1, 0x41]), 1000)), ErrorCodes.CORRUPT_OBJECT);
  });

  it('rejects copies outside the base', () => {
    assert.equal(code(() => applyDelta(base, Buffer.from([36, 10, 0x91, 30, 10]), 1000)), ErrorCodes.CORRUPT_OBJECT);
  });

  it('rejects output longer or shorter than declared', () => {
    assert.equal(code(() => applyDelta(base, Buffer.from([36, 2, 3, 0x41, 0x42, 0x43]), 1000)), ErrorCodes.CORRUPT_OBJECT);
    assert.equal(code(() => applyDelta(base, Buffer.from([36, 5, 3, 0x41, 0x42, 0x43]), 1000)), ErrorCodes.CORRUPT_OBJECT);
  });

  it('rejects truncated ops, truncated headers and the reserved op', () => {
    assert.equal(code(() => applyDelta(base, Buffer.from([36, 3, 3, 0x41]), 1000)), ErrorCodes.CORRUPT_OBJECT);
    assert.equal(code(() => applyDelta(base, Buffer.from([36, 3, 0x91, 1]), 1000)), ErrorCodes.CORRUPT_OBJECT);
    assert.equal(code(() => applyDelta(base, Buffer.from([36]), 1000)), ErrorCodes.CORRUPT_OBJECT);
    assert.equal(code(() => applyDelta(base, Buffer.from([0xa4]), 1000)), ErrorCodes.CORRUPT_OBJECT);
    assert.equal(code(() => applyDelta(base, Buffer.from([36, 1, 0]), 1000)), ErrorCodes.CORRUPT_OBJECT);
  });

  it('refuses a target above the size limit (OBJECT_TOO_LARGE: git may write one)', () => {
    assert.equal(code(() => applyDelta(base, Buffer.from([36, 0xff, 0xff, 0x7f]), 1000)), ErrorCodes.OBJECT_TOO_LARGE);
    const absurd = Buffer.from([36, ...Array<number>(12).fill(0xff), 0x01]);
    assert.ok([ErrorCodes.OBJECT_TOO_LARGE, ErrorCodes.CORRUPT_OBJECT].includes(code(() => applyDelta(base, absurd, 1000)) as never));
  });
});
