/**
 * A byte range of a chunked file read in one worker job (blob-run-worker.ts), so that the thread
 * that asks does one exchange per range instead of per chunk: the worker walks the chunk tree
 * from its root, reading each node from the job's packs with positioned reads and checking its
 * SHA-1, then reads the leaves as runs of entries, each run with one positioned read, and copies
 * their contents into the range. The worker parses the packs' indexes itself, once per pack: a
 * pack's name is its checksum, so a path always means the same bytes.
 *
 * A leaf is checked against the CRC-32 that the pack index keeps for its whole entry, not by
 * hashing its content: the index (itself SHA-1-checked when parsed) was written when the entry's
 * content was hashed to its id, so an entry that still matches its CRC holds those bytes, and
 * any damage since is caught (docs/ARCHITECTURE.md, "Where data is checked"). SHA-1 costs 3x
 * more per byte and was most of this job's time.
 *
 * This is an accelerator, not a second reader: anything it cannot do this way (an object in no
 * pack of the job, a delta, a damaged entry, a node claiming more than a range can hold) fails
 * the job as a whole, and the asker reads the range the general way (ChunkedFileReader), which
 * hashes every object, says what is wrong, finds a good copy elsewhere, or fetches what is absent.
 */
import { readFileSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { remember } from '../util/bounded-map.js';
import { entryContent, joinsRun, readSpan } from './blob-run.js';
import { MAX_CHUNK_TREE_DEPTH } from './chunk-tree.js';
import { hashObject, OID_BYTES, type Oid } from './oid.js';
import { PackIndex } from './pack-index.js';
import { PackTypes } from './pack-format.js';
import { parseRawChunkNode, type RawChunkNode } from './raw-chunk-node.js';

/** A pack the job may read: its index file, and the asker's descriptor for the pack, held open for the job. */
export interface RangePack {
  readonly idxPath: string;
  readonly fd: number;
  readonly size: number;
}

export interface RangeJob {
  readonly kind: 'range';
  readonly id: number;
  readonly root: Oid;
  /** The whole file's size, as its tree entry names it. */
  readonly size: number;
  /** The range [from, to) of the file, within it. */
  readonly from: number;
  readonly to: number;
  readonly packs: readonly RangePack[];
  /** Memory of at least `to - from` bytes to hold the range (else the worker allocates it). */
  readonly into?: ArrayBuffer | undefined;
}

/** Parse these packs' indexes now, so that the first range read does not wait for them. */
export interface PrepareJob {
  readonly kind: 'prepare';
  readonly id: number;
  readonly idxPaths: readonly string[];
}

export interface RangeResult {
  readonly id: number;
  /** The range's bytes (from its start; `into` when the job gave one); undefined when the job failed. */
  readonly buffer: ArrayBuffer | undefined;
}

/** Largest node read (stored or inflated), and most bytes of leaves a range may cover (its own bytes plus the chunks at its ends). */
const MAX_NODE_BYTES = 1 << 20;
const MAX_COVER_BYTES = 64 << 20;
/**
 * Index files kept parsed, by their bytes: a range looks through every pack of its job in turn,
 * so fewer kept than the job has packs missed every time: with a count of 64, every read of an
 * image in more packs parsed them all again. 256 MiB of index files is some 9 M objects, plus
 * the lookup tables built from them.
 */
const INDEX_BYTES = 256 << 20;
const NODES = 256;

/** Why a job failed; never leaves this module. */
class Fallback extends Error {}

interface Located {
  readonly pack: RangePack;
  readonly start: number;
  readonly end: number;
  /** The CRC-32 of the entry's bytes [start, end), as the pack index records it. */
  readonly crc32: number;
}

/** A chunk of the range: where it starts in the file, its size, and its pack entry. */
interface Leaf {
  readonly start: number;
  readonly size: number;
  readonly at: Located;
}

/** Parsed indexes, least recently used first, and their files' bytes in all. */
const indexes = new Map<string, { readonly index: PackIndex; readonly bytes: number }>();
let indexBytes = 0;
/** Parsed nodes by id and size: a node's last span comes from the size its parent gives it, so one id named twice with two sizes is two layouts. */
const nodes = new Map<string, RawChunkNode>();

function indexAt(idxPath: string): PackIndex {
  const kept = indexes.get(idxPath);
  if (kept !== undefined) {
    indexes.delete(idxPath);
    indexes.set(idxPath, kept);
    return kept.index;
  }
  const file = readFileSync(idxPath);
  const index = new PackIndex(file, idxPath);
  indexes.set(idxPath, { index, bytes: file.length });
  indexBytes += file.length;
  for (const path of indexes.keys()) {
    if (indexBytes <= INDEX_BYTES || path === idxPath) break;
    forgetIndex(path);
  }
  return index;
}

function forgetIndex(path: string): void {
  const kept = indexes.get(path);
  if (kept === undefined) return;
  indexes.delete(path);
  indexBytes -= kept.bytes;
}

/** Parses the job's indexes and builds their lookup tables; one that cannot be read is left to the first range that needs it. */
export function prepareIndexes(job: PrepareJob): void {
  for (const path of job.idxPaths) {
    try {
      indexAt(path).prepare();
    } catch {
      forgetIndex(path);
    }
  }
}

/** Where the first of `packs` holding the object whose id lies at `at` of `ids` has its entry. */
function locate(packs: readonly RangePack[], ids: Buffer, at: number): Located {
  for (const pack of packs) {
    const index = indexAt(pack.idxPath);
    const entry = index.entryOfBytes(ids, at);
    if (entry === undefined) continue;
    const end = index.entryEnd(entry.offset, pack.size);
    if (end !== undefined) return { pack, start: entry.offset, end, crc32: entry.crc32 };
  }
  throw new Fallback('an object is in no pack of the job');
}

function readNode(packs: readonly RangePack[], oid: Oid, size: number): RawChunkNode {
  const key = `${oid}:${size}`;
  const cached = nodes.get(key);
  if (cached !== undefined) return cached;
  const at = locate(packs, Buffer.from(oid, 'hex'), 0);
  if (at.end - at.start > MAX_NODE_BYTES) throw new Fallback(`node ${oid} too large`);
  const entry = Buffer.allocUnsafe(at.end - at.start);
  if (readSync(at.pack.fd, entry, 0, entry.length, at.start) !== entry.length) throw new Fallback('short read');
  const content = entryContent(entry, 0, entry.length, PackTypes.tree, MAX_NODE_BYTES, false);
  if (content === undefined) throw new Fallback(`node ${oid} is not a plain tree entry`);
  if (hashObject('tree', content) !== oid) throw new Fallback(`node ${oid} does not hash to its id`);
  const node = parseRawChunkNode(content, size);
  if (node === undefined) throw new Fallback(`node ${oid} is not a plain chunk node`);
  return remember(nodes, key, node, NODES);
}

function collectLeaves(job: RangeJob, oid: Oid, base: number, size: number, leaves: Leaf[], depth = 0): void {
  if (depth > MAX_CHUNK_TREE_DEPTH) throw new Fallback('chunk tree too deep');
  const node = readNode(job.packs, oid, size);
  const { starts, sizes, trees, content, idAt } = node;
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (base + (starts[mid] as number) <= job.from) lo = mid;
    else hi = mid - 1;
  }
  for (let i = lo; i < starts.length; i++) {
    const start = base + (starts[i] as number);
    if (start >= job.to) break;
    const id = idAt[i] as number;
    if (trees[i] === 1) collectLeaves(job, content.toString('hex', id, id + OID_BYTES) as Oid, start, sizes[i] as number, leaves, depth + 1);
    else leaves.push({ start, size: sizes[i] as number, at: locate(job.packs, content, id) });
  }
}

/** Leaves split where a run's single read would end: another pack, a step back, a wide gap, a long span. */
function runs(leaves: readonly Leaf[]): Leaf[][] {
  const out: Leaf[][] = [];
  let run: Leaf[] = [];
  for (const leaf of leaves) {
    const first = run[0];
    const last = run[run.length - 1];
    if (first !== undefined && last !== undefined && !joinsRun(first.at, last.at, leaf.at)) {
      out.push(run);
      run = [];
    }
    run.push(leaf);
  }
  if (run.length > 0) out.push(run);
  return out;
}

/** Copies the part of each leaf of `run` that lies in the job's range into `out` (the range's bytes), every entry checked. */
function copyRun(job: RangeJob, run: readonly Leaf[], out: Buffer): void {
  const first = (run[0] as Leaf).at;
  const span = readSpan(first.pack.fd, first.start, (run[run.length - 1] as Leaf).at.end - first.start);
  for (const leaf of run) {
    const start = leaf.at.start - first.start;
    const end = leaf.at.end - first.start;
    if (end > span.length || crc32(span.subarray(start, end)) !== leaf.at.crc32) throw new Fallback('a chunk does not match its CRC-32');
    const content = entryContent(span, start, end, PackTypes.blob, leaf.size);
    if (content === undefined) throw new Fallback('a chunk is not a plain blob entry of its size');
    const from = Math.max(job.from, leaf.start);
    const to = Math.min(job.to, leaf.start + leaf.size);
    content.copy(out, from - job.from, from - leaf.start, to - leaf.start);
  }
}

export function readRange(job: RangeJob): RangeResult {
  const failed = { id: job.id, buffer: undefined };
  try {
    const leaves: Leaf[] = [];
    collectLeaves(job, job.root, 0, job.size, leaves);
    const first = leaves[0];
    const last = leaves[leaves.length - 1];
    if (first === undefined || last === undefined || first.start > job.from || last.start + last.size < job.to) return failed;
    if (last.start + last.size - first.start > MAX_COVER_BYTES) return failed;
    const out = job.into !== undefined ? Buffer.from(job.into, 0, job.to - job.from) : Buffer.allocUnsafeSlow(job.to - job.from); // its own memory, to transfer
    for (const run of runs(leaves)) copyRun(job, run, out);
    return { id: job.id, buffer: out.buffer as ArrayBuffer };
  } catch {
    return failed;
  }
}
