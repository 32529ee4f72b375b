/**
 * Cuts a file into content-defined chunks while reading it, with one block of read-ahead.
 * Memory: at most two blocks plus the chunks the consumer still holds.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Chunker } from './chunker.js';

/** Read size; a block always holds at least two chunks of the largest size. */
const MIN_BLOCK_BYTES = 2 << 20;

interface Block {
  readonly data: Buffer;
  readonly eof: boolean;
}

async function readBlock(fh: FileHandle, position: number, size: number): Promise<Block> {
  const data = Buffer.allocUnsafe(size);
  let filled = 0;
  while (filled < size) {
    const { bytesRead } = await fh.read(data, filled, size - filled, position + filled);
    if (bytesRead === 0) return { data: data.subarray(0, filled), eof: true };
    filled += bytesRead;
  }
  return { data, eof: false };
}

/** Consecutive chunks of one buffer: the chunk lengths, starting at the buffer's first byte. */
export interface ChunkRun {
  readonly block: Buffer;
  readonly lengths: number[];
}

/**
 * Yields the file's chunks in file order, a block's worth at a time, as runs over buffers that
 * the consumer owns from then on (it may transfer them to a worker): nothing yielded is used
 * again here.
 */
export async function* chunkFile(fh: FileHandle, chunker: Chunker): AsyncGenerator<ChunkRun[]> {
  const maxSize = chunker.params.maxSize;
  const blockBytes = Math.max(MIN_BLOCK_BYTES, 2 * maxSize);
  let position = 0;
  let carry: Buffer = Buffer.alloc(0);
  let next = readBlock(fh, position, blockBytes);
  try {
    for (;;) {
      const block = await next;
      position += block.data.length;
      if (!block.eof) next = readBlock(fh, position, blockBytes);
      const runs: ChunkRun[] = [];
      let at = 0;
      if (carry.length > 0) {
        // Chunks that start in the carried tail end within maxSize bytes: cut them from a small
        // joint buffer instead of copying the whole block behind the tail.
        const head = block.data.subarray(0, maxSize);
        const joint = Buffer.concat([carry, head]);
        const jointEof = block.eof && head.length === block.data.length;
        const lengths: number[] = [];
        const start = chunker.cuts(joint, 0, joint.length, jointEof, lengths, carry.length);
        if (start < carry.length) throw new Error('chunker needed more than maxSize bytes');
        runs.push({ block: joint.subarray(0, start), lengths });
        at = start - carry.length;
      }
      const buf = block.data;
      const lengths: number[] = [];
      const first = at;
      at = chunker.cuts(buf, at, buf.length, block.eof, lengths);
      carry = Buffer.from(buf.subarray(at));
      if (lengths.length > 0) runs.push({ block: first === 0 ? buf.subarray(0, at) : Buffer.from(buf.subarray(first, at)), lengths });
      if (runs.length > 0) yield runs;
      if (block.eof) return;
    }
  } finally {
    // The consumer may stop early (an error elsewhere): the read-ahead must not reject unobserved.
    await next.catch(() => undefined);
  }
}
