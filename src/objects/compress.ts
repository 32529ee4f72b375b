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
import { deflate as deflateCb } from 'node:zlib';

const deflateAsync = promisify(deflateCb);

/** Bits of entropy per byte above which a sample is treated as incompressible. */
export const INCOMPRESSIBLE_BITS_PER_BYTE = 7.5;
const SAMPLE_BYTES = 1024;
const SAMPLES = 4;
const STORED_BLOCK_MAX = 65535;

/** Shannon entropy (bits per byte) of up to four 1 KiB samples spread over `data`. */
export function sampleEntropy(data: Uint8Array): number {
  const counts = new Uint32Array(256);
  let total = 0;
  const step = Math.max(SAMPLE_BYTES, Math.floor(data.length / SAMPLES));
  for (let s = 0; s < data.length && s < step * SAMPLES; s += step) {
    const end = Math.min(data.length, s + SAMPLE_BYTES);
    for (let i = s; i < end; i++) counts[data[i] as number]!++;
    total += end - s;
  }
  if (total === 0) return 0;
  let bits = 0;
  for (let i = 0; i < 256; i++) {
    const c = counts[i] as number;
    if (c !== 0) {
      const p = c / total;
      bits -= p * Math.log2(p);
    }
  }
  return bits;
}

export function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  const n = data.length;
  let i = 0;
  while (i < n) {
    const end = Math.min(n, i + 5552);
    for (; i < end; i++) {
      a += data[i] as number;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** A zlib stream holding `data` in stored (uncompressed) deflate blocks. */
export function zlibStored(data: Uint8Array): Buffer {
  const blocks = Math.max(1, Math.ceil(data.length / STORED_BLOCK_MAX));
  const out = Buffer.allocUnsafe(2 + blocks * 5 + data.length + 4);
  out[0] = 0x78;
  out[1] = 0x01;
  let o = 2;
  for (let b = 0; b < blocks; b++) {
    const start = b * STORED_BLOCK_MAX;
    const len = Math.min(STORED_BLOCK_MAX, data.length - start);
    out[o] = b === blocks - 1 ? 1 : 0;
    out.writeUInt16LE(len, o + 1);
    out.writeUInt16LE(~len & 0xffff, o + 3);
    o += 5;
    out.set(data.subarray(start, start + len), o);
    o += len;
  }
  out.writeUInt32BE(adler32(data), o);
  return out;
}

/**
 * The zlib stream to store for `data`: stored blocks when the sample says it will not compress
 * (or when deflate did not win), else deflate at `level` (1..9) on the thread pool.
 */
export async function zlibForStorage(data: Uint8Array, level: number): Promise<Buffer> {
  if (level === 0 || sampleEntropy(data) > INCOMPRESSIBLE_BITS_PER_BYTE) return zlibStored(data);
  const deflated = await deflateAsync(data, { level });
  return deflated.length < data.length + 11 ? deflated : zlibStored(data);
}
