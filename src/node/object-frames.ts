/**
 * The framing of the daemon's object socket (docs/PROTOCOL.md "Object socket"): after the one
 * JSON request line, the daemon answers with frames `u32 length (big-endian) | u8 tag | body`.
 * Tag 1 is an object (20-byte id, u8 type, content); tag 2, empty, says the answer is still
 * being made (a blob fetched in parts may take minutes); tag 0 ends the answer with a JSON body
 * (`{"ok":true}` or `{"ok":false,"error":{code,message}}`). Object content travels as bytes,
 * not as JSON text.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import type { GitObject } from '../objects/object-store.js';
import { OID_BYTES, oidFromBytes, oidToBytes, type ObjectType, type Oid } from '../objects/oid.js';

const TYPES: readonly ObjectType[] = ['blob', 'tree', 'commit', 'tag'];
const TAG_END = 0;
const TAG_OBJECT = 1;
const TAG_ALIVE = 2;
/** Largest frame accepted: an object gitfs reads whole, plus its header. */
export const MAX_FRAME = (256 << 20) + 64;

export function objectFrame(oid: Oid, o: GitObject): Buffer[] {
  const head = Buffer.alloc(5 + OID_BYTES + 1);
  head.writeUInt32BE(1 + OID_BYTES + 1 + o.content.length, 0);
  head[4] = TAG_OBJECT;
  oidToBytes(oid).copy(head, 5);
  head[5 + OID_BYTES] = TYPES.indexOf(o.type);
  return [head, o.content];
}

/** The answer is still being made. */
export function aliveFrame(): Buffer {
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(1, 0);
  frame[4] = TAG_ALIVE;
  return frame;
}

export function endFrame(body: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const head = Buffer.alloc(5);
  head.writeUInt32BE(1 + json.length, 0);
  head[4] = TAG_END;
  return Buffer.concat([head, json]);
}

export type Frame = { readonly kind: 'object'; readonly oid: Oid; readonly object: GitObject } | { readonly kind: 'alive' } | { readonly kind: 'end'; readonly body: unknown };

/** Cuts a byte stream into frames; throws GITFS_PEER_FAILED on anything malformed. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(data: Buffer): Frame[] {
    this.chunks.push(data);
    this.buffered += data.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.buffered < 4) return out;
      if ((this.chunks[0] as Buffer).length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const first = this.chunks[0] as Buffer;
      const length = first.readUInt32BE(0);
      if (length < 1 || length > MAX_FRAME) throw bad(`a frame of ${length} bytes`);
      // Joined only once the whole frame is here: a large object arriving in pieces is copied once.
      if (this.buffered < 4 + length) return out;
      const all = this.chunks.length === 1 ? first : Buffer.concat(this.chunks);
      out.push(decode(all.subarray(4, 4 + length)));
      const rest = all.subarray(4 + length);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
    }
  }
}

function decode(frame: Buffer): Frame {
  if (frame[0] === TAG_END) {
    try {
      return { kind: 'end', body: JSON.parse(frame.subarray(1).toString('utf8')) as unknown };
    } catch {
      throw bad('an unreadable end frame');
    }
  }
  if (frame[0] === TAG_ALIVE && frame.length === 1) return { kind: 'alive' };
  if (frame[0] !== TAG_OBJECT || frame.length < 1 + OID_BYTES + 1) throw bad(`a frame with tag ${frame[0]}`);
  const type = TYPES[frame[1 + OID_BYTES] as number];
  if (type === undefined) throw bad('an object of unknown type');
  // The content is copied out: the frame's buffer is reused for whatever follows it.
  return { kind: 'object', oid: oidFromBytes(frame, 1), object: { type, content: Buffer.from(frame.subarray(2 + OID_BYTES)) } };
}

function bad(what: string): GitfsError {
  return new GitfsError(ErrorCodes.PEER_FAILED, `the node daemon's object socket sent ${what}`);
}
