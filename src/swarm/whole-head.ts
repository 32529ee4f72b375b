/**
 * What a node knows it holds whole of a branch's head: a fetch by base (closure.ts) takes only
 * what a new head adds to the base, so the base's own closure must be whole here already, as
 * deep as the new head's policy asks less one (the new head is one generation or more past it).
 *
 * The record outlives the process (`gitfs/whole-heads.json`): in a partial repository (a branch
 * kept on demand) nothing else tells a restarted daemon that another branch came with its blobs.
 * An entry stands only while its branch names its commit by a fetch's own reflog entry (swarm.ts
 * checks: a branch deleted and made again at that commit, its blobs pruned meanwhile, has
 * another); it is written after the ref moved, so a crash leaves it behind the branch (ignored),
 * never ahead of it.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseBranchName, type BranchName } from '../branches/ref-name.js';
import { isOid, type Oid } from '../objects/oid.js';
import { writeFileAtomic } from '../util/durable.js';
import { textOf } from '../util/if-present.js';
import type { Logger } from '../util/log.js';
import { gitfsErrorOr } from '../errors.js';

/** A closure held whole: the commit, `history` deep (0: all), with its blobs or only its commits and trees. */
export interface Whole {
  readonly commit: Oid;
  readonly history: number;
  readonly blobs: boolean;
}

/** Whether `whole`, the closure of a new head's ancestor, holds what a fetch of `history` deep (with blobs, if `blobs`) needs besides what the head adds. */
export function coversBase(whole: Whole, history: number, blobs: boolean): boolean {
  if (blobs && !whole.blobs) return false;
  if (history === 1 || whole.history === 0) return true;
  return history !== 0 && whole.history >= history - 1;
}

const isWhole = (v: unknown): v is Whole => {
  const w = v as Partial<Record<keyof Whole, unknown>> | null;
  return typeof w === 'object' && w !== null && typeof w.commit === 'string' && isOid(w.commit) && Number.isSafeInteger(w.history) && (w.history as number) >= 0 && typeof w.blobs === 'boolean';
};

/** Per branch, the head a fetch of this node left it at and what of its closure was then whole; kept in `path`. */
export class WholeHeads {
  private readonly heads = new Map<BranchName, Whole>();
  private readonly loaded: Promise<void>;
  private writes: Promise<void> = Promise.resolve();
  private dirty = false;
  /** The file was there but did not read: it is left as it is. */
  private unwritable = false;

  constructor(
    private readonly path: string,
    private readonly log: Logger,
  ) {
    this.loaded = this.load();
  }

  /** The entry as loaded or set so far (the first tick may come before the file is read: it then walks nothing ahead). */
  peek(branch: BranchName): Whole | undefined {
    return this.heads.get(branch);
  }

  async get(branch: BranchName): Promise<Whole | undefined> {
    await this.loaded;
    return this.heads.get(branch);
  }

  /** Records `whole` for `branch` (once its ref names it); written in the background, writes coalesced. */
  async set(branch: BranchName, whole: Whole): Promise<void> {
    await this.loaded;
    this.heads.set(branch, whole);
    return this.save();
  }

  /** Forgets the entries of branches not in `present` (deleted), in the background. */
  retain(present: { has(branch: BranchName): boolean }): void {
    let dropped = false;
    for (const branch of this.heads.keys()) {
      if (present.has(branch)) continue;
      this.heads.delete(branch);
      dropped = true;
    }
    if (dropped) void this.save();
  }

  private save(): Promise<void> {
    this.dirty = true;
    this.writes = this.writes.then(() => this.write());
    return this.writes;
  }

  /** Forgets `branch`'s entry if it is still `whole` (which no longer stands), in the background. */
  drop(branch: BranchName, whole: Whole): void {
    if (this.heads.get(branch) !== whole) return;
    this.heads.delete(branch);
    void this.save();
  }

  private async load(): Promise<void> {
    let text: string | undefined;
    try {
      text = await textOf(this.path);
    } catch (e) {
      // Not read (EACCES, EIO): none this time, and not written over either.
      this.unwritable = true;
      this.log.log('warn', 'whole-heads-unreadable', { path: this.path, error: (e as Error).message });
      return;
    }
    if (text === undefined) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      // Damaged: none, and written anew with the next entry; the next fetch of each branch takes its whole closure.
      this.log.log('warn', 'whole-heads-unreadable', { path: this.path, error: (e as Error).message });
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    for (const [name, whole] of Object.entries(parsed)) {
      const branch = gitfsErrorOr(() => parseBranchName(name));
      if (typeof branch === 'string' && isWhole(whole)) this.heads.set(branch, { commit: whole.commit, history: whole.history, blobs: whole.blobs });
    }
  }

  private async write(): Promise<void> {
    if (!this.dirty || this.unwritable) return;
    this.dirty = false;
    try {
      await mkdir(dirname(this.path), { recursive: true });
      await writeFileAtomic(this.path, `${JSON.stringify(Object.fromEntries(this.heads))}\n`);
    } catch (e) {
      this.log.log('warn', 'whole-heads-write-failed', { path: this.path, error: (e as Error).message });
    }
  }
}
