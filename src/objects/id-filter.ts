/**
 * A Bloom filter of object ids: "certainly absent" or "perhaps present". An id is already a
 * uniform hash, so three 32-bit slices of it (bytes 4-16) serve as the three probes. At 16 bits
 * per id about 0.3 % of absent ids get through. Most lookups in a repository are of absent ids
 * (every object a writer stores, every piece a fetcher plans, is first looked for), so the filter
 * is what they cost.
 *
 * Invariant: once an id is added, mayHold answers true for it (no false negatives). A filter
 * filled past its capacity stays correct; only more absent ids get through.
 */
import { OID_BYTES } from './oid.js';

/** Bits per id at capacity. */
export const FILTER_BITS_PER_ID = 16;

export class IdFilter {
  private readonly bits: Uint32Array;
  private readonly mask: number;
  /** Ids it was sized for. */
  readonly capacity: number;

  constructor(capacity: number) {
    let bits = 64;
    while (bits < capacity * FILTER_BITS_PER_ID) bits *= 2;
    this.bits = new Uint32Array(bits / 32);
    this.mask = bits - 1;
    this.capacity = capacity;
  }

  /** Adds the id whose 20 bytes lie at `at` of `bytes`. */
  add(bytes: Buffer, at: number): void {
    this.set(bytes.readUInt32LE(at + 4) & this.mask);
    this.set(bytes.readUInt32LE(at + 8) & this.mask);
    this.set(bytes.readUInt32LE(at + 12) & this.mask);
  }

  /** Adds `count` ids stored one after another from `at` (a pack index's table of ids). */
  addAll(bytes: Buffer, at: number, count: number): void {
    for (let i = 0; i < count; i++) this.add(bytes, at + i * OID_BYTES);
  }

  /** False only for an id never added. */
  mayHold(bytes: Buffer, at: number): boolean {
    return this.test(bytes.readUInt32LE(at + 4) & this.mask) && this.test(bytes.readUInt32LE(at + 8) & this.mask) && this.test(bytes.readUInt32LE(at + 12) & this.mask);
  }

  private set(h: number): void {
    this.bits[h >>> 5]! |= 1 << (h & 31);
  }

  private test(h: number): boolean {
    return (this.bits[h >>> 5]! & (1 << (h & 31))) !== 0;
  }
}
