/**
 * The swarm's bulk message, `SwarmMessage { objects = 5 }`, encoded and decoded by hand: it
 * carries nearly every byte the swarm moves, and protobufjs's generic path costs ~4 ms per MiB
 * of 8 KiB objects (conversion of every object, a copy on decode) where this costs a tenth of
 * that. The bytes are exactly the protobuf encoding of the schema in messages.ts (tests decode
 * each side with the other); content fields come out as views of the message buffer, not copies.
 *
 * The decoder takes only the shape this encoder writes: one top-level field 5 spanning the whole
 * message, containing fields 1-3 in any order and unknown fields of the plain wire types. For
 * anything else it answers `undefined` and the caller decodes with protobufjs, so both paths
 * accept exactly the same messages.
 */
import type { Oid } from '../objects/oid.js';

/** Field 5 (objects), wire type 2 (length-delimited). */
const OBJECTS_TAG = (5 << 3) | 2;

export interface RawObjects {
  readonly request: number;
  /** As protobufjs gives them: absent bytes fields empty, an absent size 0. */
  readonly objects: { readonly oid: Buffer; readonly type: string; readonly content: Buffer; readonly zlib: Buffer; readonly size: number; readonly stored: boolean }[];
  readonly done: boolean;
}

function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Where an encoded message goes: a buffer of exactly `bytes` bytes. */
export type Allocate = (bytes: number) => Buffer;

/** The protobuf encoding of an `objects` SwarmMessage, in one buffer from `alloc`, after `headroom` bytes left for the caller. */
export function encodeObjects(
  request: number,
  objects: readonly { readonly oid: Oid; readonly type: string; readonly content: Uint8Array; readonly zlib?: Uint8Array | undefined; readonly stored?: boolean | undefined }[],
  done: boolean,
  headroom = 0,
  alloc: Allocate = Buffer.allocUnsafe,
): Buffer {
  const sizes = new Array<number>(objects.length);
  let body = (request === 0 ? 0 : 1 + varintBytes(request)) + (done ? 2 : 0);
  objects.forEach((o, i) => {
    // Content (field 3) and whether it is stored (field 6, absent when false), or its zlib stream
    // (field 4) and its length (field 5, absent when 0).
    const payload = o.zlib === undefined ? o.content.length : o.zlib.length;
    const afterPayload = o.zlib === undefined ? (o.stored === true ? 2 : 0) : o.content.length === 0 ? 0 : 1 + varintBytes(o.content.length);
    const size = 2 + 20 + 2 + o.type.length + 1 + varintBytes(payload) + payload + afterPayload;
    sizes[i] = size;
    body += 1 + varintBytes(size) + size;
  });
  const out = alloc(headroom + 1 + varintBytes(body) + body);
  out[headroom] = OBJECTS_TAG;
  let pos = writeVarint(out, headroom + 1, body);
  if (request !== 0) {
    out[pos++] = (1 << 3) | 0;
    pos = writeVarint(out, pos, request);
  }
  objects.forEach((o, i) => {
    out[pos++] = (2 << 3) | 2;
    pos = writeVarint(out, pos, sizes[i] as number);
    out[pos++] = (1 << 3) | 2;
    out[pos++] = 20;
    pos += out.write(o.oid, pos, 20, 'hex');
    out[pos++] = (2 << 3) | 2;
    out[pos++] = o.type.length;
    pos += out.write(o.type, pos, 'latin1');
    if (o.zlib === undefined) {
      out[pos++] = (3 << 3) | 2;
      pos = writeVarint(out, pos, o.content.length);
      out.set(o.content, pos);
      pos += o.content.length;
      if (o.stored === true) {
        out[pos++] = (6 << 3) | 0;
        out[pos++] = 1;
      }
    } else {
      out[pos++] = (4 << 3) | 2;
      pos = writeVarint(out, pos, o.zlib.length);
      out.set(o.zlib, pos);
      pos += o.zlib.length;
      if (o.content.length > 0) {
        out[pos++] = (5 << 3) | 0;
        pos = writeVarint(out, pos, o.content.length);
      }
    }
  });
  if (done) {
    out[pos++] = (3 << 3) | 0;
    out[pos++] = 1;
  }
  return out;
}

/** Thrown inside the decoder when the bytes leave the shape it takes; never escapes. */
class OffShape extends Error {}

class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  /** A varint of at most 5 bytes (uint32, as protobufjs reads them; longer ones go the slow way). */
  varint(): number {
    let n = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) throw new OffShape();
      const b = this.buf[this.pos++] as number;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n > 0xffffffff ? n % 2 ** 32 : n;
    }
    throw new OffShape();
  }

  bytes(): Buffer {
    const len = this.varint();
    if (len > this.end - this.pos) throw new OffShape();
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /**
   * The next field's number, for fields 1..types.length with wire types `types`; unknown fields
   * are skipped (0 is answered then). A known field with another wire type is off shape
   * (protobufjs reads it by the field's declared type, regardless).
   */
  field(types: readonly number[]): number {
    const start = this.pos;
    const tag = this.varint();
    // protobufjs checks long tag encodings its own way: those go to it.
    if (this.pos - start > 2) throw new OffShape();
    const field = tag >>> 3;
    if (field === 0) throw new OffShape();
    const expected = types[field - 1];
    if (expected === undefined) {
      this.skip(tag & 7);
      return 0;
    }
    if ((tag & 7) !== expected) throw new OffShape();
    return field;
  }

  private skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 2) this.bytes();
    else if (wireType === 1 || wireType === 5) {
      const n = wireType === 1 ? 8 : 4;
      if (n > this.end - this.pos) throw new OffShape();
      this.pos += n;
    } else throw new OffShape();
  }
}

/** The `objects` body of `buf` (a SwarmMessage), or undefined when it is not in the shape above. */
export function decodeObjects(buf: Buffer): RawObjects | undefined {
  if (buf[0] !== OBJECTS_TAG) return undefined;
  try {
    const top = new Reader(buf, 1, buf.length);
    const len = top.varint();
    if (top.pos + len !== buf.length) return undefined;
    const r = new Reader(buf, top.pos, buf.length);
    let request = 0;
    let done = false;
    const objects: RawObjects['objects'] = [];
    while (r.pos < r.end) {
      const field = r.field([0, 2, 0]);
      if (field === 1) request = r.varint();
      else if (field === 3) done = r.varint() !== 0;
      else if (field === 2) {
        const object = r.bytes();
        objects.push(decodeObject(new Reader(object, 0, object.length)));
      }
    }
    return { request, objects, done };
  } catch (e) {
    if (e instanceof OffShape) return undefined;
    throw e;
  }
}

const EMPTY: Buffer = Buffer.alloc(0);

function decodeObject(r: Reader): RawObjects['objects'][number] {
  let oid = EMPTY;
  let type = '';
  let content = EMPTY;
  let zlib = EMPTY;
  let size = 0;
  let stored = false;
  while (r.pos < r.end) {
    const field = r.field([2, 2, 2, 2, 0, 0]);
    if (field === 1) oid = r.bytes();
    else if (field === 2) type = r.bytes().toString('latin1');
    else if (field === 3) content = r.bytes();
    else if (field === 4) zlib = r.bytes();
    else if (field === 5) size = r.varint();
    else if (field === 6) stored = r.varint() !== 0;
  }
  return { oid, type, content, zlib, size, stored };
}
