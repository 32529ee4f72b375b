/**
 * How gitfs's file-system view maps onto git tree entries (docs/FORMAT.md, "Trees").
 *
 * - A regular file is a blob (100644, or 100755 if executable); a symlink is a blob (120000)
 *   holding its target; a directory is a tree (40000).
 * - A chunked file NAME of SIZE bytes is a tree entry named `NAME~gitfs~cSIZE` (`~gitfs~xSIZE`
 *   if executable) pointing at its chunk tree, so the parent tree alone tells name, size and mode.
 * - An empty directory holds one empty blob named `~gitfs~keep`.
 * - A submodule is a gitlink (160000) naming a commit of another repository, as git writes it:
 *   kept as it is, never read (the commit is not in this repository).
 * - A real name containing `~gitfs~` is stored with the suffix `~gitfs~e`.
 * Decoding refuses anything else that contains the marker, and names that collide once decoded.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import type { ObjectSink } from './object-store.js';
import { hashObject, type Oid } from './oid.js';
import { badEntryName, encodeTree, TreeModes, type TreeEntry } from './tree.js';

export const MARKER = '~gitfs~';
export const KEEP_NAME = `${MARKER}keep`;
const ESCAPE_SUFFIX = `${MARKER}e`;
const CHUNKED_RE = /^([cx])(0|[1-9][0-9]{0,15})$/;
const EMPTY_BLOB = hashObject('blob', new Uint8Array(0));

/** The entry an empty directory's tree holds, its empty blob written to `sink`. */
export async function keepEntry(sink: ObjectSink): Promise<TreeEntry> {
  return { mode: TreeModes.FILE, name: KEEP_NAME, oid: await sink.writeHashed(EMPTY_BLOB, 'blob', new Uint8Array(0)) };
}

/** Writes the tree of an empty directory (its one `~gitfs~keep` entry) to `sink`. */
export async function writeEmptyDirTree(sink: ObjectSink): Promise<Oid> {
  const content = encodeTree([await keepEntry(sink)]);
  return sink.writeHashed(hashObject('tree', content), 'tree', content);
}

export type FileKind = 'file' | 'symlink' | 'dir' | 'gitlink';

/**
 * Whether a file system shows an entry of this kind as a directory: a directory, or a submodule
 * (gitlink), which is an empty one, as git checkout leaves a submodule not initialised.
 */
export const isDirectoryKind = (kind: FileKind): boolean => kind === 'dir' || kind === 'gitlink';

/** One entry of a directory as gitfs shows it. */
export interface DirEntry {
  readonly name: string;
  readonly kind: FileKind;
  readonly executable: boolean;
  /** Blob id, tree id, chunk-tree id (when `chunked`), or a gitlink's commit id (of another repository). */
  readonly oid: Oid;
  /** Present for chunked files: the file's size in bytes. */
  readonly size?: number;
  readonly chunked: boolean;
}

export function storedName(name: string): string {
  return name.includes(MARKER) ? `${name}${ESCAPE_SUFFIX}` : name;
}

/** The name a chunked file's tree has in its parent: `NAME~gitfs~cSIZE` (`x` for an executable), NAME escaped. */
export function chunkedTreeName(name: string, executable: boolean, size: number): string {
  return `${storedName(name)}${MARKER}${executable ? 'x' : 'c'}${size}`;
}

/** The tree mode of every kind but a file's (whose execute bit decides it). */
const KIND_MODES = { dir: TreeModes.TREE, symlink: TreeModes.SYMLINK, gitlink: TreeModes.GITLINK } as const;

/** The tree entry that stores `e`. */
export function toTreeEntry(e: DirEntry): TreeEntry {
  if (e.chunked) {
    if (e.size === undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'chunked entry needs a size');
    return { mode: TreeModes.TREE, name: chunkedTreeName(e.name, e.executable, e.size), oid: e.oid };
  }
  const mode = e.kind === 'file' ? (e.executable ? TreeModes.EXECUTABLE : TreeModes.FILE) : KIND_MODES[e.kind];
  return { mode, name: storedName(e.name), oid: e.oid };
}

/**
 * Decodes a tree's entries into directory entries. The keep marker is dropped; gitlinks are kept
 * (kind `gitlink`); malformed marker names are refused as hostile. `treeOid` only labels errors.
 */
export function fromTreeEntries(entries: readonly TreeEntry[], treeOid?: Oid): DirEntry[] {
  const out: DirEntry[] = [];
  const names = new Set<string>();
  const hostile = (why: string): GitfsError =>
    new GitfsError(ErrorCodes.HOSTILE_OBJECT, `tree ${treeOid ?? ''} refused: ${why}`, { oid: treeOid, reason: why });
  for (const t of entries) {
    if (t.name === KEEP_NAME && t.mode === TreeModes.FILE) continue;
    const entry = decodeEntry(t, hostile);
    if (names.has(entry.name)) throw hostile(`two entries decode to ${JSON.stringify(entry.name)}`);
    names.add(entry.name);
    out.push(entry);
  }
  return out;
}

function decodeEntry(t: TreeEntry, hostile: (why: string) => GitfsError): DirEntry {
  const at = t.name.lastIndexOf(MARKER);
  const m = at < 0 ? null : CHUNKED_RE.exec(t.name.slice(at + MARKER.length));
  if (m === null) return plainEntry(realName(t.name, hostile), t);
  if (t.mode !== TreeModes.TREE) throw hostile(`malformed name ${JSON.stringify(t.name)}`);
  const size = Number(m[2]);
  if (!Number.isSafeInteger(size)) throw hostile(`absurd size in ${JSON.stringify(t.name)}`);
  const name = realName(t.name.slice(0, at), hostile);
  return { name, kind: 'file', executable: m[1] === 'x', oid: t.oid, size, chunked: true };
}

/**
 * Undoes `storedName`; any other use of the marker, a non-canonical escape, or a decoded name
 * that could not stand in a tree (`.`, `..`, `.git`, empty) is refused.
 */
function realName(stored: string, hostile: (why: string) => GitfsError): string {
  let name = stored;
  if (stored.includes(MARKER)) {
    name = stored.slice(0, -ESCAPE_SUFFIX.length);
    if (!stored.endsWith(ESCAPE_SUFFIX) || storedName(name) !== stored) throw hostile(`malformed name ${JSON.stringify(stored)}`);
  }
  const why = badEntryName(name);
  if (why !== undefined) throw hostile(`${JSON.stringify(stored)} decodes to a refused name (${why})`);
  return name;
}

function plainEntry(name: string, t: TreeEntry): DirEntry {
  switch (t.mode) {
    case TreeModes.TREE:
      return { name, kind: 'dir', executable: false, oid: t.oid, chunked: false };
    case TreeModes.SYMLINK:
      return { name, kind: 'symlink', executable: false, oid: t.oid, chunked: false };
    case TreeModes.GITLINK:
      return { name, kind: 'gitlink', executable: false, oid: t.oid, chunked: false };
    case TreeModes.FILE:
    case TreeModes.EXECUTABLE:
      return { name, kind: 'file', executable: t.mode === TreeModes.EXECUTABLE, oid: t.oid, chunked: false };
  }
}
