/**
 * Stores one large file as chunk blobs plus its chunk tree, streaming: the file is never held
 * whole. Three stages overlap: this thread reads block k+1 and packs the chunks of block k-1
 * while the hash worker cuts and hashes block k, and chunk writes are issued without waiting for
 * each other (compression runs on the thread pool), at most WINDOW outstanding.
 */
import type { FileHandle } from 'node:fs/promises';
import { ChunkHasher, type HashedChunk } from './chunk-hasher.js';
import { ChunkTreeBuilder, type ChunkTreeParams } from './chunk-tree.js';
import { BlockPool, blockBytes, readBlocks } from './chunk-stream.js';
import type { Chunker } from './chunker.js';
import type { ObjectSink } from './object-store.js';
import type { Oid } from './oid.js';

const WINDOW = 32;
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
  const window: Array<Promise<Oid>> = [];
  /** Blocks at the hash worker, oldest first: while this thread packs one, the worker has the next. */
  const hashing: Array<Promise<HashedChunk[][]>> = [];
  const pool = blockPool(blockBytes(chunker));
  const consume = async (batch: Promise<HashedChunk[][]>): Promise<void> => {
    const writes: Array<Promise<Oid>> = [];
    const buffers = new Set<ArrayBufferLike>();
    for (const run of await batch) {
      for (const chunk of run) {
        const write = sink.writeHashed(chunk.oid, 'blob', chunk.data, chunk.hint);
        write.catch(() => undefined); // awaited below in order; a failure also fails the sink's finish
        window.push(write);
        writes.push(write);
        buffers.add(chunk.data.buffer);
        if (window.length >= WINDOW) await window.shift();
        builder.add(chunk.oid, chunk.data.length);
      }
    }
    // Once the sink has every chunk's bytes (copied or compressed), the block's memory is free.
    Promise.all(writes).then(
      () => buffers.forEach((b) => pool.give(b)),
      () => undefined,
    );
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
    await Promise.all(window);
  } catch (e) {
    if (!ended) stream.drop();
    await Promise.allSettled([...hashing, ...window]);
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
