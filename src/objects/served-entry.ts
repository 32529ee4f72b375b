/**
 * An object out of its whole pack entry, for serving a peer: the caller checked the entry's
 * CRC-32 against the pack index, and the peer checks the object's SHA-1 (docs/ARCHITECTURE.md,
 * "Where data is checked"). A deflated entry keeps its zlib stream, which goes on the wire as it
 * is: the receiver stores it without deflating again.
 */
import { entryContent } from './blob-run.js';
import type { GitObject } from './object-store.js';
import { decodeEntryHeader, ENTRY_KINDS } from './pack-format.js';

export interface ServedObject extends GitObject {
  /** The content's zlib stream as the pack holds it, when it is deflated (smaller than the content). */
  readonly zlib?: Buffer;
  /** The pack holds it uncompressed (its stream is no smaller than the content). */
  readonly stored?: boolean;
}

/** The object of `entry` (header and zlib stream); undefined for a delta or a stream that does not give its declared size. */
export function entryObject(entry: Buffer, maxBytes: number): ServedObject | undefined {
  const h = decodeEntryHeader(entry, 0);
  const type = typeof h === 'string' ? undefined : ENTRY_KINDS[h.type];
  // Larger than the store reads at all: left to the general read, which refuses it.
  if (typeof h === 'string' || type === undefined || type === 'ofs' || type === 'ref' || h.size > maxBytes) return undefined;
  const content = entryContent(entry, 0, entry.length, h.type, h.size);
  if (content === undefined) return undefined;
  return entry.length - h.dataStart < h.size ? { type, content, zlib: entry.subarray(h.dataStart) } : { type, content, stored: true };
}
