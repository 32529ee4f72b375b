import assert from 'node:assert/strict';
import { deflateSync, inflateSync } from 'node:zlib';
import fc from 'fast-check';
import { deflateIfSmaller, isIncompressible, sampleEntropy, writeZlibStored, zlibStoredLength, zlibStoredPieces } from '../../src/objects/compress.js';
import { adler32 } from '../../src/objects/kernels.js';
import { compressibleBytes, pseudoRandomBytes } from '../support/data.js';

/** zlib's own Adler-32: the trailer of a level-0 deflate stream. */
function zlibAdler(data: Uint8Array): number {
  const z = deflateSync(data, { level: 0 });
  return z.readUInt32BE(z.length - 4);
}

describe('compress', () => {
  it('adler32 equals zlib at every length and alignment', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 7 }), fc.constantFrom(0x00, 0xff, -1), (len, offset, fill) => {
        const backing = fill < 0 ? pseudoRandomBytes(len + 8, `a${len}`) : Buffer.alloc(len + 8, fill);
        const data = backing.subarray(offset, offset + len);
        assert.equal(adler32(data), zlibAdler(data));
      }),
      { numRuns: 150 },
    );
  });

  it('adler32 equals zlib across its reduction stretches and memory slices, and continues a stream', () => {
    for (const len of [5535, 5536, 5537, 11_072, (1 << 20) - 1, 1 << 20, (1 << 20) + 17, 3 << 20]) {
      for (const data of [Buffer.alloc(len, 0xff), pseudoRandomBytes(len, `long${len}`)]) {
        assert.equal(adler32(data), zlibAdler(data), `length ${len}`);
        const half = len >>> 1;
        assert.equal(adler32(data.subarray(half), adler32(data.subarray(0, half))), zlibAdler(data), `length ${len} in two parts`);
      }
    }
  });

  it('stored zlib pieces form a stream that zlib inflates back', () => {
    for (const len of [0, 1, 65535, 65536, 200_001]) {
      const data = pseudoRandomBytes(len, 'stored');
      assert.ok(inflateSync(Buffer.concat(zlibStoredPieces(data))).equals(data), `length ${len}`);
    }
  });

  it('writes the same stored stream in place, into a buffer at any offset', () => {
    for (const len of [0, 1, 65534, 65535, 65536, 200_000]) {
      const data = pseudoRandomBytes(len, `in place ${len}`);
      const out = Buffer.alloc(zlibStoredLength(len) + 7, 0xee);
      const end = writeZlibStored(out, 3, data);
      assert.equal(end, 3 + zlibStoredLength(len), `length ${len}`);
      assert.ok(out.subarray(3, end).equals(Buffer.concat(zlibStoredPieces(data))), `length ${len}`);
      assert.ok(out.subarray(0, 3).equals(Buffer.alloc(3, 0xee)) && out.subarray(end).equals(Buffer.alloc(4, 0xee)), 'nothing outside is touched');
    }
  });

  it('the entropy sample tells random bytes from text', () => {
    const random = pseudoRandomBytes(8192, 'entropy');
    const text = compressibleBytes(8192, 'entropy');
    assert.ok(sampleEntropy(random) > 7.5);
    assert.ok(sampleEntropy(text) < 4);
    assert.equal(isIncompressible(random), true);
    assert.equal(isIncompressible(text), false);
    assert.equal(isIncompressible(Buffer.alloc(8192)), false);
  });

  it('deflates compressible data and declines when deflate does not win', async () => {
    const text = compressibleBytes(100_000, 'deflate');
    const deflated = await deflateIfSmaller(text, 1);
    assert.ok(deflated !== undefined && deflated.length < text.length / 2);
    assert.ok(inflateSync(deflated).equals(text));
    assert.equal(await deflateIfSmaller(pseudoRandomBytes(4000, 'no gain'), 6), undefined);
  });
});
