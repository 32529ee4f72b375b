/**
 * A three-way merge of two directory trees against their common base, by tree entries alone:
 * nothing below a changed file is read, so it runs as well where blobs are absent (a partial
 * repository). Entries are compared as gitfs shows them (decoded names: a chunked file whose size
 * changed is one file, not two).
 *
 * Per name: what one side left as the base had it takes the other side's change (an addition, an
 * edit or a removal); directories both changed are merged entry by entry; otherwise the two
 * conflict and both versions stay. The newer side's keeps the name, and the older side's is set
 * aside as `STEM.conflict-TAG.EXT` beside it (TAG: the older commit's short id). A directory keeps
 * the name against a file, which is set aside under its own commit's tag. An edit against a
 * removal keeps the edit. Nothing either side holds is lost, and the result depends only on the
 * three trees and the tags: every node merging the same two heads writes the same tree.
 */
import { isDirectoryKind, toTreeEntry, writeEmptyDirTree, type DirEntry } from '../objects/entry-names.js';
import type { ObjectReader, ObjectSink } from '../objects/object-store.js';
import { hashObject, type Oid } from '../objects/oid.js';
import { encodeTree } from '../objects/tree.js';
import { listDirectory } from './tree-reader.js';

/** One side of a merge: its root tree and the tag its set-aside versions carry. */
export interface MergeSide {
  readonly tree: Oid;
  readonly tag: string;
}

/** A version kept under another name: `path` (as both sides named it) and where it is now. */
export interface SetAside {
  readonly path: string;
  readonly as: string;
}

export interface TreeMerge {
  readonly tree: Oid;
  /** In path order. */
  readonly setAside: readonly SetAside[];
}

/** Longest name the mount shows (ext4's limit), in UTF-8 bytes. */
const MAX_NAME_BYTES = 255;

export async function mergeTrees(store: ObjectReader, sink: ObjectSink, base: Oid | undefined, newer: MergeSide, older: MergeSide): Promise<TreeMerge> {
  const setAside: SetAside[] = [];
  const tree = await mergeDir(store, sink, '', base, newer, older, setAside);
  return { tree, setAside };
}

async function mergeDir(store: ObjectReader, sink: ObjectSink, path: string, base: Oid | undefined, newer: MergeSide, older: MergeSide, setAside: SetAside[]): Promise<Oid> {
  if (newer.tree === older.tree || base === older.tree) return newer.tree;
  if (base === newer.tree) return older.tree;
  const [b, n, o] = await Promise.all([base === undefined ? new Map<string, DirEntry>() : byName(store, base), byName(store, newer.tree), byName(store, older.tree)]);
  const kept: DirEntry[] = [];
  const aside: Array<{ entry: DirEntry; tag: string }> = [];
  for (const name of [...new Set([...n.keys(), ...o.keys()])].sort()) {
    const [be, ne, oe] = [b.get(name), n.get(name), o.get(name)];
    if (same(ne, oe) || same(be, oe)) {
      if (ne !== undefined) kept.push(ne);
    } else if (same(be, ne) || ne === undefined) {
      if (oe !== undefined) kept.push(oe);
    } else if (oe === undefined) {
      kept.push(ne);
    } else if (isDir(ne) && isDir(oe)) {
      const sub = await mergeDir(store, sink, `${path}${name}/`, isDir(be) ? be.oid : undefined, { ...newer, tree: ne.oid }, { ...older, tree: oe.oid }, setAside);
      kept.push({ ...ne, oid: sub });
    } else if (isDirectoryKind(oe.kind) && !isDirectoryKind(ne.kind)) {
      kept.push(oe);
      aside.push({ entry: ne, tag: newer.tag });
    } else {
      kept.push(ne);
      aside.push({ entry: oe, tag: older.tag });
    }
  }
  const taken = new Set([...n.keys(), ...o.keys()]);
  for (const { entry, tag } of aside) {
    const name = freeName(entry.name, tag, taken);
    taken.add(name);
    kept.push({ ...entry, name });
    setAside.push({ path: `${path}${entry.name}`, as: `${path}${name}` });
  }
  if (kept.length === 0) return writeEmptyDirTree(sink);
  const content = encodeTree(kept.map(toTreeEntry));
  return sink.writeHashed(hashObject('tree', content), 'tree', content);
}

async function byName(store: ObjectReader, tree: Oid): Promise<Map<string, DirEntry>> {
  return new Map((await listDirectory(store, tree)).map((e) => [e.name, e]));
}

function same(a: DirEntry | undefined, b: DirEntry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.oid === b.oid && a.kind === b.kind && a.executable === b.executable && a.chunked === b.chunked && a.size === b.size;
}

/** A directory (not a chunked file, whose tree is its chunks, nor a submodule). */
function isDir(e: DirEntry | undefined): e is DirEntry {
  return e !== undefined && e.kind === 'dir' && !e.chunked;
}

/**
 * `STEM.conflict-TAG.EXT` (an extension kept so that the copy opens as the file does), the stem
 * shortened to fit the name limit; a counter follows the tag while the name is taken.
 */
export function freeName(name: string, tag: string, taken: ReadonlySet<string>): string {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : '';
  let stem = ext === '' ? name : name.slice(0, dot);
  for (let n = 1; ; n++) {
    const mark = `.conflict-${tag}${n === 1 ? '' : `-${n}`}${ext}`;
    while (Buffer.byteLength(stem + mark, 'utf8') > MAX_NAME_BYTES) stem = [...stem].slice(0, -1).join('');
    const candidate = stem + mark;
    if (!taken.has(candidate)) return candidate;
  }
}
