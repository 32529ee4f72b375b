/**
 * The working layer's vocabulary: what one path of a branch's uncommitted state says.
 *
 * A working layer is a map from paths (relative to the branch root, `a/b/c`, no leading slash)
 * to entries, laid over the base commit's tree like an overlay file system. A path with no
 * entry shows whatever the lower tree has there. Entries are absolute: each says what the path
 * is now, never a delta, so the same entries can be laid over a newer commit when the branch
 * moved (docs/FORMAT.md, "Working layer").
 */
import { isOid, type Oid } from '../objects/oid.js';

export type OverlayEntry =
  /** Deleted: the lower tree's entry at this path is hidden. */
  | { readonly t: 'wh' }
  /**
   * A directory. `lower` is what it merges with: `inherit` = the lower tree's directory at the
   * same path (if any), an id = that tree (a directory renamed here), null = nothing (new).
   */
  | { readonly t: 'dir'; readonly lower: 'inherit' | Oid | null; readonly mode: number; readonly mtime: number }
  /** A regular file whose content, size, mode and times live in the data file `data`. */
  | { readonly t: 'file'; readonly data: string }
  /** A regular file with committed content (moved, or only its mode or time changed). */
  | { readonly t: 'gitfile'; readonly oid: Oid; readonly chunked: boolean; readonly size: number; readonly executable: boolean; readonly mtime: number }
  /** A symbolic link. */
  | { readonly t: 'link'; readonly target: string; readonly mtime: number };

export const DIR_MODE = 0o755;

/** A data file's name (WorkStore.newDataId): 24 hex digits, so an entry never names a file outside the data directory. */
export const DATA_ID = /^[0-9a-f]{24}$/;

/** Whether `v`, read back from the store, is an entry as the layers write them (a damaged one is not trusted: its data name could lead anywhere). */
export function isOverlayEntry(v: unknown): v is OverlayEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  const time = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x);
  switch (e['t']) {
    case 'wh':
      return true;
    case 'dir':
      return (e['lower'] === 'inherit' || e['lower'] === null || isOid(e['lower'])) && Number.isInteger(e['mode']) && time(e['mtime']);
    case 'file':
      return typeof e['data'] === 'string' && DATA_ID.test(e['data']);
    case 'gitfile':
      return isOid(e['oid']) && typeof e['chunked'] === 'boolean' && Number.isSafeInteger(e['size']) && (e['size'] as number) >= 0 && typeof e['executable'] === 'boolean' && time(e['mtime']);
    case 'link':
      return typeof e['target'] === 'string' && time(e['mtime']);
    default:
      return false;
  }
}

/** `a/b/c` → `a/b`; a top-level name → ''. */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function childPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** True when `path` is `dir` itself or lies below it. */
export function isWithin(path: string, dir: string): boolean {
  return dir === '' || path === dir || path.startsWith(`${dir}/`);
}

/** `a/b/c` → ['a', 'a/b']: the directories that must exist for the path to. */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}
