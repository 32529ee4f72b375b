/**
 * Main-thread side of the hash worker: one shared worker (unref'd, so it never keeps the process
 * alive), jobs matched to results by id. A block handed to `hash` is unusable until its result
 * returns it.
 */
import { Worker } from 'node:worker_threads';
import { oidFromBytes, type Oid } from './oid.js';
import type { HashJob, HashResult } from './hash-worker.js';
import type { StoredHint } from './stored-entry.js';

const OWNED_MIN_BYTES = 64 << 10;

export interface HashedChunk {
  readonly oid: Oid;
  readonly data: Buffer;
  readonly hint: StoredHint | undefined;
}

export class ChunkHasher {
  private static instance: ChunkHasher | undefined;
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (r: HashResult) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  private constructor() {
    this.worker = new Worker(new URL('./hash-worker.js', import.meta.url));
    this.worker.on('message', (r: HashResult) => {
      this.waiting.get(r.id)?.resolve(r);
      this.waiting.delete(r.id);
    });
    this.worker.on('error', (e) => this.failAll(e));
    this.worker.on('exit', (code) => this.failAll(new Error(`hash worker exited with code ${code}`)));
    // After the listeners: attaching a 'message' listener refs the worker's port again.
    this.worker.unref();
  }

  static shared(): ChunkHasher {
    ChunkHasher.instance ??= new ChunkHasher();
    return ChunkHasher.instance;
  }

  private failAll(e: Error): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    if (ChunkHasher.instance === this) ChunkHasher.instance = undefined;
  }

  /** Hashes the consecutive chunks of `block` with the given lengths. */
  async hash(block: Buffer, lengths: readonly number[]): Promise<HashedChunk[]> {
    // Only a buffer that surely owns its memory is transferred: Node's pooled slabs (8 KiB) are
    // shared between small Buffers, so anything small or offset is copied first.
    const owned = block.byteOffset === 0 && block.buffer instanceof ArrayBuffer && block.buffer.byteLength >= OWNED_MIN_BYTES;
    const own = owned ? block : Buffer.from(block.buffer.slice(block.byteOffset, block.byteOffset + block.length));
    const id = this.nextId++;
    const result = new Promise<HashResult>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    const job: HashJob = { id, buffer: own.buffer as ArrayBuffer, lengths: Int32Array.from(lengths) };
    this.worker.ref();
    this.worker.postMessage(job, [job.buffer]);
    let r: HashResult;
    try {
      r = await result;
    } finally {
      if (this.waiting.size === 0) this.worker.unref();
    }
    const data = Buffer.from(r.buffer);
    const out: HashedChunk[] = [];
    let at = 0;
    lengths.forEach((len, i) => {
      out.push({
        oid: oidFromBytes(r.ids, 20 * i),
        data: data.subarray(at, at + len),
        hint: r.stored[i] === 1 ? { adler32: r.adlers[i] as number, entryCrc32: r.crcs[i] as number } : undefined,
      });
      at += len;
    });
    return out;
  }
}
