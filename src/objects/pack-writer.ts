/**
 * Writes objects straight into new packs (.pack + .idx v2), never one loose file per object.
 *
 * A batch of objects (one commit's worth) goes into packs of at most `maxObjectsPerPack`
 * objects. Each pack's header announces that many from the start, so the pack's SHA-1 trailer
 * is computed while its bytes go out; only the last pack, which usually holds fewer, is read
 * back once to hash it with its real count (as `git fast-import` does for every pack).
 *
 * Invariants:
 * - an object already in the repository, or already offered to this writer, is never written again;
 * - a pack is built under objects/pack/tmp_pack_gitfs_<pid>_<start ticks>_<random> and its index
 *   under tmp_idx_gitfs_*
 *   (ignored by readers, removed by `git gc`'s temporary-file cleanup once old, never while
 *   being written) and becomes visible only by rename, .pack first and .idx
 *   last, after both are fsynced; a crash leaves at worst an unreferenced temporary file, or
 *   complete packs whose objects nothing refers to yet (they are kept: another writer may
 *   already have found an object in them);
 * - memory is bounded: entries are framed into a few 1 MiB blocks written in order (PackOutput,
 *   direct I/O where the file system takes it), trees wait in up to GROUPED_TREE_BYTES, and the
 *   writer keeps about 70 bytes per object;
 * - trees lie together in runs (written when GROUPED_TREE_BYTES of them wait, and at finish).
 */
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateIfSmaller, isIncompressible, writeZlibStored, zlibStoredLength, zlibStoredPieces } from './compress.js';
import type { StoredHint } from './stored-entry.js';
import { hashObject, type ObjectType, type Oid } from './oid.js';
import { encodeEntryHeader, packTypeOf, PACK_HEADER_BYTES, PACK_SIGNATURE, PACK_VERSION } from './pack-format.js';
import { encodePackIndex } from './pack-index-writer.js';
import { PackEntryTable } from './pack-entry-table.js';
import { PackOutput } from './pack-output.js';
import { fsyncDir } from '../util/durable.js';
import { thisProcess } from '../util/proc.js';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';

export interface PackWriterComponents {
  /** `<gitdir>/objects/pack`. */
  readonly packDir: string;
  /**
   * What the repository already holds (checked per object, so synchronous); `refresh` runs once
   * the new pack is in place; `freshened` resolves once what `contains` found is safe from a
   * git gc (freshen.ts), and finish() waits for it.
   */
  readonly existing: { contains(oid: Oid): boolean; refresh(): Promise<void>; freshened(): Promise<void> };
}

export interface PackWriterOptions {
  /** zlib level for compressible objects (0 stores everything uncompressed). */
  readonly compressionLevel: number;
  /** Mark the packs promisor packs (src/repo/partial.ts): the marker is in place before a pack appears. */
  readonly promisor?: boolean;
  /** Objects per pack (default DEFAULT_OBJECTS_PER_PACK: ~256 MiB of 8 KiB chunks). */
  readonly maxObjectsPerPack?: number;
  /**
   * Hash each pack as it is written (default true). False for writers whose packs stay well below
   * maxObjectsPerPack (the swarm finishes one every 16 MiB): such a pack is read back for its
   * trailer anyway, and hashing it on the way out too would be a wasted pass.
   */
  readonly hashWhileWriting?: boolean;
}

/** 2^15 objects: a GiB of chunks makes four packs, and the last one read back is at most this many. */
export const DEFAULT_OBJECTS_PER_PACK = 1 << 15;

export interface PackWriteStats {
  /** Objects offered to the writer, and their content bytes. */
  objectsOffered: number;
  bytesOffered: number;
  /** Objects actually written to this pack, their content bytes and their bytes in the pack. */
  objectsWritten: number;
  bytesWritten: number;
  bytesStored: number;
}

/** An entry being written piece by piece (PackWriter.streamEntry). */
export interface EntryStream {
  /** Appends the next bytes of the zlib stream; settles when the writer can take more (it is then done with them). */
  write(zlib: Uint8Array): Promise<void>;
  /** The stream is whole and checked: the entry counts. */
  end(): void;
}

export interface FinishedPacks {
  /** `pack-<checksum>` of each pack made visible, in the order written. */
  readonly names: readonly string[];
  readonly objects: number;
}

/**
 * Trees are held back and written together, when this many bytes of them wait or at finish():
 * a walk of a closure reads every tree of it, and the nodes of a chunked file's tree, written
 * between its chunks, lay one per ~130 KiB of a pack (one random read each); together they come
 * out of a few windows (pack-file.ts). Memory stays bounded by this.
 */
const GROUPED_TREE_BYTES = 4 << 20;

/** One pack being filled. */
interface Segment {
  readonly tmpPath: string;
  readonly out: PackOutput;
  readonly table: PackEntryTable;
}

export class PackWriter {
  readonly stats: PackWriteStats = { objectsOffered: 0, bytesOffered: 0, objectsWritten: 0, bytesWritten: 0, bytesStored: 0 };
  /** Every object offered, for the "never twice" rule across this writer's packs (offsets unused). */
  private readonly offered = new PackEntryTable();
  private segment: Segment;
  /** Packs full and being made visible, in order; each resolves to its name. */
  private readonly sealing: Array<Promise<string>> = [];
  /** The first failure of a deflate or of sealing a pack: it fails the writer. */
  private failure: unknown;
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;
  private readonly maxObjects: number;
  /** Whether packs are hashed as they are written (PackWriterOptions.hashWhileWriting). */
  private readonly hashing: boolean;
  /** Trees offered and not yet written (see GROUPED_TREE_BYTES), and their bytes. */
  private trees: Array<{ readonly id: Buffer; readonly content: Buffer; readonly hint: StoredHint | undefined }> = [];
  private treeBytes = 0;
  /** Entries started by streamEntry and not ended. */
  private streaming = 0;

  private constructor(
    private readonly components: PackWriterComponents,
    private readonly options: PackWriterOptions,
  ) {
    this.maxObjects = options.maxObjectsPerPack ?? DEFAULT_OBJECTS_PER_PACK;
    this.hashing = options.hashWhileWriting !== false;
    if (!Number.isInteger(this.maxObjects) || this.maxObjects < 1 || this.maxObjects >= 2 ** 32) throw new RangeError('maxObjectsPerPack out of range');
    this.segment = this.newSegment();
  }

  static async create(components: PackWriterComponents, options: PackWriterOptions): Promise<PackWriter> {
    const writer = new PackWriter(components, options);
    // Fails here (not at the first write) when the pack directory cannot take a file.
    await writer.segment.out.ready().catch(async (e: unknown) => {
      await writer.abort();
      throw asPackError(e, writer.segment.tmpPath);
    });
    return writer;
  }

  private newSegment(): Segment {
    // Named with its writer (pid and start time): a dead writer's is known as such (pack-merge.ts removeStaleTemporaries).
    const { pid, startTicks } = thisProcess();
    const tmpPath = join(this.components.packDir, `tmp_pack_gitfs_${pid}_${startTicks}_${randomBytes(8).toString('hex')}`);
    const out = new PackOutput(tmpPath, 0o444, this.hashing);
    const header = Buffer.alloc(PACK_HEADER_BYTES);
    PACK_SIGNATURE.copy(header, 0);
    header.writeUInt32BE(PACK_VERSION, 4);
    header.writeUInt32BE(this.maxObjects, 8);
    out.append(header);
    return { tmpPath, out, table: new PackEntryTable() };
  }

  /** Stores one object held whole; resolves to its id once it is safely queued. */
  write(type: ObjectType, content: Uint8Array): Promise<Oid> {
    const oid = hashObject(type, content);
    return this.writeHashed(oid, type, content);
  }

  /**
   * Stores an object whose id the caller computed (it must be `hashObject(type, content)`).
   * Incompressible content is framed into the pack synchronously; the rest is deflated on the
   * thread pool. The promise settles when the writer can take more (back-pressure), and the
   * writer is then done with `content`. A `hint` (from the hash worker, or a chunk-tree node)
   * says the content is stored uncompressed and carries the Adler-32 of its zlib stream;
   * `deflated` is given the zlib stream of content that was deflated, to pass on as it is.
   */
  writeHashed(oid: Oid, type: ObjectType, content: Uint8Array, hint?: StoredHint, deflated?: (zlib: Buffer) => void): Promise<Oid> {
    const id = this.offer(oid, content.length);
    if (id === undefined) return Promise.resolve(oid);
    if (type === 'tree') {
      // Held back (a copy: the caller may reuse its buffer) and written together, see GROUPED_TREE_BYTES.
      this.trees.push({ id, content: Buffer.from(content), hint });
      this.treeBytes += content.length;
      if (this.treeBytes >= GROUPED_TREE_BYTES) this.appendTrees();
    } else {
      const deflating = this.frame(id, type, content, hint, deflated);
      if (deflating !== undefined) return deflating.then(() => oid);
    }
    return this.settled(oid);
  }

  /**
   * Stores an object given as the zlib stream of its content, as it is: the caller checked that
   * it inflates, consumed whole, to `size` bytes that hash to `oid` (a peer's pack entry).
   */
  writeDeflated(oid: Oid, type: ObjectType, size: number, zlib: Uint8Array): Promise<Oid> {
    const id = this.offer(oid, size);
    if (id === undefined) return Promise.resolve(oid);
    this.appendEntry(id, type, size, [zlib]);
    return this.settled(oid);
  }

  /**
   * Starts the entry of an object whose zlib stream comes in pieces (a blob too large to hold,
   * received from a peer in parts): undefined when the object is here or offered already. The
   * caller checks what it writes as it goes, and ends the entry once the stream and the object's
   * id checked; only then is it counted and indexed. A writer with an entry started and not ended
   * must be aborted, never finished (finish() refuses): its pack would hold bytes no index names.
   */
  streamEntry(oid: Oid, type: ObjectType, size: number): EntryStream | undefined {
    const id = this.offer(oid, size);
    if (id === undefined) return undefined;
    const { out } = this.segment;
    const offset = out.length;
    const header = encodeEntryHeader(packTypeOf(type), size);
    out.append(header);
    let crc = crc32(header);
    this.streaming++;
    return {
      write: (zlib) => {
        out.append(zlib);
        crc = crc32(zlib, crc);
        return this.backpressure();
      },
      end: () => {
        this.streaming--;
        this.placed(id, offset, crc, size, out.length - offset);
      },
    };
  }

  /** The raw id under which a new object is to be written; undefined when it is here or offered already. */
  private offer(oid: Oid, size: number): Buffer | undefined {
    if (this.closed) throw new Error('PackWriter used after finish/abort');
    this.stats.objectsOffered++;
    this.stats.bytesOffered += size;
    if (this.components.existing.contains(oid)) return undefined;
    const offered = this.offered.reserve(oid);
    return offered === undefined ? undefined : this.offered.id(offered);
  }

  /** Resolves to `oid` once the writer can take more (at once unless its blocks are all queued). */
  private settled(oid: Oid): Promise<Oid> {
    return this.failure === undefined && this.segment.out.writable ? Promise.resolve(oid) : this.backpressure().then(() => oid);
  }

  /**
   * Frames one entry: stored at once (undefined), or deflated on the thread pool (the task, which
   * settles once the writer can take more). `deflated` is given the zlib stream when it is kept.
   */
  private frame(id: Buffer, type: ObjectType, content: Uint8Array, hint: StoredHint | undefined, deflated?: (zlib: Buffer) => void): Promise<void> | undefined {
    if (hint !== undefined || this.options.compressionLevel === 0 || isIncompressible(content)) {
      this.appendStored(id, type, content, hint);
      return undefined;
    }
    return this.track(this.deflateAndAppend(id, type, content, deflated));
  }

  /** Writes the trees held back, one after another (a deflate's failure fails the writer). */
  private appendTrees(): void {
    const trees = this.trees;
    this.trees = [];
    this.treeBytes = 0;
    for (const t of trees) this.frame(t.id, 'tree', t.content, t.hint)?.catch(() => undefined);
  }

  private async deflateAndAppend(id: Buffer, type: ObjectType, content: Uint8Array, kept?: (zlib: Buffer) => void): Promise<void> {
    const deflated = await deflateIfSmaller(content, this.options.compressionLevel);
    this.appendEntry(id, type, content.length, deflated === undefined ? zlibStoredPieces(content) : [deflated]);
    if (deflated !== undefined) kept?.(deflated);
    await this.backpressure();
  }

  private backpressure(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(asPackError(this.failure, this.segment.tmpPath));
    return this.segment.out.whenWritable().catch((e: unknown) => Promise.reject(asPackError(e, this.segment.tmpPath)));
  }

  /** Appends one entry: its type/size header, then its zlib stream given as pieces; the CRC-32 covers them all. */
  private appendEntry(id: Buffer, type: ObjectType, size: number, zlibPieces: readonly Uint8Array[]): void {
    const { out } = this.segment;
    const offset = out.length;
    const header = encodeEntryHeader(packTypeOf(type), size);
    out.append(header);
    let crc = crc32(header);
    for (const piece of zlibPieces) {
      out.append(piece);
      crc = crc32(piece, crc);
    }
    this.placed(id, offset, crc, size, out.length - offset);
  }

  /** Appends one entry stored uncompressed, framed straight into the write block when it fits. */
  private appendStored(id: Buffer, type: ObjectType, content: Uint8Array, hint: StoredHint | undefined): void {
    const { out } = this.segment;
    const header = encodeEntryHeader(packTypeOf(type), content.length);
    const length = header.length + zlibStoredLength(content.length);
    const block = out.window(length);
    if (block === undefined) {
      this.appendEntry(id, type, content.length, zlibStoredPieces(content, hint?.adler32));
      return;
    }
    const start = out.fill;
    const offset = out.length;
    block.set(header, start);
    const end = writeZlibStored(block, start + header.length, content, hint?.adler32);
    const crc = crc32(block.subarray(start, end));
    out.advance(length);
    this.placed(id, offset, crc, content.length, length);
  }

  /** Records an entry (its raw id) just appended; a pack that reaches its announced count is sealed. */
  private placed(id: Buffer, offset: number, crc: number, size: number, stored: number): void {
    const { table } = this.segment;
    table.place(table.reserveId(id) as number, offset, crc);
    this.stats.objectsWritten++;
    this.stats.bytesWritten += size;
    this.stats.bytesStored += stored;
    if (table.count === this.maxObjects) {
      const full = this.segment;
      this.segment = this.newSegment();
      const sealed = this.seal(full, full.out.finish().then(() => this.fullChecksum(full)));
      sealed.catch((e: unknown) => void (this.failure ??= e));
      this.sealing.push(sealed);
    }
  }

  /** Keeps a deflate in `inflight` while it runs; its failure fails the writer. */
  private track<T>(task: Promise<T>): Promise<T> {
    this.inflight.add(task);
    task.then(
      () => this.inflight.delete(task),
      (e: unknown) => {
        this.failure ??= e;
        this.inflight.delete(task);
      },
    );
    return task;
  }

  /**
   * Completes the last pack and makes every pack visible. Resolves to undefined when nothing new
   * was written (the temporary file is removed).
   */
  async finish(): Promise<FinishedPacks | undefined> {
    if (this.streaming > 0) {
      await this.abort();
      throw new Error('PackWriter finished with a streamed entry not ended: aborted');
    }
    this.appendTrees();
    // The last pack is known once every deflate has placed its entry (one may fill a pack).
    let last = this.segment;
    try {
      while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
      if (this.failure !== undefined) throw this.failure;
      this.closed = true;
      last = this.segment;
      await last.out.finish();
    } catch (e) {
      await this.abort();
      throw asPackError(e, last.tmpPath);
    }
    let names: string[];
    try {
      names = await this.settleSealed();
    } catch (e) {
      await this.discard(last);
      throw e;
    }
    if (last.table.count > 0) names.push(await this.seal(last, this.lastChecksum(last)));
    else await this.discard(last);
    await this.components.existing.freshened();
    if (names.length === 0) return undefined;
    await this.components.existing.refresh();
    return { names, objects: this.stats.objectsWritten };
  }

  /** The names of the sealed packs, once all are visible; the first failure otherwise. */
  private async settleSealed(): Promise<string[]> {
    const settled = await Promise.allSettled(this.sealing);
    const names: string[] = [];
    for (const r of settled) {
      if (r.status === 'rejected') throw asPackError(r.reason, this.segment.tmpPath);
      names.push(r.value);
    }
    return names;
  }

  /** A finished pack's checksum when its header's count was right from the start. */
  private fullChecksum(segment: Segment): Buffer | Promise<Buffer> {
    return this.hashing ? segment.out.streamedSha1() : segment.out.sha1();
  }

  /** The last pack's checksum: unless it is full, its header gets the real count and it is read back. */
  private async lastChecksum(segment: Segment): Promise<Buffer> {
    if (segment.table.count === this.maxObjects) return this.fullChecksum(segment);
    const count = Buffer.alloc(4);
    count.writeUInt32BE(segment.table.count);
    await segment.out.patch(8, count);
    return segment.out.sha1();
  }

  /** Writes the trailer and the index, fsyncs both and renames them into place; the pack's name. */
  private async seal(segment: Segment, checksumOf: Promise<Buffer>): Promise<string> {
    const { out, tmpPath, table } = segment;
    // Not `<tmp>.idx`: git gc deletes at once any .idx without its .pack (git's own is tmp_idx_*).
    const idxTmp = tmpPath.replace(/tmp_pack_gitfs_(?=[0-9a-f_]+$)/, 'tmp_idx_gitfs_');
    let packName: string | undefined;
    try {
      const checksum = await checksumOf;
      await out.patch(out.length, checksum);
      await out.sync();
      await out.close();
      const name = `pack-${checksum.toString('hex')}`;
      const idx = await open(idxTmp, 'wx', 0o444);
      try {
        await idx.writeFile(encodePackIndex(table, checksum));
        await idx.sync();
      } finally {
        await idx.close();
      }
      if (this.options.promisor === true) await writePromisorMark(join(this.components.packDir, `${name}.promisor`));
      await rename(tmpPath, join(this.components.packDir, `${name}.pack`));
      packName = name;
      await rename(idxTmp, join(this.components.packDir, `${name}.idx`));
      await fsyncDir(this.components.packDir);
      return name;
    } catch (e) {
      await out.close().catch(() => undefined);
      await rm(tmpPath, { force: true });
      await rm(idxTmp, { force: true });
      // A .pack without its .idx makes git repack --cruft fail; the same pack written whole by
      // another writer (same content, same name) has its .idx, and stays.
      if (packName !== undefined && !(await stat(join(this.components.packDir, `${packName}.idx`)).then(() => true, () => false))) {
        await rm(join(this.components.packDir, `${packName}.pack`), { force: true });
      }
      throw asPackError(e, tmpPath);
    }
  }

  /** Drops the pack being filled (packs already sealed stay: see the invariants). */
  async abort(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight, ...this.sealing]);
    await this.discard(this.segment);
  }

  private async discard(segment: Segment): Promise<void> {
    await segment.out.close().catch(() => undefined);
    await rm(segment.tmpPath, { force: true });
  }
}

/** A failure while building a pack, as a GitfsError (I/O errors such as ENOSPC become GITFS_IO). */
function asPackError(e: unknown, path: string): GitfsError {
  if (e instanceof GitfsError) return e;
  return new GitfsError(ErrorCodes.IO, `writing pack ${path} failed: ${(e as Error).message}`, { path, errno: errnoCode(e) }, { cause: e });
}

/**
 * The empty `<pack>.promisor` file beside a promisor pack. One already there marks the same pack
 * (made again: a merge or repair writes the same objects as one already here): kept, as opening
 * the read-only file to write it again is refused to anyone but root.
 */
async function writePromisorMark(path: string): Promise<void> {
  try {
    await writeFile(path, '', { mode: 0o444, flag: 'wx' });
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e;
  }
}
