/**
 * Applies a git delta (as stored in OFS_DELTA / REF_DELTA pack entries).
 *
 * Format: varint source size, varint target size, then ops. An op byte with the
 * high bit set copies from the base (bits 0-3 say which offset bytes follow,
 * bits 4-6 which size bytes; size 0 means 0x10000); a byte 1..127 inserts that
 * many literal bytes; 0 is reserved.
 *
 * Invariants: the source size equals the base length, every copy lies inside
 * the base, every insert inside the delta, and the output is exactly the
 * target size, which must not exceed `maxSize` (else OBJECT_TOO_LARGE). Any other
 * violation is CORRUPT_OBJECT.
 */
import { ErrorCodes, GitfsError } from '../errors.js';

export function applyDelta(base: Buffer, delta: Buffer, maxSize: number): Buffer {
  let pos = 0;
  const varint = (what: string): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (pos >= delta.length) corrupt(`delta ${what} runs past the end of the delta`);
      const byte = delta[pos++]!;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return value;
      scale *= 128;
      if (scale > 2 ** 56) corrupt(`delta ${what} is absurdly long`);
    }
  };
  const sourceSize = varint('source size');
  const targetSize = varint('target size');
  if (sourceSize !== base.length) corrupt(`delta expects a base of ${sourceSize} bytes, base has ${base.length}`);
  if (targetSize > maxSize) {
    throw new GitfsError(ErrorCodes.OBJECT_TOO_LARGE, `delta target of ${targetSize} bytes exceeds the limit of ${maxSize}`, { size: targetSize, limit: maxSize });
  }

  const out = Buffer.allocUnsafe(targetSize);
  let outPos = 0;
  while (pos < delta.length) {
    const op = delta[pos++]!;
    if (op & 0x80) {
      let offset = 0;
      let size = 0;
      // Bounds of the optional bytes are checked once; a missing byte reads as undefined.
      if (op & 0x01) offset = delta[pos++]!;
      if (op & 0x02) offset += delta[pos++]! * 0x100;
      if (op & 0x04) offset += delta[pos++]! * 0x10000;
      if (op & 0x08) offset += delta[pos++]! * 0x1000000;
      if (op & 0x10) size = delta[pos++]!;
      if (op & 0x20) size += delta[pos++]! * 0x100;
      if (op & 0x40) size += delta[pos++]! * 0x10000;
      if (pos > delta.length) corrupt('delta copy op runs past the end of the delta');
      if (size === 0) size = 0x10000;
      if (offset + size > base.length) corrupt(`delta copies [${offset}, ${offset + size}) from a base of ${base.length} bytes`);
      if (outPos + size > targetSize) corrupt('delta output exceeds its declared size');
      base.copy(out, outPos, offset, offset + size);
      outPos += size;
    } else if (op !== 0) {
      if (pos + op > delta.length) corrupt('delta insert op runs past the end of the delta');
      if (outPos + op > targetSize) corrupt('delta output exceeds its declared size');
      delta.copy(out, outPos, pos, pos + op);
      pos += op;
      outPos += op;
    } else {
      corrupt('delta uses reserved op 0');
    }
  }
  if (outPos !== targetSize) corrupt(`delta produced ${outPos} bytes, declared ${targetSize}`);
  return out;
}

function corrupt(why: string): never {
  throw new GitfsError(ErrorCodes.CORRUPT_OBJECT, why);
}

/** The target size a delta declares, read from its start; undefined if `head` is too short to tell. */
export function deltaTargetSize(head: Buffer): number | undefined {
  let pos = 0;
  for (let field = 0; field < 2; field++) {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (pos >= head.length) return undefined;
      const byte = head[pos++]!;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) break;
      scale *= 128;
      if (scale > 2 ** 56) corrupt('delta size is absurdly long');
    }
    if (field === 1) return value;
  }
  return undefined;
}
