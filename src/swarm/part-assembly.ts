/**
 * One blob received in parts (docs/PROTOCOL.md "Blobs in parts"): the parts' bytes, the zlib
 * stream of its content, go into a sink (a pack entry being written) as they come, inflated on the
 * way to compute the blob's SHA-1 and never held whole. The blob counts as here only once the
 * stream ended exactly with its last part, inflated to the size every part declared, and hashed
 * to its id: the sink is committed then, and dropped on anything else. A peer that breaks a rule
 * gets a HOSTILE_OBJECT whose `data.reason` names the check: `order` (a part not starting where
 * the stream got to: out of order, overlapping, or a gap), `cut` (a part before the last not of
 * LIMITS.partBytes: tiny parts would cost a round of work each), `mixed` (another id or size midway),
 * `oversize` (a stream longer than deflate makes of that size, or inflating to more than the
 * size), `stream` (damaged zlib data, or bytes after the stream's end), `short` (the last part
 * came before the stream's end, or it inflated to less), `hash` (content of another id).
 */
import { createHash, type Hash } from 'node:crypto';
import { createInflate, type Inflate } from 'node:zlib';
import { ErrorCodes, GitfsError } from '../errors.js';
import { maxStreamBytes } from '../objects/compress.js';
import type { Oid } from '../objects/oid.js';
import { LIMITS, type PartMessage } from './messages.js';

/** Where an assembled blob's zlib stream goes (LocalObjects.receiveLarge: a pack of its own). */
export interface PartSink {
  /** The next bytes of the stream; settles when the sink can take more. */
  write(zlib: Buffer): Promise<void>;
  /** The stream is whole and checked: the blob is stored (durable and readable once this settles). */
  commit(): Promise<void>;
  /** Nothing of it is kept. */
  abort(): Promise<void>;
}

export type PartFault = 'order' | 'cut' | 'mixed' | 'oversize' | 'stream' | 'short' | 'hash';

/** Bytes inflate hands over at a time: each is hashed and dropped at once. */
const INFLATE_CHUNK_BYTES = 256 << 10;

export class PartAssembly {
  private readonly hash: Hash;
  private readonly inflate: Inflate;
  /** Bytes of the stream taken so far (where the next part must start), and what they inflated to. */
  private received = 0;
  private inflatedBytes = 0;
  private failure: GitfsError | undefined;
  /** The inflate's input is ending (a failure now is a stream cut short). */
  private ending = false;
  private ended = false;
  private state: 'open' | 'committing' | 'done' = 'open';

  constructor(
    readonly oid: Oid,
    readonly size: number,
    private readonly sink: PartSink,
  ) {
    this.hash = createHash('sha1').update(`blob ${size}\0`);
    this.inflate = createInflate({ chunkSize: INFLATE_CHUNK_BYTES });
    this.inflate.on('data', (chunk: Buffer) => {
      this.inflatedBytes += chunk.length;
      if (this.inflatedBytes > this.size) this.note('oversize', `inflates to more than its ${this.size} bytes`);
      else this.hash.update(chunk);
    });
    this.inflate.on('end', () => (this.ended = true));
    this.inflate.on('error', (e) => this.note(this.ending ? 'short' : 'stream', `${this.ending ? 'the stream stops short' : 'bad zlib data'} (${e.message})`));
  }

  /**
   * Takes the next part: true once it ended the blob and the blob is stored. Throws what the part
   * breaks (HOSTILE_OBJECT), or the sink's failure; either way the sink is aborted.
   */
  async add(part: PartMessage): Promise<boolean> {
    if (this.state !== 'open') throw new Error('part given to a finished assembly');
    try {
      if (part.oid !== this.oid || part.size !== this.size) this.fail('mixed', `a part of ${part.oid} (${part.size} bytes) midway`);
      if (part.offset !== this.received) this.fail('order', `a part at ${part.offset} of the stream, expected at ${this.received}`);
      if (!part.last && part.zlib.length !== LIMITS.partBytes) this.fail('cut', `a part of ${part.zlib.length} bytes before the last, not ${LIMITS.partBytes}`);
      this.received += part.zlib.length;
      if (this.received > maxStreamBytes(this.size)) this.fail('oversize', `a stream of over ${maxStreamBytes(this.size)} bytes`);
      await this.inflateWrite(part.zlib);
      this.check();
      if (this.inflate.bytesWritten < this.received) this.fail('stream', 'bytes after the end of the zlib stream');
      await this.sink.write(part.zlib);
      if (!part.last) return false;
      await this.endOfStream();
      this.check();
      if (!this.ended || this.inflatedBytes < this.size) this.fail('short', `the stream ends at ${this.inflatedBytes} of ${this.size} bytes`);
      if (this.hash.digest('hex') !== this.oid) this.fail('hash', 'the content hashes to another id');
      this.state = 'committing';
      await this.sink.commit();
      this.state = 'done';
      return true;
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Drops what came (the request ended, or a part broke a rule); nothing of the blob is kept. */
  async abort(): Promise<void> {
    if (this.state === 'done') return;
    this.state = 'done';
    this.inflate.destroy();
    await this.sink.abort();
  }

  /** Gives `zlib` to the inflate; settles once it took it, or failed (damaged data: its callback never comes then). */
  private inflateWrite(zlib: Buffer): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.inflate.off('error', done);
        resolve();
      };
      this.inflate.once('error', done);
      this.inflate.write(zlib, done);
    });
  }

  /** Ends the inflate's input and waits until it says whether its stream ended (or failed). */
  private endOfStream(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ended || this.failure !== undefined) return resolve();
      this.ending = true;
      this.inflate.once('end', () => resolve());
      this.inflate.once('error', () => resolve());
      this.inflate.end();
    });
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Records what the peer broke (from the inflate's events, which must not throw); add() throws it. */
  private note(reason: PartFault, why: string): void {
    this.failure ??= new GitfsError(ErrorCodes.HOSTILE_OBJECT, `blob ${this.oid} in parts: ${why}`, { oid: this.oid, reason });
  }

  private fail(reason: PartFault, why: string): never {
    this.note(reason, why);
    throw this.failure;
  }
}
