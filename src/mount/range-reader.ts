/**
 * Reads of one open chunked file. FUSE delivers a sequential read as 128 KiB requests, several
 * in flight and in any order. Each request finds its chunks by a walk down the chunk tree
 * (nodes cached, so a walk reads nothing new), takes their bytes from a small cache of recent
 * chunks, and, when reads go forward, keeps PREFETCH_BYTES of the following chunks on their way.
 */
import { ChunkedFileReader, type PlacedChunk } from '../objects/chunked-file-reader.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';

const PREFETCH_BYTES = 1 << 20;
/** Chunks kept (about 2 MiB at the default 8 KiB average): the prefetch window plus reads in flight. */
const CACHED_CHUNKS = 256;

export class RangeReader {
  private readonly reader: ChunkedFileReader;
  private readonly chunks = new Map<number, Promise<Buffer>>();
  /** End of the last read, and how far prefetching has been asked to go. */
  private lastEnd = 0;
  private prefetchedTo = 0;

  constructor(store: ObjectReader, root: Oid, size: number) {
    this.reader = new ChunkedFileReader(store, root, size);
  }

  /** Copies the bytes of [position, position + length) into `into`; returns how many (fewer at the end). */
  async read(position: number, length: number, into: Buffer): Promise<number> {
    const end = Math.min(this.reader.size, position + length, position + into.length);
    if (position >= end) return 0;
    const placed: PlacedChunk[] = [];
    for await (const c of this.reader.chunks(position, end - position)) placed.push(c);
    const datas = placed.map((c) => this.chunk(c));
    const forward = position >= this.lastEnd - 2 * length && position <= this.lastEnd + 2 * PREFETCH_BYTES;
    this.lastEnd = Math.max(this.lastEnd, end);
    if (forward && end + PREFETCH_BYTES / 2 > this.prefetchedTo) this.prefetch(Math.max(end, this.prefetchedTo));
    for (let i = 0; i < placed.length; i++) {
      const c = placed[i] as PlacedChunk;
      const data = await (datas[i] as Promise<Buffer>);
      const from = Math.max(position, c.start);
      data.copy(into, from - position, from - c.start, Math.min(end, c.start + c.size) - c.start);
    }
    return end - position;
  }

  private chunk(c: PlacedChunk): Promise<Buffer> {
    let data = this.chunks.get(c.start);
    if (data === undefined) {
      data = this.reader.chunkData(c);
      data.catch(() => this.chunks.delete(c.start));
      this.chunks.set(c.start, data);
      if (this.chunks.size > CACHED_CHUNKS) this.chunks.delete(this.chunks.keys().next().value as number);
    }
    return data;
  }

  /** Starts reading the chunks of [from, from + PREFETCH_BYTES); failures surface when read for real. */
  private prefetch(from: number): void {
    const to = Math.min(this.reader.size, from + PREFETCH_BYTES);
    this.prefetchedTo = to;
    void (async () => {
      for await (const c of this.reader.chunks(from, to - from)) this.chunk(c).catch(() => undefined);
    })().catch(() => undefined);
  }
}
