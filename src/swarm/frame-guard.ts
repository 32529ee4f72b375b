/**
 * Frames the incoming byte stream for the BitTorrent wire. bittorrent-protocol accepts any
 * message length its 4-byte prefix claims (up to 4 GiB, buffered whole) and joins its input
 * buffers again at every chunk that arrives (quadratic in the message size). This reads the
 * framing as it goes by (the 68-byte handshake, then length-prefixed messages), refuses the first
 * length over the limit, before the bytes arrive, and gives each complete frame as one buffer,
 * so the wire never joins. It is a plain function of the chunks, called from the socket's `data`
 * events: a stream between socket and wire cost a pass through Node's stream machinery for every
 * 16 KiB the TLS layer hands up. A frame large enough is assembled in a block of the pool
 * (block-pool.ts), taken as soon as its length is known, and handed on to whoever handles it.
 */
import type { BlockPool } from './block-pool.js';

const HANDSHAKE_BYTES = 68;

export class FrameError extends Error {}

export class FrameGuard {
  /** Bytes the current frame still needs; the handshake first. */
  private need = HANDSHAKE_BYTES;
  private inHeader = false;
  private parts: Buffer[] = [];
  private size = 0;
  /** The block the current frame is being copied into, if it has one (exactly the frame's size: `need` bytes of it are still to come). */
  private block: Buffer | undefined;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly pool?: BlockPool,
  ) {}

  /** The frames `chunk` completes, in order; throws FrameError at a length over the limit (nothing more may be fed then). */
  frames(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      const n = Math.min(this.need, chunk.length - i);
      if (this.block !== undefined) chunk.copy(this.block, this.block.length - this.need, i, i + n);
      else {
        this.parts.push(chunk.subarray(i, i + n));
        this.size += n;
      }
      this.need -= n;
      i += n;
      if (this.need > 0) break;
      const frame = this.block ?? (this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.size));
      this.block = undefined;
      if (this.inHeader) {
        // The 4-byte length just arrived: wait for the payload before passing the frame on.
        const length = frame.readUInt32BE(frame.length - 4);
        if (length > this.maxMessageBytes) throw new FrameError(`peer announced a message of ${length} bytes (limit ${this.maxMessageBytes})`);
        this.inHeader = false;
        if (length > 0) {
          this.block = this.pool?.take(4 + length);
          if (this.block !== undefined) {
            frame.copy(this.block, 0, frame.length - 4);
            this.parts = [];
            this.size = 0;
          } else this.parts = [frame];
          this.need = length;
          continue;
        }
      }
      out.push(frame);
      this.parts = [];
      this.size = 0;
      this.inHeader = true;
      this.need = 4;
    }
    return out;
  }
}
