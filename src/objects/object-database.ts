/**
 * The read side of a git object database (`<gitdir>/objects`): every pack with
 * its index, then loose objects.
 *
 * Invariants: every object read() returns hashes to its id (else
 * CORRUPT_OBJECT naming it); no object larger than `maxObjectBytes` is
 * inflated whole (OBJECT_TOO_LARGE): readBlob() streams such a blob, and checks
 * its hash once it has read it all. A read() miss rescans the pack directory once,
 * since other processes add packs; a has() miss only if the directory's mtime
 * moved (writers call has() per object). Rescans are coalesced (one running,
 * at most one queued). sizeOf() is the one unverified answer. A partial repository's
 * database asks its promisor for what it lacks (promisor.ts).
 * Packs that disappear are closed once their reads in flight finish. Every `<name>.idx` with
 * a matching `.pack` is opened, as git opens them; temporaries (`tmp_*`, `.tmp-*`) are ignored.
 * A damaged copy of an object is skipped if another source holds a good one.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode, isGitfsError } from '../errors.js';
import { remember } from '../util/bounded-map.js';
import { DirWatch } from './dir-stamp.js';
import { LooseObjects } from './loose-objects.js';
import { hashObject } from './oid.js';
import type { Oid } from './oid.js';
import { DEFAULT_MAX_OBJECT_BYTES } from './object-store.js';
import type { BlobRef, GitObject, ObjectReader } from './object-store.js';
import { prepareRangeReads, readBlobRun, readChunkedRange, type PackedEntry } from './blob-runs.js';
import { readBlobsOneByOne, readSizedBlob, readTyped } from './typed-read.js';
import { checkedBlob, deflated, PIECE_BYTES, type DeflatedStream, type StreamedObject } from './blob-stream.js';
import { PackFile } from './pack-file.js';
import { PackIndex } from './pack-index.js';
import { PackSetFilter } from './pack-set-filter.js';
import { entryObject, type ServedObject } from './served-entry.js';
import type { VerifiedIndex } from './pack-verify.js';
import type { Promisor } from './promisor.js';

export interface ObjectDatabaseOptions {
  /** Largest object read whole; default DEFAULT_MAX_OBJECT_BYTES. */
  readonly maxObjectBytes?: number;
}

const PREFIX_RE = /^[0-9a-f]{4,40}$/;
/**
 * Every `<name>.idx` beside its `<name>.pack` (git maintenance writes `loose-*.pack`),
 * temporaries aside: gitfs's and git's `tmp_*`, and git repack's `.tmp-<pid>-pack-*`.
 */
const PACK_IDX_RE = /^(?!tmp_|\.)([^/]+)\.idx$/;

const MAX_REMEMBERED_SIZES = 1 << 18;
/** Largest run of blobs read in bulk: a mount segment (1 MiB) with a largest chunk (64 MiB) at each end. */
const MAX_RUN_BYTES = 160 << 20;
/** Loose lookups absent() runs at once. */
const LOOSE_ROUND = 256;

export class ObjectDatabase implements ObjectReader {
  readonly objectsDir: string;
  /** The read limit: no object larger is read whole (readBlob streams a blob that is). */
  readonly maxObjectBytes: number;
  private readonly loose: LooseObjects;
  /** Open packs by base name (`pack-<hash>`, `loose-<hash>`), newest first in `order`. */
  private readonly packsByName = new Map<string, PackFile>();
  private readonly damaged = new Map<string, GitfsError>();
  private readonly sizes = new Map<Oid, number>();
  private order: PackFile[] = [];
  /** The ids of every pack in `order`: most lookups are of ids no pack holds. */
  private readonly packIds = new PackSetFilter();
  /**
   * Git's cruft packs among them (a `.mtimes` file beside the pack): unreachable objects, each
   * with its own time there, which `git gc` goes by instead of the file's (freshen.ts).
   */
  private cruft = new Set<PackFile>();
  /** The pack that held the last id hasPacked found (one of `order`). */
  private lastHit: PackFile | undefined;
  /** The pack directory, as the last completed scan listed it. */
  private readonly packDir: DirWatch;
  private scanRunning: Promise<void> | undefined;
  private scanQueued: Promise<void> | undefined;
  private closed = false;
  private promisor: Promisor | undefined;

  private constructor(objectsDir: string, maxObjectBytes: number) {
    this.objectsDir = objectsDir;
    this.maxObjectBytes = maxObjectBytes;
    this.loose = new LooseObjects(objectsDir);
    this.packDir = new DirWatch(join(objectsDir, 'pack'));
  }

  static async open(gitDir: string, options: ObjectDatabaseOptions = {}): Promise<ObjectDatabase> {
    const max = options.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES;
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `maxObjectBytes must be a non-negative integer, got ${max}`);
    }
    const db = new ObjectDatabase(join(gitDir, 'objects'), max);
    let isDir: boolean;
    try {
      isDir = (await stat(db.objectsDir)).isDirectory();
    } catch (e) {
      const code = errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR' ? ErrorCodes.NOT_A_REPOSITORY : ErrorCodes.IO;
      throw new GitfsError(code, `cannot open object directory ${db.objectsDir}: ${(e as Error).message}`, { path: db.objectsDir }, { cause: e });
    }
    if (!isDir) throw new GitfsError(ErrorCodes.NOT_A_REPOSITORY, `${db.objectsDir} is not a directory`, { path: db.objectsDir });
    await db.refresh();
    return db;
  }

  async read(oid: Oid): Promise<GitObject> {
    const first = await this.tryRead(oid);
    if (first.found) return first.found;
    await this.refresh();
    const second = await this.tryRead(oid);
    if (second.found) return second.found;
    const error = first.error ?? second.error ?? this.missing(oid);
    // Too large here is too large from the daemon as well (readBlob streams it from here instead).
    if (this.promisor === undefined || isGitfsError(error, ErrorCodes.OBJECT_TOO_LARGE)) throw error;
    // A damaged or missing copy is read from the promisor instead (the daemon writes what it fetched,
    // a damaged copy's replacement too: src/swarm/local-objects.ts replace).
    return this.viaPromisor(this.promisor, oid, (o) => o, async () => {
      const third = await this.tryRead(oid);
      if (third.found) return third.found;
      throw third.error ?? error;
    });
  }

  /**
   * `got` of what the promisor supplies for `oid`. One it answers as absent may be in a pack by
   * then (a blob too large for its answers: the swarm stores those, received in parts, straight
   * into a pack), so the packs are listed again and `local` is tried once more.
   */
  private async viaPromisor<T>(promisor: Promisor, oid: Oid, got: (o: GitObject) => T, local: () => Promise<T>): Promise<T> {
    let supplied: GitObject;
    try {
      supplied = await promisor.read(oid);
    } catch (e) {
      if (!isGitfsError(e, ErrorCodes.OBJECT_NOT_FOUND)) throw e;
      await this.refresh();
      return local();
    }
    return got(supplied);
  }

  /**
   * See ObjectReader.readBlob: read whole when it fits the limit (the one piece), else streamed
   * out of its loose file or whole pack entry (blob-stream.ts), checked at the end. One git stored
   * only as a delta cannot be streamed (its base would be read whole): OBJECT_TOO_LARGE, saying
   * how git stores it whole.
   */
  async *readBlob(oid: Oid): AsyncGenerator<Buffer> {
    let whole: Buffer;
    try {
      whole = await readTyped(this, oid, 'blob');
    } catch (e) {
      if (!isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE)) throw e;
      const streamed = await this.streamed(oid);
      if (streamed === undefined) {
        const why = `blob ${oid} of ${await this.sizeOf(oid)} bytes is stored as a delta, above the read limit of ${this.maxObjectBytes} bytes`;
        throw new GitfsError(ErrorCodes.OBJECT_TOO_LARGE, `${why}; git -c core.bigFileThreshold=${this.maxObjectBytes} repack -a -d -F stores it whole`, { oid, limit: this.maxObjectBytes }, { cause: e });
      }
      yield* checkedBlob(oid, streamed);
      return;
    }
    yield whole;
  }

  /** `oid` as a stream out of the first source holding it whole (not as a delta), if any. */
  private async streamed(oid: Oid): Promise<StreamedObject | undefined> {
    this.assertOpen();
    for (const pack of this.order) {
      const offset = pack.isClosing ? undefined : pack.index.lookup(oid);
      const streamed = offset === undefined ? undefined : await pack.streamAt(offset);
      if (streamed !== undefined) return streamed;
    }
    return this.loose.stream(oid);
  }

  /**
   * `oid` for serving a peer, who checks its SHA-1 itself: out of a pack entry whose CRC-32
   * matches its index, with the zlib stream of a deflated entry to send as it is
   * (served-entry.ts); anything else (a delta, a loose object, a damaged entry) as read() gives it.
   * An object above `holdLimit` (by its header: unverified) is not read but OBJECT_TOO_LARGE, with
   * its size and type in the error's data (zlibToServe streams it).
   */
  async readToServe(oid: Oid, holdLimit = this.maxObjectBytes): Promise<ServedObject> {
    this.assertOpen();
    for (const pack of this.order) {
      const at = pack.isClosing ? undefined : pack.index.entryOf(oid);
      // An entry larger than what may be held is not read at all (a delta of one may be small: read() sizes it); a damaged index is left to read().
      if (at === undefined || entryBytes(pack, at.offset) > holdLimit) continue;
      const entry = await pack.entry(at).catch(() => undefined);
      const obj = entry === undefined ? undefined : entryObject(entry, holdLimit);
      if (obj !== undefined) return obj;
    }
    // Deltas, loose objects, entries above the limit or damaged: sized first (a header's read), read whole only below it.
    const size = holdLimit < this.maxObjectBytes ? await this.sizeOf(oid).catch(() => undefined) : undefined;
    if (size !== undefined && size > holdLimit) {
      throw new GitfsError(ErrorCodes.OBJECT_TOO_LARGE, `object ${oid} of ${size} bytes is above ${holdLimit}`, { oid, size, limit: holdLimit });
    }
    return this.read(oid);
  }

  /**
   * `oid` as the zlib stream of its content, in pieces, for serving a peer an object too large to
   * hold (the peer checks its SHA-1): a whole pack entry's stream as it lies in the pack, its
   * CRC-32 checked before the last piece; anything else (a loose object, a delta, a damaged entry)
   * deflated anew at `level` as it is read, a delta resolved whole first (a read of it, up to the
   * read limit: OBJECT_TOO_LARGE above).
   */
  async zlibToServe(oid: Oid, level: number): Promise<DeflatedStream> {
    this.assertOpen();
    for (const pack of this.order) {
      const at = pack.isClosing ? undefined : pack.index.entryOf(oid);
      const whole = at === undefined ? undefined : await pack.zlibStreamAt(at).catch(() => undefined);
      if (whole !== undefined) return whole;
    }
    const loose = await this.loose.stream(oid);
    if (loose !== undefined) return { type: loose.type, size: loose.size, zlib: deflated(loose.pieces, level) };
    const obj = await this.read(oid);
    return { type: obj.type, size: obj.content.length, zlib: deflated(onePiece(obj.content), level) };
  }

  private missing(oid: Oid): GitfsError {
    if (this.damaged.size === 0) return new GitfsError(ErrorCodes.OBJECT_NOT_FOUND, `object ${oid} not found`, { oid });
    const packs = [...this.damaged.keys()];
    return new GitfsError(ErrorCodes.CORRUPT_PACK, `object ${oid} not found; damaged pack(s) may hold it: ${packs.join(', ')}`, { oid, packs });
  }

  /**
   * Where objects that are not here come from (a partial node: its daemon's swarm). read() and
   * sizeOf() ask it on a miss; has() still says only what is here.
   */
  setPromisor(promisor: Promisor | undefined): void {
    this.promisor = promisor;
  }

  /**
   * Which of `oids` are not here: as has() answers each, with one look at the pack directory for
   * all the misses (a fetcher's walk asks thousands of trees at once, all absent).
   */
  async absent(oids: readonly Oid[]): Promise<Oid[]> {
    this.assertOpen();
    let missing = oids.filter((oid) => !this.hasPacked(oid));
    if (missing.length > 0 && (await this.packDir.mayHaveChanged())) {
      await this.refresh();
      missing = missing.filter((oid) => !this.hasPacked(oid));
    }
    const out: Oid[] = [];
    // Loose files in rounds: a stat each where their fanout directory exists (a repository git wrote).
    for (let i = 0; i < missing.length; i += LOOSE_ROUND) {
      const round = missing.slice(i, i + LOOSE_ROUND);
      const loose = await Promise.all(round.map((oid) => this.loose.has(oid)));
      for (const [j, oid] of round.entries()) if (!loose[j]) out.push(oid);
    }
    return out;
  }

  /**
   * Whether a pack already loaded holds `oid`: synchronous and without I/O, for writers that
   * check every object they store. Packs added since the last scan are not seen.
   */
  hasPacked(oid: Oid): boolean {
    return this.holding(oid, true) !== undefined;
  }

  /**
   * The packs loaded (as of the last scan), newest first: each one's base name, its path, size,
   * object count, ids, whether it holds an id, whether it is one of git's cruft packs, and its
   * index (what pack-verify.ts checks it against).
   */
  packs(): Array<{ readonly name: string; readonly path: string; readonly size: number; readonly count: number; readonly cruft: boolean; ids(): Iterable<Oid>; has(oid: Oid): boolean; readonly index: VerifiedIndex }> {
    this.assertOpen();
    const names = new Map([...this.packsByName].map(([name, pack]) => [pack, name]));
    return this.order.map((pack) => ({
      name: names.get(pack) as string,
      path: pack.path,
      size: pack.size,
      count: pack.index.count,
      cruft: this.cruft.has(pack),
      ids: () => pack.index.ids(),
      has: (oid: Oid) => pack.index.lookup(oid) !== undefined,
      index: pack.index,
    }));
  }

  /**
   * The path of the loaded pack that holds `oid`, for freshening (freshen.ts); undefined when
   * none does, or only a cruft pack, whose objects git gc judges by times that only writing them
   * again renews.
   */
  packHolding(oid: Oid): string | undefined {
    return this.holding(oid, false)?.path;
  }

  private holding(oid: Oid, cruftToo: boolean): PackFile | undefined {
    this.assertOpen();
    if (!this.packIds.mayHold(oid)) return undefined;
    // Ids asked in a row mostly lie in one pack (the blobs of a closure, in the order fetched).
    const last = this.lastHit;
    if (last !== undefined && (cruftToo || !this.cruft.has(last)) && last.index.lookup(oid) !== undefined) return last;
    for (const pack of this.order) {
      if (pack === last || (!cruftToo && this.cruft.has(pack)) || pack.index.lookup(oid) === undefined) continue;
      this.lastHit = pack;
      return pack;
    }
    return undefined;
  }

  /** See ObjectReader.readBlobRun: entries that lie together in a pack are read and checked in bulk (blob-runs.ts). */
  readBlobRun(blobs: readonly BlobRef[]): Promise<Buffer> {
    this.assertOpen();
    // Sizes come from chunk trees, which may lie: a run that claims more than a bulk read would
    // hold is read one by one, each blob compared with its claim before anything is joined.
    let claimed = 0;
    for (const b of blobs) claimed += b.size;
    if (claimed > MAX_RUN_BYTES || blobs.some((b) => !(b.size <= this.maxObjectBytes))) return readBlobsOneByOne(this, blobs);
    return readBlobRun(blobs, (b) => this.locatePacked(b.oid), (b) => readSizedBlob(this, b));
  }

  /** See ObjectReader.readChunkedRange: one worker job reads the range out of the packs (chunked-range.ts). */
  readChunkedRange(root: Oid, size: number, from: number, to: number, spare?: ArrayBuffer): Promise<Buffer | undefined> {
    this.assertOpen();
    return readChunkedRange(this.order.filter((p) => !p.isClosing), root, size, from, to, spare);
  }

  /** Has the range readers parse the packs' indexes now (a mount calls it once it answers), so that the first read does not wait for them. */
  async prepareRangeReads(): Promise<void> {
    this.assertOpen();
    await prepareRangeReads(this.order);
  }

  /** Where the first pack holding `oid` has its entry (undefined: in none, or its index is damaged there). */
  private locatePacked(oid: Oid): PackedEntry | undefined {
    for (const pack of this.order) {
      if (pack.isClosing) continue;
      const start = pack.index.lookup(oid);
      if (start === undefined) continue;
      try {
        return { pack, start, end: pack.entryEnd(start) };
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /** Where the loose object `oid` lies (or would lie). */
  loosePathOf(oid: Oid): string {
    return this.loose.pathOf(oid);
  }

  /** Every loose object id, listed once (gitfs itself writes none; git may). */
  looseIds(): Promise<Set<Oid>> {
    return this.loose.list();
  }

  /**
   * Rescans if the pack directory changed since the last scan: packs merged or removed by
   * another process are let go of (their descriptors closed) without waiting for a miss.
   */
  async rescanIfChanged(): Promise<void> {
    if (await this.packDir.mayHaveChanged()) await this.refresh();
  }

  /** On a miss, rescans only if the pack directory changed since the last scan (writers call this per object; the misses of a turn share one stat). */
  async has(oid: Oid): Promise<boolean> {
    if (await this.hasNow(oid)) return true;
    if (!(await this.packDir.mayHaveChanged())) return false;
    await this.refresh();
    return this.hasNow(oid);
  }

  /**
   * The size `oid` declares (a delta's target size), reading only the start of
   * its entry: NOT hash-checked. OBJECT_NOT_FOUND if absent.
   */
  async sizeOf(oid: Oid): Promise<number> {
    // Remembered: an id's declared size never changes, and a stat storm asks for the same blobs again and again.
    let size = this.sizes.get(oid) ?? (await this.trySizeOf(oid));
    if (size === undefined) {
      await this.refresh();
      size = await this.trySizeOf(oid);
    }
    if (size === undefined && this.promisor !== undefined) size = await this.viaPromisor(this.promisor, oid, (o) => o.content.length, () => this.trySizeOf(oid));
    if (size === undefined) throw new GitfsError(ErrorCodes.OBJECT_NOT_FOUND, `object ${oid} not found`, { oid });
    if (!this.sizes.has(oid)) remember(this.sizes, oid, size, MAX_REMEMBERED_SIZES);
    return size;
  }

  /**
   * The type `oid` declares, from entry headers (a delta's from its base's) without reading the
   * object whole; unverified, like sizeOf.
   */
  async typeOf(oid: Oid): Promise<GitObject['type']> {
    // Whatever the headers cannot tell (not found, a base in another pack, a damaged header) is
    // left to read(), which looks everywhere (other packs, loose, the promisor) and names the damage.
    const fromHeaders = (): Promise<GitObject['type'] | undefined> => this.tryTypeOf(oid).catch(() => undefined);
    let type = await fromHeaders();
    if (type === undefined) {
      // A pack written since the last scan (by git, or a daemon) is looked at before the object is read whole.
      await this.refresh();
      type = await fromHeaders();
    }
    return type ?? (await this.read(oid)).type;
  }

  async findByPrefix(prefix: string, limit: number): Promise<Oid[]> {
    if (!PREFIX_RE.test(prefix)) {
      throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `not an id prefix: ${JSON.stringify(prefix.slice(0, 64))}`, { prefix });
    }
    let found = await this.findNow(prefix, limit);
    if (found.length === 0) {
      await this.refresh();
      found = await this.findNow(prefix, limit);
    }
    return found;
  }

  /** Rescans the pack directory: opens new packs, closes vanished ones. */
  refresh(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (!this.scanRunning) {
      this.scanRunning = this.scan().finally(() => (this.scanRunning = undefined));
      return this.scanRunning;
    }
    // A scan is running but may have listed the directory already: queue one more, shared by all who ask meanwhile.
    this.scanQueued ??= this.scanRunning
      .catch(() => undefined)
      .then(() => {
        this.scanQueued = undefined;
        return this.refresh();
      });
    return this.scanQueued;
  }

  /** Closes every pack (after reads in flight). The database cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.scanRunning, this.scanQueued]);
    const packs = [...this.packsByName.values()];
    this.packsByName.clear();
    this.order = [];
    this.lastHit = undefined;
    await Promise.all(packs.map((p) => p.close()));
  }

  /** Reads and verifies `oid` from the first source holding a good copy; remembers the first failure. */
  private async tryRead(oid: Oid): Promise<{ found?: GitObject; error?: GitfsError }> {
    this.assertOpen();
    let error: GitfsError | undefined;
    const attempt = async (load: () => Promise<GitObject | undefined>): Promise<GitObject | undefined> => {
      try {
        const obj = await load();
        if (obj && hashObject(obj.type, obj.content) !== oid) {
          throw new GitfsError(ErrorCodes.CORRUPT_OBJECT, `object ${oid} is corrupt: its content hashes to something else`, { oid });
        }
        return obj;
      } catch (e) {
        error ??= withOid(e, oid);
        return undefined;
      }
    };
    for (const pack of this.order) {
      if (pack.isClosing) continue;
      const offset = pack.index.lookup(oid);
      if (offset === undefined) continue;
      const obj = await attempt(() => pack.readAt(offset));
      if (obj) return { found: obj };
    }
    const obj = await attempt(() => this.loose.read(oid, this.maxObjectBytes));
    if (obj) return { found: obj };
    return error ? { error } : {};
  }

  /** Unverified read for a REF_DELTA base found outside its pack; the final object's hash check covers it. */
  private readonly resolveBase = async (oid: Oid, depth: number): Promise<GitObject | undefined> => {
    for (const pack of this.order) {
      if (pack.isClosing) continue;
      const offset = pack.index.lookup(oid);
      if (offset !== undefined) return pack.readAt(offset, depth);
    }
    return this.loose.read(oid, this.maxObjectBytes);
  };

  private trySizeOf(oid: Oid): Promise<number | undefined> {
    return this.fromHeader(oid, (pack, offset) => pack.sizeAt(offset), (o) => this.loose.sizeOf(o));
  }

  private tryTypeOf(oid: Oid): Promise<GitObject['type'] | undefined> {
    return this.fromHeader(oid, (pack, offset) => pack.typeAt(offset), (o) => this.loose.typeOf(o));
  }

  /** What `inPack` (or, for a loose object, `loose`) says of `oid` from its header; undefined if it is in neither. */
  private async fromHeader<T>(oid: Oid, inPack: (pack: PackFile, offset: number) => Promise<T | undefined>, loose: (oid: Oid) => Promise<T | undefined>): Promise<T | undefined> {
    this.assertOpen();
    try {
      for (const pack of this.order) {
        if (pack.isClosing) continue;
        const offset = pack.index.lookup(oid);
        if (offset !== undefined) return await inPack(pack, offset);
      }
      return await loose(oid);
    } catch (e) {
      throw withOid(e, oid);
    }
  }

  private async hasNow(oid: Oid): Promise<boolean> {
    this.assertOpen();
    return this.hasPacked(oid) || this.loose.has(oid);
  }

  private async findNow(prefix: string, limit: number): Promise<Oid[]> {
    this.assertOpen();
    const all = new Set<Oid>();
    for (const pack of this.order) for (const oid of pack.index.findByPrefix(prefix, limit)) all.add(oid);
    for (const oid of await this.loose.findByPrefix(prefix, limit)) all.add(oid);
    return [...all].sort().slice(0, Math.max(0, limit));
  }

  private async scan(): Promise<void> {
    const packDir = this.packDir.dir;
    const stamp = await this.packDir.stamp(); // before listing: a change after it shows as a new stamp
    let names: string[];
    try {
      names = await readdir(packDir);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') {
        throw new GitfsError(ErrorCodes.IO, `cannot list ${packDir}: ${(e as Error).message}`, { path: packDir }, { cause: e });
      }
      names = [];
    }
    const present = new Set(names);
    const wanted = new Set<string>();
    for (const n of names) {
      const m = PACK_IDX_RE.exec(n);
      if (m && present.has(`${m[1]}.pack`)) wanted.add(m[1]!);
    }
    // A pack renamed over one of the same name (a repair wrote a damaged pack's objects again the
    // same way: src/repo/repair.ts) is another file: the one open goes, the new one is opened.
    // Looked for only when the directory changed (a rename changes it).
    const replaced = new Set<string>();
    if (!this.packDir.unchangedAt(stamp)) {
      await Promise.all(
        [...this.packsByName].map(async ([base, pack]) => {
          const ino = (await stat(pack.path).catch(() => undefined))?.ino;
          if (wanted.has(base) && ino !== undefined && ino !== pack.ino) replaced.add(base);
        }),
      );
    }
    const toOpen = [...wanted].filter((base) => !this.packsByName.has(base) || replaced.has(base));
    const results = await Promise.allSettled(toOpen.map((base) => this.openPack(packDir, base)));
    if (this.closed) {
      await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value?.close() : undefined)));
      return;
    }
    for (const [base, pack] of this.packsByName) {
      if (!wanted.has(base) || replaced.has(base)) {
        this.packsByName.delete(base);
        void pack.close().catch(() => undefined); // after its reads in flight; nothing waits on it
      }
    }
    // A damaged pack is set aside, not fatal: the good ones stay usable, lookups that miss name
    // the damaged ones, and fsck reports them. It is retried on every rescan until it is fixed.
    for (const base of [...this.damaged.keys()]) if (!wanted.has(base)) this.damaged.delete(base);
    results.forEach((r, i) => {
      const base = toOpen[i]!;
      if (r.status === 'rejected') {
        this.damaged.set(base, r.reason instanceof GitfsError ? r.reason : new GitfsError(ErrorCodes.CORRUPT_PACK, String(r.reason)));
      } else {
        this.damaged.delete(base);
        if (r.value) this.packsByName.set(base, r.value);
      }
    });
    this.order = [...this.packsByName.values()].sort((a, b) => b.mtimeMs - a.mtimeMs);
    // By the listing, every scan: git gc may make a pack a cruft pack under the name it had.
    this.cruft = new Set([...this.packsByName].filter(([base]) => present.has(`${base}.mtimes`)).map(([, pack]) => pack));
    this.packIds.cover(this.order.map((p) => p.index));
    this.lastHit = undefined;
    this.packDir.listed(stamp);
  }

  /** Packs that could not be opened at the last scan, with why. */
  damagedPacks(): ReadonlyMap<string, GitfsError> {
    return this.damaged;
  }

  /** Opens one pack; undefined if it vanished meanwhile (a concurrent repack). */
  private async openPack(packDir: string, base: string): Promise<PackFile | undefined> {
    const idxPath = join(packDir, `${base}.idx`);
    try {
      const index = new PackIndex(await readFile(idxPath), idxPath);
      return await PackFile.open(join(packDir, `${base}.pack`), index, {
        maxObjectBytes: this.maxObjectBytes,
        resolveBase: this.resolveBase,
      });
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      if (e instanceof GitfsError) throw e;
      throw new GitfsError(ErrorCodes.IO, `cannot open pack ${base}: ${(e as Error).message}`, { file: idxPath }, { cause: e });
    }
  }

  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(): GitfsError {
    return new GitfsError(ErrorCodes.IO, `object database ${this.objectsDir} is closed`);
  }
}

/** Names `oid` in a storage error about it (or one of its delta bases). */
function withOid(e: unknown, oid: Oid): GitfsError {
  if (e instanceof GitfsError) {
    if (e.data['oid'] === oid) return e;
    return new GitfsError(e.code, `object ${oid}: ${e.message}`, { ...e.data, oid }, { cause: e });
  }
  return new GitfsError(ErrorCodes.IO, `object ${oid}: ${(e as Error).message}`, { oid }, { cause: e });
}

/** The bytes of the entry at `offset` in `pack`, or Infinity where its index is damaged there. */
function entryBytes(pack: PackFile, offset: number): number {
  try {
    return pack.entryEnd(offset) - offset;
  } catch {
    return Infinity;
  }
}

/** `content` as pieces of at most PIECE_BYTES (views, not copies), for a stream of an object held whole. */
async function* onePiece(content: Buffer): AsyncGenerator<Buffer> {
  for (let at = 0; at < content.length; at += PIECE_BYTES) yield content.subarray(at, at + PIECE_BYTES);
}
