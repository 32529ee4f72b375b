/**
 * Where objects received from peers go, and what this node can serve. Received objects are
 * verified by the caller, then written into a pack being built (chunk-tree nodes uncompressed,
 * as the committer writes them: deflating ~4 000 nodes per 512 MiB image cost a relay ~7 % of its
 * main thread) and kept in memory until that
 * pack is finished (every `flushBytes`, or on flush()), so that they can be passed on at once,
 * before they are durable. Reads and `has` look at those first, then at the repository.
 *
 * The objects of the last finished pack stay in memory too, until the next one is finished: a
 * downstream peer runs a few MiB behind its relay, and without them every pack finished left it
 * asking for objects that had just left memory, each then read back from disk (in one 8-node
 * run, one relay served most of what it passed on that way: BENCHMARKS.md). So at most about
 * 2 × flushBytes of content is held.
 *
 * Objects that came in a block of the pool (block-pool.ts) hold that block until their pack
 * leaves memory; then it goes back to the pool. So that no view of it outlives that: read()
 * gives copies of such objects, held() and arrival() give views that are good only until the
 * caller next yields, and a caller that keeps one longer pins it (pin()).
 */
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, GitfsError } from '../errors.js';
import { isIncompressible } from '../objects/compress.js';
import type { GitObject } from '../objects/object-store.js';
import type { ObjectType, Oid } from '../objects/oid.js';
import type { PackWriter } from '../objects/pack-writer.js';
import { isChunkNode } from '../objects/raw-chunk-node.js';
import { rememberMember } from '../util/bounded-map.js';
import { storedHint } from '../objects/stored-entry.js';
import type { Repository } from '../repo/repository.js';
import type { DeflatedStream } from '../objects/blob-stream.js';
import type { BlockPool } from './block-pool.js';
import type { ObjectSource } from './closure.js';
import { LIMITS } from './messages.js';
import { MetaCache } from './meta-cache.js';
import type { PartSink } from './part-assembly.js';

/**
 * Packs' worth of received objects not yet in a finished pack at which fetches ask for no more
 * (`backlogged`). With the last finished pack, held for serving, LocalObjects holds up to one
 * more than this at once.
 */
export const BACKLOG_PACKS = 4;

/** Commits and trees kept in memory: the chunk trees of ~10 GiB of images. */
const META_CACHE_BYTES = 32 << 20;

/** Damaged copies replace() remembers at once (each is an id: a few hundred KiB at most). */
const REPLACING_MAX = 4096;

/** Room left free beyond a blob received in parts (the stream is at most a little longer than its content): others write too. */
const LARGE_ROOM_BYTES = 1 << 30;
/** The `reason` of the GITFS_IO error of a blob in parts that does not fit: the size is the peer's word alone. */
export const NO_ROOM = 'no-room';

/**
 * An object held in memory: its content, and its zlib stream when it is stored deflated (passed
 * on as it is), or whether it is stored uncompressed (passed on so, the next node need not sample it).
 */
export interface HeldObject extends GitObject {
  zlib?: Buffer;
  stored?: boolean;
}

export class LocalObjects implements ObjectSource {
  private pending = new Map<Oid, HeldObject>();
  /** The content bytes of `pending`. */
  private pendingBytes = 0;
  /** Objects this node's own wants name, by how many of them. */
  private readonly expected = new Map<Oid, number>();
  /** Peers' wants waiting for objects not received yet (arrival()). */
  private readonly arrivals = new Map<Oid, ((o: HeldObject | undefined) => void)[]>();
  /** The objects of the last finished pack (durable), still held for serving. */
  private recent = new Map<Oid, HeldObject>();
  private writer: PackWriter | undefined;
  /** The objects written into `writer`, dropped from memory when it is finished. */
  private inWriter: Oid[] = [];
  private inWriterBytes = 0;
  /** Blocks adopted with the objects written into `writer`, and with those in `recent`: released with them. */
  private inWriterBlocks: Buffer[] = [];
  private recentBlocks: Buffer[] = [];
  private chain: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  /** Commits and trees read from the repository, served to every fetcher from memory. */
  private readonly meta = new MetaCache(META_CACHE_BYTES);
  /** Objects whose copy here is damaged (replace()): written again when received, though a pack holds them. */
  private readonly replacing = new Set<Oid>();

  constructor(
    private readonly repo: Repository,
    private readonly o: { readonly flushBytes: number; /** Write promisor packs (the repository is partial). */ readonly promisor: boolean; readonly pool: BlockPool },
  ) {}

  private closed = false;

  has(oid: Oid): boolean | Promise<boolean> {
    return this.pending.has(oid) || this.repo.objects.has(oid);
  }

  absent(oids: readonly Oid[]): Promise<readonly Oid[]> {
    return this.repo.objects.absent(oids.filter((oid) => !this.pending.has(oid)));
  }

  /** Whether the object is here in memory or in a pack (loose objects, which gitfs never writes, are not looked at). */
  hasNow(oid: Oid): boolean {
    return this.pending.has(oid) || this.repo.objects.hasPacked(oid);
  }

  /** A want of this node's own fetch names these objects (they are on their way), until unexpect(). */
  expect(oids: readonly Oid[]): void {
    for (const oid of oids) this.expected.set(oid, (this.expected.get(oid) ?? 0) + 1);
  }

  /** Whether a want of this node's own fetch names the object (it is on its way). */
  expects(oid: Oid): boolean {
    return this.expected.has(oid);
  }

  /**
   * The copies here of `oids` are damaged: when received, they are written again (else the writer
   * skips them, as held already, and freshens the damaged pack). The REPLACING_MAX named last are
   * remembered (one no peer had stays until others push it out).
   */
  replace(oids: readonly Oid[]): void {
    for (const oid of oids) {
      this.replacing.delete(oid);
      rememberMember(this.replacing, oid, REPLACING_MAX);
    }
  }

  private readonly rewrites = (oid: Oid): boolean => this.replacing.has(oid);

  unexpect(oids: readonly Oid[]): void {
    for (const oid of oids) {
      const n = (this.expected.get(oid) ?? 1) - 1;
      if (n > 0) this.expected.set(oid, n);
      else this.expected.delete(oid);
    }
  }

  /**
   * The object once it is received, or undefined if it has not come within `waitMs` or the store
   * closes: for a peer that asked ahead for what this node is fetching. An object no want of this
   * node's names is not waited for (it is not coming) unless `unasked`: a batch of a shared level
   * of the walk, which this node asks for once its own walk reaches that level.
   */
  arrival(oid: Oid, waitMs: number, unasked = false): Promise<HeldObject | undefined> {
    const now = this.held(oid);
    if (now !== undefined || this.closed || waitMs <= 0 || (!unasked && !this.expected.has(oid))) return Promise.resolve(now);
    return new Promise((resolve) => {
      const waiter = (o: HeldObject | undefined): void => {
        clearTimeout(timer);
        const rest = this.arrivals.get(oid)?.filter((w) => w !== waiter) ?? [];
        if (rest.length > 0) this.arrivals.set(oid, rest);
        else this.arrivals.delete(oid);
        resolve(o);
      };
      const timer = setTimeout(() => waiter(undefined), waitMs);
      this.arrivals.set(oid, [...(this.arrivals.get(oid) ?? []), waiter]);
    });
  }

  /**
   * The object if it is held in memory (received, and in the pack being written or the last one
   * finished): no read, no promise. Its buffers are good until the caller yields, unless pinned.
   */
  held(oid: Oid): HeldObject | undefined {
    return this.pending.get(oid) ?? this.recent.get(oid);
  }

  /** Keeps the buffers of `o` (from held() or arrival()) good until the returned function is called. */
  pin(o: HeldObject): () => void {
    const pinned = [o.content, o.zlib].filter((b): b is Buffer => b !== undefined && this.o.pool.retain(b));
    return () => {
      for (const b of pinned.splice(0)) this.o.pool.release(b);
    };
  }

  /** The object, from memory or the repository; never a view of a pool block (it may be kept). */
  async read(oid: Oid): Promise<GitObject> {
    const held = this.held(oid);
    if (held === undefined) return this.meta.read(oid, this.readStored);
    const copy = (b: Buffer): Buffer => (this.o.pool.owns(b) ? Buffer.from(b) : b);
    const out: HeldObject = { type: held.type, content: copy(held.content) };
    if (held.zlib !== undefined) out.zlib = copy(held.zlib);
    if (held.stored !== undefined) out.stored = held.stored;
    return out;
  }

  /** Read to be served (a peer checks what it gets): CRC-checked out of a pack, deflated entries with their zlib stream. */
  private readonly readStored = (oid: Oid): Promise<GitObject> => this.repo.objects.readToServe(oid);

  /**
   * The object to send a peer: as read() gives it, but one stored here above what one message
   * carries is not read (OBJECT_TOO_LARGE, its size and type in the error's data): zlibToSend
   * streams it. A view of a pool block is good until the caller yields, unless pinned.
   */
  readToSend(oid: Oid): Promise<HeldObject> {
    return Promise.resolve(this.held(oid) ?? this.meta.read(oid, this.readSendable));
  }

  private readonly readSendable = (oid: Oid): Promise<GitObject> => this.repo.objects.readToServe(oid, LIMITS.objectBytes);

  /** The zlib stream of an object too large to hold, as it lies in a pack (or deflated anew as it is read: ObjectDatabase.zlibToServe). */
  zlibToSend(oid: Oid): Promise<DeflatedStream> {
    return this.repo.objects.zlibToServe(oid, this.repo.settings.compressionLevel);
  }

  /**
   * Where a blob received in parts goes (part-assembly.ts): a pack of its own, so that a blob that
   * fails its checks is dropped with its pack, never indexed beside other objects. Committed, the
   * pack is finished (fsynced, renamed into place) and the blob is here (hasNow).
   */
  async receiveLarge(oid: Oid, size: number): Promise<PartSink> {
    if (this.closed) throw new GitfsError(ErrorCodes.IO, 'the swarm is stopping: nothing more is stored');
    // A peer declares the size (up to 64 GiB): what does not fit, with room to spare, is not begun.
    const packDir = join(this.repo.gitDir, 'objects', 'pack');
    const fs = await statfs(packDir);
    if (fs.bavail * fs.bsize < size + LARGE_ROOM_BYTES) {
      throw new GitfsError(ErrorCodes.IO, `no room for a blob of ${size} bytes in parts (${fs.bavail * fs.bsize} bytes free in ${packDir})`, { oid, size, path: packDir, reason: NO_ROOM });
    }
    const writer = await this.repo.newPackWriter({ promisor: this.o.promisor, maxObjectsPerPack: 1, rewrite: this.rewrites });
    const entry = writer.streamEntry(oid, 'blob', size);
    return {
      write: (zlib) => entry?.write(zlib) ?? Promise.resolve(),
      commit: async () => {
        entry?.end();
        await writer.finish();
        this.replacing.delete(oid);
        await this.repo.objects.refresh();
      },
      abort: () => writer.abort(),
    };
  }

  /**
   * Stores verified objects (their ids checked by the caller), in one step of the writer. An
   * object that came deflated is stored as its zlib stream, as it is; the writer's own deflate of
   * one that did not is kept with it, so that either goes on deflated to the next peer.
   */
  addAll(
    objects: readonly { readonly oid: Oid; readonly type: ObjectType; readonly content: Buffer; readonly zlib?: Buffer | undefined; readonly stored?: boolean | undefined }[],
    /** The objects are views of one message's block, which nothing else keeps a view of: it is adopted, and released with their pack. */
    lent = false,
  ): Promise<void> {
    if (this.closed) return Promise.reject(new GitfsError(ErrorCodes.IO, 'the swarm is stopping: nothing more is stored'));
    const fresh = objects.filter((o) => !this.pending.has(o.oid));
    for (const o of fresh) {
      this.pendingBytes += o.content.length;
      const held: HeldObject = o.zlib !== undefined ? { type: o.type, content: o.content, zlib: o.zlib } : { type: o.type, content: o.content, stored: storesUncompressed(o) };
      this.pending.set(o.oid, held);
      for (const waiter of this.arrivals.get(o.oid) ?? []) waiter(held);
    }
    if (fresh.length === 0) return Promise.resolve();
    const first = fresh[0] as { readonly content: Buffer; readonly zlib?: Buffer | undefined };
    const view = first.zlib ?? first.content;
    const block = lent && this.o.pool.adopt(view) ? view : undefined;
    return this.serial(async () => {
      let written = 0;
      if (block !== undefined) this.inWriterBlocks.push(block);
      try {
        // Packs end every flushBytes, far below a pack's object cap: each is hashed once, read back.
        this.writer ??= await this.repo.newPackWriter({ promisor: this.o.promisor, hashWhileWriting: false, rewrite: this.rewrites });
        for (const o of fresh) {
          this.inWriter.push(o.oid);
          this.inWriterBytes += o.content.length;
          written++;
          if (o.zlib !== undefined) await this.writer.writeDeflated(o.oid, o.type, o.content.length, o.zlib);
          else {
            const held = this.pending.get(o.oid);
            const hint = held?.stored === true ? storedHint(o.content) : undefined;
            await this.writer.writeHashed(o.oid, o.type, o.content, hint, (zlib) => {
              if (held !== undefined) held.zlib = zlib;
            });
          }
        }
      } catch (e) {
        // What never reached the writer is dropped now; what did goes with the failed pack.
        this.drop(fresh.slice(written).map((o) => o.oid));
        throw e;
      }
      if (this.inWriterBytes >= this.o.flushBytes) await this.finishPack();
    });
  }

  /** Forgets objects that will not reach a pack: they count as absent again. */
  private drop(oids: readonly Oid[]): void {
    for (const oid of oids) {
      this.pendingBytes -= this.pending.get(oid)?.content.length ?? 0;
      this.pending.delete(oid);
    }
  }

  /**
   * Whether what was received and is not yet in a finished pack passes BACKLOG_PACKS packs' worth: the
   * disk is behind the network (each pack is fsynced; at 16 nodes on one disk a pack took up to
   * 6 s to finish and a node held ~600 MiB), so fetches ask for no more until it catches up.
   */
  get backlogged(): boolean {
    return this.pendingBytes >= BACKLOG_PACKS * this.o.flushBytes;
  }

  /** Makes what was added so far durable within `ms` at the latest (on-demand reads trickle in: one pack per burst, not per read). */
  flushWithin(ms: number): void {
    if (this.flushTimer !== undefined || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush().catch(() => undefined);
    }, ms);
  }

  /** Makes everything added so far durable (a finished, fsynced pack the repository reads). */
  flush(): Promise<void> {
    return this.serial(() => this.finishPack());
  }

  private async finishPack(): Promise<void> {
    const writer = this.writer;
    const written = this.inWriter;
    const blocks = this.inWriterBlocks;
    this.writer = undefined;
    this.inWriter = [];
    this.inWriterBytes = 0;
    this.inWriterBlocks = [];
    if (writer === undefined) return;
    const recent = new Map<Oid, HeldObject>();
    try {
      await writer.finish();
      await this.repo.objects.refresh();
      for (const oid of written) {
        const o = this.pending.get(oid);
        if (o !== undefined) recent.set(oid, o);
        this.replacing.delete(oid);
      }
    } finally {
      // Durable now (and held as `recent` until the next pack), or lost with the failed pack.
      this.drop(written);
      this.recent = recent;
      this.releaseRecent(blocks);
    }
  }

  /** The blocks of the objects that leave memory go back to the pool; `next` are those of the new `recent`. */
  private releaseRecent(next: Buffer[]): void {
    for (const b of this.recentBlocks) this.o.pool.release(b);
    this.recentBlocks = next;
  }

  private serial(step: () => Promise<void>): Promise<void> {
    const run = this.chain.then(step);
    this.chain = run.catch(() => undefined);
    return run.catch((e: unknown) => {
      throw e instanceof GitfsError ? e : new GitfsError(ErrorCodes.IO, `storing fetched objects failed: ${(e as Error).message}`, {}, { cause: e });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiters of [...this.arrivals.values()]) for (const waiter of waiters) waiter(undefined);
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.flush().catch(() => undefined);
    this.recent = new Map();
    this.releaseRecent([]);
  }
}

/**
 * Whether an object that came as its content is stored so (uncompressed): its sender says it
 * holds it so, it is a chunk-tree node (stored so by its committer), or a sample finds it
 * incompressible. Otherwise the pack writer deflates it.
 */
function storesUncompressed(o: { readonly type: ObjectType; readonly content: Buffer; readonly stored?: boolean | undefined }): boolean {
  return o.stored === true || (o.type === 'tree' ? isChunkNode(o.content) : isIncompressible(o.content));
}
