/**
 * Writes objects straight into a new pack (.pack + .idx v2), never one loose file per object.
 *
 * Invariants:
 * - an object already in the repository, or already in this pack, is never written again;
 * - the pack is built under objects/pack/tmp_pack_gitfs_* (ignored by readers, removed by
 *   `git gc`'s temporary-file cleanup) and becomes visible only by rename, .pack first and .idx
 *   last, after both are fsynced; a crash leaves at worst an unreferenced temporary file;
 * - memory is bounded: entries are appended through a small buffer with positional writes, and
 *   the index keeps 20 + 16 bytes per object.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { zlibForStorage } from './compress.js';
import { hashObject, oidToBytes, type ObjectType, type Oid } from './oid.js';
import { encodeEntryHeader, packTypeOf, PACK_HEADER_BYTES, PACK_SIGNATURE, PACK_VERSION } from './pack-format.js';
import { encodePackIndex, type IndexEntry } from './pack-index-writer.js';
import { fsyncDir } from '../util/durable.js';

export interface PackWriterComponents {
  /** `<gitdir>/objects/pack`. */
  readonly packDir: string;
  /** What the repository already holds; `refresh` is called once the new pack is in place. */
  readonly existing: { has(oid: Oid): Promise<boolean>; refresh(): Promise<void> };
}

export interface PackWriterOptions {
  /** zlib level for compressible objects (0 stores everything uncompressed). */
  readonly compressionLevel: number;
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

const BUFFER_BYTES = 4 << 20;
const MAX_PENDING_WRITES = 4;

export class PackWriter {
  readonly stats: PackWriteStats = { objectsOffered: 0, bytesOffered: 0, objectsWritten: 0, bytesWritten: 0, bytesStored: 0 };
  private readonly seen = new Set<string>();
  private readonly entries: IndexEntry[] = [];
  private buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  private buffered = 0;
  private position = PACK_HEADER_BYTES;
  private readonly pendingWrites = new Set<Promise<unknown>>();
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

  /** Stores an object whose id the caller computed (it must be `hashObject(type, content)`). */
  writeHashed(oid: Oid, type: ObjectType, content: Uint8Array): Promise<Oid> {
    if (this.closed) throw new Error('PackWriter used after finish/abort');
    this.stats.objectsOffered++;
    this.stats.bytesOffered += content.length;
    if (this.seen.has(oid)) return Promise.resolve(oid);
    this.seen.add(oid);
    const task = this.store(oid, type, content);
    this.inflight.add(task);
    void task.finally(() => this.inflight.delete(task)).catch(() => undefined);
    return task;
  }

  private async store(oid: Oid, type: ObjectType, content: Uint8Array): Promise<Oid> {
    if (await this.components.existing.has(oid)) return oid;
    const z = await zlibForStorage(content, this.options.compressionLevel);
    const header = encodeEntryHeader(packTypeOf(type), content.length);
    this.entries.push({ id: oidToBytes(oid), offset: this.position, crc32: crc32(z, crc32(header)) });
    this.stats.objectsWritten++;
    this.stats.bytesWritten += content.length;
    this.stats.bytesStored += header.length + z.length;
    this.append(header);
    this.append(z);
    while (this.pendingWrites.size > MAX_PENDING_WRITES) await Promise.race(this.pendingWrites);
    return oid;
  }

  private append(data: Buffer): void {
    if (this.buffered + data.length > this.buffer.length) this.flush();
    if (data.length > this.buffer.length) {
      this.issueWrite(data, this.position);
    } else {
      data.copy(this.buffer, this.buffered);
      this.buffered += data.length;
    }
    this.position += data.length;
  }

  private flush(): void {
    if (this.buffered === 0) return;
    const out = this.buffer.subarray(0, this.buffered);
    this.issueWrite(out, this.position - this.buffered);
    this.buffer = Buffer.allocUnsafe(BUFFER_BYTES);
    this.buffered = 0;
  }

  private issueWrite(data: Buffer, at: number): void {
    const p = this.writeFully(data, at);
    this.pendingWrites.add(p);
    void p.finally(() => this.pendingWrites.delete(p)).catch(() => undefined);
  }

  private async writeFully(data: Buffer, at: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, at + done);
      done += bytesWritten;
    }
  }

  private async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
    this.flush();
    while (this.pendingWrites.size > 0) await Promise.all([...this.pendingWrites]);
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
    if (this.entries.length === 0) {
      await this.discard();
      return undefined;
    }
    try {
      const count = Buffer.alloc(4);
      count.writeUInt32BE(this.entries.length);
      await this.fh.write(count, 0, 4, 8);
      const checksum = await this.checksum();
      await this.writeFully(checksum, this.position);
      await this.fh.sync();
      await this.fh.close();
      const name = `pack-${checksum.toString('hex')}`;
      const idxTmp = `${this.tmpPath}.idx`;
      const idx = await open(idxTmp, 'wx', 0o444);
      try {
        await idx.writeFile(encodePackIndex(this.entries, checksum));
        await idx.sync();
      } finally {
        await idx.close();
      }
      await rename(this.tmpPath, join(this.components.packDir, `${name}.pack`));
      await rename(idxTmp, join(this.components.packDir, `${name}.idx`));
      await fsyncDir(this.components.packDir);
      await this.components.existing.refresh();
      return { name, objects: this.entries.length };
    } catch (e) {
      await rm(this.tmpPath, { force: true });
      await rm(`${this.tmpPath}.idx`, { force: true });
      throw e;
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
