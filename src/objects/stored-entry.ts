/**
 * What can be computed about a pack entry stored without compression from the content alone,
 * away from the pack: the object id and the Adler-32 of its zlib stream. The hash worker computes
 * these in bulk; the CRC-32 of the whole entry (for the pack index) is computed by the pack
 * writer over the bytes it frames, which balances the two threads' work.
 */
import { isIncompressible } from './compress.js';
import { adler32 } from './kernels.js';
import { objectIdBytes } from './oid.js';

export interface StoredHint {
  readonly adler32: number;
}

/** The hint that stores `data` without compression. */
export function storedHint(data: Uint8Array): StoredHint {
  return { adler32: adler32(data) };
}

/** The raw 20-byte id of a blob, and a stored-entry hint when the content will not compress. */
export function hashBlob(data: Uint8Array): { id: Buffer; hint: StoredHint | undefined } {
  const id = objectIdBytes('blob', data);
  return { id, hint: isIncompressible(data) ? storedHint(data) : undefined };
}
