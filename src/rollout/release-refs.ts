/**
 * The agent's refs for a channel: `refs/gitfs/pending/<channel>` (the release being verified,
 * applied or checked) and `refs/gitfs/blessed/<channel>` (the release that passed its health
 * check here). Refs as git keeps them, so what they name is kept by `git gc` and checked by
 * `git fsck`, and by git's rules: written under `<ref>.lock` (git skips lock files; a temporary
 * file of any other name under refs/ is a ref to git, an empty one breaks fsck and gc), read
 * from the loose file or else from packed-refs (where `git gc` and `git pack-refs` move them),
 * and removed from both.
 */
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BranchName } from '../branches/ref-name.js';
import { acquireWaiting } from '../branches/lock-file.js';
import { deletePackedRef, readPackedRefs } from '../branches/packed-refs.js';
import { errnoCode } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import type { Clock } from '../util/clock.js';
import { fsyncDir, removeLeftTemporaries } from '../util/durable.js';

export type ReleaseRef = 'pending' | 'blessed';

/** How long a write waits for another writer's lock (`<ref>.lock`; a `git pack-refs` holds packed-refs.lock for moments). */
const LOCK_WAIT_MS = 5_000;

export function releaseRefName(ref: ReleaseRef, channel: BranchName): string {
  return `refs/gitfs/${ref}/${channel}`;
}

export function releaseRefPath(gitDir: string, ref: ReleaseRef, channel: BranchName): string {
  return join(gitDir, releaseRefName(ref, channel));
}

export async function readReleaseRef(gitDir: string, ref: ReleaseRef, channel: BranchName): Promise<Oid | undefined> {
  let text: string;
  try {
    text = (await readFile(releaseRefPath(gitDir, ref, channel), 'utf8')).trim();
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
    const name = releaseRefName(ref, channel);
    return (await readPackedRefs(gitDir)).refs.find((r) => r.ref === name)?.oid;
  }
  return isOid(text) ? text : undefined;
}

/** Points the ref at `commit`, or removes it (null) from the loose file and packed-refs. */
export async function setReleaseRef(gitDir: string, ref: ReleaseRef, channel: BranchName, commit: Oid | null, clock: Clock): Promise<void> {
  const path = releaseRefPath(gitDir, ref, channel);
  const lock = await acquireWaiting(path, { clock, createParents: true, waitMs: LOCK_WAIT_MS });
  try {
    if (commit !== null) {
      await lock.write(`${commit}\n`);
      await lock.commit();
      return;
    }
    // The packed entry first: a crash between the two leaves the loose file, never an older value.
    await deletePackedRef(gitDir, releaseRefName(ref, channel), { clock, waitMs: LOCK_WAIT_MS });
    await rm(path, { force: true });
    await fsyncDir(dirname(path));
  } finally {
    await lock.release();
  }
}

/**
 * Removes what an earlier version left under refs/ when killed while replacing a release ref:
 * `<ref>.tmp-<12 hex digits>` files, refs to git (an empty one fails git fsck and git gc).
 */
export async function removeStaleTemporaries(gitDir: string, ref: ReleaseRef, channel: BranchName): Promise<void> {
  await removeLeftTemporaries(releaseRefPath(gitDir, ref, channel));
}
