/**
 * The agent's refs for a channel: `refs/gitfs/pending/<channel>` (the release being verified,
 * applied or checked) and `refs/gitfs/blessed/<channel>` (the release that passed its health
 * check here). Plain loose refs, replaced atomically (write, fsync, rename); git sees them as
 * refs, so what they name is kept by `git gc` and checked by `git fsck`.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BranchName } from '../branches/ref-name.js';
import { errnoCode } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import { writeFileAtomic } from '../util/durable.js';

export type ReleaseRef = 'pending' | 'blessed';

export function releaseRefPath(gitDir: string, ref: ReleaseRef, channel: BranchName): string {
  return join(gitDir, 'refs', 'gitfs', ref, channel);
}

export async function readReleaseRef(gitDir: string, ref: ReleaseRef, channel: BranchName): Promise<Oid | undefined> {
  try {
    const text = (await readFile(releaseRefPath(gitDir, ref, channel), 'utf8')).trim();
    return isOid(text) ? text : undefined;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** Points the ref at `commit`, or removes it (null). */
export async function setReleaseRef(gitDir: string, ref: ReleaseRef, channel: BranchName, commit: Oid | null): Promise<void> {
  const path = releaseRefPath(gitDir, ref, channel);
  if (commit === null) return rm(path, { force: true });
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, `${commit}\n`);
}
