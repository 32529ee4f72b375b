/**
 * Stores one large file as chunk blobs plus its chunk tree, streaming: the file is never held
 * whole. Chunk writes are issued without waiting for each other (compression runs on the thread
 * pool) but at most WINDOW are outstanding, which bounds memory.
 */
import type { FileHandle } from 'node:fs/promises';
import { ChunkTreeBuilder, type ChunkTreeParams, type ObjectSink } from './chunk-tree.js';
import { chunkFile } from './chunk-stream.js';
import type { Chunker } from './chunker.js';
import { hashObject, type Oid } from './oid.js';

const WINDOW = 32;

export async function writeChunkedFile(
  fh: FileHandle,
  sink: ObjectSink,
  chunker: Chunker,
  treeParams: ChunkTreeParams,
): Promise<{ oid: Oid; size: number }> {
  const builder = new ChunkTreeBuilder(sink, treeParams);
  const window: Array<Promise<Oid>> = [];
  try {
    for await (const chunks of chunkFile(fh, chunker)) {
      for (const chunk of chunks) {
        const oid = hashObject('blob', chunk);
        window.push(sink.writeHashed(oid, 'blob', chunk));
        if (window.length >= WINDOW) await window.shift();
        await builder.add(oid, chunk.length);
      }
    }
    await Promise.all(window);
  } catch (e) {
    await Promise.allSettled(window);
    throw e;
  }
  return builder.finish();
}
