/**
 * Stores one regular file from the local file system: a blob when it is at most the chunking
 * threshold, a chunked file above it. Used by the importer (`commit --from`) and by the working
 * layer's commit (files written through the mount).
 *
 * A blob under a name git reads as its own (`.gitmodules`, `.gitattributes`, by the names git
 * takes for them) must pass git fsck's checks first (GITFS_FSCK_REFUSED otherwise). A chunked
 * file is a tree named `NAME~gitfs~cSIZE`, which git reads as no such file unless NAME is special
 * up to a `:` (`.gitmodules:x`): that is refused too (`checkChunkedName`).
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { ErrorCodes, GitfsError } from '../errors.js';
import { writeChunkedFile } from '../objects/chunked-file-writer.js';
import type { Chunker } from '../objects/chunker.js';
import type { ChunkTreeParams } from '../objects/chunk-tree.js';
import { chunkedTreeName, type DirEntry } from '../objects/entry-names.js';
import type { ObjectSink } from '../objects/object-store.js';
import { hashObject } from '../objects/oid.js';
import { specialFileProblem } from '../objects/special-file-check.js';
import { aliasProblem, specialFileOf, type SpecialFile } from '../objects/storable-name.js';

/**
 * How a file listed as regular is opened: not through a symlink, and never waiting on a FIFO
 * (one swapped in while an import ran blocked the process for good; a symlink to /dev/zero was
 * read without end). What was opened must still be a regular file.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function notRegular(path: string): GitfsError {
  return new GitfsError(ErrorCodes.SOURCE_UNREADABLE, `${path} changed while it was read: it is no longer a regular file`, { path });
}

export interface StoreComponents {
  readonly sink: ObjectSink;
  readonly chunker: Chunker;
  readonly treeParams: ChunkTreeParams;
  readonly chunkThreshold: number;
}

export interface StoreOptions {
  readonly signal?: AbortSignal;
  /** Where the file goes in its tree, for errors (its name by default). */
  readonly path?: string;
}

export interface StoredFile {
  readonly entry: DirEntry;
  /** The file's size as stored. */
  readonly bytes: number;
}

/**
 * Stores the file at `abs` (believed to be `size` bytes) as the entry `name`. The size only
 * picks the first attempt: a file that grows or shrinks while being read is still stored whole,
 * and the canonical way for its final size.
 */
export async function storeFile(abs: string, name: string, executable: boolean, size: number, c: StoreComponents, { signal, path = name }: StoreOptions = {}): Promise<StoredFile> {
  const special = specialFileOf(name);
  const blob = async (data: Buffer): Promise<StoredFile> => {
    if (special !== undefined) checkSpecialFile(path, special, data);
    return { entry: { name, kind: 'file', executable, oid: await c.sink.writeHashed(hashObject('blob', data), 'blob', data), chunked: false }, bytes: data.length };
  };
  if (size <= c.chunkThreshold) {
    const small = readSmall(abs, size, c.chunkThreshold);
    if (small !== undefined) return blob(small);
  }
  // Before a byte is read: whether git takes the tree's name for a special file does not depend on the size in it.
  checkChunkedName(path, name, executable, size);
  const fh = await open(abs, OPEN_FLAGS);
  try {
    if (!(await fh.stat()).isFile()) throw notRegular(abs);
    const stored = await writeChunkedFile(fh, c.sink, c.chunker, c.treeParams, signal);
    if (stored.size <= c.chunkThreshold) {
      // It shrank while being read: store it the canonical way, as one blob.
      const small = readSmall(abs, stored.size, c.chunkThreshold);
      if (small !== undefined) return blob(small);
    }
    return { entry: { name, kind: 'file', executable, oid: stored.oid, size: stored.size, chunked: true }, bytes: stored.size };
  } finally {
    await fh.close();
  }
}

/** Throws GITFS_FSCK_REFUSED if git fsck would refuse the tree a chunked file is stored as, by its name there (`.gitmodules:x~gitfs~c…`). */
export function checkChunkedName(path: string, name: string, executable: boolean, size: number): void {
  const problem = aliasProblem(chunkedTreeName(name, executable, size), 'dir');
  if (problem !== undefined) throw new GitfsError(ErrorCodes.FSCK_REFUSED, `${path}: stored chunked, it would be ${problem}`, { path, problem });
}

/** Throws GITFS_FSCK_REFUSED if git fsck would refuse `data` as the blob at `path`, a name git reads as its own. */
export function checkSpecialFile(path: string, special: SpecialFile, data: Buffer): void {
  const problem = specialFileProblem(special, data);
  if (problem !== undefined) throw new GitfsError(ErrorCodes.FSCK_REFUSED, `${path}: git would refuse it as .${special}: ${problem}`, { path, special, problem });
}

/**
 * The whole content of a file listed as `size` bytes, or undefined if it has grown past
 * `threshold` since (it is then chunked instead). Never reads more than threshold + 1 bytes.
 */
function readSmall(path: string, size: number, threshold: number): Buffer | undefined {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    if (!fstatSync(fd).isFile()) throw notRegular(path);
    let data = readUpTo(fd, size + 1);
    if (data.length > size) data = readUpTo(fd, threshold + 1);
    return data.length <= threshold ? data : undefined;
  } finally {
    closeSync(fd);
  }
}

function readUpTo(fd: number, limit: number): Buffer {
  const buf = Buffer.allocUnsafe(limit);
  let filled = 0;
  while (filled < limit) {
    const n = readSync(fd, buf, filled, limit - filled, filled);
    if (n === 0) break;
    filled += n;
  }
  return buf.subarray(0, filled);
}
