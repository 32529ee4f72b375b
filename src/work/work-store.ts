/**
 * Where working layers live: `<git dir>/gitfs/work/` holds a LevelDB database (`meta/`) with
 * every branch's entries and base, and `data/` with one file per written file. LevelDB's lock
 * makes one process the owner; while a mount runs, other commands reach the layers through its
 * control socket (src/mount/control.ts).
 *
 * Writes are queued and applied in order; each returns once its batch is written. `sync()`
 * makes everything before it durable (one synced LevelDB write flushes its log, and the data
 * directory is synced when files were added to it). A crash thus keeps a prefix of the changes,
 * and everything before the last acknowledged fsync. After a failed write nothing more is
 * written: every later change fails too (GITFS_IO), so what is on disk stays a prefix.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import { parseBranchName, type BranchName } from '../branches/ref-name.js';
import { Layer, type BaseChange, type LayerPersistence } from './layer.js';
import { readGitfsRef, setGitfsRef } from '../branches/gitfs-refs.js';
import type { Clock } from '../util/clock.js';
import { isOverlayEntry, type OverlayEntry } from './overlay.js';

type Value = OverlayEntry | { readonly base: Oid | null };
type Op = { type: 'put'; key: string; value: Value } | { type: 'del'; key: string };

/** Dropped data files waiting for a synced write before it is forced. */
const UNLINK_BATCH = 1024;
const ENTRY = 'e\0';
const BASE = 'b\0';
const entryKey = (branch: BranchName, path: string): string => `${ENTRY}${branch}\0${path}`;

export class WorkStore implements LayerPersistence {
  private readonly layers = new Map<BranchName, Layer>();
  private queue: Promise<void> = Promise.resolve();
  private failure: unknown;
  /** Data files were named since the data directory was last synced. */
  private newFiles = false;
  /** Data files no batch names any more, deleted after the next synced write. */
  private unlinkAfterSync: string[] = [];
  /** Writes through the mount per data file, so a commit can tell a file changed meanwhile. */
  private readonly writes = new Map<string, number>();
  /** Told when a layer lets go of its pinned commit (the workspace passes it on to its heads). */
  onUnpinned: (branch: BranchName) => void = () => undefined;

  private constructor(
    private readonly db: Level<string, Value>,
    readonly dataDir: string,
    private readonly gitDir: string,
    private readonly clock: Clock,
  ) {}

  static async open(gitDir: string, clock: Clock): Promise<WorkStore> {
    const root = join(gitDir, 'gitfs', 'work');
    const dataDir = join(root, 'data');
    await mkdir(dataDir, { recursive: true });
    const db = new Level<string, Value>(join(root, 'meta'), { valueEncoding: 'json' });
    try {
      await db.open();
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const locked = cause?.code === 'LEVEL_LOCKED';
      // LevelDB writes as it opens (its log into a table): on a full disk it cannot open at all.
      const full = diskFull(cause) !== undefined ? '; the disk is full, and the working layers write as they open: free some space and run again (the uncommitted changes are kept)' : '';
      throw new GitfsError(
        locked ? ErrorCodes.WORK_BUSY : ErrorCodes.IO,
        locked ? `the working layers of ${gitDir} are held by another process (a mount?)` : `cannot open the working layers in ${root}: ${(e as Error).message}${cause?.message === undefined ? '' : ` (${cause.message})`}${full}`,
        { path: root },
        { cause: e },
      );
    }
    const store = new WorkStore(db, dataDir, gitDir, clock);
    await store.load();
    await store.collectGarbage();
    return store;
  }

  /** The branch's layer if it has one in memory (layer() makes one). */
  existingLayer(branch: BranchName): Layer | undefined {
    return this.layers.get(branch);
  }

  /** The branch's layer (an empty one if it has none yet). */
  layer(branch: BranchName): Layer {
    let layer = this.layers.get(branch);
    if (layer === undefined) this.layers.set(branch, (layer = new Layer(branch, this)));
    return layer;
  }

  /** Branches whose layers hold changes. */
  dirtyBranches(): BranchName[] {
    return [...this.layers.values()].filter((l) => l.size > 0).map((l) => l.branch);
  }

  dataPath(id: string): string {
    return join(this.dataDir, id);
  }

  /** A name for a new data file; the caller creates it before any entry names it. */
  newDataId(): string {
    return randomBytes(12).toString('hex');
  }

  /** Counts a write to data file `id` (see version). */
  touch(id: string): void {
    this.writes.set(id, (this.writes.get(id) ?? 0) + 1);
  }

  /** How many writes data file `id` has had through this process. */
  version(id: string): number {
    return this.writes.get(id) ?? 0;
  }

  /**
   * Deletes the data files of dropped `file` entries, but only after a synced write has made
   * durable the batches that stopped naming them: a crash can never find a name without its
   * file. Until then (the next fsync, or closing) they stay; open descriptors keep theirs anyway.
   */
  dropData(entries: ReadonlyArray<OverlayEntry | undefined>): Promise<void> {
    for (const e of entries) {
      if (e?.t !== 'file') continue;
      this.unlinkAfterSync.push(e.data);
      this.writes.delete(e.data);
    }
    return this.unlinkAfterSync.length >= UNLINK_BATCH ? this.sync() : Promise.resolve();
  }

  unpinned(branch: BranchName): void {
    this.onUnpinned(branch);
  }

  write(branch: BranchName, puts: ReadonlyArray<readonly [string, OverlayEntry]>, dels: readonly string[], base?: BaseChange): Promise<void> {
    const ops: Op[] = [
      ...dels.map((p): Op => ({ type: 'del', key: entryKey(branch, p) })),
      ...puts.map(([p, value]): Op => ({ type: 'put', key: entryKey(branch, p), value })),
    ];
    if (base !== undefined) {
      ops.push(base.base === undefined ? { type: 'del', key: `${BASE}${branch}` } : { type: 'put', key: `${BASE}${branch}`, value: { base: base.base } });
    }
    if (puts.some(([, e]) => e.t === 'file')) this.newFiles = true;
    // The commit the changes are made over is kept by a ref (refs/gitfs/work/<branch>), so that
    // git gc keeps it whatever happens to the branch: named before the layer names it, let go
    // of after.
    const pin = base === undefined ? undefined : typeof base.base === 'string' ? base.base : null;
    return this.after(async () => {
      if (typeof pin === 'string') await setGitfsRef(this.gitDir, 'work', branch, pin, this.clock);
      if (ops.length > 0) await this.db.batch(ops);
      if (pin === null) await setGitfsRef(this.gitDir, 'work', branch, null, this.clock);
    });
  }

  /** Waits until every change made so far is durable. */
  async sync(): Promise<void> {
    const syncDir = this.newFiles;
    this.newFiles = false;
    await this.after(async () => {
      if (syncDir) {
        const dir = await open(this.dataDir, 'r');
        try {
          await dir.sync();
        } finally {
          await dir.close();
        }
      }
      await this.db.batch([{ type: 'put', key: 'synced', value: { base: null } }], { sync: true });
      await this.unlinkDropped();
    });
  }

  async close(): Promise<void> {
    if (this.failure === undefined && this.unlinkAfterSync.length > 0) await this.sync().catch(() => undefined);
    await this.queue;
    await this.db.close();
    if (this.failure !== undefined) throw this.ioError(this.failure);
  }

  private async unlinkDropped(): Promise<void> {
    const ids = this.unlinkAfterSync;
    this.unlinkAfterSync = [];
    for (const id of ids) {
      await unlink(this.dataPath(id)).catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') throw err;
      });
    }
  }

  /** Runs `work` after everything queued before it; a failure stops the queue for good. */
  private after(work: () => Promise<void>): Promise<void> {
    const run = this.queue.then(async () => {
      if (this.failure !== undefined) throw this.failure;
      try {
        await work();
      } catch (e) {
        this.failure ??= e;
        throw e;
      }
    });
    this.queue = run.catch(() => undefined);
    return run.catch((e: unknown) => {
      throw this.ioError(e);
    });
  }

  /**
   * Waits for the writes queued so far; throws what stopped them, if one failed: a commit would
   * hold changes that were refused (the layer in memory has them, the store does not).
   */
  async allWritten(): Promise<void> {
    await this.queue;
    if (this.failure !== undefined) throw this.ioError(this.failure);
  }

  private ioError(e: unknown): GitfsError {
    if (e instanceof GitfsError) return e;
    // The errno (a full disk, say) goes with it: the mount answers with it rather than EIO.
    const errno = diskFull(e) ?? errnoCode(e)?.match(/^E[A-Z0-9]+$/)?.[0];
    return new GitfsError(
      ErrorCodes.IO,
      `cannot write the working layer: ${(e as Error).message} (nothing more is written until the working layers are opened again: by the next command, or a restart of the mount; the changes acknowledged before are kept)`,
      errno === undefined ? {} : { errno },
      { cause: e },
    );
  }

  private async load(): Promise<void> {
    const entries = new Map<BranchName, Array<[string, OverlayEntry]>>();
    const bases = new Map<BranchName, Oid | null>();
    for await (const [key, value] of this.db.iterator()) {
      if (key.startsWith(ENTRY)) {
        const rest = key.slice(ENTRY.length);
        const cut = rest.indexOf('\0');
        const branch = parseBranchName(rest.slice(0, cut));
        // A damaged entry (its data name could lead out of the data directory) is not taken: its path shows its base.
        if (!isOverlayEntry(value)) continue;
        let list = entries.get(branch);
        if (list === undefined) entries.set(branch, (list = []));
        list.push([rest.slice(cut + 1), value]);
      } else if (key.startsWith(BASE)) {
        const base = typeof value === 'object' && value !== null ? (value as { base?: unknown }).base : undefined;
        const branch = parseBranchName(key.slice(BASE.length));
        // A damaged base (it would be written into a ref) is the work ref's, or else none recorded: the layer lies over the head.
        if (base === null || isOid(base)) bases.set(branch, base);
        else {
          const pinned = await readGitfsRef(this.gitDir, 'work', branch).catch(() => undefined);
          if (pinned !== undefined) bases.set(branch, pinned);
        }
      }
    }
    for (const branch of new Set([...entries.keys(), ...bases.keys()])) {
      this.layer(branch).restore(entries.get(branch) ?? [], bases.get(branch));
      // Layers made before the work refs existed, or a ref a crash let go of.
      const base = bases.get(branch);
      if (typeof base === 'string' && (await readGitfsRef(this.gitDir, 'work', branch)) !== base) await setGitfsRef(this.gitDir, 'work', branch, base, this.clock);
    }
  }

  /**
   * Data files no entry names (left by a crash between creating a file and recording it) are
   * deleted. An entry whose data file is gone (a power loss that kept the entry but not the new
   * file's name in its directory) cannot be served: it is dropped, so the path shows its base.
   */
  private async collectGarbage(): Promise<void> {
    const used = new Set<string>();
    for (const layer of this.layers.values()) {
      const lost: string[] = [];
      for (const [path, e] of layer.entries()) {
        if (e.t !== 'file') continue;
        if (await stat(this.dataPath(e.data)).then(() => true, () => false)) used.add(e.data);
        else lost.push(path);
      }
      if (lost.length > 0) await layer.change([], lost, layer.base);
    }
    for (const name of await readdir(this.dataDir)) {
      if (!used.has(name)) {
        await unlink(join(this.dataDir, name)).catch((e: unknown) => {
          if (errnoCode(e) !== 'ENOENT') throw e;
        });
      }
    }
  }
}

/** ENOSPC or EDQUOT where LevelDB says so in words (its errors carry no errno). */
function diskFull(e: unknown): 'ENOSPC' | 'EDQUOT' | undefined {
  const text = `${(e as Error | undefined)?.message ?? ''} ${(e as { cause?: Error } | undefined)?.cause?.message ?? ''}`;
  return /No space left on device/.test(text) ? 'ENOSPC' : /Disk quota exceeded/.test(text) ? 'EDQUOT' : undefined;
}
