/**
 * A run of blob entries read out of a pack and checked, on a worker thread (blob-run-worker.ts),
 * so that the thread that asked only copies bytes. The run's entries lie in ascending order within one span of the
 * pack, read with one positioned read through the asking thread's descriptor (held open for the
 * job). Each entry must be a whole blob of its expected size, stored or deflated; its content is
 * placed back to back in the output and its SHA-1 compared with its expected id. An entry that
 * fails any of this is marked, and the asker reads it the general way, which says what is wrong
 * with it (or finds a good copy elsewhere).
 */
import { hash } from 'node:crypto';
import { readSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { readZlibStored } from './compress.js';
import { OID_BYTES } from './oid.js';
import { decodeEntryHeader, PackTypes } from './pack-format.js';

export interface BlobRunJob {
  readonly id: number;
  readonly fd: number;
  /** Entry i lies at [starts[i], ends[i]) of the pack, in ascending order. */
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  /** The content size entry i must have. */
  readonly sizes: Float64Array;
  /** The id entry i must hash to, OID_BYTES each. */
  readonly ids: Uint8Array;
}

export interface BlobRunResult {
  readonly id: number;
  /** RUN_PAD bytes, then the contents back to back (an unchecked entry's bytes are undefined). */
  readonly buffer: ArrayBuffer;
  /** 1 where entry i is checked and in place. */
  readonly checked: Uint8Array;
}

/** Where a pack holds an entry: [start, end) of `pack` (any value naming one pack). */
export interface EntrySpan {
  readonly pack: unknown;
  readonly start: number;
  readonly end: number;
}

/** One job reads at most this much of a pack... */
const JOB_SPAN_BYTES = 4 << 20;
/** ...and skips at most this much between two of its entries. */
const JOB_GAP_BYTES = 64 << 10;

/** Whether `next` can join the run of entries from `first` to `last`, all read with one positioned read. */
export function joinsRun(first: EntrySpan, last: EntrySpan, next: EntrySpan): boolean {
  return next.pack === first.pack && next.start >= last.end && next.start - last.end <= JOB_GAP_BYTES && next.end - first.start <= JOB_SPAN_BYTES;
}

/** Room before the first content for its `blob <size>\0` header: the longest is 17 bytes. */
export const RUN_PAD = 32;

let raw = Buffer.alloc(0);

/** Up to `length` bytes of `fd` from `start` (fewer at its end), in this thread's scratch buffer: valid until the next call. */
export function readSpan(fd: number, start: number, length: number): Buffer {
  if (raw.length < length) raw = Buffer.allocUnsafe(Math.max(length, 2 * raw.length));
  let done = 0;
  while (done < length) {
    const n = readSync(fd, raw, done, length - done, start + done);
    if (n === 0) break;
    done += n;
  }
  return raw.subarray(0, done);
}

/**
 * The content of the whole (not delta) entry at [start, end) of `span`, if it is of pack type
 * `type` and of `size` bytes (of at most `size` bytes, when not `exact`).
 */
export function entryContent(span: Buffer, start: number, end: number, type: number, size: number, exact = true): Buffer | undefined {
  if (end > span.length) return undefined;
  const entry = span.subarray(start, end);
  const h = decodeEntryHeader(entry, 0);
  if (typeof h === 'string' || h.type !== type || (exact ? h.size !== size : h.size > size)) return undefined;
  const stored = readZlibStored(entry, h.dataStart, h.size);
  if (stored !== undefined) return stored;
  try {
    const out = inflateSync(entry.subarray(h.dataStart), { maxOutputLength: Math.max(1, h.size) });
    return out.length === h.size ? out : undefined;
  } catch {
    return undefined;
  }
}

export function checkRun(job: BlobRunJob): BlobRunResult {
  const n = job.sizes.length;
  const checked = new Uint8Array(n);
  const at = new Float64Array(n + 1);
  at[0] = RUN_PAD;
  for (let i = 0; i < n; i++) at[i + 1] = (at[i] as number) + (job.sizes[i] as number);
  const out = Buffer.allocUnsafeSlow(at[n] as number); // its own memory, to transfer
  if (n === 0) return { id: job.id, buffer: out.buffer as ArrayBuffer, checked };
  const base = job.starts[0] as number;
  let span: Buffer;
  try {
    span = readSpan(job.fd, base, (job.ends[n - 1] as number) - base);
  } catch {
    return { id: job.id, buffer: out.buffer as ArrayBuffer, checked };
  }
  // Last entry first: each content goes to its place with its git header written just before it,
  // over the tail of the previous entry's place (filled next), and is hashed there in one call.
  for (let i = n - 1; i >= 0; i--) {
    const size = job.sizes[i] as number;
    const content = entryContent(span, (job.starts[i] as number) - base, (job.ends[i] as number) - base, PackTypes.blob, size);
    if (content === undefined) continue;
    const pos = at[i] as number;
    content.copy(out, pos);
    const header = `blob ${size}\0`;
    out.write(header, pos - header.length, 'latin1');
    const digest = hash('sha1', out.subarray(pos - header.length, pos + size), 'buffer');
    if (digest.equals(job.ids.subarray(i * OID_BYTES, (i + 1) * OID_BYTES))) checked[i] = 1;
  }
  return { id: job.id, buffer: out.buffer as ArrayBuffer, checked };
}
