/**
 * Writes objects straight into a new pack (.pack + .idx v2), never one loose file per object.
 *
 * Invariants:
 * - an object already in the repository, or already in this pack, is never written again;
 * - the pack is built under objects/pack/tmp_pack_gitfs_* (ignored by readers, removed by
 *   `git gc`'s temporary-file cleanup) and becomes visible only by rename, .pack first and .idx
 *   last, after both are fsynced; a crash leaves at worst an unreferenced temporary file;
 * - memory is bounded: entries are appended through a small buffer with positional writes, and
 *   the entry table keeps about 40 bytes per object.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { open, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateIfSmaller, isIncompressible, writeZlibStored, zlibStoredLength, zlibStoredPieces } from './compress.js';
import { entryCrc32, type StoredHint } from './stored-entry.js';
import { hashObject, type ObjectType, type Oid } from './oid.js';
import { encodeEntryHeader, packTypeOf, PACK_HEADER_BYTES, PACK_SIGNATURE, PACK_VERSION } from './pack-format.js';
import { encodePackIndex } from './pack-index-writer.js';
import { PackEntryTable } from './pack-entry-table.js';
import { fsyncDir } from '../util/durable.js';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';

export interface PackWriterComponents {
  /** `<gitdir>/objects/pack`. */
  readonly packDir: string;
  /** What the repository already holds (checked per object, so synchronous); `refresh` runs once the new pack is in place. */
  readonly existing: { contains(oid: Oid): boolean; refresh(): Promise<void> };
}

export interface PackWriterOptions {
  /** zlib level for compressible objects (0 stores everything uncompressed). */
  readonly compressionLevel: number;
  /** Mark the pack a promisor pack (src/repo/partial.ts): the marker is in place before the pack appears. */
  readonly promisor?: boolean;
}

export interface PackWriteStats {
  /** Objects offered to the writer, and their content bytes. */
  objectsOffered: number;
  bytesOffered: number;
  /** Objects actually written to this pack, their content bytes and their bytes in the pack. */
  objectsWritten: number;
  bytesWritten: number;
  bytesStored: number;
}

export interface FinishedPack {
  readonly name: string;
  readonly objects: number;
}

const BUFFER_BYTES = 1 << 20;
const MAX_PENDING_WRITES = 8;
const SYNC_EVERY_BYTES = 64 << 20;

export class PackWriter {
  readonly stats: PackWriteStats = { objectsOffered: 0, bytesOffered: 0, objectsWritten: 0, bytesWritten: 0, bytesStored: 0 };
  private readonly table = new PackEntryTable();
  private buffer: Buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  private buffered = 0;
  private position = PACK_HEADER_BYTES;
  private readonly pendingWrites = new Set<Promise<unknown>>();
  private readonly spare: Buffer[] = [];
  private unsynced = 0;
  private syncing: Promise<void> | undefined;
  /** The first failure of any background step (a write, a deflate, a datasync): it fails the pack. */
  private failure: unknown;
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;

  private constructor(
    private readonly components: PackWriterComponents,
    private readonly options: PackWriterOptions,
    private readonly fh: FileHandle,
    private readonly tmpPath: string,
  ) {}

  static async create(components: PackWriterComponents, options: PackWriterOptions): Promise<PackWriter> {
    const tmpPath = join(components.packDir, `tmp_pack_gitfs_${randomBytes(8).toString('hex')}`);
    const fh = await open(tmpPath, 'wx+', 0o444);
    const header = Buffer.alloc(PACK_HEADER_BYTES);
    PACK_SIGNATURE.copy(header, 0);
    header.writeUInt32BE(PACK_VERSION, 4);
    await fh.write(header, 0, header.length, 0);
    return new PackWriter(components, options, fh, tmpPath);
  }

  /** Stores one object held whole; resolves to its id once it is safely queued. */
  write(type: ObjectType, content: Uint8Array): Promise<Oid> {
    const oid = hashObject(type, content);
    return this.writeHashed(oid, type, content);
  }

  /**
   * Stores an object whose id the caller computed (it must be `hashObject(type, content)`).
   * Incompressible content is framed into the pack synchronously; the rest is deflated on the
   * thread pool. The promise settles when the writer can take more (back-pressure). A `hint`
   * (from the hash worker) says the content is stored uncompressed and carries its checksums.
   */
  writeHashed(oid: Oid, type: ObjectType, content: Uint8Array, hint?: StoredHint): Promise<Oid> {
    if (this.closed) throw new Error('PackWriter used after finish/abort');
    this.stats.objectsOffered++;
    this.stats.bytesOffered += content.length;
    if (this.components.existing.contains(oid)) return Promise.resolve(oid);
    const index = this.table.reserve(oid);
    if (index === undefined) return Promise.resolve(oid);
    if (hint !== undefined || this.options.compressionLevel === 0 || isIncompressible(content)) {
      this.appendStored(index, type, content, hint);
      return this.pendingWrites.size > MAX_PENDING_WRITES ? this.backpressure().then(() => oid) : Promise.resolve(oid);
    }
    const task = this.track(this.inflight, this.deflateAndAppend(index, type, content));
    return task.then(() => oid);
  }

  private async deflateAndAppend(index: number, type: ObjectType, content: Uint8Array): Promise<void> {
    const deflated = await deflateIfSmaller(content, this.options.compressionLevel);
    this.appendEntry(index, type, content.length, deflated === undefined ? zlibStoredPieces(content) : [deflated]);
    await this.backpressure();
  }

  private backpressure(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(asPackError(this.failure, this.tmpPath));
    return this.pendingWrites.size > MAX_PENDING_WRITES ? Promise.race(this.pendingWrites).then(() => this.backpressure()) : Promise.resolve();
  }

  /** Appends one entry: its type/size header, then its zlib stream given as pieces. */
  private appendEntry(index: number, type: ObjectType, size: number, zlibPieces: readonly Uint8Array[], knownCrc?: number): void {
    const offset = this.position;
    this.append(encodeEntryHeader(packTypeOf(type), size));
    for (const piece of zlibPieces) this.append(piece);
    const crc = knownCrc ?? entryCrc32(type, size, zlibPieces);
    this.table.place(index, offset, crc);
    this.stats.objectsWritten++;
    this.stats.bytesWritten += size;
    this.stats.bytesStored += this.position - offset;
  }

  /** Appends one entry stored uncompressed, framed straight into the write buffer when it fits. */
  private appendStored(index: number, type: ObjectType, content: Uint8Array, hint: StoredHint | undefined): void {
    const header = encodeEntryHeader(packTypeOf(type), content.length);
    const length = header.length + zlibStoredLength(content.length);
    if (length > this.buffer.length) {
      this.appendEntry(index, type, content.length, zlibStoredPieces(content, hint?.adler32), hint?.entryCrc32);
      return;
    }
    if (this.buffered + length > this.buffer.length) this.flush();
    const start = this.buffered;
    this.buffer.set(header, start);
    const end = writeZlibStored(this.buffer, start + header.length, content, hint?.adler32);
    this.table.place(index, this.position, hint?.entryCrc32 ?? crc32(this.buffer.subarray(start, end)));
    this.buffered = end;
    this.position += length;
    this.stats.objectsWritten++;
    this.stats.bytesWritten += content.length;
    this.stats.bytesStored += length;
  }

  private append(data: Uint8Array): void {
    if (this.buffered + data.length > this.buffer.length) this.flush();
    if (data.length > this.buffer.length) {
      this.issueWrite(Buffer.from(data.buffer, data.byteOffset, data.length), this.position);
    } else {
      this.buffer.set(data, this.buffered);
      this.buffered += data.length;
    }
    this.position += data.length;
  }

  private flush(): void {
    if (this.buffered === 0) return;
    const full = this.buffer;
    this.issueWrite(full.subarray(0, this.buffered), this.position - this.buffered, () => this.spare.push(full));
    this.buffer = this.spare.pop() ?? Buffer.allocUnsafe(BUFFER_BYTES);
    this.buffered = 0;
  }

  private issueWrite(data: Buffer, at: number, done?: () => void): void {
    this.track(this.pendingWrites, this.writeFully(data, at).then(done));
    this.unsynced += data.length;
    if (this.unsynced >= SYNC_EVERY_BYTES && this.syncing === undefined) {
      // Flush dirty pages to disk while the writer keeps going, so the final fsync is short.
      this.unsynced = 0;
      const sync = this.fh.datasync();
      this.syncing = sync.then(
        () => void (this.syncing = undefined),
        (e: unknown) => {
          this.failure ??= e;
          this.syncing = undefined;
        },
      );
    }
  }

  /**
   * Keeps `task` in `set` while it runs. A failure is remembered in `failure` (so it is never
   * lost when the promise leaves the set) and still rejects the returned promise.
   */
  private track<T>(set: Set<Promise<unknown>>, task: Promise<T>): Promise<T> {
    set.add(task);
    task.then(
      () => set.delete(task),
      (e: unknown) => {
        this.failure ??= e;
        set.delete(task);
      },
    );
    return task;
  }

  private async writeFully(data: Buffer, at: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, at + done);
      done += bytesWritten;
    }
  }

  private async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    this.flush();
    while (this.pendingWrites.size > 0) await Promise.allSettled([...this.pendingWrites]);
    await this.syncing;
    if (this.failure !== undefined) throw asPackError(this.failure, this.tmpPath);
  }

  /**
   * Completes the pack and makes it visible. Resolves to undefined when nothing new was written
   * (the temporary file is removed).
   */
  async finish(): Promise<FinishedPack | undefined> {
    try {
      await this.drain();
    } catch (e) {
      await this.abort();
      throw e;
    }
    this.closed = true;
    if (this.table.count === 0) {
      await this.discard();
      return undefined;
    }
    try {
      const count = Buffer.alloc(4);
      count.writeUInt32BE(this.table.count);
      await this.fh.write(count, 0, 4, 8);
      const checksum = await this.checksum();
      await this.writeFully(checksum, this.position);
      await this.fh.sync();
      await this.fh.close();
      const name = `pack-${checksum.toString('hex')}`;
      const idxTmp = `${this.tmpPath}.idx`;
      const idx = await open(idxTmp, 'wx', 0o444);
      try {
        await idx.writeFile(encodePackIndex(this.table, checksum));
        await idx.sync();
      } finally {
        await idx.close();
      }
      if (this.options.promisor === true) await writeFile(join(this.components.packDir, `${name}.promisor`), '', { mode: 0o444 });
      await rename(this.tmpPath, join(this.components.packDir, `${name}.pack`));
      await rename(idxTmp, join(this.components.packDir, `${name}.idx`));
      await fsyncDir(this.components.packDir);
      await this.components.existing.refresh();
      return { name, objects: this.table.count };
    } catch (e) {
      await this.fh.close().catch(() => undefined);
      await rm(this.tmpPath, { force: true });
      await rm(`${this.tmpPath}.idx`, { force: true });
      throw asPackError(e, this.tmpPath);
    }
  }

  /** SHA-1 over the whole pack as written (the header's count is only known at the end). */
  private async checksum(): Promise<Buffer> {
    const hash = createHash('sha1');
    const piece = Buffer.allocUnsafe(8 << 20);
    for (let at = 0; at < this.position; ) {
      const { bytesRead } = await this.fh.read(piece, 0, Math.min(piece.length, this.position - at), at);
      if (bytesRead === 0) throw new Error('pack shrank while being written');
      hash.update(piece.subarray(0, bytesRead));
      at += bytesRead;
    }
    return hash.digest();
  }

  /** Drops everything written so far. */
  async abort(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight, ...this.pendingWrites]);
    await this.discard();
  }

  private async discard(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }
}

/** A failure while building a pack, as a GitfsError (I/O errors such as ENOSPC become GITFS_IO). */
function asPackError(e: unknown, path: string): GitfsError {
  if (e instanceof GitfsError) return e;
  return new GitfsError(ErrorCodes.IO, `writing pack ${path} failed: ${(e as Error).message}`, { path, errno: errnoCode(e) }, { cause: e });
}
