/**
 * `gitfs/unhad`: objects a repair found damaged here and could have from nowhere (`no-good-copy`),
 * one id a line. A writer offered such an object writes it again (Repository.newPackWriter)
 * instead of deduplicating against the damaged copy, so committing the file again (a commit, a
 * publish) supplies the good copy: reads take it at once (a damaged copy is skipped for a good
 * one), and the next repair (`gitfs fsck --repair`, the scrub) rewrites the damaged pack from it.
 * (A fetch does not: the swarm asks for what it lacks, and the repair asks the peers itself.) An
 * object above the read limit is never listed: a repair reads no copy of it here (only a peer's
 * mends it), so writing it again would mend nothing.
 *
 * Invariants:
 * - written only by a repair, which holds the prune lock (one at a time), and replaced whole
 *   (writeFileAtomic); absent when nothing is listed;
 * - a repair lists what it could not have, and keeps of the ids listed before those that still do
 *   not read (a scrub's repair sees only the packs of its step); at most UNHAD_MAX ids, this
 *   repair's first;
 * - read as a set of well-formed ids: a line that is not one is passed (the file is a hint, never
 *   trusted for more than writing an object again).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isOid, type Oid } from '../objects/oid.js';
import { removeLeftTemporaries, writeFileAtomic } from '../util/durable.js';
import { textOf } from '../util/if-present.js';

/** Ids kept at most (~2.7 MiB): a disk that lost more needs its peers, not a list. */
export const UNHAD_MAX = 65_536;

export function unhadPath(gitDir: string): string {
  return join(gitDir, 'gitfs', 'unhad');
}

/** The ids listed (none when the file is absent). */
export async function readUnhad(gitDir: string): Promise<ReadonlySet<Oid>> {
  const text = await textOf(unhadPath(gitDir));
  return new Set((text ?? '').split('\n').filter(isOid));
}

/**
 * Lists `found` (what this repair could not have) and, of what was listed before, what
 * `stillUnread` keeps (the ids that still do not read).
 */
export async function recordUnhad(gitDir: string, found: ReadonlySet<Oid>, stillUnread: (oids: readonly Oid[]) => Promise<readonly Oid[]>): Promise<void> {
  const before = [...(await readUnhad(gitDir))].filter((oid) => !found.has(oid));
  const listed = [...found, ...(before.length === 0 ? [] : await stillUnread(before))].slice(0, UNHAD_MAX);
  // The only writer (under the prune lock): what a killed one left beside the file goes.
  await removeLeftTemporaries(unhadPath(gitDir));
  if (listed.length === 0) return rm(unhadPath(gitDir), { force: true });
  await writeFileAtomic(unhadPath(gitDir), `${listed.join('\n')}\n`);
}
