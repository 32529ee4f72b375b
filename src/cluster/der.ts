/**
 * DER (ITU-T X.690 Distinguished Encoding Rules): just the ASN.1 types an X.509 v3
 * certificate needs, so gitfs can build certificates without a dependency.
 *
 * Every encoder returns one complete TLV (tag, length, value) and produces the one
 * encoding DER allows: minimal lengths and integers, TRUE as 0xff, named bit strings
 * without trailing zero bits, times in the RFC 5280 profile (UTC, whole seconds, `Z`).
 * Parsing certificates is node:crypto's job; the only reader here, readTlv(), takes
 * apart structures gitfs exported itself (a SubjectPublicKeyInfo).
 */
import { ErrorCodes, GitfsError } from '../errors.js';

/** Universal tags (X.680 §8.4) and the class/constructed bits used here. */
export const Tags = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OBJECT_IDENTIFIER: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

const CONTEXT_PRIMITIVE = 0x80;
const CONTEXT_CONSTRUCTED = 0xa0;

function bad(message: string, data: Record<string, unknown> = {}): GitfsError {
  return new GitfsError(ErrorCodes.BAD_ARGUMENT, message, data);
}

/** The length octets: short form below 128, else 0x80|n followed by n big-endian bytes. */
export function encodeLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw bad(`DER length out of range: ${length}`);
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with a single-byte tag (every tag gitfs writes is below 31). */
export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export function sequence(...items: readonly Uint8Array[]): Buffer {
  return tlv(Tags.SEQUENCE, Buffer.concat(items));
}

/** SET OF: DER orders the encoded elements as octet strings. */
export function set(...items: readonly Uint8Array[]): Buffer {
  const sorted = [...items].sort((a, b) => Buffer.compare(a, b));
  return tlv(Tags.SET, Buffer.concat(sorted));
}

/** A non-negative INTEGER from big-endian magnitude bytes: leading zeros dropped, 0x00 added when the top bit is set. */
export function integer(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) start++;
  const digits = Buffer.from(magnitude.subarray(start));
  if (digits.length === 0) return tlv(Tags.INTEGER, Buffer.from([0]));
  const top = digits[0] as number;
  return tlv(Tags.INTEGER, top & 0x80 ? Buffer.concat([Buffer.from([0]), digits]) : digits);
}

/** A small non-negative INTEGER (versions, path lengths). */
export function smallInteger(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw bad(`not a small non-negative integer: ${value}`);
  const bytes: number[] = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return integer(Buffer.from(bytes));
}

/** A BIT STRING of whole bytes (keys, signatures). */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
    throw bad(`bad BIT STRING unused-bit count: ${unusedBits}`);
  }
  return tlv(Tags.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/** A named-bit BIT STRING (keyUsage): bit 0 is the most significant bit, trailing zero bits dropped. */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) throw bad(`bad named bit in ${JSON.stringify(bits)}`);
  if (bits.length === 0) return bitString(Buffer.alloc(0));
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc((highest >> 3) + 1);
  for (const b of bits) bytes[b >> 3] = (bytes[b >> 3] as number) | (0x80 >> (b & 7));
  return bitString(bytes, 7 - (highest & 7));
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(Tags.OCTET_STRING, bytes);
}

export function boolean(value: boolean): Buffer {
  return Buffer.from([Tags.BOOLEAN, 1, value ? 0xff : 0x00]);
}

export function utf8String(text: string): Buffer {
  return tlv(Tags.UTF8_STRING, Buffer.from(text, 'utf8'));
}

const OID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/;

/** An OBJECT IDENTIFIER from dotted decimal ("1.3.101.112"): first two arcs as 40*a+b, each arc base 128. */
export function objectIdentifier(dotted: string): Buffer {
  if (!OID_RE.test(dotted)) throw bad(`not a dotted object identifier: ${JSON.stringify(dotted.slice(0, 80))}`);
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const [first, second, ...rest] = arcs as [bigint, bigint, ...bigint[]];
  if (first > 2n || (first < 2n && second > 39n)) throw bad(`object identifier arcs out of range: ${dotted}`);
  const out: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    const groups: number[] = [Number(arc & 0x7fn)];
    for (let n = arc >> 7n; n > 0n; n >>= 7n) groups.unshift(Number(n & 0x7fn) | 0x80);
    out.push(...groups);
  }
  return tlv(Tags.OBJECT_IDENTIFIER, Buffer.from(out));
}

/**
 * An X.509 Time (RFC 5280 §4.1.2.5): UTCTime YYMMDDHHMMSSZ for years 1950-2049,
 * GeneralizedTime YYYYMMDDHHMMSSZ otherwise. Milliseconds are dropped (truncated).
 */
export function time(date: Date): Buffer {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw bad('invalid date');
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw bad(`year out of range for an X.509 time: ${year}`);
  const two = (n: number): string => String(n).padStart(2, '0');
  const rest =
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds()) +
    'Z';
  if (year >= 1950 && year <= 2049) return tlv(Tags.UTC_TIME, Buffer.from(two(year % 100) + rest, 'latin1'));
  return tlv(Tags.GENERALIZED_TIME, Buffer.from(String(year).padStart(4, '0') + rest, 'latin1'));
}

/** `[n] EXPLICIT`: a constructed context-specific tag wrapping one complete encoding. */
export function explicit(tagNumber: number, inner: Uint8Array): Buffer {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30) throw bad(`context tag out of range: ${tagNumber}`);
  return tlv(CONTEXT_CONSTRUCTED | tagNumber, inner);
}

/** `[n] IMPLICIT` of a primitive type: the context tag replaces the universal one, content as is. */
export function implicitPrimitive(tagNumber: number, content: Uint8Array): Buffer {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30) throw bad(`context tag out of range: ${tagNumber}`);
  return tlv(CONTEXT_PRIMITIVE | tagNumber, content);
}

export interface Tlv {
  readonly tag: number;
  readonly content: Buffer;
  /** Offset just past this element. */
  readonly end: number;
}

/** Reads one DER element at `offset` (single-byte tag, definite minimal length), bounds-checked. */
export function readTlv(buf: Buffer, offset = 0): Tlv {
  const tag = buf[offset];
  const first = buf[offset + 1];
  if (tag === undefined || first === undefined) throw bad('DER element truncated');
  if ((tag & 0x1f) === 0x1f) throw bad('multi-byte DER tags are not supported');
  let at = offset + 2;
  let length = first;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4) throw bad('unsupported DER length form');
    length = 0;
    for (let i = 0; i < count; i++) {
      const b = buf[at++];
      if (b === undefined) throw bad('DER length truncated');
      length = length * 256 + b;
    }
    if (length < 0x80 || length < 256 ** (count - 1)) throw bad('non-minimal DER length');
  }
  const end = at + length;
  if (end > buf.length) throw bad('DER element runs past its buffer');
  return { tag, content: buf.subarray(at, end), end };
}
