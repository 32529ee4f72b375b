/**
 * Streaming the content of a file entry, plain blob or chunked, whole or a byte range. A plain
 * blob above the read limit (git wrote it) is streamed too: a range of it is read from its start,
 * and checked only when it runs to the end (blob-stream.ts).
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { ChunkedFileReader } from '../objects/chunked-file-reader.js';
import type { DirEntry } from '../objects/entry-names.js';
import type { ObjectReader } from '../objects/object-store.js';
import { blobPieces } from '../objects/typed-read.js';

export async function* fileContent(store: ObjectReader, entry: DirEntry, offset = 0, length = Number.MAX_SAFE_INTEGER): AsyncGenerator<Buffer> {
  if (entry.kind === 'dir' || entry.kind === 'gitlink') {
    const what = entry.kind === 'dir' ? 'a directory' : 'a submodule (its commit is of another repository)';
    throw new GitfsError(ErrorCodes.WRONG_OBJECT_TYPE, `${entry.name || '/'} is ${what}`, { path: entry.name });
  }
  if (offset < 0 || length < 0) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'offset and length must not be negative');
  if (entry.chunked) {
    yield* new ChunkedFileReader(store, entry.oid, entry.size ?? 0).stream(offset, length);
    return;
  }
  // A blob above the read limit comes in pieces, from its start (a zlib stream is read no other way).
  const end = offset + length;
  let at = 0;
  for await (const piece of blobPieces(store, entry.oid)) {
    const from = Math.max(0, offset - at);
    const to = Math.min(piece.length, end - at);
    if (from < to) yield piece.subarray(from, to);
    at += piece.length;
    if (at >= end) return;
  }
}

/** Regroups a stream of small pieces (chunks are ~8 KiB) into pieces of at least `minBytes`, so writers make few system calls. */
export async function* coalesce(pieces: AsyncIterable<Buffer>, minBytes = 1 << 20): AsyncGenerator<Buffer> {
  let held: Buffer[] = [];
  let size = 0;
  for await (const piece of pieces) {
    held.push(piece);
    size += piece.length;
    if (size >= minBytes) {
      yield held.length === 1 ? piece : Buffer.concat(held, size);
      held = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(held, size);
}
