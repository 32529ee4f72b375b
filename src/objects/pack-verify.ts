/**
 * A pack checked the way `git verify-pack` checks it, without inflating anything: the whole file
 * is read once, in order, its SHA-1 compared with its trailing checksum and with the one its index
 * records, and every entry's bytes with the CRC-32 the index keeps for it. A flipped bit anywhere
 * in an entry shows in its CRC, so the damage is named entry by entry (the objects to get again),
 * not only pack by pack. An entry whose CRC matches is still hash-checked where it is read.
 *
 * Invariant: memory is one read window and a table of the entries (id, offset, CRC), whatever the
 * pack's size.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { OID_BYTES, type Oid } from './oid.js';

/** How the packs are read: sequentially, this much at a time. */
const WINDOW_BYTES = 1 << 20;

/** What a pack's index says of one entry. */
export interface IndexedEntry {
  readonly oid: Oid;
  readonly offset: number;
  readonly crc32: number;
}

export interface PackCheck {
  /** The pack's SHA-1 matches its trailer and its index. */
  readonly checksumOk: boolean;
  /** Entries whose bytes do not match their CRC-32, by offset. */
  readonly damaged: readonly Oid[];
}

/** Checks the pack at `path` against `entries` (its index's, any order); `signal` ends it between reads. */
export async function verifyPack(path: string, entries: readonly IndexedEntry[], recordedChecksum: Buffer, signal?: AbortSignal): Promise<PackCheck> {
  const sorted = [...entries].sort((a, b) => a.offset - b.offset);
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const body = Math.max(0, size - OID_BYTES);
    const sha = createHash('sha1');
    const window = Buffer.allocUnsafe(WINDOW_BYTES);
    const damaged: Oid[] = [];
    let next = 0;
    let crc = 0;
    // An entry runs to the next one's offset, the last to the trailer.
    const endOf = (i: number): number => sorted[i + 1]?.offset ?? body;
    const close = (i: number): void => {
      const e = sorted[i] as IndexedEntry;
      if (crc !== e.crc32 || e.offset >= body) damaged.push(e.oid);
      crc = 0;
    };
    for (let pos = 0; pos < body; ) {
      signal?.throwIfAborted();
      const { bytesRead } = await fh.read(window, 0, Math.min(WINDOW_BYTES, body - pos), pos);
      if (bytesRead === 0) break;
      const bytes = window.subarray(0, bytesRead);
      sha.update(bytes);
      for (let at = 0; at < bytesRead; ) {
        const entry = sorted[next];
        if (entry === undefined) break;
        const start = entry.offset - pos;
        if (start >= bytesRead) break;
        const end = Math.min(endOf(next) - pos, bytesRead);
        at = Math.max(at, start);
        crc = crc32(bytes.subarray(at, end), crc);
        at = end;
        if (end === endOf(next) - pos) close(next++);
      }
      pos += bytesRead;
    }
    // Entries the file is too short to hold (a truncated pack) are damaged too.
    while (next < sorted.length) close(next++);
    const trailer = Buffer.alloc(OID_BYTES);
    await fh.read(trailer, 0, OID_BYTES, body);
    const digest = sha.digest();
    return { checksumOk: size >= OID_BYTES && digest.equals(trailer) && digest.equals(recordedChecksum), damaged };
  } finally {
    await fh.close();
  }
}
