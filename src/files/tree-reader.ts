/**
 * Reading gitfs's file-system view out of tree objects: directory listings and path lookup.
 * Everything here reads trees only, never blob or chunk content.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { decodeCommit, type Commit } from '../objects/commit.js';
import { fromTreeEntries, type DirEntry } from '../objects/entry-names.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import { decodeTree } from '../objects/tree.js';
import { readTyped } from '../objects/typed-read.js';

/** The root of a commit's tree, as a directory entry. */
export function rootEntry(tree: Oid): DirEntry {
  return { name: '', kind: 'dir', executable: false, oid: tree, chunked: false };
}

export async function readCommit(store: ObjectReader, oid: Oid): Promise<Commit> {
  return decodeCommit(await readTyped(store, oid, 'commit'), oid);
}

export async function listDirectory(store: ObjectReader, tree: Oid): Promise<DirEntry[]> {
  return fromTreeEntries(decodeTree(await readTyped(store, tree, 'tree'), tree), tree);
}

/** Splits a repository path (`a/b/c`, leading/trailing slashes ignored); `.` and `..` are refused. */
export function splitPath(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `path ${JSON.stringify(path)} must not contain ..`);
  return parts;
}

/** Finds the entry at `path` below the directory `root`. */
export async function lookupPath(store: ObjectReader, root: DirEntry, path: string): Promise<DirEntry> {
  let node = root;
  const parts = splitPath(path);
  for (let i = 0; i < parts.length; i++) {
    if (node.kind !== 'dir') break;
    const name = parts[i] as string;
    const next = (await listDirectory(store, node.oid)).find((e) => e.name === name);
    if (next === undefined) break;
    node = { ...next, name: parts.slice(0, i + 1).join('/') };
    if (i === parts.length - 1) return node;
  }
  if (parts.length === 0) return root;
  throw new GitfsError(ErrorCodes.PATH_NOT_FOUND, `no such path: ${path}`, { path });
}
