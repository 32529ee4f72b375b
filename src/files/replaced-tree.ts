/**
 * The tree a snapshot replaces (`gitfs commit --from`), asked for the submodules at the paths
 * where the snapshot has an empty directory (importer.ts, `gitlinkAt`). A directory's tree is
 * read once, and only when a path below it is asked for: a snapshot of N empty directories costs
 * at most one read per directory of the replaced tree. Entries are matched raw, by stored name
 * and mode, never decoded into the file view. A tree that cannot be read or decoded counts as
 * holding no submodule: the snapshot is taken as it is, and a commit that would repair a damaged
 * branch never fails for the damage.
 */
import { storedName } from '../objects/entry-names.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import { decodeTree, TreeModes, type TreeEntry } from '../objects/tree.js';
import { readTyped } from '../objects/typed-read.js';

export class ReplacedTree {
  private readonly dirs = new Map<string, Promise<readonly TreeEntry[] | undefined>>();

  constructor(
    private readonly store: ObjectReader,
    private readonly root: Oid,
  ) {}

  /** The submodule's commit at `path` (`a/b/c`), if the replaced tree has one there. */
  async gitlinkAt(path: string): Promise<Oid | undefined> {
    const cut = path.lastIndexOf('/');
    const entries = await this.entriesAt(cut < 0 ? '' : path.slice(0, cut));
    return find(entries, path.slice(cut + 1), TreeModes.GITLINK);
  }

  private entriesAt(dir: string): Promise<readonly TreeEntry[] | undefined> {
    let entries = this.dirs.get(dir);
    if (entries === undefined) {
      entries = this.read(dir);
      this.dirs.set(dir, entries);
    }
    return entries;
  }

  private async read(dir: string): Promise<readonly TreeEntry[] | undefined> {
    const cut = dir.lastIndexOf('/');
    const tree = dir === '' ? this.root : find(await this.entriesAt(cut < 0 ? '' : dir.slice(0, cut)), dir.slice(cut + 1), TreeModes.TREE);
    if (tree === undefined) return undefined;
    try {
      return decodeTree(await readTyped(this.store, tree, 'tree'), tree);
    } catch {
      return undefined;
    }
  }
}

function find(entries: readonly TreeEntry[] | undefined, name: string, mode: string): Oid | undefined {
  const stored = storedName(name);
  return entries?.find((e) => e.name === stored && e.mode === mode)?.oid;
}
