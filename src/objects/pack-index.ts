/**
 * A git pack index (.idx, version 2), parsed from one Buffer held whole.
 *
 * Layout: magic `\377tOc`, version 2, 256-entry fanout, N sorted 20-byte ids,
 * N CRC32s, N 31-bit offsets (MSB set = index into the 64-bit table), the
 * 64-bit offsets, the pack's checksum and the index's own SHA-1.
 *
 * Invariants once constructed: the checksum matches, the fanout is monotonic
 * and agrees with the ids' first bytes, the ids are strictly ascending, and
 * every 64-bit reference points inside the 64-bit table. Lookups binary-search
 * the raw id table; no per-entry strings are made at load time.
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, GitfsError } from '../errors.js';
import { IdFilter } from './id-filter.js';
import { OID_BYTES, oidFromBytes } from './oid.js';
import type { Oid } from './oid.js';

const MAGIC = 0xff744f63;
const HEADER_BYTES = 8;
const FANOUT_BYTES = 256 * 4;
const TRAILER_BYTES = 2 * OID_BYTES;
/** Smallest offset an entry can have: after the 12-byte pack header. */
const PACK_HEADER_BYTES = 12;
const PREFIX_RE = /^[0-9a-f]{4,40}$/;

/** Scratch space for the id being looked up; lookups are synchronous, so one suffices. */
const keyScratch = Buffer.alloc(OID_BYTES);
/**
 * The id whose bytes `keyScratch` holds (undefined: none, or a prefix): a repository looks an id
 * up in each of its packs in turn, and this converts it from hex once for all of them.
 */
let keyOf: Oid | undefined;

/** Puts `oid`'s bytes in keyScratch; false when it is not a full hex id. */
function loadKey(oid: Oid): boolean {
  if (oid === keyOf) return true;
  keyOf = undefined;
  if (keyScratch.write(oid, 'hex') !== OID_BYTES || oid.length !== 2 * OID_BYTES) return false;
  keyOf = oid;
  return true;
}
/** Whether `filter` (over the ids of many packs) may hold `oid`; a malformed id is never held. */
export function filterMayHold(filter: IdFilter, oid: Oid): boolean {
  return loadKey(oid) && filter.mayHold(keyScratch, 0);
}

export class PackIndex {
  /** Number of objects in the pack. */
  readonly count: number;
  /** The pack's trailing SHA-1, as the index records it. */
  readonly packChecksum: Buffer;
  private readonly buf: Buffer;
  private readonly name: string;
  private readonly fanout: Uint32Array;
  private readonly shaStart: number;
  private readonly crcStart: number;
  private readonly off32Start: number;
  private readonly off64Start: number;
  private readonly off64Count: number;
  private sortedOffsets: Float64Array | undefined;
  private keys: Uint32Array | undefined;
  private filter: IdFilter | undefined;

  /** `name` (usually the file path) is used in error messages only. */
  constructor(buf: Buffer, name: string) {
    this.buf = buf;
    this.name = name;
    const fail = (why: string): never => {
      throw new GitfsError(ErrorCodes.CORRUPT_PACK, `pack index ${name}: ${why}`, { file: name });
    };
    if (buf.length < HEADER_BYTES + FANOUT_BYTES + TRAILER_BYTES) fail('too short');
    if (buf.readUInt32BE(0) !== MAGIC) fail('bad magic (only version 2 indexes are supported)');
    if (buf.readUInt32BE(4) !== 2) fail(`unsupported version ${buf.readUInt32BE(4)}`);
    const bodyEnd = buf.length - OID_BYTES;
    const digest = createHash('sha1').update(buf.subarray(0, bodyEnd)).digest();
    if (!digest.equals(buf.subarray(bodyEnd))) fail('checksum mismatch');

    const fanout = new Uint32Array(256);
    let prev = 0;
    for (let i = 0; i < 256; i++) {
      const v = buf.readUInt32BE(HEADER_BYTES + i * 4);
      if (v < prev) fail('fanout table is not monotonic');
      fanout[i] = prev = v;
    }
    const n = prev;
    this.count = n;
    this.fanout = fanout;
    this.shaStart = HEADER_BYTES + FANOUT_BYTES;
    this.crcStart = this.shaStart + n * OID_BYTES;
    this.off32Start = this.crcStart + n * 4;
    this.off64Start = this.off32Start + n * 4;
    const rest = buf.length - TRAILER_BYTES - this.off64Start;
    if (rest < 0 || rest % 8 !== 0) fail(`size ${buf.length} does not fit ${n} entries`);
    this.off64Count = rest / 8;
    this.packChecksum = buf.subarray(buf.length - TRAILER_BYTES, bodyEnd);

    this.checkIds(fail);
    for (let i = 0; i < n; i++) {
      const v = buf.readUInt32BE(this.off32Start + i * 4);
      if (v & 0x80000000 && (v & 0x7fffffff) >= this.off64Count) fail(`entry ${i} points past the 64-bit offset table`);
    }
  }

  /** Ids strictly ascending, each in the fanout bucket of its first byte. */
  private checkIds(fail: (why: string) => never): void {
    const buf = this.buf;
    let i = 0;
    for (let b = 0; b < 256; b++) {
      const end = this.fanout[b]!;
      for (; i < end; i++) {
        const pos = this.shaStart + i * OID_BYTES;
        if (buf[pos] !== b) fail(`id ${i} is outside its fanout bucket`);
        if (i > 0 && !idGreater(buf, pos, pos - OID_BYTES)) fail(`ids are not strictly ascending at entry ${i}`);
      }
    }
  }

  /** Builds now the tables that lookups and entryEnd build at their first call. */
  prepare(): void {
    this.keys ??= this.loadKeys();
    if (this.filter === undefined) this.buildFilter();
    this.sortedOffsets ??= this.buildSortedOffsets();
  }

  /** The pack offset of `oid`, or undefined if this pack does not hold it. */
  lookup(oid: Oid): number | undefined {
    const i = loadKey(oid) ? this.keyPosition() : undefined;
    return i === undefined ? undefined : this.offsetAt(i);
  }

  /** Where and how `oid` is packed: its offset and the CRC-32 of its whole entry; undefined if this pack does not hold it. */
  entryOf(oid: Oid): { readonly offset: number; readonly crc32: number } | undefined {
    const i = loadKey(oid) ? this.keyPosition() : undefined;
    return i === undefined ? undefined : { offset: this.offsetAt(i), crc32: this.buf.readUInt32BE(this.crcStart + i * 4) };
  }

  /** Where and how the id whose 20 bytes lie at `at` of `bytes` is packed: its offset and the CRC-32 of its whole entry; undefined if this pack does not hold it. */
  entryOfBytes(bytes: Buffer, at: number): { readonly offset: number; readonly crc32: number } | undefined {
    keyOf = undefined;
    if (bytes.copy(keyScratch, 0, at, at + OID_BYTES) !== OID_BYTES) return undefined;
    const i = this.keyPosition();
    return i === undefined ? undefined : { offset: this.offsetAt(i), crc32: this.buf.readUInt32BE(this.crcStart + i * 4) };
  }

  /** The index of the id in keyScratch, or undefined. */
  private keyPosition(): number | undefined {
    if (!this.mayHold(keyScratch)) return undefined;
    const b = keyScratch[0]!;
    const keys = (this.keys ??= this.loadKeys());
    const key = keyScratch.readUInt32BE(1);
    let lo = b === 0 ? 0 : this.fanout[b - 1]!;
    const end = this.fanout[b]!;
    let hi = end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    for (; lo < end && keys[lo] === key; lo++) {
      const pos = this.shaStart + lo * OID_BYTES;
      if (this.buf.compare(keyScratch, 0, OID_BYTES, pos, pos + OID_BYTES) === 0) return lo;
    }
    return undefined;
  }

  /** Bytes 1-4 of every id as a number (byte 0 is the fanout bucket): searched before whole ids are compared. */
  private loadKeys(): Uint32Array {
    const keys = new Uint32Array(this.count);
    for (let i = 0; i < keys.length; i++) keys[i] = this.buf.readUInt32BE(this.shaStart + i * OID_BYTES + 1);
    return keys;
  }

  /** Ids starting with `prefix` (4 to 40 lowercase hex digits), ascending, at most `limit`. */
  findByPrefix(prefix: string, limit: number): Oid[] {
    if (!PREFIX_RE.test(prefix)) {
      throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `not an id prefix: ${JSON.stringify(prefix.slice(0, 64))}`, { prefix });
    }
    const out: Oid[] = [];
    if (limit <= 0) return out;
    const fullBytes = prefix.length >> 1;
    const odd = prefix.length & 1;
    keyOf = undefined;
    keyScratch.fill(0);
    keyScratch.write(prefix.slice(0, fullBytes * 2), 'hex');
    const nibble = odd ? parseInt(prefix[prefix.length - 1]!, 16) << 4 : 0;
    if (odd) keyScratch[fullBytes] = nibble;
    const b = keyScratch[0]!;
    let lo = b === 0 ? 0 : this.fanout[b - 1]!;
    let hi = this.fanout[b]!;
    const end = hi;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const pos = this.shaStart + mid * OID_BYTES;
      if (this.buf.compare(keyScratch, 0, OID_BYTES, pos, pos + OID_BYTES) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < end && out.length < limit; i++) {
      const pos = this.shaStart + i * OID_BYTES;
      if (this.buf.compare(keyScratch, 0, fullBytes, pos, pos + fullBytes) !== 0) break;
      if (odd && (this.buf[pos + fullBytes]! & 0xf0) !== nibble) break;
      out.push(oidFromBytes(this.buf, pos));
    }
    return out;
  }

  /**
   * Where the entry starting at `offset` ends in a pack of `packSize` bytes:
   * the next larger entry offset, or the start of the pack's trailing checksum.
   * Undefined if no entry starts at `offset`.
   */
  entryEnd(offset: number, packSize: number): number | undefined {
    const sorted = (this.sortedOffsets ??= this.buildSortedOffsets());
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = sorted[mid]!;
      if (v === offset) {
        const end = mid + 1 < sorted.length ? sorted[mid + 1]! : packSize - OID_BYTES;
        if (end > packSize - OID_BYTES || end <= offset) {
          throw new GitfsError(ErrorCodes.CORRUPT_PACK, `pack index ${this.name}: entry at ${offset} lies outside a pack of ${packSize} bytes`, { file: this.name, offset });
        }
        return end;
      }
      if (v < offset) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }

  private offsetAt(i: number): number {
    const v = this.buf.readUInt32BE(this.off32Start + i * 4);
    if ((v & 0x80000000) === 0) return v;
    const big = this.buf.readBigUInt64BE(this.off64Start + (v & 0x7fffffff) * 8);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new GitfsError(ErrorCodes.CORRUPT_PACK, `pack index ${this.name}: offset of entry ${i} is absurd`, { file: this.name });
    }
    return Number(big);
  }

  /** False only for ids this pack does not hold (the filter is built at the first lookup). */
  private mayHold(id: Buffer): boolean {
    return (this.filter ?? this.buildFilter()).mayHold(id, 0);
  }

  private buildFilter(): IdFilter {
    const f = new IdFilter(this.count);
    this.addIdsTo(f);
    this.filter = f;
    return f;
  }

  /**
   * The entries in pack order: their positions in this index sorted by offset, and those offsets
   * (12 bytes an entry, for a read through the whole pack: pack-verify.ts). CORRUPT_PACK for an
   * absurd 64-bit offset.
   */
  byOffset(): { readonly order: Uint32Array; readonly offsets: Float64Array } {
    const all = new Float64Array(this.count);
    for (let i = 0; i < this.count; i++) all[i] = this.offsetAt(i);
    const order = new Uint32Array(this.count);
    for (let i = 0; i < this.count; i++) order[i] = i;
    order.sort((a, b) => all[a]! - all[b]!);
    const offsets = new Float64Array(this.count);
    for (let k = 0; k < this.count; k++) offsets[k] = all[order[k]!]!;
    return { order, offsets };
  }

  /** The id at position `i` of this index. */
  oidAt(i: number): Oid {
    return oidFromBytes(this.buf, this.shaStart + i * OID_BYTES);
  }

  /** The CRC-32 the index records for the entry at position `i`. */
  crcAt(i: number): number {
    return this.buf.readUInt32BE(this.crcStart + i * 4);
  }

  /** Every id of this pack, in id order. */
  *ids(): Generator<Oid> {
    for (let i = 0; i < this.count; i++) yield this.buf.toString('hex', this.shaStart + i * 20, this.shaStart + i * 20 + 20) as Oid;
  }

  /** Adds every id of this pack to `filter` (a filter over many packs). */
  addIdsTo(filter: IdFilter): void {
    filter.addAll(this.buf, this.shaStart, this.count);
  }

  private buildSortedOffsets(): Float64Array {
    const sorted = new Float64Array(this.count);
    for (let i = 0; i < this.count; i++) sorted[i] = this.offsetAt(i);
    sorted.sort();
    for (let i = 0; i < sorted.length; i++) {
      const v = sorted[i]!;
      if (v < PACK_HEADER_BYTES || (i > 0 && v === sorted[i - 1])) {
        throw new GitfsError(ErrorCodes.CORRUPT_PACK, `pack index ${this.name}: bad or duplicate offset ${v}`, { file: this.name });
      }
    }
    return sorted;
  }
}

/** True if the id at `a` sorts after the id at `b` (plain loop: cheaper than a native call per entry). */
function idGreater(buf: Buffer, a: number, b: number): boolean {
  for (let k = 0; k < OID_BYTES; k++) {
    const x = buf[a + k]!;
    const y = buf[b + k]!;
    if (x !== y) return x > y;
  }
  return false;
}
