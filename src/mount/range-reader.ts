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
 * only while the budget has room, sheds what it read (then, for a segment a read asks for, what
 * it prefetched) when a reader read more recently needs room, and keeps nothing unused while the
 * budget is over.
 */
import { ChunkedFileReader } from '../objects/chunked-file-reader.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import type { BudgetHolder, ReadBudget, Shed } from './read-budget.js';

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
  /** Whether a request has copied from it (else it was prefetched and not read yet). */
  read: boolean;
}

export class RangeReader implements BudgetHolder {
  private readonly reader: ChunkedFileReader;
  private readonly segments = new Map<number, Segment>();
  private readonly spares: ArrayBuffer[] = [];
  /** The segment after the last one a read touched, to tell forward reads. */
  private nextSegment = 0;
  /** Closed: reads still in flight finish, and nothing more is kept or counted. */
  private closed = false;

  constructor(
    store: ObjectReader,
    root: Oid,
    size: number,
    private readonly budget: ReadBudget,
  ) {
    this.reader = new ChunkedFileReader(store, root, size);
  }

  /** The file is closed: what it kept goes to the collector and no longer counts, nor does what reads still in flight bring. */
  close(): void {
    this.closed = true;
    this.segments.clear();
    this.spares.length = 0;
    this.budget.leave(this);
  }

  shed(what: Shed): void {
    this.drop(0, 0, what);
    this.budget.keep(this, this.keptBytes());
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
        // Asked for: made whatever the budget says, after others shed what they can.
        if (!this.segments.has(k)) this.budget.room(this, this.segmentCost(), true);
        const part = this.segment(k); // may drop segments no request uses yet: count this one at once
        part.users++;
        parts.push(part);
      }
      if (forward) {
        for (let k = last + 1; k <= last + PREFETCH_SEGMENTS; k++) {
          if (!this.segments.has(k) && !this.budget.room(this, this.segmentCost(), false)) break;
          this.segment(k);
        }
      }
      this.nextSegment = Math.max(this.nextSegment, last + 1);
      for (let k = first; k <= last; k++) {
        const part = parts[k - first] as Segment;
        part.read = true;
        const data = await part.data;
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
      const made: Segment = (segment = { data, bytes: undefined, users: 0, read: false });
      data.then(
        (bytes) => (made.bytes = bytes),
        () => this.segments.get(k) === made && this.segments.delete(k),
      );
      this.segments.set(k, segment);
      this.trim(k);
    }
    return segment;
  }

  /** What a new segment adds: nothing if a spare's memory is reused. */
  private segmentCost(): number {
    return this.spares.length > 0 ? 0 : SEGMENT_BYTES;
  }

  private keptBytes(): number {
    return (this.segments.size + this.spares.length) * SEGMENT_BYTES;
  }

  /**
   * Keeps CACHED_SEGMENTS at most (what no request uses goes, oldest first, but `except`: the
   * read that asked for it counts itself a user only once it has it); while the budget is over,
   * keeps nothing unused, what was read going first. Then tells the budget what it keeps.
   */
  private trim(except?: number): void {
    if (this.closed) return;
    const steps: Array<[number, number, Shed]> = [
      [CACHED_SEGMENTS, SPARE_SEGMENTS, 'all'],
      [0, 0, 'read'],
      [0, 0, 'all'],
    ];
    for (const [i, [cached, spares, what]] of steps.entries()) {
      if (i > 0 && !this.budget.over) return;
      this.drop(cached, spares, what, except);
      this.budget.keep(this, this.keptBytes());
    }
  }

  /** Drops the oldest segments no request uses (of those read, or any) but `except` while more than `cached` are kept, keeping the memory of up to `spares`. */
  private drop(cached: number, spares: number, what: Shed, except?: number): void {
    for (const [k, segment] of this.segments) {
      if (this.segments.size <= cached) break;
      if (segment.users > 0 || k === except || (what === 'read' && !segment.read)) continue;
      this.segments.delete(k);
      const bytes = segment.bytes;
      if (bytes !== undefined && this.spares.length < spares && bytes.byteOffset === 0 && bytes.buffer.byteLength === SEGMENT_BYTES && bytes.buffer instanceof ArrayBuffer) {
        this.spares.push(bytes.buffer);
      }
    }
    this.spares.length = Math.min(this.spares.length, spares);
  }
}
