/**
 * What a closure walk needs of a tree: the ids of its entries, in order, and what each is (a
 * subtree to walk, a blob to fetch, a gitlink to leave). Names are not kept: a 512 MiB image's
 * chunk tree has ~65 000 entries, each decoded into an object and a name string, and the
 * collector took a quarter to a third of a relay's walk (BENCHMARKS.md, "The swarm").
 */
import { oidFromBytes, type Oid } from '../objects/oid.js';
import { scanChunkNode } from '../objects/raw-chunk-node.js';
import { decodeTree, TreeModes } from '../objects/tree.js';

export const LinkKinds = { BLOB: 0, TREE: 1, GITLINK: 2 } as const;

export interface TreeLinks {
  readonly oids: readonly Oid[];
  /** LinkKinds, entry by entry. */
  readonly kinds: Uint8Array;
}

/**
 * The links of a tree whose id was checked. A chunk-tree node is read by its shape, without the
 * general checks, which it passes by that shape; any other tree is read by decodeTree, which
 * refuses what git fsck would.
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
  return {
    oids: entries.map((e) => e.oid),
    kinds: Uint8Array.from(entries, (e) => (e.mode === TreeModes.TREE ? LinkKinds.TREE : e.mode === TreeModes.GITLINK ? LinkKinds.GITLINK : LinkKinds.BLOB)),
  };
}
