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

/**
 * What is left to do, kept on an explicit stack so that no depth of directories nests calls
 * (nested generators overflowed the stack at ~1 500 levels): compare two trees (and, for a
 * directory added or deleted whole, name the directory itself if nothing inside it changed), or
 * yield a change (`unlessSince`: only if no change was yielded since that count).
 */
type Task =
  | { readonly kind: 'walk'; readonly a: Oid | undefined; readonly b: Oid | undefined; readonly prefix: string; readonly empty?: Change }
  | { readonly kind: 'yield'; readonly change: Change; readonly unlessSince?: number };

export async function* diffTrees(store: ObjectReader, a: Oid | undefined, b: Oid | undefined, prefix = ''): AsyncGenerator<Change> {
  const stack: Task[] = [{ kind: 'walk', a, b, prefix }];
  let yielded = 0;
  for (let task = stack.pop(); task !== undefined; task = stack.pop()) {
    if (task.kind === 'yield') {
      if (task.unlessSince !== undefined && task.unlessSince !== yielded) continue;
      yielded++;
      yield task.change;
      continue;
    }
    // Runs after everything the walk finds inside.
    if (task.empty !== undefined) stack.push({ kind: 'yield', change: task.empty, unlessSince: yielded });
    // One at a time: a spread of a directory's 140 000 tasks overflowed the stack too.
    const tasks = await level(store, task.a, task.b, task.prefix);
    for (let i = tasks.length - 1; i >= 0; i--) stack.push(tasks[i] as Task);
  }
}

/** The tasks one directory level makes, in path order. */
async function level(store: ObjectReader, a: Oid | undefined, b: Oid | undefined, prefix: string): Promise<Task[]> {
  if (a === b) return [];
  const before = a === undefined ? [] : await listDirectory(store, a);
  const after = b === undefined ? [] : await listDirectory(store, b);
  const byName = new Map(after.map((e) => [e.name, e]));
  const names = [...new Set([...before.map((e) => e.name), ...after.map((e) => e.name)])].sort();
  const old = new Map(before.map((e) => [e.name, e]));
  const tasks: Task[] = [];
  const change = (c: Change): void => void tasks.push({ kind: 'yield', change: c });
  for (const name of names) {
    const x = old.get(name);
    const y = byName.get(name);
    const path = prefix === '' ? name : `${prefix}/${name}`;
    if (x !== undefined && y !== undefined && x.kind === 'dir' && y.kind === 'dir') {
      tasks.push({ kind: 'walk', a: x.oid, b: y.oid, prefix: path });
    } else if (x === undefined && y !== undefined) {
      // A directory added whole is its files; an empty one (which gitfs stores) is itself a change.
      if (y.kind === 'dir') tasks.push({ kind: 'walk', a: undefined, b: y.oid, prefix: path, empty: { path, kind: 'added', after: y } });
      else change({ path, kind: 'added', after: y });
    } else if (y === undefined && x !== undefined) {
      if (x.kind === 'dir') tasks.push({ kind: 'walk', a: x.oid, b: undefined, prefix: path, empty: { path, kind: 'deleted', before: x } });
      else change({ path, kind: 'deleted', before: x });
    } else if (x !== undefined && y !== undefined) {
      if (x.kind !== y.kind) {
        if (x.kind === 'dir') tasks.push({ kind: 'walk', a: x.oid, b: undefined, prefix: path });
        change({ path, kind: 'type-changed', before: x, after: y });
        if (y.kind === 'dir') tasks.push({ kind: 'walk', a: undefined, b: y.oid, prefix: path });
      } else if (!sameContent(x, y)) {
        change({ path, kind: 'modified', before: x, after: y });
      } else if (x.executable !== y.executable) {
        change({ path, kind: 'mode-changed', before: x, after: y });
      }
    }
  }
  return tasks;
}
