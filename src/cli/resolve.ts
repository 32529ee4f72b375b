import { resolveRevision, splitRevPath } from '../branches/revision.js';
import type { DirEntry } from '../objects/entry-names.js';
import type { Oid } from '../objects/oid.js';
import { lookupPath, readCommit, rootEntry } from '../files/tree-reader.js';
import type { Repository } from '../repo/repository.js';

/** `REV[:path]` → the commit and the entry at the path (the root directory if none). */
export async function resolveEntry(repo: Repository, expr: string): Promise<{ commit: Oid; entry: DirEntry }> {
  const [rev, path] = splitRevPath(expr);
  const commit = await resolveRevision(repo, rev);
  const { tree } = await readCommit(repo.objects, commit);
  return { commit, entry: await lookupPath(repo.objects, rootEntry(tree), path) };
}
