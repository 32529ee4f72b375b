/**
 * Worker thread: hashes the chunks of a block (ids, and stored-entry hints for the ones that will
 * not compress), so that the main thread only cuts and packs. The block comes in and goes back
 * by transfer, never copied.
 */
import { parentPort } from 'node:worker_threads';
import { hashBlob } from './stored-entry.js';

export interface HashJob {
  readonly id: number;
  readonly buffer: ArrayBuffer;
  readonly lengths: Int32Array;
}

export interface HashResult {
  readonly id: number;
  readonly buffer: ArrayBuffer;
  /** 20 bytes per chunk. */
  readonly ids: Uint8Array;
  /** 1 if the chunk gets a stored-entry hint. */
  readonly stored: Uint8Array;
  readonly adlers: Uint32Array;
  readonly crcs: Uint32Array;
}

parentPort?.on('message', (job: HashJob) => {
  const n = job.lengths.length;
  const ids = new Uint8Array(20 * n);
  const stored = new Uint8Array(n);
  const adlers = new Uint32Array(n);
  const crcs = new Uint32Array(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const len = job.lengths[i] as number;
    const { id, hint } = hashBlob(new Uint8Array(job.buffer, at, len));
    ids.set(id, 20 * i);
    if (hint !== undefined) {
      stored[i] = 1;
      adlers[i] = hint.adler32;
      crcs[i] = hint.entryCrc32;
    }
    at += len;
  }
  const result: HashResult = { id: job.id, buffer: job.buffer, ids, stored, adlers, crcs };
  parentPort?.postMessage(result, [job.buffer, ids.buffer, stored.buffer, adlers.buffer, crcs.buffer]);
});
