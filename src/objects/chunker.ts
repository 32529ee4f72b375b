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
import { gearCuts, type GearCut } from './kernels.js';

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

/** A cut finder for one parameter set (the loop itself runs in WebAssembly: kernels.ts). */
export class Chunker {
  readonly params: ChunkerParams;
  private readonly cut: GearCut;

  constructor(params: ChunkerParams) {
    validateChunkerParams(params);
    this.params = params;
    const bits = Math.log2(params.avgSize);
    this.cut = { gear: GEAR, ...params, strict: topBits(bits + 1), loose: topBits(bits - 1) };
  }

  /**
   * Cuts consecutive chunks of `buf[start, end)` from `start` until one starts at or after
   * `until` (default `end`) or more bytes are needed to decide; with `eof` the bytes before
   * `end` always form a (possibly short) last chunk. Pushes their lengths onto `lengths` and
   * returns where the next chunk starts.
   */
  cuts(buf: Uint8Array, start: number, end: number, eof: boolean, lengths: number[], until = end): number {
    return gearCuts(this.cut, buf, start, end, eof, until, lengths);
  }

  /** All chunk lengths of a whole buffer (for tests and small inputs). */
  cutAll(buf: Uint8Array): number[] {
    const lengths: number[] = [];
    this.cuts(buf, 0, buf.length, true, lengths);
    return lengths;
  }
}

function topBits(n: number): number {
  return n >= 32 ? -1 : (~0 << (32 - n)) | 0;
}
