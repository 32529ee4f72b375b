/**
 * Runs of blobs read in bulk: the chunks of a chunked file, front to back. Read one at a time, a
 * chunk costs more in per-object work (lookups, promises, a hash object, a buffer) than its 8 KiB
 * take to hash. Here the entries of a run that lie together in a pack go to a worker thread as
 * one job (blob-run-worker.ts), which reads their span once, unpacks them back to back and checks
 * every id; the asking thread gets one buffer. What the workers cannot check (an entry stored as
 * a delta, a loose object, one that is absent, damaged or of the wrong size) is read the general
 * way, which says what is wrong or finds a good copy elsewhere.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, GitfsError } from '../errors.js';
import { joinsRun, RUN_PAD, type BlobRunJob, type BlobRunResult } from './blob-run.js';
import type { PrepareJob, RangeJob, RangeResult } from './chunked-range.js';
import { OID_BYTES, type Oid } from './oid.js';
import type { BlobRef } from './object-store.js';
import type { PackFile } from './pack-file.js';

/** Where a pack holds a blob's entry: [start, end) of the pack file. */
export interface PackedEntry {
  readonly pack: PackFile;
  readonly start: number;
  readonly end: number;
}

const WORKERS = Math.max(1, Math.min(2, availableParallelism()));

interface Group {
  readonly pack: PackFile;
  /** Indexes into the run's blobs, and their entries. */
  readonly members: number[];
  readonly entries: PackedEntry[];
}

/**
 * The contents of `blobs` back to back. `locate` says where a pack holds each; `readOne` reads
 * one the general way (checked, and throwing what read() throws).
 */
export async function readBlobRun(
  blobs: readonly BlobRef[],
  locate: (blob: BlobRef) => PackedEntry | undefined,
  readOne: (blob: BlobRef) => Promise<Buffer>,
): Promise<Buffer> {
  const groups: Group[] = [];
  const loose: number[] = [];
  let group: Group | undefined;
  blobs.forEach((blob, i) => {
    const at = locate(blob);
    if (at === undefined) {
      loose.push(i);
      return;
    }
    const first = group?.entries[0];
    const last = group?.entries[group.entries.length - 1];
    if (first === undefined || last === undefined || !joinsRun(first, last, at)) groups.push((group = { pack: at.pack, members: [], entries: [] }));
    (group as Group).members.push(i);
    (group as Group).entries.push(at);
  });
  const results = await Promise.all(groups.map((g) => checkGroup(g, blobs)));

  let total = 0;
  const offsets = blobs.map((b) => (total += b.size) - b.size);
  const whole = results.length === 1 && loose.length === 0 && (results[0] as BlobRunResult).checked.every((c) => c === 1);
  if (whole) return Buffer.from((results[0] as BlobRunResult).buffer, RUN_PAD, total);

  const out = Buffer.allocUnsafe(total);
  results.forEach((r, g) => {
    const members = (groups[g] as Group).members;
    const data = Buffer.from(r.buffer);
    let at = RUN_PAD;
    members.forEach((i, k) => {
      const size = (blobs[i] as BlobRef).size;
      if (r.checked[k] === 1) data.copy(out, offsets[i] as number, at, at + size);
      else loose.push(i);
      at += size;
    });
  });
  await Promise.all(loose.map(async (i) => (await readOne(blobs[i] as BlobRef)).copy(out, offsets[i] as number)));
  return out;
}

/**
 * The bytes [from, to) of the chunked file whose chunk tree is `root` (`size` bytes), read in
 * one worker job from `packs` (chunked-range.ts) into `spare` when given (it is transferred to the
 * worker, so detached here); undefined where that way cannot, and the range must be read the
 * general way.
 */
export async function readChunkedRange(
  packs: readonly PackFile[],
  root: Oid,
  size: number,
  from: number,
  to: number,
  spare?: ArrayBuffer,
): Promise<Buffer | undefined> {
  const into = spare !== undefined && spare.byteLength >= to - from ? spare : undefined;
  try {
    const result = await withDescriptors(packs, (fds) =>
      RunWorkers.shared().range({ root, size, from, to, into, packs: packs.map((p, i) => ({ idxPath: p.indexPath, fd: fds[i] as number, size: p.size })) }),
    );
    return result.buffer === undefined ? undefined : Buffer.from(result.buffer, 0, to - from);
  } catch {
    return undefined;
  }
}

/** Has every worker parse the indexes of `packs` now, so that the first range read does not wait for them. */
export async function prepareRangeReads(packs: readonly PackFile[]): Promise<void> {
  await RunWorkers.shared().prepare(packs.map((p) => p.indexPath));
}

/** Runs `use` with the descriptors of all of `packs`, each held open until it settles. */
function withDescriptors<T>(packs: readonly PackFile[], use: (fds: number[]) => Promise<T>, fds: number[] = []): Promise<T> {
  const next = packs[fds.length];
  return next === undefined ? use(fds) : next.withDescriptor((fd) => withDescriptors(packs, use, [...fds, fd]));
}

/** Checks a group on a worker; if that fails as a whole (a closed pack, a dead worker), nothing is checked. */
async function checkGroup(g: Group, blobs: readonly BlobRef[]): Promise<BlobRunResult> {
  const ids = new Uint8Array(g.members.length * OID_BYTES);
  g.members.forEach((i, k) => ids.set(Buffer.from((blobs[i] as BlobRef).oid, 'hex'), k * OID_BYTES));
  const job = {
    starts: Float64Array.from(g.entries, (e) => e.start),
    ends: Float64Array.from(g.entries, (e) => e.end),
    sizes: Float64Array.from(g.members, (i) => (blobs[i] as BlobRef).size),
    ids,
  };
  try {
    return await g.pack.withDescriptor((fd) => RunWorkers.shared().run({ ...job, fd }));
  } catch {
    const size = job.sizes.reduce((a, b) => a + b, RUN_PAD);
    return { id: -1, buffer: new ArrayBuffer(size), checked: new Uint8Array(g.members.length) };
  }
}

type Pending = { resolve: (r: BlobRunResult | RangeResult) => void; reject: (e: Error) => void };

/** The workers, shared by the process; unref'd while idle, so they never keep it alive. */
class RunWorkers {
  private static instance: RunWorkers | undefined;
  private readonly workers: Array<{ worker: Worker; waiting: Map<number, Pending> }> = [];
  private nextId = 0;

  private constructor() {
    for (let i = 0; i < WORKERS; i++) {
      const worker = new Worker(new URL('./blob-run-worker.js', import.meta.url));
      const waiting = new Map<number, Pending>();
      worker.on('message', (r: BlobRunResult | RangeResult) => {
        waiting.get(r.id)?.resolve(r);
        waiting.delete(r.id);
        if (waiting.size === 0) worker.unref();
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => this.fail(new GitfsError(ErrorCodes.IO, `a blob run worker thread exited (code ${code})`)));
      worker.unref(); // after the listeners: attaching a 'message' listener refs the worker again
      this.workers.push({ worker, waiting });
    }
  }

  /** A worker failed: every job in flight fails (its blobs are read the general way), and the next run starts a new pool. */
  private fail(e: Error): void {
    if (RunWorkers.instance === this) RunWorkers.instance = undefined;
    for (const { worker, waiting } of this.workers) {
      for (const w of waiting.values()) w.reject(e);
      waiting.clear();
      void worker.terminate();
    }
  }

  static shared(): RunWorkers {
    RunWorkers.instance ??= new RunWorkers();
    return RunWorkers.instance;
  }

  run(fields: Omit<BlobRunJob, 'id'>): Promise<BlobRunResult> {
    return this.post({ ...fields, id: this.nextId++ }) as Promise<BlobRunResult>;
  }

  range(fields: Omit<RangeJob, 'id' | 'kind'>): Promise<RangeResult> {
    return this.post({ ...fields, kind: 'range', id: this.nextId++ }) as Promise<RangeResult>;
  }

  async prepare(idxPaths: readonly string[]): Promise<void> {
    await Promise.all(this.workers.map((w) => this.post({ kind: 'prepare', id: this.nextId++, idxPaths }, w)));
  }

  private post(job: BlobRunJob | RangeJob | PrepareJob, to = this.workers.reduce((a, b) => (b.waiting.size < a.waiting.size ? b : a))): Promise<BlobRunResult | RangeResult> {
    const result = new Promise<BlobRunResult | RangeResult>((resolve, reject) => to.waiting.set(job.id, { resolve, reject }));
    to.worker.ref();
    to.worker.postMessage(job, 'into' in job && job.into !== undefined ? [job.into] : []);
    return result;
  }
}
