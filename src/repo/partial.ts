/**
 * A partial repository, in git's own terms (partial clone): a node that keeps a branch
 * `fetch: on-demand` holds its commits and trees, and its blobs only once something reads
 * them. Git accepts such a repository when its config names a promisor remote
 * (`extensions.partialClone`, which needs `core.repositoryformatversion = 1`) and the packs
 * holding the trees are promisor packs (a `pack-*.promisor` file beside the pack): `git fsck
 * --strict` then passes over the blobs those trees name and this repository lacks. The remote,
 * `gitfs`, has no URL: git cannot fetch from it (`git cat-file` of an absent blob fails; gitfs
 * reads go through the node daemon). docs/FORMAT.md "Partial repositories".
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireWaiting } from '../branches/lock-file.js';
import type { Clock } from '../util/clock.js';
import { parseGitConfig } from './git-config.js';

export const PROMISOR_REMOTE = 'gitfs';

/** Whether the config at `gitDir` already makes the repository partial. */
export async function isPartial(gitDir: string): Promise<boolean> {
  const path = join(gitDir, 'config');
  return parseGitConfig(await readFile(path, 'utf8'), path).get('extensions.partialclone') === PROMISOR_REMOTE;
}

/**
 * Makes the repository partial (idempotent): the config is read and replaced under
 * `config.lock`, as `git config` does, so that neither loses the other's change.
 */
export async function markPartial(gitDir: string, clock: Clock): Promise<void> {
  if (await isPartial(gitDir)) return;
  const path = join(gitDir, 'config');
  const lock = await acquireWaiting(path, { clock, waitMs: CONFIG_LOCK_WAIT_MS });
  try {
    const text = await readFile(path, 'utf8');
    if (parseGitConfig(text, path).get('extensions.partialclone') === PROMISOR_REMOTE) return;
    const raised = text.replace(/^(\s*repositoryformatversion\s*=\s*)0\s*$/m, '$11');
    await lock.write(`${raised.endsWith('\n') ? raised : `${raised}\n`}[extensions]\n\tpartialClone = ${PROMISOR_REMOTE}\n[remote "${PROMISOR_REMOTE}"]\n\tpromisor = true\n`);
    await lock.commit();
  } finally {
    await lock.release();
  }
}

/** How long a write of the config waits for another writer's lock (`git config` holds it for moments). */
const CONFIG_LOCK_WAIT_MS = 5_000;
