/**
 * Random access to a chunked file: any byte range is reached by one root-to-leaf walk
 * (binary search by offset at each node), reading only the chunks the range covers.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { remember } from '../util/bounded-map.js';
import { MAX_CHUNK_TREE_DEPTH, nodeSpans, type ChunkSpan } from './chunk-tree.js';
import type { ObjectReader } from './object-store.js';
import type { Oid } from './oid.js';
import { decodeTree } from './tree.js';
import { readBlobRun, readTyped } from './typed-read.js';

/** A leaf chunk with its absolute position in the file. */
export interface PlacedChunk {
  readonly oid: Oid;
  readonly start: number;
  readonly size: number;
}

/** Bytes of chunks read as one run when streaming, and runs read ahead. */
const RUN_BYTES = 1 << 20;
const READ_AHEAD = 3;
const NODE_CACHE = 16;

export class ChunkedFileReader {
  constructor(
    private readonly store: ObjectReader,
    readonly root: Oid,
    readonly size: number,
    /** Runs read ahead of the one being returned by stream(). */
    private readonly readAhead = READ_AHEAD,
  ) {}

  /**
   * Decoded chunk-tree nodes, the last few, by id and size (a node's last span is what its parent
   * gives it: one id named with two sizes is two layouts): walks for nearby ranges share their
   * path from the root.
   */
  private readonly nodes = new Map<string, Promise<ChunkSpan[]>>();

  private spans(oid: Oid, size: number): Promise<ChunkSpan[]> {
    const key = `${oid}:${size}`;
    let spans = this.nodes.get(key);
    if (spans === undefined) {
      spans = readTyped(this.store, oid, 'tree').then((tree) => nodeSpans(decodeTree(tree, oid), size, oid));
      spans.catch(() => this.nodes.delete(key));
      remember(this.nodes, key, spans, NODE_CACHE);
    }
    return spans;
  }

  /** Leaves overlapping [offset, offset + length), in order, one chunk-tree node's worth at a time. */
  async *chunks(offset = 0, length = this.size - offset): AsyncGenerator<PlacedChunk[]> {
    const end = Math.min(this.size, offset + length);
    if (offset < 0 || length < 0) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'negative offset or length');
    if (offset >= end) return;
    yield* this.walk(this.root, 0, this.size, offset, end, 0);
  }

  private async *walk(oid: Oid, base: number, size: number, from: number, to: number, depth: number): AsyncGenerator<PlacedChunk[]> {
    if (depth > MAX_CHUNK_TREE_DEPTH) throw new GitfsError(ErrorCodes.HOSTILE_OBJECT, `chunk tree ${this.root} is deeper than ${MAX_CHUNK_TREE_DEPTH} levels`, { oid: this.root });
    const spans = await this.spans(oid, size);
    let lo = 0;
    let hi = spans.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (base + (spans[mid] as ChunkSpan).start <= from) lo = mid;
      else hi = mid - 1;
    }
    let leaves: PlacedChunk[] = [];
    for (let i = lo; i < spans.length; i++) {
      const s = spans[i] as ChunkSpan;
      const start = base + s.start;
      if (start >= to) break;
      if (!s.isTree) {
        leaves.push({ oid: s.oid, start, size: s.size });
        continue;
      }
      if (leaves.length > 0) yield leaves;
      leaves = [];
      yield* this.walk(s.oid, start, s.size, Math.max(from, start), to, depth + 1);
    }
    if (leaves.length > 0) yield leaves;
  }

  /**
   * The bytes of [offset, offset + length), held whole (callers bound `length`): in one job where
   * the store can (readChunkedRange, given `spare` to fill), else the chunks it covers are read as
   * one run, each checked against its id and the size its tree gives.
   */
  async read(offset: number, length: number, spare?: ArrayBuffer): Promise<Buffer> {
    const end = Math.min(this.size, offset + length);
    if (offset >= 0 && offset < end) {
      const bulk = await this.store.readChunkedRange?.(this.root, this.size, offset, end, spare);
      if (bulk !== undefined) return bulk;
    }
    const placed: PlacedChunk[] = [];
    for await (const leaves of this.chunks(offset, length)) placed.push(...leaves);
    return this.cover(placed, offset, end);
  }

  /** Streams the bytes of [offset, offset + length) in runs of about RUN_BYTES, reading a few runs ahead. */
  async *stream(offset = 0, length = this.size - offset): AsyncGenerator<Buffer> {
    const end = Math.min(this.size, offset + length);
    const ahead: Array<Promise<Buffer>> = [];
    let run: PlacedChunk[] = [];
    let runBytes = 0;
    const send = (): void => {
      const data = this.cover(run, offset, end);
      data.catch(() => undefined);
      ahead.push(data);
      run = [];
      runBytes = 0;
    };
    try {
      for await (const leaves of this.chunks(offset, length)) {
        for (const chunk of leaves) {
          run.push(chunk);
          runBytes += chunk.size;
          if (runBytes >= RUN_BYTES) send();
        }
        while (ahead.length > this.readAhead) yield await (ahead.shift() as Promise<Buffer>);
      }
      if (run.length > 0) send();
      while (ahead.length > 0) yield await (ahead.shift() as Promise<Buffer>);
    } finally {
      ahead.length = 0;
    }
  }

  /** The bytes of consecutive chunks `run`, cut to [from, to). */
  private async cover(run: readonly PlacedChunk[], from: number, to: number): Promise<Buffer> {
    const first = run[0];
    if (first === undefined) return Buffer.alloc(0);
    const data = await readBlobRun(this.store, run);
    return data.subarray(Math.max(0, from - first.start), Math.min(data.length, to - first.start));
  }
}
