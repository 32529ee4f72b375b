/**
 * gitfs's own refs, one of each kind per branch: `refs/gitfs/pending/<channel>` (the release
 * being verified, applied or checked) and `refs/gitfs/blessed/<channel>` (the release that
 * passed its health check here), kept by the rollout agent; `refs/gitfs/work/<branch>` (the
 * commit uncommitted changes of a branch were made over), kept by the working layers. Refs as
 * git keeps them, so what they name is kept by `git gc` and checked by
 * `git fsck`, and by git's rules: written under `<ref>.lock` (git skips lock files; a temporary
 * file of any other name under refs/ is a ref to git, an empty one breaks fsck and gc), read
 * from the loose file or else from packed-refs (where `git gc` and `git pack-refs` move them),
 * and removed from both.
 */
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BranchName } from './ref-name.js';
import { acquireWaiting } from './lock-file.js';
import { deletePackedRef, readPackedRefs } from './packed-refs.js';
import { removeEmptyDirTree, removeEmptyParents } from './ref-dirs.js';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import type { Clock } from '../util/clock.js';
import { fsyncDir, removeLeftTemporaries } from '../util/durable.js';

export type GitfsRef = 'pending' | 'blessed' | 'previous' | 'work';

/** How long a write waits for another writer's lock (`<ref>.lock`; a `git pack-refs` holds packed-refs.lock for moments). */
const LOCK_WAIT_MS = 5_000;

export function gitfsRefName(ref: GitfsRef, channel: BranchName): string {
  return `refs/gitfs/${ref}/${channel}`;
}

export function gitfsRefPath(gitDir: string, ref: GitfsRef, channel: BranchName): string {
  return join(gitDir, gitfsRefName(ref, channel));
}

export async function readGitfsRef(gitDir: string, ref: GitfsRef, channel: BranchName): Promise<Oid | undefined> {
  let text: string;
  try {
    text = (await readFile(gitfsRefPath(gitDir, ref, channel), 'utf8')).trim();
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
    const name = gitfsRefName(ref, channel);
    return (await readPackedRefs(gitDir)).refs.find((r) => r.ref === name)?.oid;
  }
  return isOid(text) ? text : undefined;
}

/** Points the ref at `commit`, or removes it (null) from the loose file and packed-refs. */
export async function setGitfsRef(gitDir: string, ref: GitfsRef, channel: BranchName, commit: Oid | null, clock: Clock): Promise<void> {
  const path = gitfsRefPath(gitDir, ref, channel);
  const lock = await acquireWaiting(path, { clock, createParents: true, waitMs: LOCK_WAIT_MS });
  try {
    if (commit !== null) {
      // The empty directory of a ref `<channel>/…` removed before (one holding a ref cannot be: git's refs forbid both).
      if (!(await removeEmptyDirTree(path))) throw new GitfsError(ErrorCodes.REF_CONFLICT, `${gitfsRefName(ref, channel)} cannot be written: a ref below it is in the way`, { ref: gitfsRefName(ref, channel) });
      await lock.write(`${commit}\n`);
      await lock.commit();
      return;
    }
    // The packed entry first: a crash between the two leaves the loose file, never an older value.
    await deletePackedRef(gitDir, gitfsRefName(ref, channel), { clock, waitMs: LOCK_WAIT_MS });
    await rm(path, { force: true });
    await fsyncDir(dirname(path));
  } finally {
    await lock.release();
  }
  // Once the lock is gone from it, the directory the ref was in, if nothing else is.
  await removeEmptyParents(dirname(path), join(gitDir, 'refs', 'gitfs', ref));
}

/**
 * Removes what an earlier version left under refs/ when killed while replacing a release ref:
 * `<ref>.tmp-<12 hex digits>` files, refs to git (an empty one fails git fsck and git gc).
 */
export async function removeStaleTemporaries(gitDir: string, ref: GitfsRef, channel: BranchName): Promise<void> {
  await removeLeftTemporaries(gitfsRefPath(gitDir, ref, channel));
}
