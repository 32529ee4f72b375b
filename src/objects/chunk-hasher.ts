/**
 * Main-thread side of the hash worker: one shared worker (unref'd, so it never keeps the process
 * alive), jobs matched to results by id. A file is a stream of blocks sent in order; each block
 * comes back cut into chunks with their ids, its memory handed over for good.
 */
import { Worker } from 'node:worker_threads';
import { ErrorCodes, GitfsError } from '../errors.js';
import type { ChunkerParams } from './chunker.js';
import type { CutJob, CutResult, HashedRun } from './hash-worker.js';
import { oidFromBytes, type Oid } from './oid.js';
import type { StoredHint } from './stored-entry.js';

export interface HashedChunk {
  readonly oid: Oid;
  readonly data: Buffer;
  readonly hint: StoredHint | undefined;
}

type Pending = { resolve: (r: CutResult) => void; reject: (e: Error) => void };

export class ChunkHasher {
  private static instance: ChunkHasher | undefined;
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Pending>();
  private nextId = 0;
  private nextStream = 0;
  /** Why the worker stopped, once it has. */
  private failure: Error | undefined;

  private constructor() {
    this.worker = new Worker(new URL('./hash-worker.js', import.meta.url));
    this.worker.on('message', (r: CutResult) => {
      this.waiting.get(r.id)?.resolve(r);
      this.waiting.delete(r.id);
      if (this.waiting.size === 0) this.worker.unref();
    });
    this.worker.on('error', (e) => this.failAll(e));
    this.worker.on('exit', (code) => this.failAll(new GitfsError(ErrorCodes.IO, `the hash worker thread exited (code ${code})`)));
    // After the listeners: attaching a 'message' listener refs the worker's port again.
    this.worker.unref();
  }

  static shared(): ChunkHasher {
    ChunkHasher.instance ??= new ChunkHasher();
    return ChunkHasher.instance;
  }

  private failAll(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    if (ChunkHasher.instance === this) ChunkHasher.instance = undefined;
  }

  /** A new stream: one file's blocks, cut with `params`. */
  stream(params: ChunkerParams): HashStream {
    return new HashStream(this, this.nextStream++, params);
  }

  /** Sends `job` (transferring `transfer`) and waits for its result. */
  send(job: CutJob, transfer: ArrayBuffer[]): Promise<CutResult> {
    // A stream outlives a worker that died under it: its later blocks fail, never wait forever.
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const result = new Promise<CutResult>((resolve, reject) => this.waiting.set(job.id, { resolve, reject }));
    this.worker.ref();
    this.worker.postMessage(job, transfer);
    return result;
  }

  newId(): number {
    return this.nextId++;
  }
}

/** One file's blocks on their way through the hash worker. */
export class HashStream {
  constructor(
    private readonly hasher: ChunkHasher,
    private readonly id: number,
    private readonly params: ChunkerParams,
  ) {}

  /**
   * Cuts and hashes the next block (the chunks that end in it, runs in file order). `block` must
   * own its memory from its first byte (a BlockPool block); it is unusable afterwards, and its
   * memory comes back with the chunks.
   */
  async next(block: Buffer, eof: boolean): Promise<HashedChunk[][]> {
    if (block.byteOffset !== 0) throw new Error('a block must start its own memory');
    const buffer = block.buffer as ArrayBuffer;
    const r = await this.hasher.send({ id: this.hasher.newId(), stream: this.id, params: this.params, buffer, length: block.length, eof }, [buffer]);
    if ('error' in r) throw new GitfsError(ErrorCodes.IO, `the hash worker thread failed: ${r.error}`);
    return r.runs.map(chunksOf);
  }

  /** The file failed before its last block: the worker forgets the stream. */
  drop(): void {
    this.hasher.send({ id: this.hasher.newId(), stream: this.id, drop: true }, []).catch(() => undefined);
  }
}

function chunksOf(r: HashedRun): HashedChunk[] {
  const data = Buffer.from(r.buffer);
  const out: HashedChunk[] = [];
  let at = r.offset;
  r.lengths.forEach((len, i) => {
    out.push({
      oid: oidFromBytes(r.ids, 20 * i),
      data: data.subarray(at, at + len),
      hint: r.stored[i] === 1 ? { adler32: r.adlers[i] as number } : undefined,
    });
    at += len;
  });
  return out;
}
