/**
 * Stores one large file as chunk blobs plus its chunk tree, streaming: the file is never held
 * whole. Three stages overlap: this thread reads block k+1 and packs the chunks of block k-1
 * while the hash worker cuts and hashes block k, and a block's chunk writes are issued without
 * waiting for each other (large ones compress on the thread pool), then awaited together.
 */
import type { FileHandle } from 'node:fs/promises';
import { ChunkHasher, type HashedChunk } from './chunk-hasher.js';
import { ChunkTreeBuilder, type ChunkTreeParams } from './chunk-tree.js';
import { BlockPool, blockBytes, readBlocks } from './chunk-stream.js';
import type { Chunker } from './chunker.js';
import type { ObjectSink } from './object-store.js';
import type { Oid } from './oid.js';

/** Blocks sent to the hash worker before the oldest is packed. */
const BLOCKS_AHEAD = 2;

export async function writeChunkedFile(
  fh: FileHandle,
  sink: ObjectSink,
  chunker: Chunker,
  treeParams: ChunkTreeParams,
  signal?: AbortSignal,
): Promise<{ oid: Oid; size: number }> {
  const hasher = ChunkHasher.shared();
  const builder = new ChunkTreeBuilder(sink, treeParams);
  /** Blocks at the hash worker, oldest first: while this thread packs one, the worker has the next. */
  const hashing: Array<Promise<HashedChunk[][]>> = [];
  const pool = blockPool(blockBytes(chunker));
  const consume = async (batch: Promise<HashedChunk[][]>): Promise<void> => {
    const writes: Array<Promise<Oid>> = [];
    const buffers = new Set<ArrayBufferLike>();
    for (const run of await batch) {
      for (const chunk of run) {
        writes.push(sink.writeHashed(chunk.oid, 'blob', chunk.data, chunk.hint));
        buffers.add(chunk.data.buffer);
        builder.add(chunk.oid, chunk.data.length);
      }
    }
    // One wait per block (the sink's back-pressure); then the sink has every chunk's bytes
    // (copied or compressed), and the block's memory is free.
    await Promise.all(writes);
    for (const b of buffers) pool.give(b);
  };
  const stream = hasher.stream(chunker.params);
  let ended = false;
  try {
    for await (const block of readBlocks(fh, pool)) {
      signal?.throwIfAborted();
      const batch = stream.next(block.data, block.eof);
      ended = block.eof;
      batch.catch(() => undefined);
      hashing.push(batch);
      if (hashing.length > BLOCKS_AHEAD) await consume(hashing.shift() as Promise<HashedChunk[][]>);
    }
    while (hashing.length > 0) await consume(hashing.shift() as Promise<HashedChunk[][]>);
  } catch (e) {
    if (!ended) stream.drop();
    await Promise.allSettled(hashing);
    throw e;
  }
  return builder.finish();
}

/** One pool per block size, shared by the files of the process (they are written one at a time per sink). */
const pools = new Map<number, BlockPool>();
function blockPool(size: number): BlockPool {
  let pool = pools.get(size);
  if (pool === undefined) pools.set(size, (pool = new BlockPool(size)));
  return pool;
}
