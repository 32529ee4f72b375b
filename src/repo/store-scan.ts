/**
 * The object store read through for damage (`gitfs fsck`, the daemon's scrub): every pack the
 * database opened, checked against its index as read from disk again (pack-verify.ts: a week-old
 * index in memory would not show damage to the file); every pack it could not open whose index
 * parses (a torn pack: its trailer or size does not match), checked the same way; every pack whose
 * index does not parse, named (repair.ts makes its index again); every loose object hashed; git's
 * caches beside the objects checked by their checksums (git-caches.ts). Memory: a read window,
 * the index of one pack at a time, the damage found.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createInflate } from 'node:zlib';
import { errnoCode, ErrorCodes, isGitfsError } from '../errors.js';
import type { Oid } from '../objects/oid.js';
import { PackIndex } from '../objects/pack-index.js';
import { verifyPack } from '../objects/pack-verify.js';
import { checkGitCaches, type DamagedCache } from './git-caches.js';
import type { Repository } from './repository.js';

/** A pack found damaged: its checksum, and the entries whose CRC-32 failed or could not be read. */
export interface PackDamage {
  readonly name: string;
  readonly checksumOk: boolean;
  readonly damaged: readonly Oid[];
  /** Every id of a pack the database could not open (its trailer or size does not match its index): none of them reads from it. */
  readonly unopened?: readonly Oid[];
  /** Its index does not parse (the pack is not opened, or opened through a copy read earlier), or names an entry the pack cannot hold: the pack cannot be read through by it. */
  readonly indexError?: string;
}

/** What a scan found: damaged packs, loose objects whose file does not hash to their id, and git's caches that fail their checksum. */
export interface StoreDamage {
  readonly packs: readonly PackDamage[];
  readonly loose: readonly Oid[];
  readonly caches: readonly DamagedCache[];
}

/** A pack to read through: its name, its size (0 if it could not be had), and whether the database could not open it. */
export interface ScannedPack {
  readonly name: string;
  readonly size: number;
  readonly unopened: boolean;
}

/** Reads the store through; `signal` ends it between reads. */
export async function scanStore(repo: Repository, signal?: AbortSignal): Promise<StoreDamage> {
  const packs: PackDamage[] = [];
  for (const p of await packsToScan(repo)) {
    const d = await scanPack(repo, p, signal);
    if (d !== undefined) packs.push(d);
  }
  return { packs, loose: await scanLoose(repo, signal), caches: await checkGitCaches(repo.gitDir, signal) };
}

/** Every pack the database opened, then every one it could not open, as they are now. */
export async function packsToScan(repo: Repository): Promise<ScannedPack[]> {
  await repo.objects.refresh();
  const opened = repo.objects.packs().map((p) => ({ name: p.name, size: p.size, unopened: false }));
  const unopened = await Promise.all(
    [...repo.objects.damagedPacks().keys()].map(async (name) => ({ name, size: (await stat(join(repo.gitDir, 'objects', 'pack', `${name}.pack`)).catch(() => undefined))?.size ?? 0, unopened: true })),
  );
  return [...opened, ...unopened];
}

/** Every loose object whose file does not hash to its id. */
export async function scanLoose(repo: Repository, signal?: AbortSignal): Promise<Oid[]> {
  const loose: Oid[] = [];
  for (const oid of await repo.objects.looseIds()) {
    signal?.throwIfAborted();
    if (!(await looseHashes(repo.objects.loosePathOf(oid), oid))) loose.push(oid);
  }
  return loose;
}

/** The damage of pack `p`, or undefined: sound, or gone meanwhile (merged by the daemon). */
export function scanPack(repo: Repository, p: ScannedPack, signal?: AbortSignal): Promise<PackDamage | undefined> {
  return checkPack(join(repo.gitDir, 'objects', 'pack', p.name), p.name, p.unopened, signal);
}

/** The damage of the pack at `base` (`.idx`, `.pack`), or undefined: sound, or gone meanwhile (merged by the daemon). */
async function checkPack(base: string, name: string, unopened: boolean, signal: AbortSignal | undefined): Promise<PackDamage | undefined> {
  let index: PackIndex;
  try {
    index = new PackIndex(await readFile(`${base}.idx`), `${base}.idx`);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    // Its index is made again from the pack (repair.ts), if the pack reads through.
    return { name, checksumOk: false, damaged: [], indexError: (e as Error).message };
  }
  try {
    const c = await verifyPack(`${base}.pack`, index, signal);
    if (c.checksumOk && c.damaged.length === 0) return undefined;
    return unopened ? { name, ...c, unopened: [...index.ids()] } : { name, ...c };
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    if (signal?.aborted === true || !isGitfsError(e, ErrorCodes.CORRUPT_PACK)) throw e;
    return { name, checksumOk: false, damaged: [], indexError: (e as Error).message };
  }
}

/**
 * Whether the loose file at `path` inflates to what hashes to `oid` (streamed: a loose object may
 * be large). One gone meanwhile counts as good; one that does not inflate, or whose sectors do not
 * read (EIO), as damaged; any other failure to read it is thrown (it says nothing of the file).
 */
async function looseHashes(path: string, oid: Oid): Promise<boolean> {
  const sha = createHash('sha1');
  try {
    await pipeline(createReadStream(path), createInflate(), async (source: AsyncIterable<Buffer>) => {
      for await (const piece of source) sha.update(piece);
    });
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT') return true;
    if (code === 'EIO' || code?.startsWith('Z_') === true) return false;
    throw e;
  }
  return sha.digest('hex') === oid;
}
