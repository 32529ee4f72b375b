/**
 * `packed-refs`, the file `git pack-refs` / `git gc` moves loose refs into:
 *
 *     # pack-refs with: peeled fully-peeled sorted
 *     <oid> <refname>
 *     ^<oid>            (optional: what the annotated tag on the line above peels to)
 *
 * A loose ref file always wins over a packed entry of the same name. gitfs only ever reads this file
 * and removes entries from it (to delete a branch git packed); it never adds entries. Removal is
 * done under `packed-refs.lock` with the lock-file protocol, keeping every other line byte for
 * byte (so the `sorted` trait stays true), and refuses to rewrite a file it cannot parse.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import { acquireWaiting, type LockOptions } from './lock-file.js';

export const PACKED_REFS_FILE = 'packed-refs';
const HEADER_PREFIX = '# pack-refs with:';
const CONTROL_OR_SPACE_RE = /[\x00-\x20\x7f]/;

export interface PackedRef {
  /** Full ref name, e.g. `refs/heads/main`. */
  readonly ref: string;
  readonly oid: Oid;
  /** For annotated tags: the object the tag peels to. */
  readonly peeled?: Oid;
}

export interface PackedRefs {
  /** The header line without its newline, if present. */
  readonly header: string | undefined;
  /** Entries in file order. */
  readonly refs: readonly PackedRef[];
}

const EMPTY: PackedRefs = { header: undefined, refs: [] };

/** Parses packed-refs text. Throws GITFS_IO on any line git would not write. */
export function parsePackedRefs(text: string, source = PACKED_REFS_FILE): PackedRefs {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let header: string | undefined;
  const refs: Array<{ ref: string; oid: Oid; peeled?: Oid }> = [];
  lines.forEach((line, i) => {
    if (i === 0 && line.startsWith(HEADER_PREFIX)) {
      header = line;
      return;
    }
    if (line.startsWith('^')) {
      const peeled = line.slice(1);
      const last = refs[refs.length - 1];
      if (!isOid(peeled) || last === undefined || last.peeled !== undefined) throw corrupt(source, i, line);
      last.peeled = peeled;
      return;
    }
    const oid = line.slice(0, 40);
    const ref = line.slice(41);
    if (!isOid(oid) || line[40] !== ' ' || ref.length === 0 || CONTROL_OR_SPACE_RE.test(ref)) throw corrupt(source, i, line);
    refs.push({ ref, oid });
  });
  return { header, refs };
}

/**
 * The packed-refs bytes without the entry for `ref` (and its peeled line), every other byte kept;
 * undefined if `ref` is not in it. Validates the whole file first. Works on bytes (latin1 text) so
 * that ref names which are not UTF-8 survive the rewrite unchanged.
 */
export function removeFromPackedRefs(bytes: Uint8Array, ref: string, source = PACKED_REFS_FILE): Buffer | undefined {
  const text = Buffer.from(bytes).toString('latin1');
  parsePackedRefs(text, source);
  const target = Buffer.from(ref, 'utf8').toString('latin1');
  const out: string[] = [];
  let removed = false;
  let skippingPeel = false;
  for (const line of text.split('\n')) {
    if (skippingPeel && line.startsWith('^')) continue;
    skippingPeel = false;
    if (line.length === 41 + target.length && line[40] === ' ' && line.endsWith(target) && isOid(line.slice(0, 40))) {
      removed = true;
      skippingPeel = true;
      continue;
    }
    out.push(line);
  }
  return removed ? Buffer.from(out.join('\n'), 'latin1') : undefined;
}

/** Reads `<gitDir>/packed-refs`; a missing file is an empty one. */
export async function readPackedRefs(gitDir: string): Promise<PackedRefs> {
  const path = join(gitDir, PACKED_REFS_FILE);
  const bytes = await readIfExists(path);
  return bytes === undefined ? EMPTY : parsePackedRefs(bytes.toString('utf8'), path);
}

/**
 * Removes `ref` from `<gitDir>/packed-refs` under `packed-refs.lock`. Returns whether it was there.
 * Throws GITFS_REF_CONFLICT if another writer (e.g. `git pack-refs`) holds the lock, after
 * waiting `waitMs` for it to let go (default: not at all).
 */
export async function deletePackedRef(gitDir: string, ref: string, lockOptions: LockOptions & { readonly waitMs?: number }): Promise<boolean> {
  const path = join(gitDir, PACKED_REFS_FILE);
  const lock = await acquireWaiting(path, { ...lockOptions, createParents: false, waitMs: lockOptions.waitMs ?? 0 });
  try {
    const bytes = await readIfExists(path);
    const next = bytes === undefined ? undefined : removeFromPackedRefs(bytes, ref, path);
    if (next === undefined) return false;
    await lock.write(next);
    await lock.commit();
    return true;
  } finally {
    await lock.release();
  }
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw new GitfsError(ErrorCodes.IO, `cannot read ${path}: ${errnoCode(e) ?? String(e)}`, { path, errno: errnoCode(e) }, { cause: e });
  }
}

function corrupt(source: string, index: number, line: string): GitfsError {
  return new GitfsError(ErrorCodes.IO, `${source}:${index + 1}: unexpected line ${JSON.stringify(line.slice(0, 100))}`, {
    path: source,
    line: index + 1,
  });
}
