/**
 * Small packs merged into one. Every commit and every fetch adds packs, and a node in service
 * for weeks gathered hundreds: each costs a file descriptor in every process that reads the
 * repository, and every lookup walks them. Once there are `minPacks`, the smaller ones are
 * merged as `git repack --geometric=2` merges them: by size, each pack left must be at least
 * twice all those smaller than it together, so a byte is copied about log2(packs) times in all.
 *
 * Invariants:
 * - the merged pack holds every object of the packs merged (a whole entry is copied as its zlib
 *   stream, after its CRC-32 matched; a delta is resolved and written whole) and is durable and
 *   visible before any of them goes: a crash leaves the objects twice at worst, never once less;
 * - a pack goes index first (readers stop finding it) then pack; a reader holding it open keeps
 *   reading it until its next scan;
 * - git's own packs with a `.keep` beside them and cruft packs (`.mtimes`) are never merged; the
 *   merged pack is a promisor pack if any merged one was (src/repo/partial.ts).
 */
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from '../util/durable.js';
import type { Repository } from './repository.js';

export interface MergeOptions {
  /** Merge once this many packs (that may be merged) are here; at least 2. */
  readonly minPacks: number;
}

export const MERGE_DEFAULTS: MergeOptions = { minPacks: 16 };

/**
 * How many of `sizes` (ascending) to merge so that the packs left, the merged one among them,
 * each hold at least twice all smaller ones together: git's geometric repack with factor 2.
 */
export function geometricSplit(sizes: readonly number[]): number {
  let split = 0;
  for (let i = sizes.length - 1; i >= 1; i--) {
    if ((sizes[i] as number) < 2 * (sizes[i - 1] as number)) {
      split = i + 1;
      break;
    }
  }
  let merged = sizes.slice(0, split).reduce((a, b) => a + b, 0);
  while (split < sizes.length && split > 0 && (sizes[split] as number) < 2 * merged) merged += sizes[split++] as number;
  return split < 2 ? 0 : split;
}

export interface Merged {
  /** Packs merged (0: there were too few). */
  readonly packs: number;
  readonly objects: number;
}

/** Files that may sit beside a pack, removed with it (the index first). */
const PACK_FILES = ['idx', 'pack', 'promisor', 'rev', 'bitmap'] as const;

export async function mergeSmallPacks(repo: Repository, options: MergeOptions = MERGE_DEFAULTS): Promise<Merged> {
  const packDir = join(repo.gitDir, 'objects', 'pack');
  await repo.objects.refresh();
  const beside = (name: string, ext: string): Promise<boolean> => access(join(packDir, `${name}.${ext}`)).then(() => true, () => false);
  const candidates = [];
  for (const p of repo.objects.packs()) if (!p.cruft && !(await beside(p.name, 'keep'))) candidates.push(p);
  if (candidates.length < Math.max(2, options.minPacks)) return { packs: 0, objects: 0 };
  candidates.sort((a, b) => a.size - b.size);
  const small = candidates.slice(0, geometricSplit(candidates.map((p) => p.size)));
  if (small.length === 0) return { packs: 0, objects: 0 };
  let promisor = false;
  for (const p of small) promisor ||= await beside(p.name, 'promisor');
  const writer = await repo.newPackWriter({ rewrite: true, promisor });
  try {
    for (const pack of small) {
      for (const oid of pack.ids()) {
        const obj = await repo.objects.readToServe(oid);
        await (obj.zlib !== undefined ? writer.writeDeflated(oid, obj.type, obj.content.length, obj.zlib) : writer.writeHashed(oid, obj.type, obj.content));
      }
    }
  } catch (e) {
    await writer.abort();
    throw e;
  }
  const finished = await writer.finish();
  const kept = new Set(finished?.names ?? []);
  for (const pack of small) {
    // The same objects may make the same pack again (a merge of what one merge made): it stays.
    if (kept.has(pack.name)) continue;
    for (const ext of PACK_FILES) await rm(join(packDir, `${pack.name}.${ext}`), { force: true });
  }
  await fsyncDir(packDir);
  await repo.objects.refresh();
  return { packs: small.length, objects: finished?.objects ?? 0 };
}
