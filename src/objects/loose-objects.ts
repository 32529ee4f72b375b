/**
 * Loose objects: `objects/xx/yyyy…`, each one zlib stream of `<type> <size>\0`
 * followed by the content.
 *
 * Invariants: the header parses (known type, canonical decimal size); a size
 * above `maxSize` is OBJECT_TOO_LARGE before the body is inflated (stream() reads
 * such an object instead, piece by piece); the body is
 * inflated with output capped at header + declared size, so a stream that
 * inflates further is HOSTILE_OBJECT (zlib bomb) and one that stops short is
 * CORRUPT_OBJECT, as are bytes after the end of the stream (git's "garbage at end of loose
 * object"); read() refuses a file longer than any zlib stream of its declared size before reading
 * it whole. Objects are NOT hash-checked here: the owner does that.
 */
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { constants as zlibConstants, inflateSync } from 'node:zlib';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { DirWatch } from './dir-stamp.js';
import { isObjectType } from './oid.js';
import type { Oid } from './oid.js';
import type { GitObject } from './object-store.js';
import { maxStreamBytes } from './compress.js';
import { inflated, PIECE_BYTES, skipBytes, type StreamedObject } from './blob-stream.js';

/** Longest valid header: "commit " + 16 digits + NUL, with room to spare. */
const MAX_HEADER_BYTES = 32;
/** Files up to this size are inflated in one go: deflate expands at most ~1032x, so output stays ~1 MiB. */
const SMALL_FILE_BYTES = 1024;
/** The most SMALL_FILE_BYTES of zlib stream inflate to, with room to spare. */
const HEADER_OUTPUT_BYTES = 2 * 1024 * 1024;
/** Files larger have their header read and checked before the rest. */
const LARGE_FILE_BYTES = 1 << 20;
const LOOSE_NAME_RE = /^[0-9a-f]{38}$/;

/** The name of a fanout directory (`objects/xx`). */
const FANOUT_RE = /^[0-9a-f]{2}$/;

export class LooseObjects {
  readonly dir: string;
  /** The objects directory, whose listing says which fanout directories there are (gitfs writes none; git may). */
  private readonly watch: DirWatch;
  private fanouts: ReadonlySet<string> | undefined;
  /** The listing started for the callers of one shared check. */
  private relisting: { readonly after: Promise<boolean>; readonly names: Promise<ReadonlySet<string>> } | undefined;

  /** `objectsDir` is `<gitdir>/objects`. */
  constructor(objectsDir: string) {
    this.dir = objectsDir;
    this.watch = new DirWatch(objectsDir);
  }

  /** The fanout directories there are, from a listing no older than the call. */
  private async fanoutDirs(): Promise<ReadonlySet<string>> {
    const check = this.watch.mayHaveChanged();
    if (this.fanouts !== undefined && !(await check)) return this.fanouts;
    if (this.relisting?.after !== check) this.relisting = { after: check, names: this.listFanouts() };
    return this.relisting.names;
  }

  private async listFanouts(): Promise<ReadonlySet<string>> {
    const stamp = await this.watch.stamp(); // before listing: a change after it shows as a new stamp
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw new GitfsError(ErrorCodes.IO, `cannot list ${this.dir}: ${(e as Error).message}`, { path: this.dir }, { cause: e });
      names = [];
    }
    const fanouts = new Set(names.filter((n) => FANOUT_RE.test(n)));
    this.fanouts = fanouts;
    this.watch.listed(stamp);
    return fanouts;
  }

  pathOf(oid: Oid): string {
    return join(this.dir, oid.slice(0, 2), oid.slice(2));
  }

  /** The object `oid`, or undefined if there is no such loose file. */
  async read(oid: Oid, maxSize: number): Promise<GitObject | undefined> {
    const path = this.pathOf(oid);
    return this.withFile(path, async (fh) => {
      // A large file's header is read first, as a pack's large entry's is: one declaring more than
      // the limit is not read whole (git writes blobs of any size loose).
      // Nor is one longer than any zlib stream of what it declares (git calls that garbage at the end).
      const fileSize = (await fh.stat()).size;
      if (fileSize > LARGE_FILE_BYTES) {
        const { type, size } = await headerIn(fh, path);
        withinLimit(size, maxSize, path);
        const streamBytes = maxStreamBytes(Buffer.byteLength(`${type} ${size}\0`) + size);
        if (fileSize > streamBytes) corrupter(path)(`a file of ${fileSize} bytes, longer than any zlib stream of the ${size} bytes it declares`);
      }
      return parseLoose(await fh.readFile(), maxSize, path);
    });
  }

  /**
   * The object `oid` as a stream (blob-stream.ts), for objects above the limit: its header's
   * type and size, its content inflated as the file is read. Unchecked; undefined if there is
   * no such loose file.
   */
  async stream(oid: Oid): Promise<StreamedObject | undefined> {
    const header = await this.headerOf(oid);
    if (header === undefined) return undefined;
    const path = this.pathOf(oid);
    // The header parsed is canonical (`<type> <decimal size>\0`): its length follows from what it says.
    const headerLength = Buffer.byteLength(`${header.type} ${header.size}\0`);
    return { ...header, pieces: skipBytes(inflated(fileBytes(path), corrupter(path)), headerLength) };
  }

  /** The size `oid` declares in its header (unverified), or undefined if there is no such loose file. */
  async sizeOf(oid: Oid): Promise<number | undefined> {
    return (await this.headerOf(oid))?.size;
  }

  /** The type `oid` declares in its header (unverified), or undefined if there is no such loose file. */
  async typeOf(oid: Oid): Promise<GitObject['type'] | undefined> {
    return (await this.headerOf(oid))?.type;
  }

  private headerOf(oid: Oid): Promise<{ type: GitObject['type']; size: number } | undefined> {
    const path = this.pathOf(oid);
    return this.withFile(path, (fh) => headerIn(fh, path));
  }

  /** What `use` makes of the loose file at `path`, opened; undefined if there is no such file. */
  private async withFile<T>(path: string, use: (fh: FileHandle) => Promise<T>): Promise<T | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw new GitfsError(ErrorCodes.IO, `cannot read loose object ${path}: ${(e as Error).message}`, { file: path }, { cause: e });
    }
    try {
      return await use(fh);
    } catch (e) {
      if (e instanceof GitfsError) throw e;
      throw new GitfsError(ErrorCodes.IO, `cannot read loose object ${path}: ${(e as Error).message}`, { file: path }, { cause: e });
    } finally {
      await fh.close();
    }
  }

  /** Whether there is a loose file for `oid` (no stat of it where its fanout directory is absent, as it is in a repository only gitfs wrote). */
  async has(oid: Oid): Promise<boolean> {
    if (!(await this.fanoutDirs()).has(oid.slice(0, 2))) return false;
    try {
      await stat(this.pathOf(oid));
      return true;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return false;
      throw new GitfsError(ErrorCodes.IO, `cannot stat loose object ${oid}: ${(e as Error).message}`, { oid }, { cause: e });
    }
  }

  /** All loose ids. */
  async list(): Promise<Set<Oid>> {
    const ids = new Set<Oid>();
    let dirs: string[];
    try {
      dirs = await readdir(this.dir);
    } catch (e) {
      throw new GitfsError(ErrorCodes.IO, `cannot list loose objects: ${(e as Error).message}`, {}, { cause: e });
    }
    for (const head of dirs.filter((d) => /^[0-9a-f]{2}$/.test(d))) {
      for (const n of await readdir(join(this.dir, head))) if (LOOSE_NAME_RE.test(n)) ids.add((head + n) as Oid);
    }
    return ids;
  }

  /** Loose ids starting with `prefix` (4 to 40 lowercase hex digits, already validated), ascending, at most `limit`. */
  async findByPrefix(prefix: string, limit: number): Promise<Oid[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, prefix.slice(0, 2)));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return [];
      throw new GitfsError(ErrorCodes.IO, `cannot list loose objects: ${(e as Error).message}`, {}, { cause: e });
    }
    const rest = prefix.slice(2);
    const head = prefix.slice(0, 2);
    return names
      .filter((n) => LOOSE_NAME_RE.test(n) && n.startsWith(rest))
      .sort()
      .slice(0, Math.max(0, limit))
      .map((n) => (head + n) as Oid);
  }
}

/** The type and size the header of the loose file `fh` (at `path`) declares, from its first bytes. */
async function headerIn(fh: FileHandle, path: string): Promise<{ type: GitObject['type']; size: number }> {
  const head = Buffer.allocUnsafe(SMALL_FILE_BYTES);
  const { bytesRead } = await fh.read(head, 0, head.length, 0);
  const corrupt = corrupter(path);
  let out: Buffer;
  try {
    out = inflateSync(head.subarray(0, bytesRead), { maxOutputLength: HEADER_OUTPUT_BYTES, finishFlush: zlibConstants.Z_SYNC_FLUSH });
  } catch (e) {
    return corrupt(`bad zlib data (${(e as Error).message})`);
  }
  return parseHeader(out, corrupt);
}

/** Throws OBJECT_TOO_LARGE if `size`, what loose object `name` declares, is above `maxSize`. */
function withinLimit(size: number, maxSize: number, name: string): void {
  if (size > maxSize) {
    throw new GitfsError(ErrorCodes.OBJECT_TOO_LARGE, `loose object ${name}: declares ${size} bytes, above the limit of ${maxSize}`, { file: name, size, limit: maxSize });
  }
}

/** The bytes of the file at `path`, PIECE_BYTES at a time; opened at the first, closed when the generator ends or is let go. */
async function* fileBytes(path: string): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw new GitfsError(ErrorCodes.IO, `cannot read loose object ${path}: ${(e as Error).message}`, { file: path }, { cause: e });
  });
  try {
    for (;;) {
      const piece = Buffer.allocUnsafe(PIECE_BYTES);
      const { bytesRead } = await fh.read(piece, 0, PIECE_BYTES, null);
      if (bytesRead === 0) return;
      yield piece.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** Parses the bytes of a loose object file. `name` is used in error messages. */
export function parseLoose(data: Buffer, maxSize: number, name: string): GitObject {
  const corrupt = corrupter(name);
  const inflate = (input: Buffer, opts: { maxOutputLength: number; finishFlush?: number }): { buffer: Buffer; consumed: number } => {
    try {
      const { buffer, engine } = inflateSync(input, { ...opts, info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
      return { buffer, consumed: engine.bytesWritten };
    } catch (e) {
      if (e instanceof RangeError && (e as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new GitfsError(ErrorCodes.HOSTILE_OBJECT, `loose object ${name}: inflates beyond ${opts.maxOutputLength} bytes`, { file: name });
      }
      return corrupt(`bad zlib data (${(e as Error).message})`);
    }
  };

  const small = data.length <= SMALL_FILE_BYTES;
  // Small files inflate whole (at most ~1 MiB, whatever the limit: the size they declare is checked
  // against it next). Large ones first yield their header from a prefix.
  let whole = small ? inflate(data, { maxOutputLength: Math.max(maxSize + MAX_HEADER_BYTES, HEADER_OUTPUT_BYTES) }) : undefined;
  let out = whole?.buffer ?? inflate(data.subarray(0, SMALL_FILE_BYTES), { maxOutputLength: HEADER_OUTPUT_BYTES, finishFlush: zlibConstants.Z_SYNC_FLUSH }).buffer;
  const { type, size, headerLength } = parseHeader(out, corrupt);
  withinLimit(size, maxSize, name);
  whole ??= inflate(data, { maxOutputLength: headerLength + size });
  out = whole.buffer;
  const contentLength = out.length - headerLength;
  if (contentLength > size) {
    throw new GitfsError(ErrorCodes.HOSTILE_OBJECT, `loose object ${name}: inflates to more than its declared ${size} bytes`, { file: name, size });
  }
  if (contentLength < size) corrupt(`holds ${contentLength} bytes, declares ${size}`);
  // As git: bytes after the end of the stream are damage ("garbage at end of loose object").
  if (whole.consumed < data.length) corrupt(`${data.length - whole.consumed} byte(s) after the end of its zlib stream`);
  return { type, content: out.subarray(headerLength) };
}

function corrupter(name: string): (why: string) => never {
  return (why) => {
    throw new GitfsError(ErrorCodes.CORRUPT_OBJECT, `loose object ${name}: ${why}`, { file: name });
  };
}

function parseHeader(out: Buffer, corrupt: (why: string) => never): { type: GitObject['type']; size: number; headerLength: number } {
  const nul = out.indexOf(0);
  if (nul < 0 || nul > MAX_HEADER_BYTES) return corrupt('no object header');
  const space = out.indexOf(0x20);
  if (space < 0 || space > nul) return corrupt('malformed object header');
  const type = out.toString('latin1', 0, space);
  if (!isObjectType(type)) return corrupt(`unknown object type ${JSON.stringify(type)}`);
  const digits = out.toString('latin1', space + 1, nul);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(digits)) return corrupt(`malformed size ${JSON.stringify(digits)}`);
  return { type, size: Number(digits), headerLength: nul + 1 };
}
