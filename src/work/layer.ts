/**
 * One branch's working layer in memory: its entries, a child index for directory listings, and
 * its base commit. Every change is handed to the store's write queue in call order, so what
 * survives a crash is always a prefix of the changes made.
 */
import type { Oid } from '../objects/oid.js';
import type { BranchName } from '../branches/ref-name.js';
import { baseName, parentOf, type OverlayEntry } from './overlay.js';

export interface LayerPersistence {
  putEntries(branch: BranchName, puts: ReadonlyArray<readonly [string, OverlayEntry]>, dels: readonly string[]): void;
  putBase(branch: BranchName, base: Oid | null | undefined): void;
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

  /** Pins the base before the first change; a no-op when already pinned. */
  pin(head: Oid | undefined): void {
    if (this.baseId !== undefined) return;
    this.baseId = head ?? null;
    this.persist.putBase(this.branch, this.baseId);
  }

  setBase(base: Oid | null | undefined): void {
    this.baseId = base;
    this.persist.putBase(this.branch, base);
  }

  /** Applies puts and deletes as one atomic batch. */
  change(puts: ReadonlyArray<readonly [string, OverlayEntry]>, dels: readonly string[] = []): void {
    for (const path of dels) this.unindex(path);
    for (const [path, entry] of puts) this.index(path, entry);
    this.persist.putEntries(this.branch, puts, dels);
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
