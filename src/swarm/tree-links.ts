/**
 * What a closure walk needs of a tree: the ids of its entries, in order, and what each is (a
 * subtree to walk, a blob to fetch, a gitlink to leave). Names are not kept: a 512 MiB image's
 * chunk tree has ~65 000 entries, each decoded into an object and a name string, and the
 * collector took a quarter to a third of a relay's walk (BENCHMARKS.md, "The swarm").
 */
import { oidFromBytes, type Oid } from '../objects/oid.js';
import { scanChunkNode } from '../objects/raw-chunk-node.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import { aliasProblem, specialFileOf, type EntryKind, type SpecialFile } from '../objects/storable-name.js';
import { decodeTree, TreeModes, type TreeEntry } from '../objects/tree.js';

/** A blob git fsck reads as `.gitmodules` or `.gitattributes` is a blob whose content is checked too. */
export const LinkKinds = { BLOB: 0, TREE: 1, GITLINK: 2, GITMODULES: 3, GITATTRIBUTES: 4 } as const;

export const isBlobKind = (kind: number): boolean => kind === LinkKinds.BLOB || specialOf(kind) !== undefined;

/** The special file a link kind stands for, if any. */
export const specialOf = (kind: number): SpecialFile | undefined => (kind === LinkKinds.GITMODULES ? 'gitmodules' : kind === LinkKinds.GITATTRIBUTES ? 'gitattributes' : undefined);

export interface TreeLinks {
  readonly oids: readonly Oid[];
  /** LinkKinds, entry by entry. */
  readonly kinds: Uint8Array;
}

/**
 * The links of a tree whose id was checked. A chunk-tree node is read by its shape, without the
 * general checks, which it passes by that shape; any other tree is read by decodeTree, and its
 * names as git fsck reads them (storable-name.ts): GITFS_HOSTILE_OBJECT for what git refuses.
 */
export function treeLinks(content: Buffer, oid: Oid): TreeLinks {
  const oids: Oid[] = [];
  const kinds: number[] = [];
  const count = scanChunkNode(content, (idAt, tree) => {
    oids.push(oidFromBytes(content, idAt));
    kinds.push(tree ? LinkKinds.TREE : LinkKinds.BLOB);
  });
  if (count >= 0) return { oids, kinds: Uint8Array.from(kinds) };
  const entries = decodeTree(content, oid);
  return { oids: entries.map((e) => e.oid), kinds: Uint8Array.from(entries, (e) => linkKind(e, oid)) };
}

/** The blobs of a tree git reads as `.gitmodules` or `.gitattributes`. */
export function specialLinks(links: TreeLinks): Array<{ oid: Oid; which: SpecialFile }> {
  const out: Array<{ oid: Oid; which: SpecialFile }> = [];
  links.kinds.forEach((kind, i) => {
    const which = specialOf(kind);
    if (which !== undefined) out.push({ oid: links.oids[i] as Oid, which });
  });
  return out;
}

function linkKind(e: TreeEntry, tree: Oid): number {
  const kind = ENTRY_KINDS[e.mode];
  const why = aliasProblem(e.name, kind);
  if (why !== undefined) throw new GitfsError(ErrorCodes.HOSTILE_OBJECT, `tree ${tree} refused: ${why}`, { oid: tree, reason: why });
  if (kind === 'dir') return LinkKinds.TREE;
  if (kind === 'gitlink') return LinkKinds.GITLINK;
  const special = kind === 'file' ? specialFileOf(e.name) : undefined;
  return special === 'gitmodules' ? LinkKinds.GITMODULES : special === 'gitattributes' ? LinkKinds.GITATTRIBUTES : LinkKinds.BLOB;
}

const ENTRY_KINDS: Readonly<Record<TreeEntry['mode'], EntryKind>> = {
  [TreeModes.TREE]: 'dir',
  [TreeModes.FILE]: 'file',
  [TreeModes.EXECUTABLE]: 'file',
  [TreeModes.SYMLINK]: 'symlink',
  [TreeModes.GITLINK]: 'gitlink',
};
