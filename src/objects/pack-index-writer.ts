/**
 * Serialises a pack index (.idx, version 2) for the entries of a finished pack.
 * Entries go in id order; offsets at or above 2^31 go to the 64-bit table.
 */
import { createHash } from 'node:crypto';
import { IDX_MAGIC, IDX_VERSION } from './pack-format.js';
import type { PackEntryTable } from './pack-entry-table.js';

export function encodePackIndex(table: PackEntryTable, packChecksum: Buffer): Buffer {
  const order = table.sortedByIds();
  const n = order.length;
  let large = 0;
  for (const i of order) if (table.offset(i) >= 0x80000000) large++;
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
  order.forEach((entry, i) => {
    const id = table.id(entry);
    counts[id[0] as number]!++;
    id.copy(out, shaAt + i * 20);
    out.writeUInt32BE(table.crc32(entry) >>> 0, crcAt + i * 4);
    const offset = table.offset(entry);
    if (offset >= 0x80000000) {
      out.writeUInt32BE((0x80000000 | largeIndex) >>> 0, offAt + i * 4);
      out.writeBigUInt64BE(BigInt(offset), largeAt + largeIndex * 8);
      largeIndex++;
    } else {
      out.writeUInt32BE(offset, offAt + i * 4);
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
