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
 * - the packs merged are not removed by the merge: the caller removes them (`removePacks`) once
 *   no reader that listed them may still be at work (a git fsck that listed the packs fails on
 *   one that vanished), and leaves them out of later merges until then (`exclude`);
 * - a pack goes index first (readers stop finding it) then pack; a reader holding it open keeps
 *   reading it until its next scan;
 * - git's own packs with a `.keep` beside them, cruft packs (`.mtimes`) and full packs (as many
 *   objects as a pack writer puts in one: merged, they would come out full again, every time)
 *   are never merged; promisor packs (src/repo/partial.ts) are merged among themselves only, so
 *   that no other object becomes a promisor object;
 * - a pack holding an object above the read limit (git wrote it) is not merged: it is named back
 *   as unmergeable, for the caller to exclude from then on;
 * - nothing is merged where git keeps a multi-pack-index (it names packs by position, and would
 *   name removed ones) or `extensions.preciousObjects` is set (no pack may be removed).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, isGitfsError } from '../errors.js';
import type { Oid } from '../objects/oid.js';
import { DEFAULT_OBJECTS_PER_PACK } from '../objects/pack-writer.js';
import { whyPacksStay } from './packs-stay.js';
import { fsyncDir } from '../util/durable.js';
import { liveness, thisProcess } from '../util/proc.js';
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
  /** The base names of the packs merged (none: there were too few), to be removed. */
  readonly merged: readonly string[];
  /** Objects written. */
  readonly objects: number;
  /** Packs found to hold an object above the read limit (git wrote it): never to be merged, so to be excluded from now on. */
  readonly unmergeable: readonly string[];
}

/** Files that may sit beside a pack, removed with it (the index first). */
export const PACK_FILES = ['idx', 'pack', 'promisor', 'rev', 'bitmap'] as const;

/** Merges packs (`exclude`: packs merged already, not removed yet); what was merged, to be removed with `removePacks`. */
export async function mergeSmallPacks(repo: Repository, options: MergeOptions = MERGE_DEFAULTS, exclude: ReadonlySet<string> = new Set()): Promise<Merged> {
  const none: Merged = { merged: [], objects: 0, unmergeable: [] };
  const packDir = join(repo.gitDir, 'objects', 'pack');
  if ((await whyPacksStay(repo.gitDir)) !== undefined) return none;
  await repo.objects.refresh();
  // One listing for what lies beside the packs (read after the refresh: a pack it lists has its files here).
  const present = new Set(await readdir(packDir));
  const groups = { plain: [] as Pack[], promisor: [] as Pack[] };
  for (const p of repo.objects.packs()) {
    if (exclude.has(p.name) || p.cruft || p.count >= DEFAULT_OBJECTS_PER_PACK || present.has(`${p.name}.keep`)) continue;
    groups[present.has(`${p.name}.promisor`) ? 'promisor' : 'plain'].push(p);
  }
  const merged: string[] = [];
  let objects = 0;
  for (const [kind, candidates] of Object.entries(groups)) {
    if (candidates.length < Math.max(2, options.minPacks)) continue;
    candidates.sort((a, b) => a.size - b.size);
    const small = candidates.slice(0, geometricSplit(candidates.map((p) => p.size)));
    if (small.length === 0) continue;
    const written = await copyPacks(repo, small.map((pack) => ({ pack })), kind === 'promisor');
    if ('unmergeable' in written) return { merged, objects, unmergeable: [written.unmergeable] };
    objects += written.objects;
    // The same objects may make the same pack again: it stays.
    merged.push(...small.map((p) => p.name).filter((name) => !written.names.has(name)));
  }
  return { merged, objects, unmergeable: [] };
}

/** Removes packs (merged ones: `Merged.merged`), each index first, then what lies beside it. */
export async function removePacks(repo: Repository, names: readonly string[]): Promise<void> {
  const packDir = join(repo.gitDir, 'objects', 'pack');
  for (const name of names) for (const ext of PACK_FILES) await rm(join(packDir, `${name}.${ext}`), { force: true });
  if (names.length === 0) return;
  await fsyncDir(packDir);
  await repo.objects.refresh();
}

/** How long a temporary pack file must have gone unwritten before it is taken for a killed writer's. */
export const STALE_TEMPORARY_MS = 86_400_000;
/** The same for one whose name says its writer (a gitfs process) is gone: it is then only told from a writer in another pid namespace. */
export const DEAD_WRITER_TEMPORARY_MS = 600_000;

/** A gitfs temporary's writer, from its name (pack-writer.ts). */
const GITFS_TEMPORARY = /^tmp_(?:pack|idx)_gitfs_(\d+)_(\d+)_[0-9a-f]+$/;

/**
 * Removes the temporary pack files (`tmp_*`: gitfs's and git's own) that writers killed mid-pack
 * left, those unwritten for STALE_TEMPORARY_MS (a live writer keeps writing), or for
 * DEAD_WRITER_TEMPORARY_MS when their name says their gitfs writer is gone: an import of a large
 * image or a fetch of a blob in parts killed half way left GiBs that nothing else removes but `git
 * gc`. Returns what went.
 */
export async function removeStaleTemporaries(repo: Repository, nowMs: number): Promise<{ files: number; bytes: number }> {
  const packDir = join(repo.gitDir, 'objects', 'pack');
  let files = 0;
  let bytes = 0;
  for (const name of await readdir(packDir)) {
    if (!name.startsWith('tmp_')) continue;
    const st = await stat(join(packDir, name)).catch(() => undefined);
    if (st === undefined || !st.isFile() || nowMs - st.mtimeMs < (writerGone(name) ? DEAD_WRITER_TEMPORARY_MS : STALE_TEMPORARY_MS)) continue;
    await rm(join(packDir, name), { force: true });
    files++;
    bytes += st.size;
  }
  if (files > 0) await fsyncDir(packDir);
  return { files, bytes };
}

/** Whether the name of a gitfs temporary says its writer is gone (this boot and pid namespace taken for its). */
function writerGone(name: string): boolean {
  const m = GITFS_TEMPORARY.exec(name);
  if (m === null) return false;
  const self = thisProcess();
  return liveness({ pid: Number(m[1]), startTicks: m[2] as string, bootId: self.bootId, pidNs: self.pidNs }) === 'gone';
}

export type Pack = ReturnType<Repository['objects']['packs']>[number];

/**
 * Writes the objects of `sources` (of each pack, those `keep` takes, or all) into new packs; their
 * names and the objects written, or (nothing written) the first pack found to hold an object above
 * the read limit, which is not read whole.
 */
export async function copyPacks(
  repo: Repository,
  sources: ReadonlyArray<{ readonly pack: Pack; readonly keep?: (oid: Oid) => boolean }>,
  promisor: boolean,
): Promise<{ names: ReadonlySet<string>; objects: number } | { unmergeable: string }> {
  const writer = await repo.newPackWriter({ rewrite: true, promisor });
  try {
    for (const { pack, keep } of sources) {
      for (const oid of pack.ids()) {
        if (keep !== undefined && !keep(oid)) continue;
        const obj = await repo.objects.readToServe(oid).catch((e: unknown) => {
          if (isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE)) return pack.name;
          throw e;
        });
        if (typeof obj === 'string') {
          await writer.abort();
          return { unmergeable: obj };
        }
        await (obj.zlib !== undefined ? writer.writeDeflated(oid, obj.type, obj.content.length, obj.zlib) : writer.writeHashed(oid, obj.type, obj.content));
      }
    }
  } catch (e) {
    await writer.abort();
    throw e;
  }
  const finished = await writer.finish();
  return { names: new Set(finished?.names ?? []), objects: finished?.objects ?? 0 };
}
