/**
 * Sending a blob too large for one message (docs/PROTOCOL.md "Blobs in parts"): the zlib stream
 * of its content, cut into parts of at most LIMITS.partBytes, each made only while less than
 * `queuedBytes` of the connection's output waits (so a large blob is never held: a part is read,
 * sent, and the next read once the socket took most of it), until the request is cancelled or
 * the connection goes.
 */
import type { Oid } from '../objects/oid.js';
import type { SwarmConnection } from './connection.js';
import { LIMITS } from './messages.js';

export interface PartedBlob {
  readonly oid: Oid;
  /** The content's length. */
  readonly size: number;
  /** The content's zlib stream, in pieces of any size. */
  readonly zlib: AsyncIterable<Buffer>;
}

/**
 * Sends `blob` as parts answering `request`: 'sent', or 'stopped' (cancelled, the connection
 * closed). A failure of the stream (a damaged entry) is thrown once the parts sent so far are out:
 * the caller names the blob missing, and the receiver drops what came.
 */
export async function sendParts(conn: SwarmConnection, request: number, blob: PartedBlob, stopped: () => boolean, queuedBytes: number): Promise<'sent' | 'stopped'> {
  let offset = 0;
  /** A whole part is held back until the next bytes arrive: the last one is flagged so. */
  let ready: Buffer | undefined;
  const send = async (zlib: Buffer, last: boolean): Promise<boolean> => {
    await conn.drained(queuedBytes);
    if (stopped() || !conn.isOpen) return false;
    conn.send({ kind: 'part', request, oid: blob.oid, size: blob.size, offset, zlib, last });
    offset += zlib.length;
    return true;
  };
  for await (const part of partsOf(blob.zlib)) {
    if (ready !== undefined && !(await send(ready, false))) return 'stopped';
    ready = part;
  }
  if (ready === undefined || !(await send(ready, true))) return 'stopped';
  return 'sent';
}

/** `pieces` joined or cut into parts of LIMITS.partBytes (the last shorter). */
async function* partsOf(pieces: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let part = Buffer.allocUnsafe(LIMITS.partBytes);
  let fill = 0;
  for await (const piece of pieces) {
    for (let at = 0; at < piece.length; ) {
      const n = Math.min(piece.length - at, part.length - fill);
      piece.copy(part, fill, at, at + n);
      fill += n;
      at += n;
      if (fill === part.length) {
        yield part;
        part = Buffer.allocUnsafe(LIMITS.partBytes);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield part.subarray(0, fill);
}
