/**
 * A pack's index made again from the pack alone, as `git index-pack` makes it. A flipped bit in a
 * `.idx` fails its checksum, so no reader opens the pack, and every object in it is lost to this
 * node though the pack is whole: this gets them back without a copy from anywhere else.
 *
 * The pack is walked once, in order: each entry's header parsed, its zlib stream inflated (zlib
 * says where the stream ends, so where the next entry starts), its CRC-32 taken and a whole
 * object hashed. The deltas are then read through a PackFile over what the walk found (resolved
 * as any read resolves them), each hashed; one whose base a later delta of the pack makes waits
 * for it (nameDeltas). A base no entry makes (a thin pack's) is asked of the resolver.
 *
 * Invariants: a pack that is damaged itself (an entry that does not inflate to its declared size,
 * bytes between its last entry and its trailer, a SHA-1 that does not match its trailer) is
 * refused (CORRUPT_PACK), never indexed; the index comes out as git writes it (version 2, the same
 * bytes `git index-pack` writes for the pack); memory is one entry's bytes, within the read limit,
 * and about 50 bytes an entry.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { crc32, inflateSync, type ZlibOptions } from 'node:zlib';
import { deflateBound } from './compress.js';
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import type { GitObject } from './object-store.js';
import { hashObject, OID_BYTES, type Oid } from './oid.js';
import { PackEntryTable } from './pack-entry-table.js';
import { PackFile, readFully, type DeltaBaseResolver, type PackEntries } from './pack-file.js';
import { decodeEntry, PACK_HEADER_BYTES, PACK_SIGNATURE, type EntryHeader } from './pack-format.js';
import { encodePackIndex } from './pack-index-writer.js';

export interface ReindexOptions {
  /** The read limit: an object above it (a delta above twice it) is OBJECT_TOO_LARGE, not held. */
  readonly maxObjectBytes: number;
  /** A REF_DELTA base no entry of this pack holds. */
  readonly resolveBase: DeltaBaseResolver;
  /** Ends the walk between entries. */
  readonly signal?: AbortSignal;
}

/** The pack is read forward through windows this large. */
const WINDOW_BYTES = 1 << 20;
/** Enough of an entry for its header and its delta base (an offset of at most 10 bytes, or an id). */
const HEAD_BYTES = 64;
/** The smallest entry: a byte of header and an empty zlib stream. */
const MIN_ENTRY_BYTES = 9;

/** The index (`.idx` bytes) of the pack at `path`, made from the pack alone. */
export async function reindexPack(path: string, o: ReindexOptions): Promise<Buffer> {
  const fail = (why: string, data: Record<string, unknown> = {}): never => {
    throw new GitfsError(ErrorCodes.CORRUPT_PACK, `pack ${path}: ${why}`, { file: path, ...data });
  };
  const fh = await open(path, 'r');
  let walked: WalkedEntries;
  try {
    walked = await walk(new ForwardReader(fh, path), o, fail);
  } finally {
    await fh.close();
  }
  await nameDeltas(path, walked, o, fail);
  return encodePackIndex(walked.table, walked.packChecksum);
}

/** Every entry's offset and CRC-32, and every whole object's id; the pack's SHA-1 checked against its trailer. */
async function walk(r: ForwardReader, o: ReindexOptions, fail: (why: string, data?: Record<string, unknown>) => never): Promise<WalkedEntries> {
  const size = await r.size();
  const body = size - OID_BYTES;
  if (body < PACK_HEADER_BYTES) fail('too short');
  const header = Buffer.from(await r.bytes(0, PACK_HEADER_BYTES));
  if (!header.subarray(0, 4).equals(PACK_SIGNATURE)) fail('bad magic');
  const version = header.readUInt32BE(4);
  if (version !== 2 && version !== 3) fail(`unsupported version ${version}`);
  const count = header.readUInt32BE(8);
  if (count * MIN_ENTRY_BYTES > body - PACK_HEADER_BYTES) fail(`claims ${count} entries, more than its ${size} bytes hold`);
  const sha = createHash('sha1').update(header);
  const walked = new WalkedEntries(count);
  let pos = PACK_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    o.signal?.throwIfAborted();
    if (pos >= body) fail(`ends after ${i} of its ${count} entries`);
    const h = decodeEntry(await r.bytes(pos, Math.min(HEAD_BYTES, body - pos)), pos);
    if (typeof h === 'string') return fail(`entry at ${pos}: ${h}`, { offset: pos });
    const entry = h;
    const limit = entry.kind === 'ofs' || entry.kind === 'ref' ? o.maxObjectBytes * 2 + 1024 : o.maxObjectBytes;
    if (entry.size > limit) {
      throw new GitfsError(ErrorCodes.OBJECT_TOO_LARGE, `pack ${r.path}: entry at ${pos} declares ${entry.size} bytes, above the limit of ${limit}`, { file: r.path, offset: pos, size: entry.size, limit });
    }
    const { bytes, content } = inflateEntry(await r.bytes(pos, Math.min(body - pos, entry.dataStart + deflateBound(entry.size))), entry, pos, fail);
    sha.update(bytes);
    const crc = crc32(bytes);
    walked.entryAt(pos);
    if (entry.kind === 'ofs' || entry.kind === 'ref') walked.addDelta(pos, crc);
    else walked.addNamed(hashObject(entry.kind, content), pos, crc, fail);
    pos += bytes.length;
  }
  if (pos !== body) fail(`${body - pos} bytes lie between its last entry and its checksum`);
  const trailer = Buffer.from(await r.bytes(body, OID_BYTES));
  if (!sha.digest().equals(trailer)) fail('its checksum does not match its content');
  walked.packChecksum = trailer;
  return walked;
}

/**
 * Names every delta the walk found, by reading it through a PackFile over what the walk found, as
 * `git index-pack` resolves them: in pack order, a delta whose base no entry has made yet waiting
 * for that base, and read again once it is named (each delta is read again at most once per base
 * of its chain it waits for). Only then is the resolver asked, for the bases still waited for:
 * each id at most once (its answer, or its absence, kept; the last object it gave held for the
 * deltas after it). One of them may yet be made by a later delta of the pack: it is asked for,
 * found nowhere else, and taken from the pack once made.
 */
async function nameDeltas(path: string, walked: WalkedEntries, o: ReindexOptions, fail: (why: string, data?: Record<string, unknown>) => never): Promise<void> {
  let outside = false;
  const absent = new Set<Oid>();
  let last: { readonly oid: Oid; readonly obj: GitObject } | undefined;
  const resolveBase = async (oid: Oid, depth: number): Promise<GitObject | undefined> => {
    if (!outside || absent.has(oid)) return undefined;
    if (last?.oid === oid) return { type: last.obj.type, content: Buffer.from(last.obj.content) };
    const obj = await o.resolveBase(oid, depth);
    if (obj === undefined) absent.add(oid);
    else last = { oid, obj };
    return obj;
  };
  const pack = await PackFile.open(path, walked, { maxObjectBytes: o.maxObjectBytes, resolveBase });
  const waiting = new Map<Oid, Array<readonly [number, number]>>();
  const drain = async (queue: Array<readonly [number, number]>): Promise<void> => {
    // The queue grows as named bases free their deltas; each delta enters it once per base it waits for.
    for (let i = 0; i < queue.length; i++) {
      o.signal?.throwIfAborted();
      const [offset, crc] = queue[i] as readonly [number, number];
      let oid: Oid;
      try {
        const obj = await pack.readAt(offset);
        oid = hashObject(obj.type, obj.content);
      } catch (e) {
        if (!isGitfsError(e, ErrorCodes.CORRUPT_OBJECT) || typeof e.data['base'] !== 'string') throw e;
        const base = e.data['base'] as Oid;
        const list = waiting.get(base);
        if (list === undefined) waiting.set(base, [[offset, crc]]);
        else list.push([offset, crc]);
        continue;
      }
      walked.addNamed(oid, offset, crc, fail);
      const freed = waiting.get(oid);
      if (freed === undefined) continue;
      waiting.delete(oid);
      queue.push(...freed);
    }
  };
  try {
    await drain(walked.deltas());
    if (waiting.size === 0) return;
    outside = true;
    const asked = [...waiting.values()].flat().sort((a, b) => a[0] - b[0]);
    waiting.clear();
    await drain(asked);
    if (waiting.size > 0) {
      const bases = [...waiting.keys()];
      fail(`${[...waiting.values()].flat().length} deltas have a base found nowhere (${bases[0]})`, { base: bases[0] });
    }
  } finally {
    await pack.close();
  }
}

/** What the walk found, as a PackFile reads a pack through it (pack-file.ts PackEntries). */
class WalkedEntries implements PackEntries {
  /** Entries whose object is known, by id: the index to write. */
  readonly table = new PackEntryTable();
  packChecksum = Buffer.alloc(0);
  private readonly offsets: Float64Array;
  private found = 0;
  private readonly pendingDeltas: Array<readonly [number, number]> = [];

  constructor(readonly count: number) {
    this.offsets = new Float64Array(count);
  }

  /** An entry starts at `offset` (entries come in pack order). */
  entryAt(offset: number): void {
    this.offsets[this.found++] = offset;
  }

  /** The entry at `offset` is a delta, its object not known yet. */
  addDelta(offset: number, crc: number): void {
    this.pendingDeltas.push([offset, crc]);
  }

  /** The entry at `offset` holds `oid` (a pack holds each object once). */
  addNamed(oid: Oid, offset: number, crc: number, fail: (why: string) => never): void {
    const entry = this.table.reserve(oid);
    if (entry === undefined) fail(`holds object ${oid} twice`);
    this.table.place(entry as number, offset, crc);
  }

  /** The deltas, as [offset, CRC-32], in pack order. */
  deltas(): Array<readonly [number, number]> {
    return this.pendingDeltas.splice(0);
  }

  lookup(oid: Oid): number | undefined {
    const entry = this.table.find(oid);
    return entry === undefined ? undefined : this.table.offset(entry);
  }

  entryEnd(offset: number, packSize: number): number | undefined {
    const at = this.offsets;
    let lo = 0;
    let hi = at.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = at[mid]!;
      if (v === offset) return mid + 1 < at.length ? at[mid + 1]! : packSize - OID_BYTES;
      if (v < offset) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }
}

/**
 * The entry `h` at `pos` whose bytes start `from`: its whole bytes (header and zlib stream) and
 * what they inflate to, which must be its declared size.
 */
function inflateEntry(from: Buffer, h: EntryHeader, pos: number, fail: (why: string, data?: Record<string, unknown>) => never): { bytes: Buffer; content: Buffer } {
  let r: { buffer: Buffer; engine: { bytesWritten: number } };
  try {
    // `info` returns the engine too, which says how much of the input the stream took.
    r = inflateSync(from.subarray(h.dataStart), { info: true, maxOutputLength: Math.max(1, h.size) } as ZlibOptions) as unknown as typeof r;
  } catch (e) {
    return fail(`entry at ${pos} does not inflate (${(e as Error).message})`, { offset: pos });
  }
  if (r.buffer.length !== h.size) fail(`entry at ${pos} inflates to ${r.buffer.length} bytes, declared ${h.size}`, { offset: pos });
  return { bytes: from.subarray(0, h.dataStart + r.engine.bytesWritten), content: r.buffer };
}

/** A pack read forward: what bytes() gives is valid until its next call. */
class ForwardReader {
  private window = Buffer.alloc(0);
  /** The pack offset of the window's first byte, and how many of its bytes were read. */
  private start = 0;
  private valid = 0;
  private fileSize: number | undefined;

  constructor(
    private readonly fh: FileHandle,
    readonly path: string,
  ) {}

  async size(): Promise<number> {
    return (this.fileSize ??= (await this.fh.stat()).size);
  }

  /** The `length` bytes at `pos`: out of the window, else out of a new window read from `pos`. */
  async bytes(pos: number, length: number): Promise<Buffer> {
    if (pos < this.start || pos + length > this.start + this.valid) {
      if (this.window.length < length) this.window = Buffer.allocUnsafe(Math.max(WINDOW_BYTES, length));
      const want = Math.min(this.window.length, (await this.size()) - pos);
      if (want < length) throw new GitfsError(ErrorCodes.CORRUPT_PACK, `pack ${this.path}: truncated at ${pos + Math.max(want, 0)}`, { file: this.path });
      await readFully(this.fh, this.window.subarray(0, want), pos, this.path);
      this.start = pos;
      this.valid = want;
    }
    return this.window.subarray(pos - this.start, pos - this.start + length);
  }
}
