import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { Chunker, GEAR } from '../../src/objects/chunker.js';
import { DEFAULT_FORMAT } from '../../src/repo/repo-format.js';
import { isGitfsError } from '../../src/errors.js';
import { pseudoRandomBytes } from '../support/data.js';

const chunker = new Chunker(DEFAULT_FORMAT.chunker);

describe('chunker', () => {
  it('gear table is pinned', () => {
    assert.equal(GEAR[0], 1394530604);
    assert.equal(GEAR[255], 950677900);
    assert.equal(createHash('sha256').update(Buffer.from(GEAR.buffer)).digest('hex').slice(0, 16), '044262a8b52a7c76');
  });

  it('golden cut points for the default parameters (changing these breaks dedup with every repository)', () => {
    const lengths = chunker.cutAll(pseudoRandomBytes(1 << 20, 'gitfs golden v1'));
    assert.equal(lengths.length, 111);
    assert.deepEqual(lengths.slice(0, 16), [8703, 9689, 8954, 13149, 9074, 13105, 4341, 9491, 3935, 6071, 9260, 10693, 9538, 6650, 8217, 7991]);
    assert.equal(createHash('sha256').update(lengths.join(',')).digest('hex'), 'cb7760c97a9a336b741d365e62466938fddbe8a27872f261238f5a2d25849cab');
  });

  it('zero runs cut at maxSize, so equal runs give equal chunks', () => {
    assert.deepEqual(chunker.cutAll(Buffer.alloc(300000)), [65536, 65536, 65536, 65536, 37856]);
  });

  it('every chunk is within [min, max] except the last, and the lengths add up', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400_000 }), fc.string(), (n, seed) => {
        const lengths = chunker.cutAll(pseudoRandomBytes(n, seed));
        assert.equal(lengths.reduce((a, b) => a + b, 0), n);
        lengths.slice(0, -1).forEach((l) => assert.ok(l >= 2048 && l <= 65536, `chunk of ${l}`));
      }),
      { numRuns: 40 },
    );
  });

  it('streaming gives the same cuts as whole-buffer cutting, whatever the block boundaries', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300_000 }), fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 8 }), (n, blocks) => {
        const data = pseudoRandomBytes(n, `stream${n}`);
        const streamed: number[] = [];
        let start = 0;
        let end = 0;
        let b = 0;
        // Each round grows the data seen by at least a byte until all of it is, then cuts the rest: n + 1 rounds at most.
        for (let rounds = 0; start < n && rounds <= n + 1; rounds++) {
          start = chunker.cuts(data, start, end, end === n, streamed);
          if (start < n) end = Math.min(n, end + (blocks[b++ % blocks.length] as number));
        }
        assert.deepEqual(streamed, chunker.cutAll(data));
      }),
      { numRuns: 40 },
    );
  });

  it('an insertion moves only nearby cut points (content-defined resynchronisation)', () => {
    const a = pseudoRandomBytes(2 << 20, 'resync');
    const b = Buffer.concat([a.subarray(0, 1 << 20), Buffer.from('inserted bytes'), a.subarray(1 << 20)]);
    const ends = (lengths: number[]): number[] => lengths.reduce<number[]>((acc, l) => [...acc, (acc[acc.length - 1] ?? 0) + l], []);
    const ea = new Set(ends(chunker.cutAll(a)).map((e) => (e > 1 << 20 ? e + 14 : e)));
    const eb = ends(chunker.cutAll(b));
    const differing = eb.filter((e) => !ea.has(e)).length;
    assert.ok(differing <= 2, `${differing} cut points moved`);
  });

  it('refuses parameters that are not a valid set', () => {
    for (const p of [
      { minSize: 2048, avgSize: 8000, maxSize: 65536 },
      { minSize: 9000, avgSize: 8192, maxSize: 65536 },
      { minSize: 2048, avgSize: 8192, maxSize: 8192 },
    ]) {
      assert.throws(() => new Chunker(p), (e: unknown) => isGitfsError(e, 'GITFS_BAD_CONFIG'));
    }
  });
});

