/**
 * git's `shallow` file: commits whose parents a repository deliberately lacks (a branch kept
 * with limited history). git (fsck, log, gc) treats those commits as roots. gitfs adds the
 * boundary commits of a partial fetch and drops entries whose parents have all arrived since.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import { writeFileAtomic } from '../util/durable.js';

export async function readShallow(gitDir: string): Promise<Set<Oid>> {
  try {
    return new Set((await readFile(join(gitDir, 'shallow'), 'utf8')).split('\n').filter(isOid));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return new Set();
    throw e;
  }
}

/** Adds `boundary`, then keeps only entries for which `parentsMissing` holds. */
export async function updateShallow(gitDir: string, boundary: readonly Oid[], parentsMissing: (oid: Oid) => Promise<boolean>): Promise<void> {
  const current = await readShallow(gitDir);
  const next = new Set<Oid>();
  for (const oid of new Set([...current, ...boundary])) if (await parentsMissing(oid)) next.add(oid);
  if (next.size === current.size && [...next].every((o) => current.has(o))) return;
  await writeFileAtomic(join(gitDir, 'shallow'), [...next].sort().map((o) => `${o}\n`).join(''));
}
