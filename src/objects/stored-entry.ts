/**
 * Everything about a pack entry stored without compression that can be computed from the
 * content alone, away from the pack: the object id, the Adler-32 of its zlib stream and the
 * CRC-32 of the whole entry (for the pack index). The hash worker computes these in bulk.
 */
import { crc32 } from 'node:zlib';
import { isIncompressible, zlibStoredPieces } from './compress.js';
import { objectIdBytes, type ObjectType } from './oid.js';
import { encodeEntryHeader, packTypeOf } from './pack-format.js';

export interface StoredHint {
  readonly adler32: number;
  readonly entryCrc32: number;
}

export function entryCrc32(type: ObjectType, size: number, zlibPieces: readonly Uint8Array[]): number {
  let crc = crc32(encodeEntryHeader(packTypeOf(type), size));
  for (const piece of zlibPieces) crc = crc32(piece, crc);
  return crc;
}

/** The hint that stores `data` as an object of `type` without compression. */
export function storedHint(type: ObjectType, data: Uint8Array): StoredHint {
  const pieces = zlibStoredPieces(data);
  const trailer = pieces[pieces.length - 1] as Buffer;
  return { adler32: trailer.readUInt32BE(0), entryCrc32: entryCrc32(type, data.length, pieces) };
}

/** The raw 20-byte id of a blob, and a stored-entry hint when the content will not compress. */
export function hashBlob(data: Uint8Array): { id: Buffer; hint: StoredHint | undefined } {
  const id = objectIdBytes('blob', data);
  return { id, hint: isIncompressible(data) ? storedHint('blob', data) : undefined };
}
