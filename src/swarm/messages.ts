/**
 * The swarm's messages, carried in the BitTorrent wire's BEP 10 extension `gitfs_swarm`
 * (docs/PROTOCOL.md "Swarm"). One protobuf message per extended message, decoded and then
 * bounds-checked here: anything out of bounds is a `WireError`, and the connection that sent it
 * is dropped.
 */
import { inflateSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { isObjectType, OID_BYTES, oidFromBytes, oidToBytes, type ObjectType, type Oid } from '../objects/oid.js';
import { decodeObjects, encodeObjects, type Allocate } from './objects-codec.js';

/** The wire schema (docs/PROTOCOL.md "Swarm"). */
export const SCHEMA = `
syntax = "proto3";
package gitfs.swarm.v1;

message SwarmMessage {
  oneof kind {
    Interested interested = 1;
    Have have = 2;
    HavePiece have_piece = 3;
    Want want = 4;
    Objects objects = 5;
    Cancel cancel = 6;
    Reject reject = 7;
    Free free = 8;
    Part part = 9;
  }
}
// "Tell me what you hold of this commit's closure (history commits deep), and keep me told."
// base, when not empty: of what the commit adds to that commit (the base and its ancestors, and its tree's trees and blobs, left out).
message Interested { bytes commit = 1; uint32 history = 2; bytes base = 3; }
// The pieces of the closure the sender holds; pieces = 0 while it does not know the closure yet.
message Have { bytes commit = 1; uint32 history = 2; uint32 pieces = 3; bytes bitfield = 4; bool complete = 5; bytes base = 6; }
message HavePiece { bytes commit = 1; uint32 history = 2; uint32 piece = 3; bytes base = 4; }
enum WantKind { BLOBS = 0; META = 1; READ = 2; }
// A batch of object ids; META wants may name commits and trees only and bypass the upload slot.
// ahead: BLOBS the server is itself still fetching; it sends each as it arrives (a relay's
// downstream asks before the piece is whole) and rejects as missing what does not come. META
// asked ahead: a batch of a shared level of the walk, waited for even before the server asks for it.
message Want { uint32 request = 1; WantKind kind = 2; repeated bytes oids = 3; bool ahead = 4; }
// The content, or (when the sender holds the object deflated) its zlib stream as a pack entry
// holds it and the content's length: the receiver stores that stream as it is. stored (with
// content only): the sender holds it uncompressed, found incompressible; the receiver stores it
// so without sampling it again.
message Object { bytes oid = 1; string type = 2; bytes content = 3; bytes zlib = 4; uint32 size = 5; bool stored = 6; }
// Answer to a Want, possibly over several messages; the last has done = true.
message Objects { uint32 request = 1; repeated Object objects = 2; bool done = 3; }
message Cancel { uint32 request = 1; }
enum RejectReason { BUSY = 0; MISSING = 1; REFUSED = 2; }
message Reject { uint32 request = 1; RejectReason reason = 2; repeated bytes missing = 3; }
// "My upload slot is free": sent to each peer told BUSY since the slot was taken, so it asks again at once.
message Free {}
// A piece of a blob too large for one message, answering a Want: the bytes [offset, offset + len(zlib))
// of the zlib stream of its size bytes of content; last on the part that ends the stream. The
// parts of one blob come in order, back to back, between the Objects messages of the answer.
message Part { uint32 request = 1; bytes oid = 2; uint64 size = 3; uint64 offset = 4; bytes zlib = 5; bool last = 6; }
`;

const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
const Message = root.lookupType('gitfs.swarm.v1.SwarmMessage');

/** Limits every message must keep (docs/PROTOCOL.md). */
export const LIMITS = {
  /** Largest extended message accepted or sent, bytes. */
  messageBytes: 8 << 20,
  /** Most ids in one Want. */
  wantOids: 1024,
  /** Most pieces in one closure (a bitfield of 128 KiB). */
  pieces: 1 << 20,
  /** Deepest history a request may ask for. */
  history: 1_000_000,
  /** Most bytes the zlib streams of one `objects` message may inflate to (deflate packs up to ~1000:1). */
  inflatedBytes: 32 << 20,
  /** Largest object sent whole in an `objects` message; a larger blob goes in parts. */
  objectBytes: (8 << 20) - (64 << 10),
  /** Most zlib bytes in one `part`. */
  partBytes: 1 << 20,
  /** Largest blob sent in parts. */
  partedObjectBytes: 64 * 2 ** 30,
} as const;

/** By their protobuf enum number: 'blobs' through the upload slot, 'meta' (commits and trees) and 'read' (on-demand reads) at once. */
const WANT_KINDS = ['blobs', 'meta', 'read'] as const;
export type WantKind = (typeof WANT_KINDS)[number];
function wantKind(n: unknown): WantKind {
  const k = typeof n === 'number' ? WANT_KINDS[n] : undefined;
  if (k === undefined) throw new WireError(`unknown want kind ${String(n)}`);
  return k;
}

export type RejectReason = 'busy' | 'missing' | 'refused';

export interface WireObject {
  readonly oid: Oid;
  readonly type: ObjectType;
  readonly content: Buffer;
  /** The content's zlib stream (a pack entry's), when it came or goes deflated; decoding inflates it into `content`. */
  readonly zlib?: Buffer;
  /** Without `zlib`: the sender holds it uncompressed (incompressible), and so may the receiver, without sampling it. */
  readonly stored?: boolean;
}

/** Which closure a message is about: a commit's, `history` commits deep, less its `base` (that commit with its ancestors, and its tree's objects) if set (closure.ts). */
export interface ClosureName {
  readonly commit: Oid;
  readonly history: number;
  readonly base?: Oid | undefined;
}

export const sameClosure = (a: ClosureName, b: ClosureName): boolean => a.commit === b.commit && a.history === b.history && a.base === b.base;

export type SwarmMessage =
  | ({ readonly kind: 'interested' } & ClosureName)
  | ({ readonly kind: 'have'; readonly pieces: number; readonly bitfield: Buffer; readonly complete: boolean } & ClosureName)
  | ({ readonly kind: 'have_piece'; readonly piece: number } & ClosureName)
  | { readonly kind: 'want'; readonly request: number; readonly want: WantKind; readonly oids: readonly Oid[]; readonly ahead: boolean }
  | { readonly kind: 'objects'; readonly request: number; readonly objects: readonly WireObject[]; readonly done: boolean }
  | { readonly kind: 'cancel'; readonly request: number }
  | { readonly kind: 'reject'; readonly request: number; readonly reason: RejectReason; readonly missing: readonly Oid[] }
  | { readonly kind: 'free' }
  | PartMessage;

/** A piece of the zlib stream of a blob too large for one message (docs/PROTOCOL.md "Blobs in parts"). */
export interface PartMessage {
  readonly kind: 'part';
  readonly request: number;
  readonly oid: Oid;
  /** The blob's content length. */
  readonly size: number;
  /** Where `zlib` starts in the blob's zlib stream. */
  readonly offset: number;
  readonly zlib: Buffer;
  /** This part ends the stream. */
  readonly last: boolean;
}

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

const REASONS: readonly RejectReason[] = ['busy', 'missing', 'refused'];

/**
 * The message's bytes, after `headroom` bytes left for the caller (the wire's extension id: sent
 * without another copy); an `objects` message in a buffer from `alloc`.
 */
export function encodeMessage(m: SwarmMessage, headroom = 0, alloc?: Allocate): Uint8Array {
  let bytes: Uint8Array;
  if (m.kind === 'objects') bytes = encodeObjects(m.request, m.objects, m.done, headroom, alloc);
  else {
    const body = encodeGeneric(m);
    bytes = Buffer.allocUnsafe(headroom + body.length);
    bytes.set(body, headroom);
  }
  if (bytes.length - headroom > LIMITS.messageBytes) throw new RangeError(`swarm message of ${bytes.length - headroom} bytes`);
  return bytes;
}

function encodeGeneric(m: Exclude<SwarmMessage, { kind: 'objects' }>): Uint8Array {
  const b = (o: Oid): Buffer => oidToBytes(o);
  let body: Record<string, unknown>;
  switch (m.kind) {
    case 'interested':
      body = { interested: { commit: b(m.commit), history: m.history, base: baseBytes(m.base) } };
      break;
    case 'have':
      body = { have: { commit: b(m.commit), history: m.history, base: baseBytes(m.base), pieces: m.pieces, bitfield: m.bitfield, complete: m.complete } };
      break;
    case 'have_piece':
      body = { have_piece: { commit: b(m.commit), history: m.history, base: baseBytes(m.base), piece: m.piece } };
      break;
    case 'want':
      body = { want: { request: m.request, kind: WANT_KINDS.indexOf(m.want), oids: m.oids.map(b), ahead: m.ahead } };
      break;
    case 'cancel':
      body = { cancel: { request: m.request } };
      break;
    case 'reject':
      body = { reject: { request: m.request, reason: REASONS.indexOf(m.reason), missing: m.missing.map(b) } };
      break;
    case 'free':
      body = { free: {} };
      break;
    case 'part':
      body = { part: { request: m.request, oid: b(m.oid), size: m.size, offset: m.offset, zlib: m.zlib, last: m.last } };
      break;
  }
  return Message.encode(Message.fromObject(body)).finish();
}

function oid(bytes: unknown, what: string): Oid {
  if (!Buffer.isBuffer(bytes) || bytes.length !== OID_BYTES) throw new WireError(`bad ${what}`);
  return oidFromBytes(bytes);
}

function count(n: unknown, max: number, what: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) throw new WireError(`bad ${what}`);
  return n;
}

/** No base: empty bytes (the field's default, not sent). */
const baseBytes = (base: Oid | undefined): Buffer => (base === undefined ? Buffer.alloc(0) : oidToBytes(base));

function closureName(m: Record<string, unknown>): ClosureName {
  const name = { commit: oid(m.commit, 'commit'), history: count(m.history, LIMITS.history, 'history') };
  if ((m.base as Buffer).length === 0) return name;
  return { ...name, base: oid(m.base, 'base') };
}

type Raw = Record<string, Record<string, unknown> | undefined>;

/**
 * The content of a zlib stream that must inflate to exactly `size` bytes, consumed whole (it is
 * stored as a pack entry as it is: git reads the next entry right after its end).
 */
function inflated(zlib: Buffer, size: number): Buffer {
  let out: { buffer: Buffer; engine: { bytesWritten: number } };
  try {
    out = inflateSync(zlib, { maxOutputLength: Math.max(1, size), info: true }) as unknown as typeof out;
  } catch (e) {
    throw new WireError(`bad zlib stream: ${(e as Error).message}`);
  }
  if (out.buffer.length !== size) throw new WireError(`zlib stream of ${out.buffer.length} bytes, said ${size}`);
  if (out.engine.bytesWritten !== zlib.length) throw new WireError('bytes after the end of a zlib stream');
  return out.buffer;
}

/**
 * An `objects` message from its decoded fields (by protobufjs or objects-codec.ts), checked;
 * deflated objects inflated. One answering no request `awaited` (cancelled, or never made) comes
 * without its objects, neither checked nor inflated: a peer cannot make this node inflate what it
 * did not ask for.
 */
function objectsMessage(m: Record<string, unknown>, awaited: (request: number) => boolean): SwarmMessage {
  const request = count(m.request, 0xffffffff, 'request');
  if (!awaited(request)) return { kind: 'objects', request, objects: [], done: m.done === true };
  let inflating = 0;
  const objects = (m.objects as { oid: unknown; type: unknown; content: Buffer; zlib: Buffer; size: number; stored: boolean }[]).map((o): WireObject => {
    if (typeof o.type !== 'string' || !isObjectType(o.type)) throw new WireError('bad object type');
    const id = oid(o.oid, 'object id');
    if (o.zlib.length === 0) {
      if (o.size !== 0) throw new WireError('object size without a zlib stream');
      return o.stored ? { oid: id, type: o.type, content: o.content, stored: true } : { oid: id, type: o.type, content: o.content };
    }
    if (o.content.length > 0) throw new WireError('object with both content and a zlib stream');
    if (o.stored) throw new WireError('object with a zlib stream said to be stored uncompressed');
    inflating += o.size;
    if (inflating > LIMITS.inflatedBytes) throw new WireError(`objects inflating to over ${LIMITS.inflatedBytes} bytes in one message`);
    return { oid: id, type: o.type, content: inflated(o.zlib, o.size), zlib: o.zlib };
  });
  return { kind: 'objects', request, objects, done: m.done === true };
}

/**
 * Decodes and checks one message. `objects` messages go through the hand decoder when they have
 * its shape (objects-codec.ts); `generic` forces protobufjs for every message (tests compare the
 * two). `awaited` says which requests' objects are wanted (objectsMessage); by default, all.
 */
export function decodeMessage(bytes: Uint8Array, generic = false, awaited: (request: number) => boolean = () => true): SwarmMessage {
  if (bytes.length > LIMITS.messageBytes) throw new WireError(`message of ${bytes.length} bytes`);
  // A Buffer, so that bytes fields come out as Buffers.
  const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const fast = generic ? undefined : decodeObjects(input);
  if (fast !== undefined) return objectsMessage(fast as unknown as Record<string, unknown>, awaited);
  let raw: Raw;
  try {
    raw = Message.toObject(Message.decode(input), { bytes: Buffer, longs: Number, arrays: true, defaults: true, oneofs: true }) as Raw;
  } catch (e) {
    throw new WireError(`undecodable message: ${(e as Error).message}`);
  }
  const kind = (raw as { kind?: unknown }).kind;
  const m = typeof kind === 'string' ? raw[kind] : undefined;
  if (m === undefined) throw new WireError('empty message');
  switch (kind) {
    case 'interested':
      return { kind, ...closureName(m) };
    case 'have': {
      const pieces = count(m.pieces, LIMITS.pieces, 'piece count');
      const bitfield = m.bitfield as Buffer;
      if (bitfield.length !== Math.ceil(pieces / 8)) throw new WireError('bitfield does not match the piece count');
      return { kind, ...closureName(m), pieces, bitfield, complete: m.complete === true };
    }
    case 'have_piece':
      return { kind, ...closureName(m), piece: count(m.piece, LIMITS.pieces - 1, 'piece') };
    case 'want': {
      const oids = m.oids as unknown[];
      if (oids.length === 0 || oids.length > LIMITS.wantOids) throw new WireError(`want of ${oids.length} ids`);
      return { kind, request: count(m.request, 0xffffffff, 'request'), want: wantKind(m.kind), oids: oids.map((o) => oid(o, 'wanted id')), ahead: m.ahead === true };
    }
    case 'objects':
      return objectsMessage(m, awaited);
    case 'cancel':
      return { kind, request: count(m.request, 0xffffffff, 'request') };
    case 'reject': {
      const reason = REASONS[count(m.reason, REASONS.length - 1, 'reject reason')] as RejectReason;
      return { kind, request: count(m.request, 0xffffffff, 'request'), reason, missing: (m.missing as unknown[]).slice(0, LIMITS.wantOids).map((o) => oid(o, 'missing id')) };
    }
    case 'free':
      return { kind };
    case 'part': {
      const zlib = m.zlib as Buffer;
      if (zlib.length === 0 || zlib.length > LIMITS.partBytes) throw new WireError(`part of ${zlib.length} bytes`);
      const size = count(m.size, LIMITS.partedObjectBytes, 'parted object size');
      const offset = count(m.offset, Number.MAX_SAFE_INTEGER, 'part offset');
      return { kind, request: count(m.request, 0xffffffff, 'request'), oid: oid(m.oid, 'part id'), size, offset, zlib, last: m.last === true };
    }
    default:
      throw new WireError(`unknown message ${String(kind)}`);
  }
}
