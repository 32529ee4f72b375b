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

const deflateAsync = promisify(deflateCb);

/** Bits of entropy per byte above which a sample is treated as incompressible. */
export const INCOMPRESSIBLE_BITS_PER_BYTE = 7.5;
const SAMPLE_BYTES = 512;
const STORED_BLOCK_MAX = 65535;

/** Shannon entropy (bits per byte) of two 512-byte samples, from the start and the middle of `data`. */
export function sampleEntropy(data: Uint8Array): number {
  const counts = new Int32Array(256);
  let total = 0;
  for (const from of [0, data.length >> 1]) {
    const end = Math.min(data.length, from + SAMPLE_BYTES);
    for (let i = from; i < end; i++) counts[data[i] as number] = (counts[data[i] as number] as number) + 1;
    total += Math.max(0, end - from);
  }
  if (total === 0) return 0;
  let bits = 0;
  for (let i = 0; i < 256; i++) {
    const c = counts[i] as number;
    if (c !== 0) bits -= c * Math.log2(c / total);
  }
  return bits / total;
}

export function isIncompressible(data: Uint8Array): boolean {
  return sampleEntropy(data) > INCOMPRESSIBLE_BITS_PER_BYTE;
}

export function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  const n = data.length;
  let i = 0;
  while (i < n) {
    const end = Math.min(n, i + 5552);
    for (; i + 8 <= end; i += 8) {
      a += data[i] as number; b += a;
      a += data[i + 1] as number; b += a;
      a += data[i + 2] as number; b += a;
      a += data[i + 3] as number; b += a;
      a += data[i + 4] as number; b += a;
      a += data[i + 5] as number; b += a;
      a += data[i + 6] as number; b += a;
      a += data[i + 7] as number; b += a;
    }
    for (; i < end; i++) {
      a += data[i] as number;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
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
