/**
 * Turns a branch's working layer into the branch's next commit (`gitfs commit --branch B`
 * without --from). Only what the layer touched is read or hashed: unchanged subtrees keep
 * their ids. If the branch moved since the layer's base, the layer's changes are laid over the
 * new head instead, unless a changed path overlaps a change made to the branch meanwhile: then
 * nothing happens and the overlapping paths are named (GITFS_WORK_CONFLICT).
 *
 * The layer keeps working while a commit runs. Afterwards only the entries the commit captured
 * and nobody changed since are dropped; a file written to during the commit stays in the layer.
 */
import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { reaches } from '../objects/commit-ancestry.js';
import { keepEntry, toTreeEntry, type DirEntry } from '../objects/entry-names.js';
import { hashObject, type Oid } from '../objects/oid.js';
import type { PackWriter } from '../objects/pack-writer.js';
import { specialFileOf } from '../objects/storable-name.js';
import { readTyped } from '../objects/typed-read.js';
import { encodeTree } from '../objects/tree.js';
import type { BranchName } from '../branches/ref-name.js';
import { diffTrees } from '../files/diff.js';
import { checkChunkedName, checkSpecialFile, storeFile } from '../files/store-file.js';
import { readCommit } from '../files/tree-reader.js';
import { firstLine, pointHeadIfDangling, writeCommit } from '../repo/commit-directory.js';
import type { Repository } from '../repo/repository.js';
import { Layer } from './layer.js';
import { workChanges } from './work-status.js';
import { MergedView, shadowing } from './merged-view.js';
import { ancestorsOf, baseName, childPath, isWithin, parentOf, type OverlayEntry } from './overlay.js';
import type { TreeCache } from './tree-cache.js';
import type { WorkStore } from './work-store.js';

export interface WorkCommitOptions {
  readonly message: string;
  /** Data files open for writing: their entries stay in the layer after the commit. */
  readonly busy?: (dataId: string) => boolean;
  /**
   * Told once the branch has moved, before the layer lets go of its old base: readers must see the
   * new head by then, or a layer left empty would show the old head's files (and a file opened
   * for writing then would be copied up from them, undoing the commit's edits at the next one).
   */
  readonly moved?: () => Promise<void>;
}

export interface WorkCommitResult {
  /** undefined when the layer held nothing to commit. */
  readonly commit: Oid | undefined;
  readonly parent: Oid | undefined;
  readonly changed: number;
}

/** How the reflog names commits made from a working layer. */
const REFLOG_PREFIX = 'commit (mount): ';
const MAX_REFLOG_SCAN = 1000;

export async function commitWork(repo: Repository, store: WorkStore, trees: TreeCache, branch: BranchName, options: WorkCommitOptions): Promise<WorkCommitResult> {
  // A change whose write failed was refused to its maker: no commit holds it.
  await store.allWritten();
  const layer = store.layer(branch);
  // Taken before any other await: a commit holds what the layer held when it began, whatever
  // lands while it runs (a loaded machine can take a while to read the ref).
  const snapshot = new Map(layer.entries());
  const frozen = new Layer(branch, { write: async () => undefined, unpinned: () => undefined });
  frozen.restore(snapshot, layer.base);
  const head = await repo.refs.resolve(branch);
  if (snapshot.size === 0) return { commit: undefined, parent: head, changed: 0 };
  if (head === undefined && typeof frozen.base === 'string') {
    // Deleted (or renamed) by something else, git branch -D say: the changes were made over a
    // commit, and must not become a new root holding only them.
    throw new GitfsError(
      ErrorCodes.WORK_CONFLICT,
      `${branch} was deleted since these uncommitted changes began, over ${frozen.base} (nothing was committed; gitfs branch create ${branch} ${frozen.base} brings it back, gitfs reset --branch ${branch} discards the changes)`,
      { branch, base: frozen.base },
    );
  }
  // An unpinned layer (only directory times and modes) lies over whatever the head is.
  const base = frozen.base === undefined ? head : (frozen.base ?? undefined);
  const treeOf = async (c: Oid | undefined): Promise<Oid | null> => (c === undefined ? null : (await readCommit(repo.objects, c)).tree);
  const rootLower = await treeOf(head);
  // Counted as `gitfs status` counts them (a directory only when new or gone), against the head.
  const changed = (await workChanges(frozen, trees, rootLower)).length;
  // If this layer's last commit landed but the layer never heard (a crash between moving the
  // branch and settling), its changes are in that commit: compare against it, not the old base.
  const since = (await landedFromLayer(repo, branch, base, head)) ?? base;
  if (head !== since) await refuseOverlaps(repo, trees, frozen, await treeOf(since), rootLower);

  const stamps = new Map<string, string>();
  // Held from before the first object until the branch names them (write-holds.ts).
  const commit = await repo.whileWriting(async (): Promise<Oid | undefined> => {
    const writer = await repo.newPackWriter();
    let commit: Oid;
    try {
      const dirty = new Set<string>(['']);
      for (const path of snapshot.keys()) for (const a of ancestorsOf(path)) dirty.add(a);
      const builder = new TreeBuilder(repo, store, trees, frozen, writer, dirty, stamps);
      const tree = await builder.build('', rootLower);
      if (head !== undefined && tree === rootLower) {
        // The layer changes nothing the head does not already hold (undone edits, or a commit of
        // this layer that landed just before a crash): nothing to commit, and the entries go.
        await writer.abort();
        await settle(layer, store, snapshot, stamps, options, head);
        return undefined;
      }
      commit = await writeCommit(repo, writer, tree, head === undefined ? [] : [head], options.message);
    } catch (e) {
      await writer.abort();
      throw e;
    }
    await writer.finish();
    // A change in the snapshot whose write failed since (a full disk) was refused to its maker.
    await store.allWritten();
    await repo.refs.update(branch, { expected: head ?? null, next: commit, message: `${REFLOG_PREFIX}${firstLine(options.message)}` });
    await pointHeadIfDangling(repo, branch);
    return commit;
  });
  if (commit === undefined) return { commit: undefined, parent: head, changed: 0 };
  await options.moved?.();
  await settle(layer, store, snapshot, stamps, options, commit);
  return { commit, parent: head, changed };
}

/**
 * Lays each layer whose last commit landed before it heard (a crash between moving the branch
 * and settling, see landedFromLayer) over that commit, as the commit's settling would have. Run
 * when the layers are opened: over the old base, a file the commit added would not be deleted
 * by an unlink (no whiteout over a base that lacks it), nor moved by a rename. Entries the commit
 * already holds stay until the next commit finds nothing in them and drops them.
 */
export async function rebaseLanded(repo: Repository, store: WorkStore): Promise<void> {
  for (const branch of store.dirtyBranches()) {
    const layer = store.layer(branch);
    if (layer.base === undefined) continue;
    // A branch whose ref or reflog does not read is left as it is: its next commit says why, and
    // the other branches' layers open.
    const landed = await landedOver(repo, branch, layer.base).catch(() => undefined);
    if (landed !== undefined) await layer.change([], [], undefined, { base: landed });
  }
}

/** landedFromLayer for a layer over `base`, if the branch has moved from it. */
async function landedOver(repo: Repository, branch: BranchName, base: Oid | null): Promise<Oid | undefined> {
  const head = await repo.refs.resolve(branch);
  if (head === undefined || head === base) return undefined;
  return landedFromLayer(repo, branch, base ?? undefined, head);
}

/**
 * A commit this branch's layer made from `base` that landed before the layer heard of it (the
 * process died between moving the branch and recording the new base), found in the reflog,
 * newest first. Only one process owns the layers, so a working-layer commit on top of the
 * layer's base is its own; but only one made since the branch last came to the base (moved
 * back there, an older one is history: taken for this layer's, it made every edit a conflict),
 * and only one `head` holds: the reflog line is written before the ref moves, so a crash between
 * the two leaves a line for a commit that never landed.
 */
async function landedFromLayer(repo: Repository, branch: BranchName, base: Oid | undefined, head: Oid | undefined): Promise<Oid | undefined> {
  const isBase = (oid: string): boolean => (base === undefined ? /^0{40}$/.test(oid) : oid === base);
  let seen = 0;
  for await (const e of repo.refs.reflogNewestFirst(branch)) {
    if (e.message.startsWith(REFLOG_PREFIX) && isBase(e.oldOid)) {
      const landed = e.newOid as Oid;
      const here = async (c: Oid): Promise<Buffer | undefined> => ((await repo.objects.has(c)) ? (await repo.objects.read(c)).content : undefined);
      return head !== undefined && (await reaches(here, head, landed, MAX_REFLOG_SCAN)) ? landed : undefined;
    }
    if (isBase(e.newOid) || ++seen >= MAX_REFLOG_SCAN) return undefined;
  }
  return undefined;
}

/**
 * After a commit (or a finding that there was nothing to commit): drops the entries the commit
 * captured that nobody changed since, in one synchronous step so no change made meanwhile can
 * slip between check and drop, and lays what remains over `over`.
 */
async function settle(
  layer: Layer,
  store: WorkStore,
  snapshot: ReadonlyMap<string, OverlayEntry>,
  stamps: ReadonlyMap<string, string>,
  options: WorkCommitOptions,
  over: Oid,
): Promise<void> {
  const drop: string[] = [];
  const puts: Array<[string, OverlayEntry]> = [];
  for (const [path, entry] of snapshot) {
    const now = layer.get(path);
    if (now === entry) {
      if (entry.t === 'file' && (options.busy?.(entry.data) === true || stampNow(store, entry.data) !== stamps.get(entry.data))) continue;
      drop.push(path);
    } else if (now === undefined) {
      // Deleted or moved away during the commit: it stays deleted over the new base.
      if (entry.t !== 'wh') puts.push([path, { t: 'wh' }]);
    } else if (now.t === 'dir' && entry.t === 'dir' && now.lower === entry.lower && now.lower !== 'inherit') {
      // Only its attributes changed meanwhile: its content is now the new base's.
      puts.push([path, { ...now, lower: 'inherit' }]);
    }
  }
  await layer.change(puts, drop, over, { base: over });
  await store.dropData(drop.map((p) => snapshot.get(p)));
  await store.sync();
}

/**
 * A data file's version: size, times (ns), and the writes counted through the mount (file
 * times are only as fine as the kernel's clock tick). Synchronous: see the drop decision.
 */
function stampNow(store: WorkStore, id: string): string {
  try {
    const st = statSync(store.dataPath(id), { bigint: true });
    return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${store.version(id)}`;
  } catch {
    return 'gone';
  }
}

/**
 * Refuses to lay the layer over `headTree` when a path it changed was also changed between
 * `baseTree` and `headTree` (the same path, or one inside the other), or when a directory it
 * writes into no longer exists there.
 */
async function refuseOverlaps(repo: Repository, trees: TreeCache, layer: Layer, baseTree: Oid | null, headTree: Oid | null): Promise<void> {
  // A directory's own time or mode ('inherit' entries) cannot conflict with anything.
  const mine = [...layer.entries()].filter(([, e]) => !(e.t === 'dir' && e.lower === 'inherit')).map(([p]) => p);
  const overlaps = new Set<string>();
  for await (const change of diffTrees(repo.objects, baseTree ?? undefined, headTree ?? undefined)) {
    for (const p of mine) if (isWithin(p, change.path) || isWithin(change.path, p)) overlaps.add(p);
  }
  const over = new MergedView(trees, layer, headTree);
  for (const p of mine) {
    const parent = await over.find(parentOf(p));
    if (parent?.node.kind !== 'dir') overlaps.add(p);
  }
  if (overlaps.size > 0) {
    const paths = [...overlaps].sort();
    throw new GitfsError(
      ErrorCodes.WORK_CONFLICT,
      `${layer.branch} moved since these uncommitted changes began, and they overlap: ${paths.slice(0, 20).join(', ')}${paths.length > 20 ? ', …' : ''} (nothing was committed; gitfs reset --branch ${layer.branch} discards the changes)`,
      { branch: layer.branch, paths },
    );
  }
}

class TreeBuilder {
  constructor(
    private readonly repo: Repository,
    private readonly store: WorkStore,
    private readonly trees: TreeCache,
    private readonly layer: Layer,
    private readonly writer: PackWriter,
    private readonly dirty: ReadonlySet<string>,
    private readonly stamps: Map<string, string>,
  ) {}

  /** The tree for directory `path` whose lower tree is `lower`. */
  async build(path: string, lower: Oid | null): Promise<Oid> {
    if (!this.dirty.has(path) && lower !== null) return lower;
    const entries = new Map<string, DirEntry>(lower === null ? [] : await this.trees.get(lower));
    const fromLower = new Set(entries.keys());
    for (const name of this.layer.childNames(path)) {
      const own = shadowing(this.layer.get(childPath(path, name)), entries.get(name));
      if (own === undefined) continue; // a directory's attributes over what is no directory now
      fromLower.delete(name);
      const entry = own.t === 'wh' ? undefined : await this.fromOverlay(childPath(path, name), own, entries.get(name));
      if (entry === undefined) entries.delete(name);
      else entries.set(name, entry);
    }
    for (const name of fromLower) {
      const e = entries.get(name) as DirEntry;
      const p = childPath(path, name);
      if (e.kind === 'dir' && this.dirty.has(p)) entries.set(name, { ...e, oid: await this.build(p, e.oid) });
    }
    const treeEntries = [...entries.values()].map(toTreeEntry);
    if (treeEntries.length === 0) {
      treeEntries.push(await keepEntry(this.writer));
    }
    const content = encodeTree(treeEntries);
    return this.writer.writeHashed(hashObject('tree', content), 'tree', content);
  }

  /** The tree entry for `own`; undefined for a written file deleted since the snapshot. */
  private async fromOverlay(path: string, own: Exclude<OverlayEntry, { t: 'wh' }>, below: DirEntry | undefined): Promise<DirEntry | undefined> {
    const name = baseName(path);
    switch (own.t) {
      case 'dir': {
        const lower = own.lower === 'inherit' ? (below?.kind === 'dir' ? below.oid : null) : own.lower;
        return { name, kind: 'dir', executable: false, oid: await this.build(path, lower), chunked: false };
      }
      case 'gitfile': {
        if (own.chunked) {
          checkChunkedName(path, name, own.executable, own.size);
          return { name, kind: 'file', executable: own.executable, oid: own.oid, chunked: true, size: own.size };
        }
        // A blob of the branch's, renamed to a name git reads as its own: checked as git fsck would.
        const special = specialFileOf(name);
        if (special !== undefined) checkSpecialFile(path, special, await readTyped(this.repo.objects, own.oid, 'blob'));
        return { name, kind: 'file', executable: own.executable, oid: own.oid, chunked: false };
      }
      case 'link': {
        const target = Buffer.from(own.target, 'utf8');
        return { name, kind: 'symlink', executable: false, oid: await this.writer.writeHashed(hashObject('blob', target), 'blob', target), chunked: false };
      }
      case 'file': {
        this.stamps.set(own.data, stampNow(this.store, own.data));
        const st = await stat(this.store.dataPath(own.data)).catch((e: unknown) => {
          if (errnoCode(e) === 'ENOENT') return undefined;
          throw e;
        });
        if (st === undefined) return undefined;
        const components = { sink: this.writer, chunker: this.repo.chunker, treeParams: this.repo.format.tree, chunkThreshold: this.repo.format.chunkThreshold };
        const { entry } = await storeFile(this.store.dataPath(own.data), name, (st.mode & 0o100) !== 0, st.size, components, { path });
        return entry;
      }
    }
  }

}
