/**
 * Reads of one open chunked file. FUSE delivers a sequential read as requests of up to 1 MiB (the
 * binding as patched offers FUSE_MAX_PAGES), one or two in flight, in any order. The file is read
 * in aligned segments of SEGMENT_BYTES, each one worker job over the chunks it covers, read and
 * checked in bulk (a chunk across a boundary is read by both segments); a request copies from
 * the segments it spans. The last few segments are kept, and
 * when reads go forward the next PREFETCH_SEGMENTS are on their way.
 */
import { ChunkedFileReader } from '../objects/chunked-file-reader.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';

const SEGMENT_BYTES = 1 << 20;
const PREFETCH_SEGMENTS = 4;
/** Segments kept: the prefetch window, reads in flight, and a request straddling two. */
const CACHED_SEGMENTS = 8;

export class RangeReader {
  private readonly reader: ChunkedFileReader;
  private readonly segments = new Map<number, Promise<Buffer>>();
  /** The segment after the last one a read touched, to tell forward reads. */
  private nextSegment = 0;

  constructor(store: ObjectReader, root: Oid, size: number) {
    this.reader = new ChunkedFileReader(store, root, size);
  }

  /** Copies the bytes of [position, position + length) into `into`; returns how many (fewer at the end). */
  async read(position: number, length: number, into: Buffer): Promise<number> {
    const end = Math.min(this.reader.size, position + length, position + into.length);
    if (position >= end) return 0;
    const first = Math.floor(position / SEGMENT_BYTES);
    const last = Math.floor((end - 1) / SEGMENT_BYTES);
    const forward = first >= this.nextSegment - 2 && first <= this.nextSegment + PREFETCH_SEGMENTS;
    const parts: Array<Promise<Buffer>> = [];
    for (let k = first; k <= last; k++) parts.push(this.segment(k));
    if (forward) for (let k = last + 1; k <= last + PREFETCH_SEGMENTS; k++) this.segment(k).catch(() => undefined);
    this.nextSegment = Math.max(this.nextSegment, last + 1);
    for (let k = first; k <= last; k++) {
      const data = await (parts[k - first] as Promise<Buffer>);
      const base = k * SEGMENT_BYTES;
      const from = Math.max(position, base);
      data.copy(into, from - position, from - base, Math.min(end, base + data.length) - base);
    }
    return end - position;
  }

  private segment(k: number): Promise<Buffer> {
    let data = this.segments.get(k);
    if (data === undefined) {
      const start = k * SEGMENT_BYTES;
      data = start < this.reader.size ? this.reader.read(start, SEGMENT_BYTES) : Promise.resolve(Buffer.alloc(0));
      data.catch(() => this.segments.delete(k));
      this.segments.set(k, data);
      if (this.segments.size > CACHED_SEGMENTS) this.segments.delete(this.segments.keys().next().value as number);
    }
    return data;
  }
}
