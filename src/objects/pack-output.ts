/**
 * The byte sink of a pack being built: an append-only file written in whole 1 MiB blocks, one
 * write at a time, with O_DIRECT where the file system takes it.
 *
 * Why direct I/O: a commit writes its data once and does not read it again soon, and copying a
 * GiB into fresh page-cache pages cost this machine's kernel 1–3 CPU-s per GiB (BENCHMARKS.md,
 * "Limits"); direct writes move the blocks from memory to the device without that copy and leave
 * the page cache to what is read. Direct I/O needs buffers, offsets and lengths aligned to the
 * device's blocks: the blocks live in WebAssembly memory, whose start is page-aligned, and every
 * write but the last covers a whole block at a multiple of its size. The last is padded to
 * ALIGN and the file is truncated back to its length.
 *
 * The output also hashes its bytes on the way out (SHA-1, in order), so that a pack whose header
 * was right from the start needs no second pass for its trailer.
 *
 * Invariants:
 * - bytes reach the file in the order appended, each exactly once; a failed write fails the output
 *   (`failure`), and every later call reports it;
 * - `streamedSha1` covers exactly the bytes appended, as appended (later patches are not in it);
 * - at most BLOCKS blocks are held: `whenWritable` resolves once a block is free;
 * - when O_DIRECT is refused (EINVAL at open or at the first write), the same file is written
 *   through the page cache instead, with the same results.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createHash, type Hash } from 'node:crypto';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';

/** Bytes per block; writes are whole blocks except the file's last. */
export const BLOCK_BYTES = 1 << 20;
/** Alignment that direct I/O asks for here (logical block size of any common device, and a page). */
const ALIGN = 4096;
/** Blocks one output may hold: the one being filled and those queued for writing. */
const BLOCKS = 6;
const WASM_PAGE = 65536;

interface WasmMemoryApi {
  readonly Memory: new (descriptor: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmMemoryApi }).WebAssembly;

/** Page-aligned blocks, shared by all outputs of the process; a slab is never freed or grown. */
const freeBlocks: Buffer[] = [];
function takeBlock(): Buffer {
  const free = freeBlocks.pop();
  if (free !== undefined) return free;
  const pages = (BLOCKS * BLOCK_BYTES) / WASM_PAGE;
  const slab = new wasm.Memory({ initial: pages, maximum: pages }).buffer;
  for (let i = 1; i < BLOCKS; i++) freeBlocks.push(Buffer.from(slab, i * BLOCK_BYTES, BLOCK_BYTES));
  return Buffer.from(slab, 0, BLOCK_BYTES);
}

/** How files are opened: `fs/promises` open. */
export type Opener = (path: string, flags: string | number, mode?: number) => Promise<FileHandle>;

interface Files {
  readonly fh: FileHandle;
  /** The same file opened with O_DIRECT, when the file system takes it. */
  direct: FileHandle | undefined;
}

export class PackOutput {
  /** Bytes appended so far (the file's length once finished). */
  length = 0;
  /** The SHA-1 of the bytes as they go out; undefined when the owner hashes the file once read back. */
  private readonly hash: Hash | undefined;
  /** The block being filled, and how much of it is. */
  private block: Buffer;
  private filled = 0;
  private held = 1;
  private writeTail: Promise<void> = Promise.resolve();
  private waiters: (() => void)[] = [];
  private failure: unknown;
  /** The files, once open: creating `path` is the first step queued, so an output is usable at once. */
  private readonly files: Promise<Files>;

  /**
   * An output that creates `path` (which must not exist) with `mode`; `hashing`: whether to hash
   * the bytes on the way out (`streamedSha1`); `opener` opens files (tests pass their own).
   */
  constructor(path: string, mode: number, hashing = true, opener: Opener = open) {
    this.hash = hashing ? createHash('sha1') : undefined;
    this.block = takeBlock();
    this.files = openFiles(opener, path, mode);
    this.writeTail = this.files.then(
      () => undefined,
      (e: unknown) => void (this.failure ??= e),
    );
  }

  /**
   * The current block when `length` more bytes fit in it, to be filled from `fill` and then
   * passed to `advance`; undefined when they do not fit (use `append`).
   */
  window(length: number): Buffer | undefined {
    return this.filled + length <= BLOCK_BYTES ? this.block : undefined;
  }

  /** Where the free part of the current block starts. */
  get fill(): number {
    return this.filled;
  }

  /** Counts `n` bytes written into the window at `fill`. */
  advance(n: number): void {
    this.filled += n;
    this.length += n;
    if (this.filled === BLOCK_BYTES) this.flush();
  }

  /** Copies `data` in, across blocks as needed. */
  append(data: Uint8Array): void {
    for (let at = 0; at < data.length; ) {
      const n = Math.min(data.length - at, BLOCK_BYTES - this.filled);
      this.block.set(data.subarray(at, at + n), this.filled);
      at += n;
      this.advance(n);
    }
  }

  /** Whether another block may be filled now (`whenWritable` would resolve at once). */
  get writable(): boolean {
    return this.failure === undefined && this.held < BLOCKS;
  }

  /** Resolves once another block may be filled without exceeding BLOCKS; rejects after a failure. */
  whenWritable(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.held < BLOCKS) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiters.push(resolve)).then(() => this.whenWritable());
  }

  private flush(): void {
    const full = this.block;
    this.hash?.update(full);
    const at = this.length - this.filled;
    this.queue(full, at, BLOCK_BYTES);
    this.block = takeBlock();
    this.held++;
    this.filled = 0;
  }

  /** Writes `length` bytes of `block` at `at` after the writes before it, then frees the block. */
  private queue(block: Buffer, at: number, length: number): void {
    const write = this.writeTail.then(() => this.writeAligned(block, at, length));
    this.writeTail = write.then(
      () => this.release(block),
      (e: unknown) => {
        this.failure ??= e;
        this.release(block);
      },
    );
  }

  private release(block: Buffer): void {
    freeBlocks.push(block);
    this.held--;
    for (const wake of this.waiters.splice(0)) wake();
  }

  private async writeAligned(block: Buffer, at: number, length: number): Promise<void> {
    if (this.failure !== undefined) return;
    const files = await this.files;
    if (files.direct !== undefined) {
      try {
        await writeFully(files.direct, block, Math.ceil(length / ALIGN) * ALIGN, at);
        return;
      } catch (e) {
        if (errnoCode(e) !== 'EINVAL' || at !== 0) throw e;
        // Refused at the first write: this file system opens O_DIRECT but cannot do it.
        await files.direct.close();
        files.direct = undefined;
      }
    }
    await writeFully(files.fh, block, length, at);
  }

  /** Resolves once the file exists (rejects when it cannot be created). */
  async ready(): Promise<void> {
    await this.files;
  }

  /** SHA-1 of every byte appended, in order; valid once `finish` has resolved. */
  streamedSha1(): Buffer {
    if (this.hash === undefined) throw new Error('this output does not hash on the way out');
    return this.hash.digest();
  }

  /** Writes what is left, sets the file's length; resolves once every write is done. */
  async finish(): Promise<void> {
    if (this.filled > 0) {
      const tail = this.block;
      this.hash?.update(tail.subarray(0, this.filled));
      tail.fill(0, this.filled, Math.min(BLOCK_BYTES, Math.ceil(this.filled / ALIGN) * ALIGN));
      this.queue(tail, this.length - this.filled, this.filled);
      this.block = Buffer.alloc(0);
      this.filled = 0;
    } else {
      freeBlocks.push(this.block);
      this.block = Buffer.alloc(0);
    }
    await this.writeTail;
    if (this.failure !== undefined) throw this.failure;
    const files = await this.files;
    if (files.direct !== undefined) await files.fh.truncate(this.length);
  }

  /** Overwrites bytes already written (through the page cache; the kernel keeps the two paths coherent). */
  async patch(at: number, bytes: Uint8Array): Promise<void> {
    await writeFully((await this.files).fh, bytes, bytes.length, at);
  }

  /** SHA-1 of the finished file, read back block by block (the next read runs while one is hashed). */
  async sha1(): Promise<Buffer> {
    const hash = createHash('sha1');
    const files = await this.files;
    const source = files.direct ?? files.fh;
    const blocks = [takeBlock(), takeBlock()] as const;
    try {
      const readAt = (i: number): Promise<number> => {
        const block = blocks[i % 2] as Buffer;
        const at = i * BLOCK_BYTES;
        const want = Math.min(BLOCK_BYTES, this.length - at);
        return readFully(source, block, Math.ceil(want / ALIGN) * ALIGN, at).then((n) => Math.min(n, want));
      };
      const count = Math.ceil(this.length / BLOCK_BYTES);
      let next = count > 0 ? readAt(0) : undefined;
      for (let i = 0; i < count; i++) {
        const got = await (next as Promise<number>);
        const want = Math.min(BLOCK_BYTES, this.length - i * BLOCK_BYTES);
        if (got !== want) throw new GitfsError(ErrorCodes.IO, `the pack being written shrank (read ${got} of ${want} bytes back): something else changed it`);
        next = i + 1 < count ? readAt(i + 1) : undefined;
        hash.update((blocks[i % 2] as Buffer).subarray(0, got));
      }
    } finally {
      freeBlocks.push(...blocks);
    }
    return hash.digest();
  }

  /** fsync of data and metadata. */
  async sync(): Promise<void> {
    await (await this.files).fh.sync();
  }

  /** Closes the file; waits for queued writes first (their failures are dropped). */
  async close(): Promise<void> {
    await this.writeTail;
    if (this.block.length > 0) freeBlocks.push(this.block);
    this.block = Buffer.alloc(0);
    const files = await this.files.catch(() => undefined);
    if (files === undefined) return;
    await files.direct?.close().catch(() => undefined);
    files.direct = undefined;
    await files.fh.close();
  }
}

/**
 * Creates the file writable by its owner, opens it a second time for direct I/O, and only then
 * gives it its final `mode` (a read-only mode at creation refuses that second open to anyone
 * but root). The handles keep the access they were opened with.
 */
async function openFiles(open: Opener, path: string, mode: number): Promise<Files> {
  const fh = await open(path, 'wx+', 0o600);
  let direct: FileHandle | undefined;
  try {
    try {
      direct = await open(path, constants.O_RDWR | constants.O_DIRECT);
    } catch (e) {
      if (errnoCode(e) !== 'EINVAL') throw e;
    }
    await fh.chmod(mode);
    return { fh, direct };
  } catch (e) {
    await direct?.close();
    await fh.close();
    throw e;
  }
}

async function writeFully(fh: FileHandle, data: Uint8Array, length: number, at: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const { bytesWritten } = await fh.write(data, done, length - done, at + done);
    done += bytesWritten;
  }
}

/** Reads up to `length` bytes at `at`; fewer only at the end of the file (a short direct read ends it). */
async function readFully(fh: FileHandle, into: Buffer, length: number, at: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(into, done, length - done, at + done);
    done += bytesRead;
    if (bytesRead === 0 || bytesRead % ALIGN !== 0) break;
  }
  return done;
}
