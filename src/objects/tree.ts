/**
 * Git tree objects: encode and strictly decode.
 *
 * Invariants of every tree gitfs writes or accepts (the same ones `git fsck --strict` checks):
 * - modes are exactly 100644, 100755, 120000, 40000, and 160000 (a gitlink: a submodule's commit, of another repository);
 * - names are non-empty, never `.`, `..` or `.git` (any case), never contain `/` or NUL;
 * - entries are sorted in git order (a tree's name compares as if it ended in `/`), no duplicates.
 */
import { isUtf8 } from 'node:buffer';
import { ErrorCodes, GitfsError } from '../errors.js';
import { OID_BYTES, oidFromBytes, type Oid } from './oid.js';
import { chunkNodeEntries } from './raw-chunk-node.js';

export const TreeModes = {
  FILE: '100644',
  EXECUTABLE: '100755',
  SYMLINK: '120000',
  TREE: '40000',
  GITLINK: '160000',
} as const;

export type TreeMode = (typeof TreeModes)[keyof typeof TreeModes];

const MODES: ReadonlySet<string> = new Set(Object.values(TreeModes));

export interface TreeEntry {
  readonly mode: TreeMode;
  readonly name: string;
  readonly oid: Oid;
}

/** Why a name cannot appear in a tree, or undefined if it can. */
export function badEntryName(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name === '.' || name === '..') return `name ${JSON.stringify(name)}`;
  if (name.toLowerCase() === '.git') return 'name .git';
  if (name.includes('/')) return 'name contains /';
  if (name.includes('\0')) return 'name contains NUL';
  return undefined;
}

/** Git's tree order: byte order of names, with trees compared as `name/`. */
function sortKey(e: { name: string; mode: TreeMode }): Buffer {
  return Buffer.from(e.mode === TreeModes.TREE ? `${e.name}/` : e.name, 'utf8');
}

/** Serialises entries (in any order) into a canonical tree. Throws on names git would reject. */
export function encodeTree(entries: readonly TreeEntry[]): Buffer {
  const keyed = entries.map((e) => ({ e, key: sortKey(e) }));
  let ordered = true;
  for (let i = 1; i < keyed.length && ordered; i++) ordered = Buffer.compare((keyed[i - 1] as { key: Buffer }).key, (keyed[i] as { key: Buffer }).key) < 0;
  if (!ordered) keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  let size = 0;
  for (const { e } of keyed) {
    const why = badEntryName(e.name);
    if (why !== undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `cannot store tree entry: ${why}`, { name: e.name });
    size += e.mode.length + 1 + Buffer.byteLength(e.name, 'utf8') + 1 + OID_BYTES;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  let previous: string | undefined;
  for (const { e } of keyed) {
    if (previous === e.name) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `duplicate tree entry ${JSON.stringify(e.name)}`, { name: e.name });
    previous = e.name;
    at += out.write(`${e.mode} ${e.name}\0`, at, 'utf8');
    at += out.write(e.oid, at, 'hex');
  }
  return out;
}

/**
 * Git's tree order on names held as bytes: [aStart, aEnd) and [bStart, bEnd) of `buf`, each
 * compared as if followed by `/` when it names a tree. Negative, zero or positive.
 */
function compareRawNames(buf: Buffer, aStart: number, aEnd: number, aTree: boolean, bStart: number, bEnd: number, bTree: boolean): number {
  const common = Math.min(aEnd - aStart, bEnd - bStart);
  const c = buf.compare(buf, bStart, bStart + common, aStart, aStart + common);
  if (c !== 0) return c;
  // One name is a prefix of the other. The next byte decides: the longer name's (never `/`),
  // against the shorter one's `/` if it is a tree, or its end (-1). Both ended: equal.
  const aNext = aStart + common < aEnd ? (buf[aStart + common] as number) : aTree ? 0x2f : -1;
  const bNext = bStart + common < bEnd ? (buf[bStart + common] as number) : bTree ? 0x2f : -1;
  return aNext - bNext;
}

/**
 * Parses a tree, refusing anything `git fsck --strict` would flag or that could escape a directory.
 * A chunk-tree node (16-hex-digit names, increasing: raw-chunk-node.ts) is read without the
 * general checks, which it passes by its shape (the walk of a 512 MiB image's closure, ~3 400 of
 * them, took ~30 % longer the general way: BENCHMARKS.md, "The swarm").
 */
export function decodeTree(content: Buffer, oid?: Oid): TreeEntry[] {
  const chunkNode = chunkNodeEntries(content);
  if (chunkNode !== undefined) {
    return chunkNode.map((e) => ({ mode: e.tree ? TreeModes.TREE : TreeModes.FILE, name: content.toString('latin1', e.nameAt, e.idAt - 1), oid: oidFromBytes(content, e.idAt) }));
  }
  const entries: TreeEntry[] = [];
  let pos = 0;
  let previous: { readonly start: number; readonly end: number; readonly tree: boolean } | undefined;
  // Names of the non-tree entries so far: git sorts a tree `a` as `a/`, after `a.b`, so a file and a
  // tree of one name need not be neighbours (git fsck: duplicateEntries).
  const files = new Set<string>();
  const hostile = (why: string): GitfsError =>
    new GitfsError(ErrorCodes.HOSTILE_OBJECT, `tree ${oid ?? '(unhashed)'} refused: ${why}`, { oid, reason: why });
  while (pos < content.length) {
    const space = content.indexOf(0x20, pos);
    if (space < 0 || space - pos > 6) throw hostile('bad entry mode');
    const mode = content.toString('latin1', pos, space);
    if (!MODES.has(mode)) throw hostile(`unknown mode ${JSON.stringify(mode)}`);
    const nul = content.indexOf(0, space + 1);
    if (nul < 0 || nul + 1 + OID_BYTES > content.length) throw hostile('truncated entry');
    if (!isUtf8(content.subarray(space + 1, nul))) throw hostile('entry name is not UTF-8');
    const name = content.toString('utf8', space + 1, nul);
    const why = badEntryName(name);
    if (why !== undefined) throw hostile(why);
    const tree = mode === TreeModes.TREE;
    if (previous !== undefined) {
      if (content.compare(content, space + 1, nul, previous.start, previous.end) === 0) throw hostile(`duplicate entry ${JSON.stringify(name)}`);
      if (compareRawNames(content, previous.start, previous.end, previous.tree, space + 1, nul, tree) > 0) throw hostile('entries not sorted');
    }
    if (tree && files.has(name)) throw hostile(`duplicate entry ${JSON.stringify(name)}`);
    if (!tree) files.add(name);
    entries.push({ mode: mode as TreeMode, name, oid: oidFromBytes(content, nul + 1) });
    previous = { start: space + 1, end: nul, tree };
    pos = nul + 1 + OID_BYTES;
  }
  return entries;
}
