/**
 * Byte layouts shared by pack readers and writers (git's pack v2 and pack index v2).
 * See docs/FORMAT.md, "Packs".
 */
import type { ObjectType } from './oid.js';

export const PACK_SIGNATURE = Buffer.from('PACK', 'latin1');
export const PACK_VERSION = 2;
export const PACK_HEADER_BYTES = 12;
export const IDX_MAGIC = Buffer.from([0xff, 0x74, 0x4f, 0x63]);
export const IDX_VERSION = 2;

export const PackTypes = {
  commit: 1,
  tree: 2,
  blob: 3,
  tag: 4,
  ofsDelta: 6,
  refDelta: 7,
} as const;

export function packTypeOf(type: ObjectType): number {
  return PackTypes[type];
}

/** The variable-length `type + size` header that starts every pack entry. */
export function encodeEntryHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let rest = Math.floor(size / 16);
  let byte = (type << 4) | (size & 0x0f);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}
