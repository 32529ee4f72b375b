/**
 * Bounds what a peer can make us buffer. bittorrent-protocol accepts any message length its
 * 4-byte prefix claims (up to 4 GiB, buffered whole); this pass-through stream reads the
 * framing as it goes by (the 68-byte handshake, then length-prefixed messages) and fails the
 * connection at the first length over the limit, before the bytes arrive.
 */
import { Transform, type TransformCallback } from 'node:stream';

const HANDSHAKE_BYTES = 68;

export class FrameGuard extends Transform {
  private skip = HANDSHAKE_BYTES;
  private header = Buffer.alloc(4);
  private headerFill = 0;

  constructor(private readonly maxMessageBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      this.header[this.headerFill++] = chunk[i++] as number;
      if (this.headerFill === 4) {
        this.headerFill = 0;
        const length = this.header.readUInt32BE(0);
        if (length > this.maxMessageBytes) return done(new Error(`peer announced a message of ${length} bytes (limit ${this.maxMessageBytes})`));
        this.skip = length;
      }
    }
    done(null, chunk);
  }
}
