/**
 * The tree of chunk blobs that stores one large file (docs/FORMAT.md, "Chunked files").
 *
 * Each node is a git tree whose entries are named by their byte offset relative to the node's
 * start, as 16 lowercase hex digits (so git's name order is offset order). Leaves are chunk blobs
 * (100644), inner entries are subtrees (40000). A node ends after a chunk whose id ends in
 * `fanoutBits * k` zero bits (k levels closed at once), or when it reaches `maxFanout` entries.
 * Boundaries therefore depend on content alone: an edit rewrites its chunk and the O(log n)
 * nodes above it, and equal stretches of two files share whole subtrees.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { hashObject, type Oid } from './oid.js';
import type { ObjectSink } from './object-store.js';
import { storedHint } from './stored-entry.js';
import { encodeTree, TreeModes, type TreeEntry } from './tree.js';

export interface ChunkTreeParams {
  readonly fanoutBits: number;
  readonly maxFanout: number;
}

export const OFFSET_NAME_DIGITS = 16;

export function offsetName(offset: number): string {
  return offset.toString(16).padStart(OFFSET_NAME_DIGITS, '0');
}

/**
 * The deepest chunk tree read: levels close on an id's trailing zero bits (at most 160 of them),
 * so a real tree stays far below; a deeper one is hostile (a chain of one-entry nodes), and
 * reading it recursively overflowed the stack.
 */
export const MAX_CHUNK_TREE_DEPTH = 256;

/** How many levels a chunk with this id closes: trailing zero bits of the id / fanoutBits. */
export function chunkLevel(oid: Oid, fanoutBits: number): number {
  let zeros = 0;
  for (let i = oid.length - 1; i >= 0; i--) {
    const nibble = parseInt(oid[i] as string, 16);
    if (nibble === 0) {
      zeros += 4;
      continue;
    }
    zeros += Math.log2(nibble & -nibble);
    break;
  }
  return Math.floor(zeros / fanoutBits);
}

interface Pending {
  readonly oid: Oid;
  readonly size: number;
  readonly isTree: boolean;
}

/** Builds a chunk tree bottom-up from chunks in file order, writing nodes as they close. */
export class ChunkTreeBuilder {
  private readonly levels: Pending[][] = [[]];
  private size = 0;

  constructor(
    private readonly sink: ObjectSink,
    private readonly params: ChunkTreeParams,
  ) {}

  /** Appends a chunk that the caller has stored (or is storing) as a blob. */
  add(oid: Oid, size: number): void {
    this.size += size;
    this.level(0).push({ oid, size, isTree: false });
    const closes = chunkLevel(oid, this.params.fanoutBits);
    for (let i = 0; i < closes; i++) this.close(i);
    for (let i = 0; i < this.levels.length; i++) {
      if (this.level(i).length >= this.params.maxFanout) this.close(i);
    }
  }

  /** Closes every open node and returns the root tree id and the file size. */
  finish(): { oid: Oid; size: number } {
    for (let i = 0; ; i++) {
      const level = this.level(i);
      const higher = this.levels.slice(i + 1).some((l) => l.length > 0);
      const only = level[0];
      let root: Oid | undefined;
      if (!higher && level.length === 1 && only !== undefined && only.isTree) root = only.oid;
      else if (!higher && level.length === 0) root = this.writeNode([]);
      if (root !== undefined) return { oid: root, size: this.size };
      this.close(i);
    }
  }

  private level(i: number): Pending[] {
    let l = this.levels[i];
    if (l === undefined) {
      l = [];
      this.levels[i] = l;
    }
    return l;
  }

  private close(i: number): void {
    const items = this.level(i);
    if (items.length === 0) return;
    this.levels[i] = [];
    const oid = this.writeNode(items);
    this.level(i + 1).push({ oid, size: items.reduce((n, p) => n + p.size, 0), isTree: true });
  }

  private writeNode(items: readonly Pending[]): Oid {
    const entries: TreeEntry[] = [];
    let offset = 0;
    for (const p of items) {
      entries.push({ mode: p.isTree ? TreeModes.TREE : TreeModes.FILE, name: offsetName(offset), oid: p.oid });
      offset += p.size;
    }
    const content = encodeTree(entries);
    const oid = hashObject('tree', content);
    // Node ids are known at once, so the walk never waits for a node to be stored; a failed
    // write surfaces from the sink's own completion (PackWriter.finish). Nodes are stored without
    // compression: deflate saves a third of their bytes (the offsets; the ids are random), 0.16 %
    // of the file, for a deflate call per node that cost a tenth of a commit's time.
    this.sink.writeHashed(oid, 'tree', content, storedHint(content)).catch(() => undefined);
    return oid;
  }
}

/** One child of a chunk-tree node, with its byte span relative to the node. */
export interface ChunkSpan {
  readonly oid: Oid;
  readonly isTree: boolean;
  readonly start: number;
  readonly size: number;
}

/** Checks a node's entries against its known size and returns their spans. */
export function nodeSpans(entries: readonly TreeEntry[], nodeSize: number, nodeOid: Oid): ChunkSpan[] {
  const hostile = (why: string): GitfsError =>
    new GitfsError(ErrorCodes.HOSTILE_OBJECT, `chunk tree ${nodeOid} refused: ${why}`, { oid: nodeOid, reason: why });
  const spans: ChunkSpan[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as TreeEntry;
    const next = entries[i + 1];
    const start = offsetOf(e.name, hostile);
    const end = next === undefined ? nodeSize : offsetOf(next.name, hostile);
    if (i === 0 && start !== 0) throw hostile('offsets do not start at 0');
    if (end <= start || end > nodeSize) throw hostile('entry span outside the node');
    if (e.mode !== TreeModes.TREE && e.mode !== TreeModes.FILE) throw hostile(`entry mode ${e.mode}`);
    spans.push({ oid: e.oid, isTree: e.mode === TreeModes.TREE, start, size: end - start });
  }
  if (entries.length === 0 && nodeSize !== 0) throw hostile(`empty node for ${nodeSize} bytes`);
  return spans;
}

function offsetOf(name: string, hostile: (why: string) => GitfsError): number {
  if (!/^[0-9a-f]{16}$/.test(name)) throw hostile(`entry name ${JSON.stringify(name)} is not an offset`);
  return parseInt(name, 16);
}
