/**
 * Serialises a pack index (.idx, version 2) for a pack whose entries are known.
 * Entries are sorted by id here; offsets at or above 2^31 go to the 64-bit table.
 */
import { createHash } from 'node:crypto';
import { IDX_MAGIC, IDX_VERSION } from './pack-format.js';

export interface IndexEntry {
  /** Raw 20-byte id. */
  readonly id: Buffer;
  readonly offset: number;
  readonly crc32: number;
}

export function encodePackIndex(entries: IndexEntry[], packChecksum: Buffer): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.id, b.id));
  const n = sorted.length;
  const large = sorted.filter((e) => e.offset >= 0x80000000).length;
  const size = 8 + 256 * 4 + n * (20 + 4 + 4) + large * 8 + 40;
  const out = Buffer.alloc(size);
  IDX_MAGIC.copy(out, 0);
  out.writeUInt32BE(IDX_VERSION, 4);
  const fanoutAt = 8;
  const shaAt = fanoutAt + 256 * 4;
  const crcAt = shaAt + n * 20;
  const offAt = crcAt + n * 4;
  const largeAt = offAt + n * 4;
  const counts = new Uint32Array(256);
  let largeIndex = 0;
  sorted.forEach((e, i) => {
    counts[e.id[0] as number]!++;
    e.id.copy(out, shaAt + i * 20);
    out.writeUInt32BE(e.crc32 >>> 0, crcAt + i * 4);
    if (e.offset >= 0x80000000) {
      out.writeUInt32BE((0x80000000 | largeIndex) >>> 0, offAt + i * 4);
      out.writeBigUInt64BE(BigInt(e.offset), largeAt + largeIndex * 8);
      largeIndex++;
    } else {
      out.writeUInt32BE(e.offset, offAt + i * 4);
    }
  });
  let cumulative = 0;
  for (let b = 0; b < 256; b++) {
    cumulative += counts[b] as number;
    out.writeUInt32BE(cumulative, fanoutAt + b * 4);
  }
  const trailerAt = largeAt + large * 8;
  packChecksum.copy(out, trailerAt);
  createHash('sha1').update(out.subarray(0, trailerAt + 20)).digest().copy(out, trailerAt + 20);
  return out;
}
