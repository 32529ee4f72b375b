/**
 * Worker thread: cuts the blocks of a file into chunks and hashes them (ids, and stored-entry
 * hints for the ones that will not compress), so that the main thread only reads and packs.
 * Blocks come in and go back by transfer, never copied; each file is a stream whose uncut tail
 * stays here between its blocks, which arrive in order.
 */
import { parentPort } from 'node:worker_threads';
import { BlockCutter } from './chunk-stream.js';
import { Chunker, type ChunkerParams } from './chunker.js';
import { hashBlob } from './stored-entry.js';

export type CutJob =
  | {
      readonly id: number;
      readonly stream: number;
      readonly params: ChunkerParams;
      /** The block is the first `length` bytes of `buffer`. */
      readonly buffer: ArrayBuffer;
      readonly length: number;
      readonly eof: boolean;
    }
  /** The stream ends early (its file failed): forget its tail. */
  | { readonly id: number; readonly stream: number; readonly drop: true };

/** Consecutive chunks hashed: the bytes `buffer[offset, offset + sum(lengths))`. */
export interface HashedRun {
  readonly buffer: ArrayBuffer;
  readonly offset: number;
  readonly lengths: Int32Array;
  /** 20 bytes per chunk. */
  readonly ids: Uint8Array;
  /** 1 if the chunk gets a stored-entry hint. */
  readonly stored: Uint8Array;
  readonly adlers: Uint32Array;
}

export type CutResult = { readonly id: number; readonly runs: HashedRun[] } | { readonly id: number; readonly error: string };

const cutters = new Map<number, BlockCutter>();

function hashRun(block: Buffer, offset: number, lengths: readonly number[]): HashedRun {
  const n = lengths.length;
  const ids = new Uint8Array(20 * n);
  const stored = new Uint8Array(n);
  const adlers = new Uint32Array(n);
  let at = block.byteOffset + offset;
  for (let i = 0; i < n; i++) {
    const len = lengths[i] as number;
    const { id, hint } = hashBlob(new Uint8Array(block.buffer, at, len));
    ids.set(id, 20 * i);
    if (hint !== undefined) {
      stored[i] = 1;
      adlers[i] = hint.adler32;
    }
    at += len;
  }
  return { buffer: block.buffer as ArrayBuffer, offset: block.byteOffset + offset, lengths: Int32Array.from(lengths), ids, stored, adlers };
}

function cut(job: CutJob): CutResult {
  if ('drop' in job) {
    cutters.delete(job.stream);
    return { id: job.id, runs: [] };
  }
  let cutter = cutters.get(job.stream);
  if (cutter === undefined) cutters.set(job.stream, (cutter = new BlockCutter(new Chunker(job.params))));
  if (job.eof) cutters.delete(job.stream);
  const runs = cutter.next(Buffer.from(job.buffer, 0, job.length), job.eof);
  return { id: job.id, runs: runs.map((r) => hashRun(r.block, r.offset, r.lengths)) };
}

parentPort?.on('message', (job: CutJob) => {
  let result: CutResult;
  try {
    result = cut(job);
  } catch (e) {
    cutters.delete(job.stream);
    result = { id: job.id, error: (e as Error).message };
  }
  const transfer = new Set<ArrayBuffer>();
  if ('runs' in result) {
    for (const r of result.runs) {
      transfer.add(r.buffer);
      for (const a of [r.lengths, r.ids, r.stored, r.adlers]) transfer.add(a.buffer as ArrayBuffer);
    }
  }
  parentPort?.postMessage(result, [...transfer]);
});
