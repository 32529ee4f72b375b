/**
 * One branch's working layer in memory: its entries, a child index for directory listings, and
 * its base commit. Every change is one batch handed to the store's write queue in call order,
 * so what survives a crash is always a prefix of the changes made; the promise a change returns
 * settles once its batch is written (the caller answers only then).
 */
import type { Oid } from '../objects/oid.js';
import type { BranchName } from '../branches/ref-name.js';
import { baseName, parentOf, type OverlayEntry } from './overlay.js';

/** A base to record with a batch: undefined in the batch means "leave the base as it is". */
export type BaseChange = { readonly base: Oid | null | undefined };

export interface LayerPersistence {
  write(branch: BranchName, puts: ReadonlyArray<readonly [string, OverlayEntry]>, dels: readonly string[], base?: BaseChange): Promise<void>;
}

export class Layer {
  private readonly map = new Map<string, OverlayEntry>();
  private readonly kids = new Map<string, Set<string>>();
  /**
   * The commit the entries are laid over. undefined: not pinned (the layer is clean and follows
   * the branch head); null: the branch had no commit when the first change was made.
   */
  private baseId: Oid | null | undefined;

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

  get size(): number {
    return this.map.size;
  }

  get(path: string): OverlayEntry | undefined {
    return this.map.get(path);
  }

  /** Names of the entries directly inside directory `dir`. */
  childNames(dir: string): ReadonlySet<string> {
    return this.kids.get(dir) ?? EMPTY;
  }

  entries(): IterableIterator<[string, OverlayEntry]> {
    return this.map.entries();
  }

  /**
   * Applies puts and deletes as one atomic batch. `viewBase` is the commit the caller's view was
   * laid over: an unpinned layer is pinned to it by the same batch. A layer left empty is
   * unpinned (it follows its branch again), unless `base` says otherwise.
   */
  change(puts: ReadonlyArray<readonly [string, OverlayEntry]>, dels: readonly string[] = [], viewBase?: Oid | null, base?: BaseChange): Promise<void> {
    for (const path of dels) this.unindex(path);
    for (const [path, entry] of puts) this.index(path, entry);
    let next = base;
    if (next === undefined && this.baseId === undefined && this.map.size > 0) next = { base: viewBase ?? null };
    if (this.map.size === 0 && (next !== undefined || this.baseId !== undefined)) next = { base: undefined };
    if (next !== undefined) this.baseId = next.base;
    return this.persist.write(this.branch, puts, dels, next);
  }

  /** Every path with an entry at or below `dir` (excluding `dir` itself). */
  pathsBelow(dir: string): string[] {
    const prefix = `${dir}/`;
    return [...this.map.keys()].filter((p) => p.startsWith(prefix));
  }

  private index(path: string, entry: OverlayEntry): void {
    this.map.set(path, entry);
    const dir = parentOf(path);
    let set = this.kids.get(dir);
    if (set === undefined) this.kids.set(dir, (set = new Set()));
    set.add(baseName(path));
  }

  private unindex(path: string): void {
    if (!this.map.delete(path)) return;
    const dir = parentOf(path);
    const set = this.kids.get(dir);
    set?.delete(baseName(path));
    if (set?.size === 0) this.kids.delete(dir);
  }
}

const EMPTY: ReadonlySet<string> = new Set();
