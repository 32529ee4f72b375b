/**
 * Blobs too large to read whole (above the object database's read limit: git may write one,
 * gitfs chunks large files), read as streams: the zlib stream of a loose object or of a whole
 * (not delta) pack entry, inflated piece by piece, so memory stays at a few pieces whatever the
 * blob's size. Each stream is hash-checked like any read, at its end: the last piece is given
 * only once the whole content hashed to its id, so a reader that got every byte got checked
 * bytes, and one reading a damaged blob gets CORRUPT_OBJECT instead of its end.
 */
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream';
import { createDeflate, createInflate } from 'node:zlib';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import type { ObjectType, Oid } from './oid.js';

/** Bytes a stream reads from its file at a time, and at most what it inflates them to at a time. */
export const PIECE_BYTES = 1 << 20;

/** An object streamed from where it is stored: its header's type and size, and its content (unchecked). */
export interface StreamedObject {
  readonly type: ObjectType;
  readonly size: number;
  readonly pieces: AsyncGenerator<Buffer>;
}

/** An object as the zlib stream of its content, in pieces (a pack entry's, or deflated as it is read): its type and size, unchecked. */
export interface DeflatedStream {
  readonly type: ObjectType;
  readonly size: number;
  readonly zlib: AsyncGenerator<Buffer>;
}

/**
 * The inflated bytes of the zlib stream `raw` yields, in pieces. Bad zlib data (or a stream cut
 * short) is what `corrupt` throws; a failed read of `raw` a GITFS_IO. Letting the generator go
 * (return) stops `raw`.
 */
export async function* inflated(raw: AsyncIterable<Buffer>, corrupt: (why: string) => never): AsyncGenerator<Buffer> {
  const inflate = createInflate({ chunkSize: PIECE_BYTES });
  // Every failure reaches the inflate stream, which the loop below reads.
  pipeline(raw, inflate, () => undefined);
  try {
    for await (const piece of inflate) yield piece as Buffer;
  } catch (e) {
    if (e instanceof GitfsError) throw e;
    if (errnoCode(e)?.startsWith('Z_') === true) corrupt(`bad zlib data (${(e as Error).message})`);
    throw new GitfsError(ErrorCodes.IO, `cannot read an object's stream: ${(e as Error).message}`, {}, { cause: e });
  } finally {
    inflate.destroy();
  }
}

/**
 * The zlib stream (at `level`) of the bytes `content` yields, in pieces of at most PIECE_BYTES.
 * A failure of `content` is thrown as it is; letting the generator go stops `content`.
 */
export async function* deflated(content: AsyncIterable<Buffer>, level: number): AsyncGenerator<Buffer> {
  const deflate = createDeflate({ level, chunkSize: PIECE_BYTES });
  let failure: unknown;
  pipeline(content, deflate, (e) => void (failure ??= e ?? undefined));
  try {
    for await (const piece of deflate) yield piece as Buffer;
  } catch (e) {
    throw failure ?? e;
  } finally {
    deflate.destroy();
  }
  if (failure !== undefined) throw failure;
}

/** `pieces` without their first `count` bytes (a loose object's header). */
export async function* skipBytes(pieces: AsyncIterable<Buffer>, count: number): AsyncGenerator<Buffer> {
  let left = count;
  for await (const piece of pieces) {
    if (left >= piece.length) {
      left -= piece.length;
      continue;
    }
    yield left === 0 ? piece : piece.subarray(left);
    left = 0;
  }
}

/**
 * The content of the blob `oid` as `streamed` gives it, checked: exactly its declared size (more
 * is HOSTILE_OBJECT, less CORRUPT_OBJECT), hashing to `oid` (else CORRUPT_OBJECT), the last
 * piece held back until both are known.
 */
export async function* checkedBlob(oid: Oid, streamed: StreamedObject): AsyncGenerator<Buffer> {
  if (streamed.type !== 'blob') {
    throw new GitfsError(ErrorCodes.WRONG_OBJECT_TYPE, `object ${oid} is a ${streamed.type}, not a blob`, { oid, type: streamed.type, wanted: 'blob' });
  }
  const hash = createHash('sha1').update(`blob ${streamed.size}\0`);
  let seen = 0;
  let held: Buffer | undefined;
  for await (const piece of streamed.pieces) {
    seen += piece.length;
    if (seen > streamed.size) throw new GitfsError(ErrorCodes.HOSTILE_OBJECT, `object ${oid} inflates to more than its declared ${streamed.size} bytes`, { oid, size: streamed.size });
    hash.update(piece);
    if (held !== undefined) yield held;
    held = piece;
  }
  if (seen < streamed.size) throw new GitfsError(ErrorCodes.CORRUPT_OBJECT, `object ${oid} holds ${seen} bytes, declares ${streamed.size}`, { oid });
  if (hash.digest('hex') !== oid) throw new GitfsError(ErrorCodes.CORRUPT_OBJECT, `object ${oid} is corrupt: its content hashes to something else`, { oid });
  if (held !== undefined) yield held;
}
