/**
 * Cuts a file into content-defined chunks a block at a time. A chunk may span blocks: the tail
 * of a block after its last cut is carried to the next one. Memory: a block plus the carried
 * tail, plus the chunks the consumer still holds.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Chunker } from './chunker.js';

/** Read size; a block always holds at least two chunks of the largest size. */
const MIN_BLOCK_BYTES = 2 << 20;

export function blockBytes(chunker: Chunker): number {
  return Math.max(MIN_BLOCK_BYTES, 2 * chunker.params.maxSize);
}

export interface Block {
  readonly data: Buffer;
  readonly eof: boolean;
}

/**
 * Memory for blocks, reused: a fresh block costs a page fault per 4 KiB when it is filled and an
 * unmap when it is collected. Each block owns its ArrayBuffer (never a slab shared with other
 * buffers), so that it can be transferred to a worker and given back.
 */
export class BlockPool {
  private readonly free: ArrayBuffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep = 8,
  ) {}

  take(): Buffer {
    const reused = this.free.pop();
    return reused === undefined ? Buffer.allocUnsafeSlow(this.size) : Buffer.from(reused);
  }

  /** Takes back a block's memory once nothing refers to its bytes any more; others are ignored. */
  give(buffer: ArrayBufferLike): void {
    if (buffer instanceof ArrayBuffer && buffer.byteLength === this.size && this.free.length < this.keep && !this.free.includes(buffer)) this.free.push(buffer);
  }
}

async function readBlock(fh: FileHandle, position: number, pool: BlockPool): Promise<Block> {
  const size = pool.size;
  const data = pool.take();
  let filled = 0;
  while (filled < size) {
    const { bytesRead } = await fh.read(data, filled, size - filled, position + filled);
    if (bytesRead === 0) return { data: data.subarray(0, filled), eof: true };
    filled += bytesRead;
  }
  return { data, eof: false };
}

/** Reads the file in blocks of `pool.size` bytes, one block ahead; the consumer owns each block. */
export async function* readBlocks(fh: FileHandle, pool: BlockPool): AsyncGenerator<Block> {
  let position = 0;
  let next = readBlock(fh, position, pool);
  try {
    for (;;) {
      const block = await next;
      position += block.data.length;
      if (!block.eof) next = readBlock(fh, position, pool);
      yield block;
      if (block.eof) return;
    }
  } finally {
    // The consumer may stop early (an error elsewhere): the read-ahead must not reject unobserved.
    await next.catch(() => undefined);
  }
}

/** Consecutive chunks of one buffer: their lengths, the first starting at `block[offset]`. */
export interface ChunkRun {
  readonly block: Buffer;
  readonly offset: number;
  readonly lengths: number[];
}

/** Cuts consecutive blocks of one file, carrying each block's uncut tail to the next. */
export class BlockCutter {
  private carry: Buffer = Buffer.alloc(0);

  constructor(private readonly chunker: Chunker) {}

  /**
   * The chunks that end in `data` (the carried tail first), as runs over buffers the caller owns
   * from then on: `data` itself, and a small joint buffer for the chunks that start in the tail.
   */
  next(data: Buffer, eof: boolean): ChunkRun[] {
    const maxSize = this.chunker.params.maxSize;
    const runs: ChunkRun[] = [];
    let at = 0;
    if (this.carry.length > 0) {
      // Chunks that start in the carried tail end within maxSize bytes: cut them from a joint
      // buffer instead of copying the whole block behind the tail.
      const head = data.subarray(0, maxSize);
      const joint = Buffer.allocUnsafeSlow(this.carry.length + head.length);
      this.carry.copy(joint, 0);
      head.copy(joint, this.carry.length);
      const lengths: number[] = [];
      const start = this.chunker.cuts(joint, 0, joint.length, eof && head.length === data.length, lengths, this.carry.length);
      if (start < this.carry.length) throw new Error('chunker needed more than maxSize bytes');
      runs.push({ block: joint, offset: 0, lengths });
      at = start - this.carry.length;
    }
    const lengths: number[] = [];
    const first = at;
    at = this.chunker.cuts(data, at, data.length, eof, lengths);
    this.carry = Buffer.from(data.subarray(at));
    if (lengths.length > 0) runs.push({ block: data, offset: first, lengths });
    return runs;
  }
}

/** Yields the file's chunks in file order, a block's worth at a time (bench/chunk-params.ts). */
export async function* chunkFile(fh: FileHandle, chunker: Chunker): AsyncGenerator<ChunkRun[]> {
  const cutter = new BlockCutter(chunker);
  for await (const block of readBlocks(fh, new BlockPool(blockBytes(chunker), 0))) {
    const runs = cutter.next(block.data, block.eof);
    if (runs.length > 0) yield runs;
  }
}
