/**
 * A three-way merge of two directory trees against their common base, by tree entries alone:
 * nothing below a changed file is read, so it runs as well where blobs are absent (a partial
 * repository). Entries are compared as gitfs shows them (decoded names: a chunked file whose size
 * changed is one file, not two).
 *
 * Per name: what one side left as the base had it takes the other side's change (an addition, an
 * edit or a removal); directories both changed are merged entry by entry, and so is one that a
 * side removed while the other changed it (what the other added or edited in it stays, what it
 * left alone goes); a file whose content one side changed and whose execute bit the other did
 * takes both changes. Otherwise the two conflict and both versions stay. The newer side's keeps
 * the name, and the older side's is set aside as `STEM.conflict-ID.EXT` beside it (ID: the short
 * id of the version itself, `-exec`, `-link`, `-dir` or `-gitlink` after it for what is not a
 * plain file; so a version is set aside under one name whichever merge sets it aside, and with
 * three writers or more, merges made in any order hold it once and come to agree). A directory
 * keeps the name against a file, which is set aside so. An edit against a removal keeps the
 * edit. No version either side holds is lost, and the result depends only on the three trees:
 * every node merging the same two heads writes the same tree.
 */
import { createHash } from 'node:crypto';
import { isDirectoryKind, toTreeEntry, writeEmptyDirTree, type DirEntry } from '../objects/entry-names.js';
import type { ObjectReader, ObjectSink } from '../objects/object-store.js';
import { hashObject, type Oid } from '../objects/oid.js';
import { encodeTree } from '../objects/tree.js';
import { listDirectory } from './tree-reader.js';

/** A version kept under another name: `path` (as both sides named it) and where it is now (paths from the root, `/` between names). */
export interface SetAside {
  readonly path: string;
  readonly as: string;
}

export interface TreeMerge {
  readonly tree: Oid;
  /** In the byte order of their paths. */
  readonly setAside: readonly SetAside[];
}

/** Longest name the mount shows (ext4's limit), in UTF-8 bytes. */
const MAX_NAME_BYTES = 255;
/** What a name set aside holds between its stem and the version's id. */
const MARK = '.conflict-';
/** Hex digits of a version's id in the tag it is set aside under. */
const ID_DIGITS = 12;
/** Longest extension kept after the conflict mark, in characters (code points), its dot included. */
const MAX_EXT_CHARS = 16;

/** `names` in the byte order of their UTF-8 (every node sorts alike, and as the docs say), each encoded once. */
function inByteOrder(names: ReadonlySet<string>): string[] {
  return [...names]
    .map((name) => ({ name, bytes: Buffer.from(name, 'utf8') }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map((e) => e.name);
}

/** Merges the trees `newer` and `older` (the newer side's versions keep their names) against `base`. */
export async function mergeTrees(store: ObjectReader, sink: ObjectSink, base: Oid | undefined, newer: Oid, older: Oid): Promise<TreeMerge> {
  const setAside: SetAside[] = [];
  const tree = (await mergeDir(store, sink, '', base, newer, older, setAside)) ?? (await writeEmptyDirTree(sink));
  const order = new Map(inByteOrder(new Set(setAside.map((a) => a.path))).map((path, i) => [path, i]));
  return { tree, setAside: setAside.sort((a, b) => (order.get(a.path) as number) - (order.get(b.path) as number)) };
}

/**
 * The merged directory at `path` (ending in `/`, or empty at the root). Undefined when it comes
 * out empty where one side removed it (the removal stands); a directory both sides kept that
 * comes out empty stays, as an empty directory.
 */
async function mergeDir(store: ObjectReader, sink: ObjectSink, path: string, base: Oid | undefined, newer: Oid | undefined, older: Oid | undefined, setAside: SetAside[]): Promise<Oid | undefined> {
  if (newer === older || base === older) return newer;
  if (base === newer) return older;
  const [b, n, o] = (await Promise.all([base, newer, older].map((t) => (t === undefined ? new Map<string, DirEntry>() : byName(store, t))))) as [Entries, Entries, Entries];
  const kept: DirEntry[] = [];
  const aside: DirEntry[] = [];
  for (const name of inByteOrder(new Set([...n.keys(), ...o.keys()]))) {
    const [be, ne, oe] = [b.get(name), n.get(name), o.get(name)];
    if (same(ne, oe) || same(be, oe)) {
      if (ne !== undefined) kept.push(ne);
    } else if (same(be, ne)) {
      if (oe !== undefined) kept.push(oe);
    } else if ((isDir(ne) && isDir(oe)) || (isDir(be) && (ne === undefined ? isDir(oe) : oe === undefined && isDir(ne)))) {
      // Both directories, or one removed where the other changed it: merged entry by entry (a
      // removal then goes on in what the other side left as it was).
      const sub = await mergeDir(store, sink, `${path}${name}/`, isDir(be) ? be.oid : undefined, ne?.oid, oe?.oid, setAside);
      if (sub !== undefined) kept.push({ ...((ne ?? oe) as DirEntry), oid: sub });
    } else if (ne === undefined || oe === undefined) {
      // An edit outlives a removal.
      kept.push((ne ?? oe) as DirEntry);
    } else {
      const both = bothFiles(be, ne, oe);
      if (both !== undefined) kept.push(both);
      else if (isDirectoryKind(oe.kind) && !isDirectoryKind(ne.kind)) {
        kept.push(oe);
        aside.push(ne);
      } else {
        kept.push(ne);
        aside.push(oe);
      }
    }
  }
  // A name the merge let go (a copy one side removed) may be taken again.
  const taken = new Set(kept.map((e) => e.name));
  const keptByName = new Map(kept.map((e) => [e.name, e]));
  for (const entry of aside) {
    const tag = versionTag(entry);
    // Already beside it under its own name (an earlier merge set this version aside): kept once.
    const named = freeName(entry.name, tag, new Set());
    if (same(keptByName.get(named), entry)) {
      setAside.push({ path: `${path}${entry.name}`, as: `${path}${named}` });
      continue;
    }
    const name = freeName(entry.name, tag, taken);
    taken.add(name);
    kept.push({ ...entry, name });
    setAside.push({ path: `${path}${entry.name}`, as: `${path}${name}` });
  }
  const merged = withoutNamedTwice(kept, n, o);
  if (merged.length === 0) return newer === undefined || older === undefined ? undefined : writeEmptyDirTree(sink);
  const content = encodeTree(merged.map(toTreeEntry));
  return sink.writeHashed(hashObject('tree', content), 'tree', content);
}

/**
 * The tag of a version set aside: the first 12 hex digits of its id, then what it is when it is
 * not a plain file (the same bytes as an executable, a symbolic link or a directory are another
 * version).
 */
function versionTag(e: DirEntry): string {
  const id = e.oid.slice(0, ID_DIGITS);
  if (e.kind === 'file') return e.executable ? `${id}-exec` : id;
  return `${id}-${e.kind === 'symlink' ? 'link' : e.kind}`;
}

/**
 * `kept` less each copy set aside of a version that holds its name as well, unless one side holds
 * both as they are (then the pair stays: a copy kept on purpose): writers apart within the same
 * second, merged in another order, can leave the name to a version one merge set aside (merges
 * are dated a second after their newer head). The version stays, under the name, once.
 */
function withoutNamedTwice(kept: DirEntry[], n: Entries, o: Entries): DirEntry[] {
  if (!kept.some((e) => e.name.includes(MARK))) return kept;
  const byName = new Map(kept.map((e) => [e.name, e]));
  const holdsBoth = (side: Entries, e: DirEntry, copy: DirEntry): boolean => same(side.get(e.name), e) && same(side.get(copy.name), copy);
  const twice = new Set<string>();
  for (const e of kept) {
    const copy = byName.get(freeName(e.name, versionTag(e), new Set()));
    if (copy === undefined || copy === e || !same(copy, e) || holdsBoth(n, e, copy) || holdsBoth(o, e, copy)) continue;
    twice.add(copy.name);
  }
  return twice.size === 0 ? kept : kept.filter((e) => !twice.has(e.name));
}

/**
 * Two regular files that changed apart: merged when one changed the content and the other the
 * execute bit only (or both the same way); undefined when their contents conflict.
 */
function bothFiles(be: DirEntry | undefined, ne: DirEntry, oe: DirEntry): DirEntry | undefined {
  if (be?.kind !== 'file' || ne.kind !== 'file' || oe.kind !== 'file') return undefined;
  const content = sameContent(ne, oe) || sameContent(be, oe) ? ne : sameContent(be, ne) ? oe : undefined;
  if (content === undefined) return undefined;
  const executable = be.executable === oe.executable ? ne.executable : oe.executable;
  return { ...content, executable };
}

type Entries = Map<string, DirEntry>;

async function byName(store: ObjectReader, tree: Oid): Promise<Entries> {
  return new Map((await listDirectory(store, tree)).map((e) => [e.name, e]));
}

function same(a: DirEntry | undefined, b: DirEntry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return sameContent(a, b) && a.kind === b.kind && a.executable === b.executable;
}

function sameContent(a: DirEntry, b: DirEntry): boolean {
  return a.oid === b.oid && a.chunked === b.chunked && a.size === b.size;
}

/** A directory (not a chunked file, whose tree is its chunks, nor a submodule). */
function isDir(e: DirEntry | undefined): e is DirEntry {
  return e !== undefined && e.kind === 'dir' && !e.chunked;
}

/**
 * `STEM.conflict-TAG.EXT` (an extension kept so that the copy opens as the file does), the stem
 * shortened to fit the name limit. While that is taken: `-HASH` (of the whole name: names that
 * differ only past a shortened stem part there) after the tag, then a counter after that.
 */
export function freeName(name: string, tag: string, taken: ReadonlySet<string>): string {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && [...name.slice(dot)].length <= MAX_EXT_CHARS ? name.slice(dot) : '';
  const stem = ext === '' ? name : name.slice(0, dot);
  const hash = createHash('sha1').update(name).digest('hex').slice(0, 8);
  // Bounded: at most one more than the names taken.
  for (let n = 0; n <= taken.size + 1; n++) {
    const candidate = fitted(stem, `${MARK}${tag}${n === 0 ? '' : `-${hash}`}${n > 1 ? `-${n}` : ''}${ext}`);
    if (!taken.has(candidate)) return candidate;
  }
  throw new Error('unreachable: more candidates than names taken');
}

/** `stem` + `mark`, the stem cut (by whole characters) to keep the name within MAX_NAME_BYTES. */
function fitted(stem: string, mark: string): string {
  const room = MAX_NAME_BYTES - Buffer.byteLength(mark, 'utf8');
  if (Buffer.byteLength(stem, 'utf8') <= room) return stem + mark;
  let cut = '';
  for (const ch of stem) {
    if (Buffer.byteLength(cut + ch, 'utf8') > room) break;
    cut += ch;
  }
  return cut + mark;
}
