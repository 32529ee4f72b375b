/**
 * Byte layouts shared by pack readers and writers (git's pack v2 and pack index v2).
 * See docs/FORMAT.md, "Packs".
 */
import { OID_BYTES, oidFromBytes, type ObjectType, type Oid } from './oid.js';

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

/** A pack entry's header parsed: an object's type, or a delta and its base (an offset before it, or an id). */
export type EntryHeader =
  | { readonly kind: ObjectType; readonly size: number; readonly dataStart: number }
  | { readonly kind: 'ofs'; readonly size: number; readonly dataStart: number; readonly baseOffset: number }
  | { readonly kind: 'ref'; readonly size: number; readonly dataStart: number; readonly baseOid: Oid };

/** Parses the header of the entry at pack offset `offset` from the start of `buf` (and its delta base); a string says why it cannot. */
export function decodeEntry(buf: Uint8Array, offset: number): EntryHeader | string {
  const fields = decodeEntryHeader(buf, 0);
  if (typeof fields === 'string') return fields;
  const { size } = fields;
  let pos = fields.dataStart;
  const kind = ENTRY_KINDS[fields.type];
  if (kind === undefined) return `bad entry type ${fields.type}`;
  if (kind === 'ofs') {
    const past = 'entry header runs past the entry';
    if (pos >= buf.length) return past;
    let byte = buf[pos++] as number;
    let distance = byte & 0x7f;
    while (byte & 0x80 && distance <= offset) {
      if (pos >= buf.length) return past;
      byte = buf[pos++] as number;
      distance = (distance + 1) * 128 + (byte & 0x7f);
    }
    if (distance <= 0 || distance >= offset) return 'delta base offset points outside the pack';
    return { kind, size, dataStart: pos, baseOffset: offset - distance };
  }
  if (kind === 'ref') {
    if (pos + OID_BYTES > buf.length) return 'delta base id runs past the entry';
    return { kind, size, dataStart: pos + OID_BYTES, baseOid: oidFromBytes(buf, pos) };
  }
  return { kind, size, dataStart: pos };
}
