import type { ObjectType, Oid } from './oid.js';
import type { StoredHint } from './stored-entry.js';

/** An object as stored: its type and its whole content (no header). */
export interface GitObject {
  readonly type: ObjectType;
  readonly content: Buffer;
}

/**
 * Read side of an object database. Every object returned has been hash-checked
 * against its id: a mismatch throws GITFS_CORRUPT_OBJECT naming the object.
 */
export interface ObjectReader {
  has(oid: Oid): Promise<boolean>;
  /** Throws GITFS_OBJECT_NOT_FOUND if absent, GITFS_CORRUPT_OBJECT if damaged. */
  read(oid: Oid): Promise<GitObject>;
  /** The type `oid` declares, from headers where the store can (unverified); read()'s type otherwise. */
  typeOf?(oid: Oid): Promise<GitObject['type']>;
  /** The size `oid` declares, from headers (unverified), for stores that can tell it without reading it. */
  sizeOf?(oid: Oid): Promise<number>;
  /** Every stored id starting with `prefix` (4 to 40 lowercase hex digits), up to `limit`. */
  findByPrefix(prefix: string, limit: number): Promise<Oid[]>;
  /**
   * The contents of `blobs` back to back, each checked like read() and found to be a blob of its
   * size, for stores that read many at once faster than one by one (readBlobRun in typed-read.ts).
   */
  readBlobRun?(blobs: readonly BlobRef[]): Promise<Buffer>;
  /**
   * The bytes [from, to) of the chunked file whose chunk tree is `root` (`size` bytes), every node
   * and chunk checked like read(), for stores that can read a range in bulk; undefined where they
   * cannot, and the caller walks the tree itself (chunked-file-reader.ts). `spare`, memory of at
   * least `to - from` bytes, may become the result's instead of new memory: the caller hands it
   * over (it may be detached) and never touches it again.
   */
  readChunkedRange?(root: Oid, size: number, from: number, to: number, spare?: ArrayBuffer): Promise<Buffer | undefined>;
  /**
   * The content of the blob `oid` in pieces, for stores that can stream a blob too large to read
   * whole (blobPieces in typed-read.ts): checked like read(), the last piece only once the whole
   * was. GITFS_WRONG_OBJECT_TYPE if it is no blob.
   */
  readBlob?(oid: Oid): AsyncGenerator<Buffer>;
}

/** A blob known by its id and its size (a chunk, whose size its tree gives). */
export interface BlobRef {
  readonly oid: Oid;
  readonly size: number;
}

/**
 * Largest object gitfs reads whole. Chunked files keep every object far below it; a blob git
 * wrote may be larger, and is then streamed where it can be (ObjectReader.readBlob).
 */
export const DEFAULT_MAX_OBJECT_BYTES = 256 * 1024 * 1024;

/**
 * Write side: where new objects go. The caller has computed `oid` (it must be
 * `hashObject(type, content)`); `hint` says the content is stored uncompressed and carries its
 * checksums. Writes may still be in flight when the promise settles or when a caller moves on;
 * the sink's own completion (PackWriter.finish) reports their failures. Once the promise
 * resolves, the sink no longer reads `content` (the caller may reuse its memory).
 */
export interface ObjectSink {
  writeHashed(oid: Oid, type: ObjectType, content: Uint8Array, hint?: StoredHint): Promise<Oid>;
}
