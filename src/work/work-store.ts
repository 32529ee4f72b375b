/**
 * Where working layers live: `<git dir>/gitfs/work/` holds a LevelDB database (`meta/`) with
 * every branch's entries and base, and `data/` with one file per written file. LevelDB's lock
 * makes one process the owner; while a mount runs, other commands reach the layers through its
 * control socket (src/mount/control.ts).
 *
 * Writes are queued and applied in order without waiting; `sync()` waits for the queue and
 * makes everything before it durable (one synced LevelDB write flushes its log). A crash thus
 * keeps a prefix of the changes, and everything before the last acknowledged fsync.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import type { Oid } from '../objects/oid.js';
import { parseBranchName, type BranchName } from '../branches/ref-name.js';
import { Layer, type LayerPersistence } from './layer.js';
import type { OverlayEntry } from './overlay.js';

type Value = OverlayEntry | { readonly base: Oid | null };
type Op = { type: 'put'; key: string; value: Value } | { type: 'del'; key: string };

const ENTRY = 'e\0';
const BASE = 'b\0';
const entryKey = (branch: BranchName, path: string): string => `${ENTRY}${branch}\0${path}`;

export class WorkStore implements LayerPersistence {
  private readonly layers = new Map<BranchName, Layer>();
  private queue: Promise<void> = Promise.resolve();
  private failure: unknown;

  private constructor(
    private readonly db: Level<string, Value>,
    readonly dataDir: string,
  ) {}

  static async open(gitDir: string): Promise<WorkStore> {
    const root = join(gitDir, 'gitfs', 'work');
    const dataDir = join(root, 'data');
    await mkdir(dataDir, { recursive: true });
    const db = new Level<string, Value>(join(root, 'meta'), { valueEncoding: 'json' });
    try {
      await db.open();
    } catch (e) {
      const locked = (e as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED';
      throw new GitfsError(
        locked ? ErrorCodes.WORK_BUSY : ErrorCodes.IO,
        locked ? `the working layers of ${gitDir} are held by another process (a mount?)` : `cannot open the working layers in ${root}: ${(e as Error).message}`,
        { path: root },
        { cause: e },
      );
    }
    const store = new WorkStore(db, dataDir);
    await store.load();
    await store.collectGarbage();
    return store;
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

  newDataId(): string {
    return randomBytes(12).toString('hex');
  }

  /** Deletes the data files of dropped `file` entries (open descriptors keep theirs readable). */
  async dropData(entries: ReadonlyArray<OverlayEntry | undefined>): Promise<void> {
    for (const e of entries) {
      if (e?.t === 'file') {
        await unlink(this.dataPath(e.data)).catch((err: unknown) => {
          if (errnoCode(err) !== 'ENOENT') throw err;
        });
      }
    }
  }

  putEntries(branch: BranchName, puts: ReadonlyArray<readonly [string, OverlayEntry]>, dels: readonly string[]): void {
    this.enqueue([
      ...dels.map((p): Op => ({ type: 'del', key: entryKey(branch, p) })),
      ...puts.map(([p, value]): Op => ({ type: 'put', key: entryKey(branch, p), value })),
    ]);
  }

  putBase(branch: BranchName, base: Oid | null | undefined): void {
    this.enqueue([base === undefined ? { type: 'del', key: `${BASE}${branch}` } : { type: 'put', key: `${BASE}${branch}`, value: { base } }]);
  }

  /** Waits until every change made so far is durable. */
  async sync(): Promise<void> {
    this.enqueue([{ type: 'put', key: 'synced', value: { base: null } }], true);
    await this.queue;
    this.throwIfFailed();
  }

  async close(): Promise<void> {
    await this.queue;
    await this.db.close();
    this.throwIfFailed();
  }

  private enqueue(ops: Op[], sync = false): void {
    if (ops.length === 0) return;
    this.queue = this.queue.then(() =>
      this.db.batch(ops, { sync }).catch((e: unknown) => {
        this.failure ??= e;
      }),
    );
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) {
      throw new GitfsError(ErrorCodes.IO, `cannot write the working layer: ${(this.failure as Error).message}`, {}, { cause: this.failure });
    }
  }

  private async load(): Promise<void> {
    const entries = new Map<BranchName, Array<[string, OverlayEntry]>>();
    const bases = new Map<BranchName, Oid | null>();
    for await (const [key, value] of this.db.iterator()) {
      if (key.startsWith(ENTRY)) {
        const rest = key.slice(ENTRY.length);
        const cut = rest.indexOf('\0');
        const branch = parseBranchName(rest.slice(0, cut));
        let list = entries.get(branch);
        if (list === undefined) entries.set(branch, (list = []));
        list.push([rest.slice(cut + 1), value as OverlayEntry]);
      } else if (key.startsWith(BASE)) {
        bases.set(parseBranchName(key.slice(BASE.length)), (value as { base: Oid | null }).base);
      }
    }
    for (const branch of new Set([...entries.keys(), ...bases.keys()])) {
      const layer = this.layer(branch);
      layer.restore(entries.get(branch) ?? [], bases.get(branch));
    }
  }

  /** Data files no entry names: left by a crash between creating a file and recording it. */
  private async collectGarbage(): Promise<void> {
    const used = new Set<string>();
    for (const layer of this.layers.values()) {
      for (const [, e] of layer.entries()) if (e.t === 'file') used.add(e.data);
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
