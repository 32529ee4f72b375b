import { ErrorCodes, GitfsError } from '../errors.js';
import type { BlobRef, ObjectReader } from './object-store.js';
import type { ObjectType, Oid } from './oid.js';

/** Reads an object that must be of `type`; anything else is GITFS_WRONG_OBJECT_TYPE. */
export async function readTyped(store: ObjectReader, oid: Oid, type: ObjectType): Promise<Buffer> {
  const o = await store.read(oid);
  if (o.type !== type) {
    throw new GitfsError(ErrorCodes.WRONG_OBJECT_TYPE, `object ${oid} is a ${o.type}, not a ${type}`, { oid, type: o.type, wanted: type });
  }
  return o.content;
}

/** The content of the blob `oid` in pieces: streamed where the store can (ObjectReader.readBlob), else read whole. */
export async function* blobPieces(store: ObjectReader, oid: Oid): AsyncGenerator<Buffer> {
  if (store.readBlob !== undefined) yield* store.readBlob(oid);
  else yield await readTyped(store, oid, 'blob');
}

/** A blob that must hold `size` bytes (a chunk, whose tree gives its size); else GITFS_HOSTILE_OBJECT. */
export async function readSizedBlob(store: ObjectReader, blob: BlobRef): Promise<Buffer> {
  const data = await readTyped(store, blob.oid, 'blob');
  if (data.length !== blob.size) {
    throw new GitfsError(ErrorCodes.HOSTILE_OBJECT, `chunk ${blob.oid} holds ${data.length} bytes where its tree says ${blob.size}`, { oid: blob.oid });
  }
  return data;
}

/** The contents of `blobs` back to back, each checked: in bulk where the store can, else one by one. */
export function readBlobRun(store: ObjectReader, blobs: readonly BlobRef[]): Promise<Buffer> {
  return store.readBlobRun !== undefined ? store.readBlobRun(blobs) : readBlobsOneByOne(store, blobs);
}

/** The contents of `blobs` back to back, each read whole and compared with its size before they are joined. */
export async function readBlobsOneByOne(store: ObjectReader, blobs: readonly BlobRef[]): Promise<Buffer> {
  const parts = await Promise.all(blobs.map((b) => readSizedBlob(store, b)));
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}
