/**
 * zlib streams for pack entries, without paying twice for data that does not compress.
 *
 * Deflating incompressible bytes costs ~35 MB/s here and saves nothing. A cheap byte-entropy
 * estimate over a few samples decides: above the threshold the object is written as a valid
 * zlib stream of *stored* deflate blocks (framing plus Adler-32 only, computed here at memory
 * speed), otherwise it is deflated on libuv's thread pool. Either way the result is an ordinary
 * zlib stream that git and every zlib reader inflate. Compression never changes an object's id.
 */
import { promisify } from 'node:util';
import { deflate as deflateCb, deflateSync } from 'node:zlib';
import { adler32 } from './kernels.js';

const deflateAsync = promisify(deflateCb);

/** Bits of entropy per byte above which a sample is treated as incompressible. */
export const INCOMPRESSIBLE_BITS_PER_BYTE = 7.5;
const SAMPLE_BYTES = 512;
const STORED_BLOCK_MAX = 65535;

/**
 * The longest zlib stream of `size` bytes any writer may make: zlib's own bound for any settings
 * (deflateBound without the default parameters' shortcut) with a little room.
 */
export function maxStreamBytes(size: number): number {
  return size + Math.ceil(size / 8) + Math.ceil(size / 64) + 1024;
}

/** c * log2(c) for every count a sample can reach, so the entropy sum needs no logarithms. */
const C_LOG_C = (() => {
  const t = new Float64Array(2 * SAMPLE_BYTES + 1);
  for (let c = 1; c < t.length; c++) t[c] = c * Math.log2(c);
  return t;
})();

/** Byte counts of the sample being measured (one per thread; sampleEntropy is synchronous). */
const counts = new Int32Array(256);

/** Shannon entropy (bits per byte) of two 512-byte samples, from the start and the middle of `data`. */
export function sampleEntropy(data: Uint8Array): number {
  counts.fill(0);
  const half = data.length >> 1;
  const firstEnd = Math.min(data.length, SAMPLE_BYTES);
  const secondEnd = Math.min(data.length, half + SAMPLE_BYTES);
  for (let i = 0; i < firstEnd; i++) counts[data[i] as number]!++;
  for (let i = half; i < secondEnd; i++) counts[data[i] as number]!++;
  const total = firstEnd + secondEnd - half;
  if (total === 0) return 0;
  // H = log2(N) - (1/N) * sum(c * log2 c)
  let sum = 0;
  for (let i = 0; i < 256; i++) sum += C_LOG_C[counts[i] as number] as number;
  return Math.log2(total) - sum / total;
}

export function isIncompressible(data: Uint8Array): boolean {
  return sampleEntropy(data) > INCOMPRESSIBLE_BITS_PER_BYTE;
}

const ZLIB_HEADER = Buffer.from([0x78, 0x01]);

/**
 * The pieces of a zlib stream holding `data` in stored (uncompressed) deflate blocks, in order:
 * the zlib header, then per block of at most 65535 bytes its 5-byte header and a view of `data`,
 * then the Adler-32 trailer. The data is not copied.
 */
export function zlibStoredPieces(data: Uint8Array, adler = adler32(data)): Uint8Array[] {
  const blocks = Math.max(1, Math.ceil(data.length / STORED_BLOCK_MAX));
  const pieces: Uint8Array[] = [ZLIB_HEADER];
  for (let b = 0; b < blocks; b++) {
    const start = b * STORED_BLOCK_MAX;
    const len = Math.min(STORED_BLOCK_MAX, data.length - start);
    const head = Buffer.allocUnsafe(5);
    head[0] = b === blocks - 1 ? 1 : 0;
    head.writeUInt16LE(len, 1);
    head.writeUInt16LE(~len & 0xffff, 3);
    pieces.push(head, data.subarray(start, start + len));
  }
  const trailer = Buffer.allocUnsafe(4);
  trailer.writeUInt32BE(adler, 0);
  pieces.push(trailer);
  return pieces;
}

/** Bytes of the zlib stream `zlibStoredPieces(data)` makes for `length` bytes of data. */
export function zlibStoredLength(length: number): number {
  return ZLIB_HEADER.length + 5 * Math.max(1, Math.ceil(length / STORED_BLOCK_MAX)) + length + 4;
}

/**
 * Writes that same stream into `out` at `at` (zlibStoredLength(data.length) bytes must fit) and
 * returns where it ends: one copy of the data, no allocation.
 */
export function writeZlibStored(out: Uint8Array, at: number, data: Uint8Array, adler = adler32(data)): number {
  out.set(ZLIB_HEADER, at);
  let pos = at + ZLIB_HEADER.length;
  const blocks = Math.max(1, Math.ceil(data.length / STORED_BLOCK_MAX));
  for (let b = 0; b < blocks; b++) {
    const start = b * STORED_BLOCK_MAX;
    const len = Math.min(STORED_BLOCK_MAX, data.length - start);
    out[pos] = b === blocks - 1 ? 1 : 0;
    out[pos + 1] = len & 0xff;
    out[pos + 2] = len >>> 8;
    out[pos + 3] = ~len & 0xff;
    out[pos + 4] = (~len >>> 8) & 0xff;
    out.set(data.subarray(start, start + len), pos + 5);
    pos += 5 + len;
  }
  out[pos] = adler >>> 24;
  out[pos + 1] = (adler >>> 16) & 0xff;
  out[pos + 2] = (adler >>> 8) & 0xff;
  out[pos + 3] = adler & 0xff;
  return pos + 4;
}

/**
 * The content of a zlib stream made only of stored (uncompressed) blocks, as gitfs writes
 * incompressible chunks (the inverse of writeZlibStored), without running inflate: a single block is returned in place. Undefined
 * for anything else (compressed blocks, a preset dictionary, a size mismatch), which then goes
 * through inflate and its checks. The Adler-32 trailer is not checked here: the caller checks the
 * object's SHA-1, which covers every byte returned.
 */
export function readZlibStored(buf: Buffer, start: number, size: number): Buffer | undefined {
  const cmf = buf[start];
  const flg = buf[start + 1];
  if (cmf === undefined || flg === undefined || (cmf & 0x0f) !== 8 || (cmf * 256 + flg) % 31 !== 0 || (flg & 0x20) !== 0) return undefined;
  const pieces: Buffer[] = [];
  let total = 0;
  let pos = start + 2;
  for (;;) {
    const header = buf[pos];
    if (header === undefined || (header & 0x06) !== 0 || pos + 5 > buf.length) return undefined;
    const len = buf.readUInt16LE(pos + 1);
    if ((len ^ buf.readUInt16LE(pos + 3)) !== 0xffff || pos + 5 + len > buf.length) return undefined;
    pieces.push(buf.subarray(pos + 5, pos + 5 + len));
    total += len;
    pos += 5 + len;
    if (total > size) return undefined;
    if ((header & 1) === 1) break;
  }
  if (total !== size || pos + 4 > buf.length) return undefined;
  return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, total);
}

/** Below this size deflate runs inline: setting up a thread-pool job costs more than the work. */
const INLINE_DEFLATE_BYTES = 16 << 10;

/**
 * Deflates (small inputs inline with a window fitted to their size, larger ones on the thread
 * pool); undefined when the result would not be smaller than stored blocks.
 */
export async function deflateIfSmaller(data: Uint8Array, level: number): Promise<Buffer | undefined> {
  const deflated =
    data.length <= INLINE_DEFLATE_BYTES
      ? deflateSync(data, { level, windowBits: Math.max(9, Math.min(15, Math.ceil(Math.log2(data.length + 1)))), memLevel: 8 })
      : await deflateAsync(data, { level });
  return deflated.length < data.length + 11 ? deflated : undefined;
}

/**
 * The most bytes that `stored` bytes of a zlib stream can inflate to: deflate's densest code is a
 * 258-byte match in 2 bits, 1032 bytes a byte (with room to spare for the stream's ends).
 */
export function inflateBound(stored: number): number {
  return stored * 1032 + 1024;
}

/** The most bytes zlib's deflate makes of `size` bytes, whatever its settings (zlib's conservative deflateBound, with its header). */
export function deflateBound(size: number): number {
  return size + Math.ceil(size / 8) + Math.ceil(size / 64) + 64;
}
