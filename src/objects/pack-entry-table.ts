/**
 * The entries of a pack being written, in compact typed arrays (about 40 bytes per object, so a
 * 4 GiB file's half a million chunks cost ~20 MB), with an open-addressing lookup by id.
 * An entry is reserved when an object is first offered and placed once its bytes are appended.
 */
import type { Oid } from './oid.js';

const EMPTY = -1;

export class PackEntryTable {
  private ids: Buffer;
  private offsets: Float64Array;
  private crcs: Uint32Array;
  private slots: Int32Array;
  private n = 0;

  constructor(capacity = 1024) {
    this.ids = Buffer.alloc(20 * capacity);
    this.offsets = new Float64Array(capacity).fill(-1);
    this.crcs = new Uint32Array(capacity);
    this.slots = new Int32Array(capacity * 2).fill(EMPTY);
  }

  get count(): number {
    return this.n;
  }

  /** Reserves an entry for `oid`; undefined if the table has it already. */
  reserve(oid: Oid): number | undefined {
    if (this.n * 2 >= this.slots.length) this.grow();
    this.ids.write(oid, 20 * this.n, 'hex');
    return this.insert();
  }

  /** `reserve` for an id given as its 20 raw bytes. */
  reserveId(id: Uint8Array): number | undefined {
    if (this.n * 2 >= this.slots.length) this.grow();
    this.ids.set(id, 20 * this.n);
    return this.insert();
  }

  /** Files the id just written at entry n under its slot, unless an equal one is there. */
  private insert(): number | undefined {
    const at = 20 * this.n;
    const mask = this.slots.length - 1;
    for (let slot = this.ids.readUInt32BE(at) & mask; ; slot = (slot + 1) & mask) {
      const index = this.slots[slot] as number;
      if (index === EMPTY) {
        this.slots[slot] = this.n;
        return this.n++;
      }
      if (this.ids.compare(this.ids, at, at + 20, 20 * index, 20 * index + 20) === 0) return undefined;
    }
  }

  /** The entry of `oid`, undefined if the table has none. */
  find(oid: Oid): number | undefined {
    const id = Buffer.from(oid, 'hex');
    const mask = this.slots.length - 1;
    for (let slot = id.readUInt32BE(0) & mask; ; slot = (slot + 1) & mask) {
      const index = this.slots[slot] as number;
      if (index === EMPTY) return undefined;
      if (id.compare(this.ids, 20 * index, 20 * index + 20) === 0) return index;
    }
  }

  place(index: number, offset: number, crc32: number): void {
    this.offsets[index] = offset;
    this.crcs[index] = crc32;
  }

  /** Raw 20-byte id, pack offset and CRC-32 of entry `index`. */
  id(index: number): Buffer {
    return this.ids.subarray(20 * index, 20 * index + 20);
  }

  offset(index: number): number {
    return this.offsets[index] as number;
  }

  crc32(index: number): number {
    return this.crcs[index] as number;
  }

  /** Entry indexes in id order. */
  sortedByIds(): Int32Array {
    const order = new Int32Array(this.n);
    for (let i = 0; i < this.n; i++) order[i] = i;
    const ids = this.ids;
    return order.sort((a, b) => {
      const x = ids.readUInt32BE(20 * a) - ids.readUInt32BE(20 * b);
      return x !== 0 ? x : ids.compare(ids, 20 * b, 20 * b + 20, 20 * a, 20 * a + 20);
    });
  }

  private grow(): void {
    const capacity = this.offsets.length * 2;
    const ids = Buffer.alloc(20 * capacity);
    this.ids.copy(ids);
    const offsets = new Float64Array(capacity).fill(-1);
    offsets.set(this.offsets);
    const crcs = new Uint32Array(capacity);
    crcs.set(this.crcs);
    this.ids = ids;
    this.offsets = offsets;
    this.crcs = crcs;
    this.slots = new Int32Array(capacity * 2).fill(EMPTY);
    const mask = this.slots.length - 1;
    for (let i = 0; i < this.n; i++) {
      let slot = ids.readUInt32BE(20 * i) & mask;
      while (this.slots[slot] !== EMPTY) slot = (slot + 1) & mask;
      this.slots[slot] = i;
    }
  }
}
