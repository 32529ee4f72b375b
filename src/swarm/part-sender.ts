/**
 * Sending a blob too large for one message (docs/PROTOCOL.md "Blobs in parts"): the zlib stream
 * of its content, cut into parts of at most LIMITS.partBytes, each made only while less than
 * `queuedBytes` of the connection's output waits (so a large blob is never held: a part is read,
 * sent, and the next read once the socket took most of it), until the request is cancelled or
 * the connection goes. A send holding the upload slot while others wait for it keeps at least
 * the pace a receiver grants a sender (1 MiB/s, deadline.ts), or yields the slot: one slow
 * receiver (a slow link or disk) of a GiB blob would hold every other node's fetch from this one
 * for as long as it takes.
 */
import type { Oid } from '../objects/oid.js';
import type { SwarmConnection } from './connection.js';
import { PART_GRACE_MS_PER_MIB } from './deadline.js';
import { LIMITS } from './messages.js';

/** How long a send contended for keeps the slot before its pace since then is judged. */
export const CONTENDED_WINDOW_MS = 10_000;

export interface PartedBlob {
  readonly oid: Oid;
  /** The content's length. */
  readonly size: number;
  /** The content's zlib stream, in pieces of any size. */
  readonly zlib: AsyncIterable<Buffer>;
}

export interface SlotPacing {
  /** Whether others wait for the upload slot this send holds (never, for a send outside the slot). */
  readonly contended: () => boolean;
  readonly now: () => number;
}

export interface PartPacing extends SlotPacing {
  /** Output that may wait in the connection before the next part is made. */
  readonly queuedBytes: number;
}

/**
 * Judges a send holding the upload slot: given the bytes it has sent so far, whether others have
 * waited for the slot CONTENDED_WINDOW_MS while it moved less than 1 MiB per
 * PART_GRACE_MS_PER_MIB (the pace a receiver grants a sender): then it is to yield the slot.
 */
export function slotPace(pacing: SlotPacing): (sent: number) => boolean {
  /** Since when, and from which count of bytes, others wait for the slot. */
  let contended: { readonly at: number; readonly sent: number } | undefined;
  return (sent) => {
    if (!pacing.contended()) {
      contended = undefined;
      return false;
    }
    const now = pacing.now();
    contended ??= { at: now, sent };
    const ms = now - contended.at;
    return ms >= CONTENDED_WINDOW_MS && ((sent - contended.sent) / (1 << 20)) * PART_GRACE_MS_PER_MIB < ms;
  };
}

/**
 * Sends `blob` as parts answering `request`: 'sent'; 'stopped' (cancelled, the connection
 * closed); or 'yielded': others waited for the slot CONTENDED_WINDOW_MS while this send moved
 * less than 1 MiB per PART_GRACE_MS_PER_MIB (judged at every look while the socket drains; the
 * receiver drops what came, and asks again). A
 * failure of the stream (a damaged entry) is thrown once the parts sent so far are out: the
 * caller names the blob missing, and the receiver drops what came.
 */
export async function sendParts(conn: SwarmConnection, request: number, blob: PartedBlob, stopped: () => boolean, pacing: PartPacing): Promise<'sent' | 'stopped' | 'yielded'> {
  let offset = 0;
  const pace = slotPace(pacing);
  const tooSlow = (): boolean => pace(offset);
  /** A whole part is held back until the next bytes arrive: the last one is flagged so. */
  let ready: Buffer | undefined;
  const send = async (zlib: Buffer, last: boolean): Promise<'sent' | 'stopped' | 'yielded'> => {
    // Judged at each look while the socket drains too: a receiver slow enough takes a minute per part.
    const drained = await conn.drained(pacing.queuedBytes, tooSlow);
    if (stopped() || !conn.isOpen) return 'stopped';
    if (drained === false || tooSlow()) return 'yielded';
    conn.send({ kind: 'part', request, oid: blob.oid, size: blob.size, offset, zlib, last });
    offset += zlib.length;
    return 'sent';
  };
  for await (const part of partsOf(blob.zlib)) {
    if (ready !== undefined) {
      const outcome = await send(ready, false);
      if (outcome !== 'sent') return outcome;
    }
    ready = part;
  }
  return ready === undefined ? 'stopped' : send(ready, true);
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
