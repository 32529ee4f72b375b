/**
 * An object out of its whole pack entry, for serving a peer: the caller checked the entry's
 * CRC-32 against the pack index, and the peer checks the object's SHA-1 (docs/ARCHITECTURE.md,
 * "Where data is checked"). A deflated entry keeps its zlib stream, which goes on the wire as it
 * is: the receiver stores it without deflating again.
 */
import { inflateSync } from 'node:zlib';
import { readZlibStored } from './compress.js';
import type { GitObject } from './object-store.js';
import type { ObjectType } from './oid.js';
import { decodeEntryHeader } from './pack-format.js';

/** Pack type numbers of whole objects (deltas are not served this way). */
const TYPES: ReadonlyMap<number, ObjectType> = new Map([
  [1, 'commit'],
  [2, 'tree'],
  [3, 'blob'],
  [4, 'tag'],
]);

export interface ServedObject extends GitObject {
  /** The content's zlib stream as the pack holds it, when it is deflated (smaller than the content). */
  readonly zlib?: Buffer;
}

/** The object of `entry` (header and zlib stream); undefined for a delta or a stream that does not give its declared size. */
export function entryObject(entry: Buffer): ServedObject | undefined {
  const h = decodeEntryHeader(entry, 0);
  const type = typeof h === 'string' ? undefined : TYPES.get(h.type);
  if (typeof h === 'string' || type === undefined) return undefined;
  const stored = readZlibStored(entry, h.dataStart, h.size);
  if (stored !== undefined) return { type, content: stored };
  const zlib = entry.subarray(h.dataStart);
  try {
    const content = inflateSync(zlib, { maxOutputLength: Math.max(1, h.size) });
    if (content.length !== h.size) return undefined;
    return zlib.length < content.length ? { type, content, zlib } : { type, content };
  } catch {
    return undefined;
  }
}
