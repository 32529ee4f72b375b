/**
 * Reads objects out of one git pack (.pack) through its parsed index.
 *
 * Each entry is read with ONE positioned read of exactly [offset, next entry
 * offset); its type/size header is parsed, its zlib stream inflated with the
 * output capped at the declared size, and the inflated length checked against
 * it. OFS_DELTA and REF_DELTA chains are resolved iteratively (at most
 * MAX_DELTA_CHAIN deep); REF_DELTA bases absent from this pack come from the
 * owner's resolver. Intermediate delta bases are kept in a small LRU keyed by
 * pack offset. An entry above the limit is not read whole: a whole (not delta) one can be
 * streamed instead (streamAt). Objects are NOT hash-checked here: the owner does that.
 *
 * Invariants: the pack header says `PACK`, version 2 or 3, with as many objects
 * as the index; the pack's trailing checksum equals the one the index records
 * (unless it is opened `torn`, for a repair to salvage what is whole of it).
 * The handle is closed only once no read is in flight.
 */
import { read } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { constants as zlibConstants, crc32, inflateSync } from 'node:zlib';
import { ErrorCodes, GitfsError } from '../errors.js';
import { inflated, PIECE_BYTES, type DeflatedStream, type StreamedObject } from './blob-stream.js';
import { deflateBound, inflateBound, readZlibStored } from './compress.js';
import { applyDelta, deltaTargetSize } from './delta.js';
import { OID_BYTES } from './oid.js';
import { decodeEntry, type EntryHeader } from './pack-format.js';
import type { ObjectType, Oid } from './oid.js';
import type { GitObject } from './object-store.js';
import type { PackIndex } from './pack-index.js';

/** Longest delta chain followed (git itself never writes deeper than 4095). */
export const MAX_DELTA_CHAIN = 4096;
/** The most delta bytes resolve() holds while it looks for a chain's base. */
const DELTA_HOLD_BYTES = 32 << 20;
export const DEFAULT_DELTA_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Finds a REF_DELTA base that is not in this pack. `depth` is how many deltas
 * are already stacked on it, to pass on so chains spanning packs stay bounded.
 */
export type DeltaBaseResolver = (oid: Oid, depth: number) => Promise<GitObject | undefined>;

/** What a PackFile reads its pack through: a PackIndex, or the entries a walk of the pack found (pack-reindex.ts). */
export interface PackEntries {
  /** Entries in the pack. */
  readonly count: number;
  /** The pack's trailing SHA-1. */
  readonly packChecksum: Buffer;
  /** The offset of the entry of `oid`, undefined if none is known. */
  lookup(oid: Oid): number | undefined;
  /** Where the entry starting at `offset` ends (the next one's offset, or the trailer); undefined if none starts there. */
  entryEnd(offset: number, packSize: number): number | undefined;
}

export interface PackFileOptions {
  readonly maxObjectBytes: number;
  readonly resolveBase: DeltaBaseResolver;
  readonly deltaCacheBytes?: number;
  /**
   * The pack is torn (cut short, or its trailer or count wrong): opened without checking them,
   * to read what of it is still whole (a repair's salvage; every read is hash-checked anyway).
   */
  readonly torn?: boolean;
  /**
   * A delta base this pack holds damaged, at the offset of its entry, read from elsewhere (a
   * repair's: its good copy in another pack); undefined: read from this pack as ever.
   */
  readonly baseElsewhere?: (offset: number) => Promise<GitObject | undefined>;
}

const PACK_MAGIC = 0x5041434b; // "PACK"
/** Sequential reads go through windows of this size, the last few of each pack kept, and few in all. */
const WINDOW_BYTES = 1 << 20;
const MAX_WINDOWS = 4;
const MAX_WINDOWS_IN_ALL = 32;

/**
 * Every pack's windows, oldest first, each with what drops it from its pack: 4 per pack alone
 * kept 144 MiB after 48 packs were read through (test/objects/pack-windows.test.ts), so about
 * 3 MiB more for every pack a long-lived daemon serves.
 */
const allWindows = new Map<object, () => void>();

function keepWindow(key: object, drop: () => void): void {
  allWindows.set(key, drop);
  if (allWindows.size <= MAX_WINDOWS_IN_ALL) return;
  const [oldest, dropOldest] = allWindows.entries().next().value as [object, () => void];
  allWindows.delete(oldest);
  dropOldest();
}
/** An entry starting at most this far past the previous one's end counts as sequential. */
const SEQUENTIAL_GAP = 64 * 1024;
/** sizeAt() reads this much of an entry: enough for any header and, nearly always, a delta's sizes. */
const SIZE_WINDOW_BYTES = 512;
/** Entries whose span is larger have their header read and checked before the rest. */
const LARGE_ENTRY_BYTES = 1 << 20;

type Entry =
  | { readonly kind: 'full'; readonly type: ObjectType; readonly content: Buffer }
  | { readonly kind: 'ofs'; readonly delta: Buffer; readonly baseOffset: number }
  | { readonly kind: 'ref'; readonly delta: Buffer; readonly baseOid: Oid };

export class PackFile<I extends PackEntries = PackIndex> {
  readonly path: string;
  /** The path of its index: the pack's own, with `.idx` for `.pack`. */
  readonly indexPath: string;
  readonly index: I;
  /** Modification time of the .pack, for ordering packs newest first. */
  readonly mtimeMs: number;
  /** The file opened: a `.pack` renamed over it under the same name is another (ObjectDatabase opens that one). */
  readonly ino: number;
  private readonly fh: FileHandle;
  /** Bytes in the .pack file. */
  readonly size: number;
  private readonly options: PackFileOptions;
  /** Delta targets may carry some op overhead beyond their output. */
  private readonly maxDeltaBytes: number;
  private readonly cache: BaseCache;
  /** Windows by offset, oldest first, each with what drops it (here and from `allWindows`). */
  private readonly windows = new Map<number, { readonly bytes: Promise<Buffer>; readonly drop: () => void }>();
  /** Where the last entry read ended, to tell sequential reads from random ones. */
  private lastEnd = -1;
  private active = 0;
  private closing = false;
  private closed: Promise<void> | undefined;
  private onIdle: (() => void) | undefined;

  private constructor(path: string, index: I, fh: FileHandle, st: { size: number; mtimeMs: number; ino: number }, options: PackFileOptions) {
    this.path = path;
    this.indexPath = path.replace(/\.pack$/, '.idx');
    this.index = index;
    this.fh = fh;
    this.size = st.size;
    this.mtimeMs = st.mtimeMs;
    this.ino = st.ino;
    this.options = options;
    this.maxDeltaBytes = options.maxObjectBytes * 2 + 1024;
    this.cache = new BaseCache(options.deltaCacheBytes ?? DEFAULT_DELTA_CACHE_BYTES);
  }

  /** Opens `packPath` and checks its header and trailer against `index`. ENOENT propagates as is. */
  static async open<I extends PackEntries = PackIndex>(packPath: string, index: I, options: PackFileOptions): Promise<PackFile<I>> {
    const fh = await open(packPath, 'r');
    try {
      const st = await fh.stat();
      const fail = (why: string): never => {
        throw new GitfsError(ErrorCodes.CORRUPT_PACK, `pack ${packPath}: ${why}`, { file: packPath });
      };
      if (st.size < 12 + OID_BYTES) fail('too short');
      const head = Buffer.alloc(12);
      const tail = Buffer.alloc(OID_BYTES);
      await readFully(fh, head, 0, packPath);
      await readFully(fh, tail, st.size - OID_BYTES, packPath);
      if (head.readUInt32BE(0) !== PACK_MAGIC) fail('bad magic');
      const version = head.readUInt32BE(4);
      if (version !== 2 && version !== 3) fail(`unsupported version ${version}`);
      const count = head.readUInt32BE(8);
      if (options.torn !== true && count !== index.count) fail(`holds ${count} objects, its index ${index.count}`);
      if (options.torn !== true && !tail.equals(index.packChecksum)) fail('checksum does not match its index');
      return new PackFile(packPath, index, fh, st, options);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** True once close() was called; no new read may start. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** The object `oid`, or undefined if this pack does not hold it. */
  async read(oid: Oid, depth = 0): Promise<GitObject | undefined> {
    const offset = this.index.lookup(oid);
    return offset === undefined ? undefined : this.readAt(offset, depth);
  }

  /** The object whose entry starts at `offset`. `depth`: deltas already stacked on it. */
  readAt(offset: number, depth = 0): Promise<GitObject> {
    return this.inUse(() => this.resolve(offset, depth));
  }

  /**
   * Runs `use` with the pack's file descriptor, which stays open until it settles: another thread
   * may read the pack through it (blob-runs.ts). Nothing read that way is checked here.
   */
  withDescriptor<T>(use: (fd: number) => Promise<T>): Promise<T> {
    return this.inUse(() => use(this.fh.fd));
  }

  /** Runs `work` as a read in flight: close() waits for it. */
  private async inUse<T>(work: () => Promise<T>): Promise<T> {
    if (this.closing) throw new GitfsError(ErrorCodes.IO, `pack ${this.path} is closed`, { file: this.path });
    this.active++;
    try {
      return await work();
    } finally {
      this.settled();
    }
  }

  /** A read in flight has ended. */
  private settled(): void {
    if (--this.active === 0 && this.onIdle) this.onIdle();
  }

  /** Closes the file once reads in flight have finished. */
  close(): Promise<void> {
    this.closing = true;
    this.closed ??= (async () => {
      if (this.active > 0) await new Promise<void>((resolve) => (this.onIdle = resolve));
      for (const w of [...this.windows.values()]) w.drop();
      await this.fh.close();
    })();
    return this.closed;
  }

  private async resolve(offset: number, depth: number): Promise<GitObject> {
    const hit = this.cache.get(offset);
    if (hit) return { type: hit.type, content: Buffer.from(hit.content) };
    // A chain's deltas are held until its base is found, up to DELTA_HOLD_BYTES in all; the rest
    // are read again when their turn comes (git keeps none: a chain of 120 well-compressed 8 MiB
    // deltas peaked at 1.16 GiB here; test/objects/delta-chain-memory.test.ts).
    const deltas: Array<Buffer | undefined> = [];
    let held = 0;
    const targets: number[] = []; // offsets of the objects the deltas produce
    let at = offset;
    let base: GitObject;
    for (;;) {
      if (depth + deltas.length > MAX_DELTA_CHAIN) {
        throw this.error(ErrorCodes.CORRUPT_PACK, offset, `delta chain deeper than ${MAX_DELTA_CHAIN}`);
      }
      // A chain that comes back to an entry it passed (a REF_DELTA naming itself, or a loop) would
      // otherwise be read again and again, every delta held, until the depth limit.
      if (targets.includes(at)) throw this.error(ErrorCodes.CORRUPT_PACK, offset, `delta chain loops back to offset ${at}`);
      const elsewhere = this.options.baseElsewhere;
      const cached = at === offset ? undefined : (this.cache.get(at) ?? (elsewhere === undefined ? undefined : await elsewhere(at)));
      if (cached) {
        base = cached;
        break;
      }
      const entry = await this.readEntry(at);
      if (entry.kind === 'full') {
        base = { type: entry.type, content: entry.content };
        if (deltas.length > 0) this.cache.set(at, base);
        break;
      }
      held += entry.delta.length;
      deltas.push(held <= DELTA_HOLD_BYTES ? entry.delta : undefined);
      targets.push(at);
      if (entry.kind === 'ofs') {
        at = entry.baseOffset;
        continue;
      }
      const inPack = this.index.lookup(entry.baseOid);
      if (inPack !== undefined) {
        at = inPack;
        continue;
      }
      const external = await this.options.resolveBase(entry.baseOid, depth + deltas.length);
      if (!external) {
        throw this.error(ErrorCodes.CORRUPT_OBJECT, at, `delta base ${entry.baseOid} is missing`, { base: entry.baseOid });
      }
      base = external;
      break;
    }
    for (let i = deltas.length - 1; i >= 0; i--) {
      let content: Buffer;
      const delta = deltas[i] ?? (await this.deltaAt(targets[i]!));
      try {
        content = applyDelta(base.content, delta, this.options.maxObjectBytes);
      } catch (e) {
        throw this.rethrow(e, targets[i]!);
      }
      deltas[i] = undefined;
      base = { type: base.type, content };
      if (i > 0) this.cache.set(targets[i]!, base);
    }
    return base;
  }

  /** The delta of the entry at `offset`, read again (resolve() found it a delta already). */
  private async deltaAt(offset: number): Promise<Buffer> {
    const entry = await this.readEntry(offset);
    if (entry.kind === 'full') throw this.error(ErrorCodes.CORRUPT_PACK, offset, 'entry changed while read');
    return entry.delta;
  }

  /** Reads, parses and inflates one entry with a single positioned read (or out of a window). */
  private async readEntry(offset: number): Promise<Entry> {
    const end = await this.checkedEnd(offset);
    const { buf, shared } = await this.readRange(offset, end);
    const h = this.withinLimit(this.parseHeader(buf, offset), offset, end);
    const inflated = this.inflate(buf, h.dataStart, h.size, offset);
    // A stored entry comes back in place; out of a window it is copied, or whoever keeps the
    // object (a tree cache) would keep the whole window alive with it.
    const data = shared && inflated.buffer === buf.buffer ? Buffer.from(inflated) : inflated;
    if (h.kind === 'ofs') return { kind: 'ofs', delta: data, baseOffset: h.baseOffset };
    if (h.kind === 'ref') return { kind: 'ref', delta: data, baseOid: h.baseOid };
    return { kind: 'full', type: h.kind, content: data };
  }

  /**
   * The whole entry at `at` (where this pack's index puts an object: `PackIndex.entryOf`), its
   * type/size header and its zlib stream as it lies in the pack, in memory of its own, if its
   * CRC-32 matches the index's; undefined when it does not (the general read then reports the damage).
   */
  async entry(at: { readonly offset: number; readonly crc32: number }): Promise<Buffer | undefined> {
    return this.inUse(async () => {
      const { buf, shared } = await this.readRange(at.offset, await this.checkedEnd(at.offset));
      return crc32(buf) === at.crc32 ? (shared ? Buffer.from(buf) : buf) : undefined;
    });
  }

  /**
   * The type of the object at `offset`, from entry headers alone (a delta's, from its base's, down
   * the chain), without inflating anything or checking a hash; undefined when a base lies in no
   * entry of this pack. Reads a small window per entry of the chain.
   */
  async typeAt(offset: number): Promise<ObjectType | undefined> {
    return this.inUse(async () => {
      const passed = new Set<number>();
      for (let at: number | undefined = offset; at !== undefined; ) {
        if (passed.has(at) || passed.size > MAX_DELTA_CHAIN) throw this.error(ErrorCodes.CORRUPT_PACK, offset, `delta chain loops or runs deeper than ${MAX_DELTA_CHAIN}`);
        passed.add(at);
        const { h } = await this.headAt(at);
        if (h.kind === 'ofs') at = h.baseOffset;
        else if (h.kind === 'ref') at = this.index.lookup(h.baseOid);
        else return h.kind;
      }
      return undefined;
    });
  }

  /**
   * The size the object at `offset` declares (a delta's target size), without
   * inflating it whole or checking its hash. Reads at most a small window.
   */
  async sizeAt(offset: number): Promise<number> {
    const declared = await this.inUse(async () => {
      const { buf, h } = await this.headAt(offset);
      if (h.kind !== 'ofs' && h.kind !== 'ref') return h.size;
      let head: Buffer;
      try {
        head = inflateSync(buf.subarray(h.dataStart), { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 4 * SIZE_WINDOW_BYTES * 1032 });
      } catch (e) {
        throw this.error(ErrorCodes.CORRUPT_OBJECT, offset, `bad zlib data (${(e as Error).message})`);
      }
      return deltaTargetSize(head);
    });
    return declared ?? (await this.readAt(offset)).content.length; // delta header beyond the window: rare
  }

  /**
   * Where the entry at `offset` ends, its header checked first when it is large: one declaring
   * more than the limits costs a small read, not its whole span.
   */
  private async checkedEnd(offset: number): Promise<number> {
    const end = this.entryEnd(offset);
    // A torn pack's last entry runs to whatever the file holds: no further than its size allows.
    if (end - offset > LARGE_ENTRY_BYTES || this.options.torn === true) {
      const head = Buffer.allocUnsafe(Math.min(SIZE_WINDOW_BYTES, end - offset));
      await readFully(this.fh, head, offset, this.path);
      const h = this.withinLimit(this.parseHeader(head, offset), offset, end);
      if (this.options.torn === true) return Math.min(end, offset + h.dataStart + deflateBound(h.size));
    }
    return end;
  }

  /**
   * `h`, if what it declares may be read whole: at most the limit for an object, twice that for a
   * delta (whose ops take room beyond its output). Above it is OBJECT_TOO_LARGE: headers alone
   * (sizeAt, typeAt, streamAt) are still read. A size more than the entry, ending at `end`, could
   * inflate to is a damaged header, CORRUPT_OBJECT: the object is lost, not merely large (a repair
   * lists it for writers to write again, unhad.ts).
   */
  private withinLimit(h: EntryHeader, offset: number, end: number): EntryHeader {
    const limit = h.kind === 'ofs' || h.kind === 'ref' ? this.maxDeltaBytes : this.options.maxObjectBytes;
    if (h.size <= limit) return h;
    const stored = end - offset - h.dataStart;
    if (h.size > inflateBound(stored)) throw this.error(ErrorCodes.CORRUPT_OBJECT, offset, `declares ${h.size} bytes, more than its ${stored} stored bytes inflate to`, { size: h.size });
    throw this.error(ErrorCodes.OBJECT_TOO_LARGE, offset, `declares ${h.size} bytes, above the limit of ${limit}`, { size: h.size, limit });
  }

  /** The first SIZE_WINDOW_BYTES of the entry at `at` (less if it is shorter), and its header parsed. Call within inUse. */
  private async headAt(at: number): Promise<{ buf: Buffer; h: EntryHeader }> {
    const buf = Buffer.allocUnsafe(Math.min(this.entryEnd(at) - at, SIZE_WINDOW_BYTES));
    await readFully(this.fh, buf, at, this.path);
    return { buf, h: this.parseHeader(buf, at) };
  }

  /**
   * The object at `offset` as a stream, if its entry is whole (not a delta): its type and size
   * from its header, its content inflated as the entry is read (blob-stream.ts), for objects
   * above the limit. Unchecked, like every read here; undefined for a delta.
   */
  async streamAt(offset: number): Promise<StreamedObject | undefined> {
    const { h } = await this.inUse(() => this.headAt(offset));
    if (h.kind === 'ofs' || h.kind === 'ref') return undefined;
    const corrupt = (why: string): never => {
      throw this.error(ErrorCodes.CORRUPT_OBJECT, offset, why);
    };
    return { type: h.kind, size: h.size, pieces: inflated(this.pieces(offset + h.dataStart, this.entryEnd(offset)), corrupt) };
  }

  /**
   * The object of the entry at `at` (where this pack's index puts it: `PackIndex.entryOf`) as its
   * zlib stream as it lies in the pack, in pieces, for sending a whole (not delta) object too large
   * to hold: its type and size from its header. The last piece comes only once the entry matched
   * the CRC-32 its index keeps (CORRUPT_OBJECT otherwise). Undefined for a delta.
   */
  async zlibStreamAt(at: { readonly offset: number; readonly crc32: number }): Promise<DeflatedStream | undefined> {
    const { buf, h } = await this.inUse(() => this.headAt(at.offset));
    if (h.kind === 'ofs' || h.kind === 'ref') return undefined;
    return { type: h.kind, size: h.size, zlib: this.crcChecked(crc32(buf.subarray(0, h.dataStart)), this.pieces(at.offset + h.dataStart, this.entryEnd(at.offset)), at) };
  }

  /** `pieces`, the rest of the entry at `at` after bytes whose CRC-32 is `crc`, the last held back until the whole entry matched `at.crc32`. */
  private async *crcChecked(crc: number, pieces: AsyncGenerator<Buffer>, at: { readonly offset: number; readonly crc32: number }): AsyncGenerator<Buffer> {
    let held: Buffer | undefined;
    for await (const piece of pieces) {
      crc = crc32(piece, crc);
      if (held !== undefined) yield held;
      held = piece;
    }
    if (crc !== at.crc32) throw this.error(ErrorCodes.CORRUPT_OBJECT, at.offset, 'entry does not match the CRC-32 of its index');
    if (held !== undefined) yield held;
  }

  /**
   * The bytes [start, end) of the pack, PIECE_BYTES at a time. From its first read to its end (or
   * its consumer's return()), the stream counts as a read in flight: close() waits for it, so a
   * stream of a pack merged or pruned away meanwhile ends well (the file, unlinked, is still read
   * through its descriptor). Every consumer ends or returns what it starts (a stream left hanging
   * would hold its pack's file open).
   */
  private async *pieces(start: number, end: number): AsyncGenerator<Buffer> {
    if (this.closing) throw new GitfsError(ErrorCodes.IO, `pack ${this.path} is closed`, { file: this.path });
    this.active++;
    try {
      for (let at = start; at < end; ) {
        const piece = Buffer.allocUnsafe(Math.min(PIECE_BYTES, end - at));
        await readFully(this.fh, piece, at, this.path);
        at += piece.length;
        yield piece;
      }
    } finally {
      this.settled();
    }
  }

  /** Where the entry starting at `offset` ends (the next entry's offset, or the trailer). */
  entryEnd(offset: number): number {
    const end = offset >= 12 ? this.index.entryEnd(offset, this.size) : undefined;
    if (end === undefined) throw this.error(ErrorCodes.CORRUPT_PACK, offset, 'no entry starts at this offset');
    return end;
  }

  /** Parses an entry's type/size header (and delta base) from the start of `buf`. */
  private parseHeader(buf: Buffer, offset: number): EntryHeader {
    const h = decodeEntry(buf, offset);
    if (typeof h === 'string') throw this.error(ErrorCodes.CORRUPT_PACK, offset, h);
    return h;
  }

  /**
   * The bytes [start, end). Entries read in pack order, one close after the other (a loose
   * stream of small objects: an export after `git gc`, fsck), come out of WINDOW_BYTES windows
   * read once each, instead of one read per entry; other reads (tree lookups all over the pack,
   * chunk-tree nodes between the chunks that blob-runs.ts reads) read just their entry.
   */
  private async readRange(start: number, end: number): Promise<{ buf: Buffer; shared: boolean }> {
    const sequential = start >= this.lastEnd && start - this.lastEnd <= SEQUENTIAL_GAP;
    this.lastEnd = end;
    const at = start - (start % WINDOW_BYTES);
    if (end <= at + WINDOW_BYTES) {
      let window = this.windows.get(at)?.bytes;
      if (window === undefined && sequential) window = this.openWindow(at);
      if (window !== undefined) return { buf: (await window).subarray(start - at, end - at), shared: true };
    }
    const buf = Buffer.allocUnsafe(end - start);
    await readFully(this.fh, buf, start, this.path);
    return { buf, shared: false };
  }

  private openWindow(at: number): Promise<Buffer> {
    const length = Math.min(WINDOW_BYTES, this.size - at);
    const window = (async () => {
      const buf = Buffer.allocUnsafe(length);
      await readFully(this.fh, buf, at, this.path);
      return buf;
    })();
    const key = {};
    const drop = (): void => {
      if (this.windows.get(at)?.drop === drop) this.windows.delete(at);
      allWindows.delete(key);
    };
    window.catch(drop);
    this.windows.set(at, { bytes: window, drop });
    keepWindow(key, drop);
    if (this.windows.size > MAX_WINDOWS) this.windows.values().next().value?.drop();
    return window;
  }

  private inflate(buf: Buffer, start: number, size: number, offset: number): Buffer {
    const stored = readZlibStored(buf, start, size);
    if (stored !== undefined) return stored;
    let out: Buffer;
    try {
      out = inflateSync(buf.subarray(start), { maxOutputLength: Math.max(1, size) });
    } catch (e) {
      if (isTooLarge(e)) throw this.error(ErrorCodes.HOSTILE_OBJECT, offset, `inflates to more than its declared ${size} bytes`, { size });
      throw this.error(ErrorCodes.CORRUPT_OBJECT, offset, `bad zlib data (${(e as Error).message})`);
    }
    if (out.length > size) throw this.error(ErrorCodes.HOSTILE_OBJECT, offset, `inflates to more than its declared ${size} bytes`, { size });
    if (out.length < size) throw this.error(ErrorCodes.CORRUPT_OBJECT, offset, `inflates to ${out.length} bytes, declared ${size}`);
    return out;
  }

  private error(code: GitfsError['code'], offset: number, why: string, data: Record<string, unknown> = {}): GitfsError {
    return new GitfsError(code, `pack ${this.path} entry at ${offset}: ${why}`, { file: this.path, offset, ...data });
  }

  /** Adds the pack and offset to a delta error. */
  private rethrow(e: unknown, offset: number): unknown {
    if (e instanceof GitfsError) return this.error(e.code, offset, e.message, { ...e.data });
    return e;
  }
}

/**
 * Reads exactly `buf.length` bytes at `position`; a short file is CORRUPT_PACK, other failures IO.
 * Through the descriptor with fs.read: FileHandle.read costs the main thread several times more
 * per call, and a chunk-tree walk makes thousands of small reads.
 */
export async function readFully(fh: FileHandle, buf: Buffer, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    let n: number;
    try {
      n = await new Promise<number>((resolve, reject) => read(fh.fd, buf, done, buf.length - done, position + done, (e, bytes) => (e ? reject(e) : resolve(bytes))));
    } catch (e) {
      throw new GitfsError(ErrorCodes.IO, `pack ${path}: read failed: ${(e as Error).message}`, { file: path }, { cause: e });
    }
    if (n === 0) throw new GitfsError(ErrorCodes.CORRUPT_PACK, `pack ${path}: truncated at ${position + done}`, { file: path });
    done += n;
  }
}

function isTooLarge(e: unknown): boolean {
  return e instanceof RangeError && (e as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';
}

/** LRU of delta bases by pack offset, bounded in content bytes. */
class BaseCache {
  private readonly map = new Map<number, GitObject>();
  private bytes = 0;
  constructor(private readonly capacity: number) {}

  get(offset: number): GitObject | undefined {
    const v = this.map.get(offset);
    if (v) {
      this.map.delete(offset);
      this.map.set(offset, v);
    }
    return v;
  }

  set(offset: number, obj: GitObject): void {
    const size = obj.content.length;
    if (size > this.capacity / 4 || this.map.has(offset)) return;
    this.map.set(offset, obj);
    this.bytes += size;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.capacity) break;
      this.map.delete(k);
      this.bytes -= v.content.length;
    }
  }
}
