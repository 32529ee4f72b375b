/**
 * The file-system view of a tree with a working layer laid over it: path lookup and directory
 * listing. Answers come from tree objects and the layer alone, never from file content.
 */
import type { DirEntry, FileKind } from '../objects/entry-names.js';
import type { Oid } from '../objects/oid.js';
import { FsError } from './fs-error.js';
import type { Layer } from './layer.js';
import { childPath, DIR_MODE, type OverlayEntry } from './overlay.js';
import type { TreeCache } from './tree-cache.js';

/** Committed file content: a blob, or a chunked file with its size. */
export interface GitContent {
  readonly oid: Oid;
  readonly chunked: boolean;
  readonly size?: number;
}

/** What a path is. `mtime` undefined means "as old as the base commit". */
export type Node =
  | { readonly kind: 'dir'; readonly lower: Oid | null; readonly mode: number; readonly mtime?: number }
  | { readonly kind: 'file'; readonly data: string; readonly git?: undefined }
  | { readonly kind: 'file'; readonly data?: undefined; readonly git: GitContent; readonly executable: boolean; readonly mtime?: number }
  | { readonly kind: 'symlink'; readonly target?: string; readonly oid?: Oid; readonly mtime?: number }
  /**
   * A submodule: its commit, of another repository. Shown as an empty read-only directory (as git
   * checkout leaves a submodule not initialised); only the lower tree has them, and a commit
   * keeps each as it is unless it was removed.
   */
  | { readonly kind: 'gitlink'; readonly oid: Oid };

export interface Listed {
  readonly name: string;
  readonly kind: FileKind;
}

export interface Resolved {
  readonly node: Node;
  /** Whether the lower tree has an entry at this path (deleting it then needs a whiteout). */
  readonly inLower: boolean;
}

export function nodeFromLower(e: DirEntry): Node {
  switch (e.kind) {
    case 'dir':
      return { kind: 'dir', lower: e.oid, mode: DIR_MODE };
    case 'symlink':
      return { kind: 'symlink', oid: e.oid };
    case 'gitlink':
      return { kind: 'gitlink', oid: e.oid };
    default:
      return e.chunked
        ? { kind: 'file', git: { oid: e.oid, chunked: true, size: e.size ?? 0 }, executable: e.executable }
        : { kind: 'file', git: { oid: e.oid, chunked: false }, executable: e.executable };
  }
}

function nodeFromOverlay(entry: Exclude<OverlayEntry, { t: 'wh' }>, below: DirEntry | undefined): Node {
  switch (entry.t) {
    case 'dir': {
      const lower = entry.lower === 'inherit' ? (below?.kind === 'dir' ? below.oid : null) : entry.lower;
      return { kind: 'dir', lower, mode: entry.mode, mtime: entry.mtime };
    }
    case 'file':
      return { kind: 'file', data: entry.data };
    case 'gitfile':
      return { kind: 'file', git: { oid: entry.oid, chunked: entry.chunked, size: entry.size }, executable: entry.executable, mtime: entry.mtime };
    case 'link':
      return { kind: 'symlink', target: entry.target, mtime: entry.mtime };
  }
}

/**
 * The entry that stands at a path over `below`: a directory's own attributes ('inherit') count
 * only while the lower tree has a directory there (a commit elsewhere may have removed it).
 */
export function shadowing(own: OverlayEntry | undefined, below: DirEntry | undefined): OverlayEntry | undefined {
  if (own?.t === 'dir' && own.lower === 'inherit' && below?.kind !== 'dir') return undefined;
  return own;
}

export class MergedView {
  constructor(
    private readonly trees: TreeCache,
    private readonly layer: Layer | undefined,
    private readonly rootLower: Oid | null,
    /** The commit whose tree `rootLower` is (null: none), for changes made through this view. */
    readonly base: Oid | null = null,
    /** The layer's generation when the view was made (changes check it). */
    readonly generation?: number,
  ) {}

  private root(): Node {
    const own = this.layer?.get('');
    if (own?.t === 'dir') return { kind: 'dir', lower: this.rootLower, mode: own.mode, mtime: own.mtime };
    return { kind: 'dir', lower: this.rootLower, mode: DIR_MODE };
  }

  /** The node at `path` ('' is the root), or undefined; ENOTDIR when a file stands on the way. */
  async resolve(path: string): Promise<Resolved | undefined> {
    let node = this.root();
    if (path === '') return { node, inLower: this.rootLower !== null };
    let inLower = false;
    let at = '';
    for (const name of path.split('/')) {
      if (node.kind === 'gitlink') return undefined; // an empty directory
      if (node.kind !== 'dir') throw new FsError('ENOTDIR', path);
      at = childPath(at, name);
      const below = node.lower === null ? undefined : (await this.trees.get(node.lower)).get(name);
      inLower = below !== undefined;
      const own = shadowing(this.layer?.get(at), below);
      if (own?.t === 'wh') return undefined;
      if (own !== undefined) node = nodeFromOverlay(own, below);
      else if (below !== undefined) node = nodeFromLower(below);
      else return undefined;
    }
    return { node, inLower };
  }

  /**
   * As `resolve`, with a file on the way (ENOTDIR) also answered undefined: the path is not
   * there. Anything else (a tree that is corrupt or absent) propagates.
   */
  async find(path: string): Promise<Resolved | undefined> {
    return this.resolve(path).catch((e: unknown) => {
      if (e instanceof FsError && e.errno === 'ENOTDIR') return undefined;
      throw e;
    });
  }

  /** The entries of the directory `node` at `path`, sorted by name, with their kinds. */
  async list(path: string, node: Node): Promise<Listed[]> {
    if (node.kind === 'gitlink') return [];
    if (node.kind !== 'dir') throw new FsError('ENOTDIR', path);
    const kinds = new Map<string, FileKind>();
    if (node.lower !== null) for (const [name, e] of await this.trees.get(node.lower)) kinds.set(name, e.kind);
    for (const name of this.layer?.childNames(path) ?? []) {
      const raw = this.layer?.get(childPath(path, name));
      const below = kinds.get(name);
      const own = raw?.t === 'dir' && raw.lower === 'inherit' ? (below === 'dir' ? raw : undefined) : raw;
      if (raw === undefined || own?.t === 'wh') kinds.delete(name);
      else if (own !== undefined) kinds.set(name, own.t === 'dir' ? 'dir' : own.t === 'link' ? 'symlink' : 'file');
    }
    return [...kinds].map(([name, kind]) => ({ name, kind })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
