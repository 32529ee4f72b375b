/**
 * Cuts a file into content-defined chunks while reading it, with one block of read-ahead.
 * Memory: at most two blocks plus the chunks the consumer still holds.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Chunker } from './chunker.js';

const BLOCK_BYTES = 8 << 20;

interface Block {
  readonly data: Buffer;
  readonly eof: boolean;
}

async function readBlock(fh: FileHandle, position: number): Promise<Block> {
  const data = Buffer.allocUnsafe(BLOCK_BYTES);
  let filled = 0;
  while (filled < BLOCK_BYTES) {
    const { bytesRead } = await fh.read(data, filled, BLOCK_BYTES - filled, position + filled);
    if (bytesRead === 0) return { data: data.subarray(0, filled), eof: true };
    filled += bytesRead;
  }
  return { data, eof: false };
}

/** Yields the file's chunks, a block's worth at a time, in file order. */
export async function* chunkFile(fh: FileHandle, chunker: Chunker): AsyncGenerator<Buffer[]> {
  if (chunker.params.maxSize > BLOCK_BYTES) throw new Error('chunk maxSize exceeds the read block');
  let position = 0;
  let carry: Buffer = Buffer.alloc(0);
  let next = readBlock(fh, position);
  for (;;) {
    const block = await next;
    position += block.data.length;
    if (!block.eof) next = readBlock(fh, position);
    const buf = carry.length === 0 ? block.data : Buffer.concat([carry, block.data]);
    const chunks: Buffer[] = [];
    let start = 0;
    while (start < buf.length) {
      const n = chunker.cut(buf, start, buf.length, block.eof);
      if (n < 0) break;
      chunks.push(buf.subarray(start, start + n));
      start += n;
    }
    carry = buf.subarray(start);
    if (chunks.length > 0) yield chunks;
    if (block.eof) return;
  }
}
