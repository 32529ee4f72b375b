/**
 * Content-defined chunking with a 32-bit gear hash, FastCDC-style normalised cuts.
 *
 * Pure and deterministic: the cut points depend only on the bytes and the parameters, which are
 * fixed per repository at `init` (see docs/FORMAT.md, "Chunking"). Golden vectors in
 * test/objects/chunker.test.ts pin them; changing anything here breaks dedup with every
 * existing repository.
 *
 * The rolling hash is h = (h << 1) + GEAR[byte] (mod 2^32); bit k of h depends on the last
 * k + 1 bytes, so cut masks test the top bits (a 32-byte window). Hashing of a chunk starts at
 * `minSize` (bytes before it cannot end the chunk). Before `avgSize` the mask has one bit more
 * than log2(avgSize), after it one bit fewer, which narrows the size distribution.
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, GitfsError } from '../errors.js';

export interface ChunkerParams {
  readonly minSize: number;
  readonly avgSize: number;
  readonly maxSize: number;
}

export const GEAR_ALGORITHM = 'gear32-fastcdc-v1';

/** GEAR[i] = first 4 bytes (big-endian) of SHA-256("gitfs gear v1 <i>"). */
export const GEAR: Int32Array = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    table[i] = createHash('sha256').update(`gitfs gear v1 ${i}`).digest().readInt32BE(0);
  }
  return table;
})();

export function validateChunkerParams(p: ChunkerParams): void {
  const pow2 = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(p.avgSize) || p.avgSize < 256 || p.avgSize > 1 << 24) {
    throw new GitfsError(ErrorCodes.BAD_CONFIG, `chunker avgSize must be a power of two in [256, 16 MiB], got ${p.avgSize}`);
  }
  if (!Number.isInteger(p.minSize) || p.minSize < 64 || p.minSize >= p.avgSize) {
    throw new GitfsError(ErrorCodes.BAD_CONFIG, `chunker minSize must be an integer in [64, avgSize), got ${p.minSize}`);
  }
  if (!Number.isInteger(p.maxSize) || p.maxSize <= p.avgSize || p.maxSize > 1 << 26) {
    throw new GitfsError(ErrorCodes.BAD_CONFIG, `chunker maxSize must be an integer in (avgSize, 64 MiB], got ${p.maxSize}`);
  }
}

/** A cut finder for one parameter set. */
export class Chunker {
  readonly params: ChunkerParams;
  private readonly maskStrict: number;
  private readonly maskLoose: number;

  constructor(params: ChunkerParams) {
    validateChunkerParams(params);
    this.params = params;
    const bits = Math.log2(params.avgSize);
    this.maskStrict = topBits(bits + 1);
    this.maskLoose = topBits(bits - 1);
  }

  /**
   * Length of the chunk that starts at `start`, given bytes up to `end`; -1 if more bytes are
   * needed to decide. With `eof`, the remaining bytes always form a (possibly short) chunk.
   */
  cut(buf: Uint8Array, start: number, end: number, eof: boolean): number {
    const { minSize, avgSize, maxSize } = this.params;
    const available = end - start;
    if (available <= minSize) return eof || available === maxSize ? available : -1;
    const limit = start + Math.min(available, maxSize);
    const normal = start + Math.min(available, avgSize);
    const gear = GEAR;
    const strict = this.maskStrict;
    const loose = this.maskLoose;
    let h = 0;
    let p = start + minSize;
    for (; p < normal; p++) {
      h = ((h << 1) + (gear[buf[p] as number] as number)) | 0;
      if ((h & strict) === 0) return p + 1 - start;
    }
    for (; p < limit; p++) {
      h = ((h << 1) + (gear[buf[p] as number] as number)) | 0;
      if ((h & loose) === 0) return p + 1 - start;
    }
    if (limit - start === maxSize || eof) return limit - start;
    return -1;
  }

  /** All chunk lengths of a whole buffer (for tests and small inputs). */
  cutAll(buf: Uint8Array): number[] {
    const lengths: number[] = [];
    let start = 0;
    while (start < buf.length) {
      const n = this.cut(buf, start, buf.length, true);
      lengths.push(n);
      start += n;
    }
    return lengths;
  }
}

function topBits(n: number): number {
  return n >= 32 ? -1 : (~0 << (32 - n)) | 0;
}
