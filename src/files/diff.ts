/**
 * Changed paths between two trees, by tree comparison: subtrees with equal ids are skipped
 * without being read, and chunked files compare by chunk-tree id (never by content). A
 * directory added or deleted is its files; an empty one (which gitfs stores) is itself a change.
 */
import type { DirEntry } from '../objects/entry-names.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import { listDirectory } from './tree-reader.js';

export type ChangeKind = 'added' | 'deleted' | 'modified' | 'type-changed' | 'mode-changed';

export interface Change {
  readonly path: string;
  readonly kind: ChangeKind;
  readonly before?: DirEntry;
  readonly after?: DirEntry;
}

function sameContent(a: DirEntry, b: DirEntry): boolean {
  return a.oid === b.oid && a.chunked === b.chunked && a.size === b.size;
}

export async function* diffTrees(store: ObjectReader, a: Oid | undefined, b: Oid | undefined, prefix = ''): AsyncGenerator<Change> {
  if (a === b) return;
  const before = a === undefined ? [] : await listDirectory(store, a);
  const after = b === undefined ? [] : await listDirectory(store, b);
  const byName = new Map(after.map((e) => [e.name, e]));
  const names = [...new Set([...before.map((e) => e.name), ...after.map((e) => e.name)])].sort();
  const old = new Map(before.map((e) => [e.name, e]));
  for (const name of names) {
    const x = old.get(name);
    const y = byName.get(name);
    const path = prefix === '' ? name : `${prefix}/${name}`;
    if (x !== undefined && y !== undefined && x.kind === 'dir' && y.kind === 'dir') {
      yield* diffTrees(store, x.oid, y.oid, path);
    } else if (x === undefined && y !== undefined) {
      if (y.kind === 'dir') yield* wholeDir(store, undefined, y, path);
      else yield { path, kind: 'added', after: y };
    } else if (y === undefined && x !== undefined) {
      if (x.kind === 'dir') yield* wholeDir(store, x, undefined, path);
      else yield { path, kind: 'deleted', before: x };
    } else if (x !== undefined && y !== undefined) {
      if (x.kind !== y.kind) {
        if (x.kind === 'dir') yield* diffTrees(store, x.oid, undefined, path);
        yield { path, kind: 'type-changed', before: x, after: y };
        if (y.kind === 'dir') yield* diffTrees(store, undefined, y.oid, path);
      } else if (!sameContent(x, y)) {
        yield { path, kind: 'modified', before: x, after: y };
      } else if (x.executable !== y.executable) {
        yield { path, kind: 'mode-changed', before: x, after: y };
      }
    }
  }
}

/** A directory added or deleted whole: the changes inside it, or, for an empty one, the directory itself. */
async function* wholeDir(store: ObjectReader, before: DirEntry | undefined, after: DirEntry | undefined, path: string): AsyncGenerator<Change> {
  let inside = false;
  for await (const change of diffTrees(store, before?.oid, after?.oid, path)) {
    inside = true;
    yield change;
  }
  if (!inside) yield after !== undefined ? { path, kind: 'added', after } : { path, kind: 'deleted', ...(before === undefined ? {} : { before }) };
}
