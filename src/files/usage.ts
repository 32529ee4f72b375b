/**
 * Logical versus stored bytes: what every version of every branch would cost as a full copy,
 * against what the repository holds on disk. Tree sizes are memoised by tree id, so shared
 * subtrees are counted without being walked twice; file sizes come from tree entries (chunked
 * files) or object headers (blobs), never from content. A submodule (gitlink) counts nothing:
 * its content is another repository's.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Oid } from '../objects/oid.js';
import type { Repository } from '../repo/repository.js';
import { readShallow } from '../branches/shallow.js';
import { history } from './history.js';
import { listDirectory } from './tree-reader.js';

export interface Usage {
  branches: number;
  /** Distinct commits the branches hold (one two branches share counts once, as `git rev-list --branches --count`). */
  commits: number;
  /** Sum over every commit of every branch of the bytes of all its files. */
  logicalBytes: number;
  /** The same for branch heads only. */
  headBytes: number;
  /** Bytes of everything under objects/ (packs, indexes, loose objects). */
  storedBytes: number;
}

export async function measureUsage(repo: Repository): Promise<Usage> {
  const treeSizes = new Map<Oid, number>();
  const treeSize = async (tree: Oid): Promise<number> => {
    const known = treeSizes.get(tree);
    if (known !== undefined) return known;
    let total = 0;
    for (const e of await listDirectory(repo.objects, tree)) {
      if (e.kind === 'dir') total += await treeSize(e.oid);
      else if (e.kind !== 'gitlink') total += e.size ?? (await repo.objects.sizeOf(e.oid));
    }
    treeSizes.set(tree, total);
    return total;
  };
  const branches = await repo.refs.list();
  const usage: Usage = { branches: branches.length, commits: 0, logicalBytes: 0, headBytes: 0, storedBytes: await directoryBytes(join(repo.gitDir, 'objects')) };
  const shallow = await readShallow(repo.gitDir);
  const seen = new Set<Oid>();
  for (const b of branches) {
    let head = true;
    for await (const { oid, commit } of history(repo.objects, [b.oid], { shallow })) {
      const size = await treeSize(commit.tree);
      if (!seen.has(oid)) usage.commits++;
      seen.add(oid);
      usage.logicalBytes += size;
      if (head) usage.headBytes += size;
      head = false;
    }
  }
  return usage;
}

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += await directoryBytes(path);
    else if (e.isFile()) total += (await stat(path)).size;
  }
  return total;
}
