/**
 * Stores one large file as chunk blobs plus its chunk tree, streaming: the file is never held
 * whole. Three stages overlap: this thread reads and cuts block k+1 while the hash worker hashes
 * block k, and chunk writes are issued without waiting for each other (compression runs on the
 * thread pool), at most WINDOW outstanding.
 */
import type { FileHandle } from 'node:fs/promises';
import { ChunkHasher, type HashedChunk } from './chunk-hasher.js';
import { ChunkTreeBuilder, type ChunkTreeParams } from './chunk-tree.js';
import { chunkFile } from './chunk-stream.js';
import type { Chunker } from './chunker.js';
import type { ObjectSink } from './object-store.js';
import type { Oid } from './oid.js';

const WINDOW = 32;

export async function writeChunkedFile(
  fh: FileHandle,
  sink: ObjectSink,
  chunker: Chunker,
  treeParams: ChunkTreeParams,
  signal?: AbortSignal,
): Promise<{ oid: Oid; size: number }> {
  const hasher = ChunkHasher.shared();
  const builder = new ChunkTreeBuilder(sink, treeParams);
  const window: Array<Promise<Oid>> = [];
  let hashing: Promise<HashedChunk[][]> | undefined;
  const consume = async (batch: Promise<HashedChunk[][]>): Promise<void> => {
    for (const run of await batch) {
      for (const chunk of run) {
        const write = sink.writeHashed(chunk.oid, 'blob', chunk.data, chunk.hint);
        write.catch(() => undefined); // awaited below in order; a failure also fails the sink's finish
        window.push(write);
        if (window.length >= WINDOW) await window.shift();
        builder.add(chunk.oid, chunk.data.length);
      }
    }
  };
  try {
    for await (const runs of chunkFile(fh, chunker)) {
      signal?.throwIfAborted();
      const batch = Promise.all(runs.map((r) => hasher.hash(r.block, r.lengths)));
      batch.catch(() => undefined);
      if (hashing !== undefined) await consume(hashing);
      hashing = batch;
    }
    if (hashing !== undefined) await consume(hashing);
    await Promise.all(window);
  } catch (e) {
    await Promise.allSettled([hashing, ...window]);
    throw e;
  }
  return builder.finish();
}
