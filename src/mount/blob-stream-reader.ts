/**
 * Reads of one open blob too large to read whole (above the object database's read limit; git
 * wrote it, as gitfs chunks large files): its content streamed from the start, as a zlib stream
 * can only be read, the last WINDOW_BYTES kept. Reads that go forward, or a little back (the
 * kernel sends a sequential read as a few requests at once, in any order), cost one pass over the
 * blob; a read further back starts the stream again. Reads run one at a time. The blob's hash is
 * checked when the stream reaches its end (blob-stream.ts): a read of its last bytes fails (EIO)
 * if the blob is damaged.
 */

/** Bytes kept behind the furthest read: several requests of up to 1 MiB. */
const WINDOW_BYTES = 8 << 20;

export class BlobStreamReader {
  private pieces: AsyncGenerator<Buffer> | undefined;
  /** Pieces kept, in order: the first starts at `start`, the last ends at `end`. */
  private kept: Buffer[] = [];
  private start = 0;
  private end = 0;
  private ended = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly open: () => AsyncGenerator<Buffer>) {}

  /** Copies up to `length` bytes from `position` into `into`; how many (fewer only at the end). */
  read(position: number, length: number, into: Buffer): Promise<number> {
    const done = this.queue.then(() => this.readNow(position, length, into));
    this.queue = done.catch(() => undefined);
    return done;
  }

  /** Lets the stream go (the file or pack it reads), once the reads queued have run. */
  close(): void {
    this.queue = this.queue.then(() => this.stop());
  }

  private async readNow(position: number, length: number, into: Buffer): Promise<number> {
    if (this.pieces === undefined || position < this.start) await this.restart();
    const want = position + length;
    try {
      while (!this.ended && this.end < want) await this.pull(this.pieces as AsyncGenerator<Buffer>);
    } catch (e) {
      await this.stop();
      throw e;
    }
    let copied = 0;
    let at = this.start;
    for (const piece of this.kept) {
      const from = Math.max(0, position - at);
      const to = Math.min(piece.length, want - at);
      if (from < to) copied += piece.copy(into, copied, from, to);
      at += piece.length;
    }
    return copied;
  }

  private async restart(): Promise<void> {
    await this.stop();
    this.pieces = this.open();
  }

  private async stop(): Promise<void> {
    const pieces = this.pieces;
    this.pieces = undefined;
    this.kept = [];
    this.start = this.end = 0;
    this.ended = false;
    await pieces?.return(undefined);
  }

  private async pull(pieces: AsyncGenerator<Buffer>): Promise<void> {
    const next = await pieces.next();
    if (next.done === true) {
      this.ended = true;
      return;
    }
    this.kept.push(next.value);
    this.end += next.value.length;
    for (let first = this.kept[0] as Buffer; this.end - this.start - first.length >= WINDOW_BYTES; first = this.kept[0] as Buffer) {
      this.kept.shift();
      this.start += first.length;
    }
  }
}
