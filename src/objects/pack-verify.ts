/**
 * A pack checked as the checksum and CRC part of `git verify-pack` checks it, nothing inflated:
 * the whole file is read once, in order, its SHA-1 compared with its trailing checksum and with
 * the one its index records, and every entry's bytes with the CRC-32 the index keeps for it. A
 * flipped bit anywhere in an entry shows in its CRC, so the damage is named entry by entry (the
 * objects to get again), not only pack by pack; so do bytes that do not read (EIO: a lost
 * sector). An entry whose CRC matches is still hash-checked where it is read.
 *
 * Invariant: memory is one read window and 20 bytes an entry (its offset and position in the
 * index, sorted by offset), whatever the pack's size.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { errnoCode } from '../errors.js';
import { OID_BYTES, type Oid } from './oid.js';

/** How the packs are read: sequentially, this much at a time. */
const WINDOW_BYTES = 1 << 20;
/** A window that does not read (EIO: a sector lost) is read again in pieces this large, to name what is lost. */
const SECTOR_BYTES = 4096;

/** The file operations verifyPack uses (fs/promises' FileHandle has them). */
export interface PackFileHandle {
  stat(): Promise<{ size: number }>;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** What verifyPack needs of a pack's index (pack-index.ts). */
export interface VerifiedIndex {
  readonly packChecksum: Buffer;
  byOffset(): { readonly order: Uint32Array; readonly offsets: Float64Array };
  oidAt(i: number): Oid;
  crcAt(i: number): number;
}

export interface PackCheck {
  /** The pack's SHA-1 matches its trailer and its index. */
  readonly checksumOk: boolean;
  /** Entries whose bytes do not match their CRC-32, by offset. */
  readonly damaged: readonly Oid[];
}

/**
 * Checks the pack at `path` against `index`; `signal` ends it between reads. Bytes that do not
 * read (EIO) damage the entries they lie in, and the checksum.
 */
export async function verifyPack(path: string, index: VerifiedIndex, signal?: AbortSignal, openFile: (path: string) => Promise<PackFileHandle> = (p) => open(p, 'r')): Promise<PackCheck> {
  const { order, offsets } = index.byOffset();
  const fh = await openFile(path);
  try {
    const size = (await fh.stat()).size;
    const body = Math.max(0, size - OID_BYTES);
    const sha = createHash('sha1');
    const window = Buffer.allocUnsafe(WINDOW_BYTES);
    const damaged: Oid[] = [];
    /** Byte ranges that did not read, in order. */
    const lost: Array<readonly [number, number]> = [];
    let next = 0;
    let crc = 0;
    // An entry runs to the next one's offset, the last to the trailer.
    const endOf = (k: number): number => (k + 1 < offsets.length ? (offsets[k + 1] as number) : body);
    const close = (k: number): void => {
      const i = order[k] as number;
      const [from, to] = [offsets[k] as number, endOf(k)];
      if (crc !== index.crcAt(i) || from >= body || lost.some(([a, b]) => a < to && b > from)) damaged.push(index.oidAt(i));
      crc = 0;
    };
    for (let pos = 0; pos < body; ) {
      signal?.throwIfAborted();
      const bytesRead = await readWindow(fh, window, Math.min(WINDOW_BYTES, body - pos), pos, lost);
      if (bytesRead === 0) break;
      const bytes = window.subarray(0, bytesRead);
      sha.update(bytes);
      for (let at = 0; at < bytesRead && next < offsets.length; ) {
        const start = (offsets[next] as number) - pos;
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
    while (next < offsets.length) close(next++);
    const trailer = Buffer.alloc(OID_BYTES);
    await fh.read(trailer, 0, OID_BYTES, body).catch((e: unknown) => (errnoCode(e) === 'EIO' ? lost.push([body, size]) : Promise.reject(e)));
    const digest = sha.digest();
    return { checksumOk: lost.length === 0 && size >= OID_BYTES && digest.equals(trailer) && digest.equals(index.packChecksum), damaged };
  } finally {
    await fh.close();
  }
}

/** Reads `length` bytes at `pos` into `window`; a read that fails with EIO is read again by sectors, those that still fail zero-filled and added to `lost`. */
async function readWindow(fh: PackFileHandle, window: Buffer, length: number, pos: number, lost: Array<readonly [number, number]>): Promise<number> {
  try {
    return (await fh.read(window, 0, length, pos)).bytesRead;
  } catch (e) {
    if (errnoCode(e) !== 'EIO') throw e;
  }
  for (let at = 0; at < length; at += SECTOR_BYTES) {
    const n = Math.min(SECTOR_BYTES, length - at);
    try {
      const { bytesRead } = await fh.read(window, at, n, pos + at);
      if (bytesRead < n) return at + bytesRead;
    } catch (e) {
      if (errnoCode(e) !== 'EIO') throw e;
      window.fill(0, at, at + n);
      lost.push([pos + at, pos + at + n]);
    }
  }
  return length;
}
