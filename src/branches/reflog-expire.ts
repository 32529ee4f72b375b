/**
 * Reflog entries that name pruned commits, dropped before the commits go (src/repo/prune.ts):
 * `git fsck` checks both ids of every entry, and one naming an absent commit is an error. As
 * `git reflog expire` does, the ref's lock is held meanwhile (every writer appends to the reflog
 * under it), and the reflog is replaced whole under its own lock.
 *
 * Invariants:
 * - an entry whose new id is not kept is dropped; an old id not kept becomes the null id (the
 *   entry stays: the ref still moved to its new id then);
 * - every other byte stays as it was, lines git would skip as unreadable and a torn last line
 *   included;
 * - nothing is written when nothing changes.
 */
import { readFile } from 'node:fs/promises';
import { errnoCode } from '../errors.js';
import type { Oid } from '../objects/oid.js';
import type { Clock } from '../util/clock.js';
import { refPath, reflogPath } from './all-refs.js';
import { acquireWaiting } from './lock-file.js';

const NULL_OID = '0'.repeat(40);
/** A ref or reflog lock is held for moments by each writer. */
const LOCK_WAIT_MS = 10_000;

/**
 * Drops the entries among the first `upTo` bytes of `ref`'s reflog that `keep` refuses (what was
 * appended since names commits `keep` was not made for); how many were dropped.
 */
export async function expireReflog(gitDir: string, ref: string, keep: (oid: Oid) => boolean, clock: Clock, upTo: number): Promise<number> {
  const refLock = await acquireWaiting(refPath(gitDir, ref), { clock, waitMs: LOCK_WAIT_MS, createParents: true });
  try {
    const path = reflogPath(gitDir, ref);
    let text: string;
    try {
      // latin1: every byte read back as it was, whatever a message's encoding.
      text = await readFile(path, 'latin1');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return 0;
      throw e;
    }
    // Up to the end of the last whole line within `upTo`.
    const judged = text.slice(0, text.lastIndexOf('\n', upTo - 1) + 1);
    const { lines, dropped, changed } = expiredLines(judged.split('\n'), keep);
    if (!changed) return 0;
    const logLock = await acquireWaiting(path, { clock, waitMs: LOCK_WAIT_MS });
    try {
      await logLock.write(Buffer.from(lines.join('\n') + text.slice(judged.length), 'latin1'));
      await logLock.commit();
    } finally {
      await logLock.release();
    }
    return dropped;
  } finally {
    await refLock.release();
  }
}

/** The reflog's lines (split at LF: the last is what follows the last LF) with `keep` applied. */
export function expiredLines(lines: readonly string[], keep: (oid: Oid) => boolean): { lines: string[]; dropped: number; changed: boolean } {
  const out: string[] = [];
  let dropped = 0;
  let changed = false;
  const kept = (oid: string): boolean => oid === NULL_OID || keep(oid as Oid);
  lines.forEach((line, i) => {
    // A torn last line, or one git would skip, is left as it is.
    if (i === lines.length - 1 || !/^[0-9a-f]{40} [0-9a-f]{40} /.test(line)) return void out.push(line);
    if (!kept(line.slice(41, 81))) {
      dropped++;
      changed = true;
      return;
    }
    if (kept(line.slice(0, 40))) return void out.push(line);
    changed = true;
    out.push(NULL_OID + line.slice(40));
  });
  return { lines: out, dropped, changed };
}
