/**
 * Random access to a chunked file: any byte range is reached by one root-to-leaf walk
 * (binary search by offset at each node), reading only the chunks the range covers.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { nodeSpans, type ChunkSpan } from './chunk-tree.js';
import type { ObjectReader } from './object-store.js';
import type { Oid } from './oid.js';
import { decodeTree } from './tree.js';
import { readTyped } from './typed-read.js';

/** A leaf chunk with its absolute position in the file. */
export interface PlacedChunk {
  readonly oid: Oid;
  readonly start: number;
  readonly size: number;
}

const READ_AHEAD = 8;
const NODE_CACHE = 16;

export class ChunkedFileReader {
  constructor(
    private readonly store: ObjectReader,
    readonly root: Oid,
    readonly size: number,
    /** Chunks read ahead of the one being returned by stream(). */
    private readonly readAhead = READ_AHEAD,
  ) {}

  /** Decoded chunk-tree nodes, the last few: walks for nearby ranges share their path from the root. */
  private readonly nodes = new Map<Oid, Promise<ChunkSpan[]>>();

  private spans(oid: Oid, size: number): Promise<ChunkSpan[]> {
    let spans = this.nodes.get(oid);
    if (spans === undefined) {
      spans = readTyped(this.store, oid, 'tree').then((tree) => nodeSpans(decodeTree(tree, oid), size, oid));
      spans.catch(() => this.nodes.delete(oid));
      this.nodes.set(oid, spans);
      if (this.nodes.size > NODE_CACHE) this.nodes.delete(this.nodes.keys().next().value as Oid);
    }
    return spans;
  }

  /** Leaves overlapping [offset, offset + length), in order. */
  async *chunks(offset = 0, length = this.size - offset): AsyncGenerator<PlacedChunk> {
    const end = Math.min(this.size, offset + length);
    if (offset < 0 || length < 0) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'negative offset or length');
    if (offset >= end) return;
    yield* this.walk(this.root, 0, this.size, offset, end);
  }

  private async *walk(oid: Oid, base: number, size: number, from: number, to: number): AsyncGenerator<PlacedChunk> {
    const spans = await this.spans(oid, size);
    let lo = 0;
    let hi = spans.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (base + (spans[mid] as ChunkSpan).start <= from) lo = mid;
      else hi = mid - 1;
    }
    for (let i = lo; i < spans.length; i++) {
      const s = spans[i] as ChunkSpan;
      const start = base + s.start;
      if (start >= to) return;
      if (s.isTree) yield* this.walk(s.oid, start, s.size, Math.max(from, start), to);
      else yield { oid: s.oid, start, size: s.size };
    }
  }

  /** One chunk's bytes, checked against the size its tree gives. */
  async chunkData(c: PlacedChunk): Promise<Buffer> {
    const data = await readTyped(this.store, c.oid, 'blob');
    if (data.length !== c.size) {
      throw new GitfsError(ErrorCodes.HOSTILE_OBJECT, `chunk ${c.oid} holds ${data.length} bytes where its tree says ${c.size}`, {
        oid: c.oid,
      });
    }
    return data;
  }

  /** Streams the bytes of [offset, offset + length), reading a few chunks ahead. */
  async *stream(offset = 0, length = this.size - offset): AsyncGenerator<Buffer> {
    const end = Math.min(this.size, offset + length);
    const ahead: Array<{ chunk: PlacedChunk; data: Promise<Buffer> }> = [];
    const emit = async (): Promise<Buffer> => {
      const head = ahead.shift() as { chunk: PlacedChunk; data: Promise<Buffer> };
      const data = await head.data;
      const from = Math.max(0, offset - head.chunk.start);
      const to = Math.min(data.length, end - head.chunk.start);
      return data.subarray(from, to);
    };
    try {
      for await (const chunk of this.chunks(offset, length)) {
        const data = this.chunkData(chunk);
        data.catch(() => undefined);
        ahead.push({ chunk, data });
        if (ahead.length > this.readAhead) yield await emit();
      }
      while (ahead.length > 0) yield await emit();
    } finally {
      ahead.length = 0;
    }
  }

  /** The bytes of one range, held whole (callers bound `length`). */
  async read(offset: number, length: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of this.stream(offset, length)) parts.push(part);
    return Buffer.concat(parts);
  }
}
