/**
 * One branch's working layer in memory: its entries, an index of which names hold entries below
 * each directory (listings, and moving or removing a subtree, cost the subtree's size), and
 * its base commit. Every change is one batch handed to the store's write queue in call order,
 * so what survives a crash is always a prefix of the changes made; the promise a change returns
 * settles once its batch is written (the caller answers only then).
 */
import type { Oid } from '../objects/oid.js';
import type { BranchName } from '../branches/ref-name.js';
import { FsError } from './fs-error.js';
import { baseName, parentOf, type OverlayEntry } from './overlay.js';

/** A base to record with a batch: undefined in the batch means "leave the base as it is". */
export type BaseChange = { readonly base: Oid | null | undefined };

export interface LayerPersistence {
  write(branch: BranchName, puts: ReadonlyArray<readonly [string, OverlayEntry]>, dels: readonly string[], base?: BaseChange): Promise<void>;
  /** The layer let go of the commit it was pinned to: it follows the branch head again. */
  unpinned(branch: BranchName): void;
}

export class Layer {
  private readonly map = new Map<string, OverlayEntry>();
  /** Entries at or below each path (the root excluded), and the names under each directory that hold any. */
  private readonly below = new Map<string, number>();
  private readonly held = new Map<string, Set<string>>();
  /** Entries other than a directory's own attributes (`dir` with `lower: 'inherit'`). */
  private contentChanges = 0;
  /**
   * The commit the entries are laid over. undefined: not pinned (the layer is clean and follows
   * the branch head); null: the branch had no commit when the first change was made.
   */
  private baseId: Oid | null | undefined;
  /** Bumped whenever a commit or reset settles the layer: views older than that are stale. */
  private gen = 0;

  constructor(
    readonly branch: BranchName,
    private readonly persist: LayerPersistence,
  ) {}

  /** Loads persisted state without writing it back. */
  restore(entries: Iterable<readonly [string, OverlayEntry]>, base: Oid | null | undefined): void {
    for (const [path, entry] of entries) this.index(path, entry);
    this.baseId = base;
  }

  get base(): Oid | null | undefined {
    return this.baseId;
  }

  /**
   * The branch head moved. A layer that follows it (unpinned) now shows another commit, so views
   * from before are stale, as after a commit: a change decided on one (a copy-up begun on the old
   * head) is made again on the new head, rather than pinning the layer to the old one.
   */
  headMoved(): void {
    if (this.baseId === undefined) this.gen++;
  }

  get generation(): number {
    return this.gen;
  }

  get size(): number {
    return this.map.size;
  }

  get(path: string): OverlayEntry | undefined {
    return this.map.get(path);
  }

  /** Names of the entries directly inside directory `dir`. */
  childNames(dir: string): string[] {
    return [...(this.held.get(dir) ?? EMPTY)].filter((name) => this.map.has(dir === '' ? name : `${dir}/${name}`));
  }

  entries(): IterableIterator<[string, OverlayEntry]> {
    return this.map.entries();
  }

  /**
   * Applies puts and deletes as one atomic batch. `viewBase` is the commit the caller's view was
   * laid over: an unpinned layer is pinned to it by the same batch. A layer left without content
   * changes (empty, or holding only directory times and modes, which mean the same over any
   * base) is unpinned: it follows its branch again.
   */
  change(
    puts: ReadonlyArray<readonly [string, OverlayEntry]>,
    dels: readonly string[] = [],
    viewBase?: Oid | null,
    base?: BaseChange,
    viewGeneration?: number,
  ): Promise<void> {
    // A change decided on a view from before the last commit or reset is refused (EAGAIN):
    // the caller decides again on a fresh view.
    if (viewGeneration !== undefined && viewGeneration !== this.gen) return Promise.reject(new FsError('EAGAIN'));
    if (base !== undefined) this.gen++;
    for (const path of dels) this.unindex(path);
    for (const [path, entry] of puts) this.index(path, entry);
    let next = base;
    if (next === undefined && this.baseId === undefined && this.contentChanges > 0) next = { base: viewBase ?? null };
    if (this.contentChanges === 0 && (next !== undefined || this.baseId !== undefined)) next = { base: undefined };
    const unpinned = next !== undefined && next.base === undefined && this.baseId !== undefined;
    if (next !== undefined) this.baseId = next.base;
    const written = this.persist.write(this.branch, puts, dels, next);
    if (unpinned) this.persist.unpinned(this.branch);
    return written;
  }

  /** Every path with an entry below `dir` (not `dir` itself): the size of that subtree, not of the layer. */
  pathsBelow(dir: string): string[] {
    const out: string[] = [];
    const walk = (at: string): void => {
      for (const name of this.held.get(at) ?? EMPTY) {
        const path = at === '' ? name : `${at}/${name}`;
        if (this.map.has(path)) out.push(path);
        walk(path);
      }
    };
    walk(dir);
    return out;
  }

  /** Counts `path` and its ancestors as holding one more (delta 1) or one fewer (-1) entry. */
  private count(path: string, delta: 1 | -1): void {
    for (let at = path; at !== ''; at = parentOf(at)) {
      const n = (this.below.get(at) ?? 0) + delta;
      const parent = parentOf(at);
      if (n === 0) {
        this.below.delete(at);
        const names = this.held.get(parent);
        names?.delete(baseName(at));
        if (names?.size === 0) this.held.delete(parent);
      } else {
        this.below.set(at, n);
        if (n === 1 && delta === 1) {
          let names = this.held.get(parent);
          if (names === undefined) this.held.set(parent, (names = new Set()));
          names.add(baseName(at));
        }
      }
    }
  }

  private index(path: string, entry: OverlayEntry): void {
    this.unindex(path);
    if (!attributesOnly(entry)) this.contentChanges++;
    this.map.set(path, entry);
    if (path === '') return; // the branch root: no directory holds it
    this.count(path, 1);
  }

  private unindex(path: string): void {
    const old = this.map.get(path);
    if (old === undefined) return;
    if (!attributesOnly(old)) this.contentChanges--;
    this.map.delete(path);
    if (path === '') return;
    this.count(path, -1);
  }
}

const EMPTY: ReadonlySet<string> = new Set();

function attributesOnly(e: OverlayEntry): boolean {
  return e.t === 'dir' && e.lower === 'inherit';
}
