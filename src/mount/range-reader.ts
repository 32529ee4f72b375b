/**
 * Reads of one open chunked file. FUSE delivers a sequential read as requests of up to 1 MiB (the
 * binding as patched offers FUSE_MAX_PAGES), one or two in flight, in any order. The file is read
 * in aligned segments of SEGMENT_BYTES, each one worker job over the chunks it covers, read and
 * checked in bulk (a chunk across a boundary is read by both segments); a request copies from
 * the segments it spans. The last few segments are kept, and when reads go forward the next
 * PREFETCH_SEGMENTS are on their way.
 *
 * A segment dropped from the cache while no request copies from it gives its memory to the next
 * segment's job. Without that, a read of 1 GiB made 1 GiB of new buffers, and their external
 * memory set off a full collection every 64 MiB (15 per GiB in `--trace-gc`).
 *
 * What every open file's reader keeps is bounded together (read-budget.ts): a reader prefetches
 * only while the budget has room, sheds what no read uses when a reader read more recently needs
 * room, and keeps nothing unused while the budget is over.
 */
import { ChunkedFileReader } from '../objects/chunked-file-reader.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import type { BudgetHolder, ReadBudget } from './read-budget.js';

const SEGMENT_BYTES = 1 << 20;
const PREFETCH_SEGMENTS = 4;
/** Segments kept: the prefetch window, reads in flight, and a request straddling two. */
const CACHED_SEGMENTS = 8;
/** Memory of dropped segments kept for the next ones. */
const SPARE_SEGMENTS = 2;

interface Segment {
  readonly data: Promise<Buffer>;
  /** Its bytes once read. */
  bytes: Buffer | undefined;
  /** Requests copying from it (or waiting to). */
  users: number;
}

export class RangeReader implements BudgetHolder {
  private readonly reader: ChunkedFileReader;
  private readonly segments = new Map<number, Segment>();
  private readonly spares: ArrayBuffer[] = [];
  /** The segment after the last one a read touched, to tell forward reads. */
  private nextSegment = 0;

  constructor(
    store: ObjectReader,
    root: Oid,
    size: number,
    private readonly budget: ReadBudget,
  ) {
    this.reader = new ChunkedFileReader(store, root, size);
  }

  /** The file is closed: what it kept no longer counts (its buffers go to the collector). */
  close(): void {
    this.budget.leave(this);
  }

  shed(): void {
    this.trim(0);
  }

  /** Copies the bytes of [position, position + length) into `into`; returns how many (fewer at the end). */
  async read(position: number, length: number, into: Buffer): Promise<number> {
    const end = Math.min(this.reader.size, position + length, position + into.length);
    if (position >= end) return 0;
    const first = Math.floor(position / SEGMENT_BYTES);
    const last = Math.floor((end - 1) / SEGMENT_BYTES);
    const forward = first >= this.nextSegment - 2 && first <= this.nextSegment + PREFETCH_SEGMENTS;
    this.budget.read(this);
    const parts: Segment[] = [];
    try {
      for (let k = first; k <= last; k++) {
        const part = this.segment(k); // may drop segments no request uses yet: count this one at once
        part.users++;
        parts.push(part);
      }
      if (forward) {
        for (let k = last + 1; k <= last + PREFETCH_SEGMENTS; k++) {
          if (!this.segments.has(k) && !this.budget.room(this, this.spares.length > 0 ? 0 : SEGMENT_BYTES)) break;
          this.segment(k);
        }
      }
      this.nextSegment = Math.max(this.nextSegment, last + 1);
      for (let k = first; k <= last; k++) {
        const data = await (parts[k - first] as Segment).data;
        const base = k * SEGMENT_BYTES;
        const from = Math.max(position, base);
        data.copy(into, from - position, from - base, Math.min(end, base + data.length) - base);
      }
    } finally {
      for (const part of parts) part.users--;
      this.trim();
    }
    return end - position;
  }

  private segment(k: number): Segment {
    let segment = this.segments.get(k);
    if (segment === undefined) {
      const start = k * SEGMENT_BYTES;
      const data = start < this.reader.size ? this.reader.read(start, SEGMENT_BYTES, this.spares.pop()) : Promise.resolve(Buffer.alloc(0));
      const made: Segment = (segment = { data, bytes: undefined, users: 0 });
      data.then(
        (bytes) => (made.bytes = bytes),
        () => this.segments.get(k) === made && this.segments.delete(k),
      );
      this.segments.set(k, segment);
      // Not the one just made: the read that asked for it counts itself a user only once it has it.
      this.trim(undefined, k);
    }
    return segment;
  }

  /**
   * Drops the oldest segments no request uses but `except` while more than `cached` are kept
   * (none while the budget is over), keeping some of their memory (none then either), and tells
   * the budget what it keeps.
   */
  private trim(cached = this.budget.over ? 0 : CACHED_SEGMENTS, except?: number): void {
    const spares = cached === 0 ? 0 : SPARE_SEGMENTS;
    for (const [k, segment] of this.segments) {
      if (this.segments.size <= cached) break;
      if (segment.users > 0 || k === except) continue;
      this.segments.delete(k);
      const bytes = segment.bytes;
      if (bytes !== undefined && this.spares.length < spares && bytes.byteOffset === 0 && bytes.buffer.byteLength === SEGMENT_BYTES && bytes.buffer instanceof ArrayBuffer) {
        this.spares.push(bytes.buffer);
      }
    }
    this.spares.length = Math.min(this.spares.length, spares);
    this.budget.keep(this, (this.segments.size + this.spares.length) * SEGMENT_BYTES);
  }
}
