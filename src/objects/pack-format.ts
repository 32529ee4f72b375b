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

/** What an entry of each pack type number holds: an object's type, or a delta ('ofs', 'ref'); undefined for numbers git does not use. */
export const ENTRY_KINDS: readonly (ObjectType | 'ofs' | 'ref' | undefined)[] = [undefined, 'commit', 'tree', 'blob', 'tag', undefined, 'ofs', 'ref'];

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

/** A decoded `type + size` header: the pack type number, the declared size, where the data starts. */
export interface EntryHeaderFields {
  readonly type: number;
  readonly size: number;
  readonly dataStart: number;
}

/** Decodes the `type + size` header at `pos` of `buf` (encodeEntryHeader's inverse); a string says why it cannot. */
export function decodeEntryHeader(buf: Uint8Array, pos: number): EntryHeaderFields | string {
  let at = pos;
  if (at >= buf.length) return 'entry header runs past the entry';
  let byte = buf[at++] as number;
  const type = (byte >> 4) & 7;
  let size = byte & 0x0f;
  let scale = 16;
  while (byte & 0x80) {
    if (at >= buf.length) return 'entry header runs past the entry';
    byte = buf[at++] as number;
    size += (byte & 0x7f) * scale;
    scale *= 128;
    if (scale > 2 ** 56) return 'entry size is absurdly long';
  }
  return { type, size, dataStart: at };
}
