/**
 * git's caches beside the objects: files git writes to speed its reads, each ending in the SHA-1
 * of all that comes before it: the commit-graph (one file, or a chain of layers in
 * `objects/info/commit-graphs/`), the multi-pack-index and its `.rev` and `.bitmap`, and a pack's
 * `.rev`, `.bitmap` and `.mtimes`. A flipped bit in one fails `git fsck` (which verifies the
 * commit-graph and the multi-pack-index) or has git read wrong answers, while every object is
 * sound. Each is checked by its checksum; a damaged one is moved into `gitfs/damaged/`, and git
 * reads without it, as where it was never written (`git commit-graph write`, `git multi-pack-index
 * write`, a repack write them again); a cruft pack's `.mtimes` is written anew.
 *
 * Invariants: only files of these names are moved; a commit-graph chain goes whole, by one
 * rename of its directory (git never reads some of its layers without the others); memory is one
 * read window.
 */
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { errnoCode, isOperationalError } from '../errors.js';
import { OID_BYTES } from '../objects/oid.js';
import { PackIndex } from '../objects/pack-index.js';
import { writeFileAtomic } from '../util/durable.js';
import { namesIn } from '../util/if-present.js';
import { copyAside, moveAside } from './damaged-dir.js';
import type { LeftOver } from './repair.js';
import type { Repository } from './repository.js';

/** A cache that fails its checksum: its path relative to the git directory, and why. */
export interface DamagedCache {
  readonly path: string;
  readonly why: string;
}

const WINDOW_BYTES = 1 << 20;
/** The caches in `objects/pack/`: of a pack, or of the multi-pack-index. */
const PACK_CACHE_RE = /^(pack-[0-9a-f]{40}\.(rev|bitmap|mtimes)|multi-pack-index|multi-pack-index-[0-9a-f]{40}\.(rev|bitmap))$/;
const GRAPH_LAYER_RE = /^graph-[0-9a-f]{40}\.graph$/;
const MTIMES_RE = /^(pack-[0-9a-f]{40})\.mtimes$/;
const GRAPHS_DIR = join('objects', 'info', 'commit-graphs');

/** Every cache of the repository at `gitDir` that fails its checksum (a chain's layer names the chain's directory); `signal` ends it between reads. */
export async function checkGitCaches(gitDir: string, signal?: AbortSignal): Promise<DamagedCache[]> {
  const paths = [join('objects', 'info', 'commit-graph'), ...(await namesIn(join(gitDir, 'objects', 'pack'))).filter((n) => PACK_CACHE_RE.test(n)).map((n) => join('objects', 'pack', n))];
  const damaged: DamagedCache[] = [];
  for (const path of paths) {
    const why = await checksumFault(join(gitDir, path), signal);
    if (why !== undefined) damaged.push({ path, why });
  }
  const chain = await chainFault(gitDir, signal);
  if (chain !== undefined) damaged.push({ path: GRAPHS_DIR, why: chain });
  return damaged;
}

/**
 * Moves each of `caches` into DAMAGED_DIR, checked again first (git may have written it anew
 * since the scan: one sound now, or gone, is passed); a cruft pack's `.mtimes` is written anew
 * besides, every object's time now (git keeps them a whole expiry longer, and the pack stays a
 * cruft pack). The paths moved; one that cannot be moved adds a line to `left`.
 */
export async function setAsideCaches(repo: Repository, caches: readonly DamagedCache[], left: LeftOver[], signal?: AbortSignal): Promise<string[]> {
  const moved: string[] = [];
  for (const c of caches) {
    try {
      const now = c.path === GRAPHS_DIR ? await chainFault(repo.gitDir, signal) : await checksumFault(join(repo.gitDir, c.path), signal);
      if (now === undefined) continue;
      const name = basename(c.path);
      const mtimes = MTIMES_RE.exec(name);
      const fresh = mtimes === null ? undefined : await freshMtimes(repo, mtimes[1] as string);
      if (fresh !== undefined) {
        // Replaced, never absent a moment: the pack stays a cruft pack through a kill. The damaged one is kept when it reads (a lost sector may be what is wrong with it).
        await copyAside(repo, join(repo.gitDir, c.path), name).catch(() => undefined);
        await writeFileAtomic(join(repo.gitDir, c.path), fresh, 0o444);
      } else if (!(await moveAside(repo, join(repo.gitDir, c.path), name))) continue;
      moved.push(c.path);
    } catch (e) {
      if (signal?.aborted === true || !isOperationalError(e)) throw e;
      left.push({ reason: 'cache-stays', text: `${c.path}: stays (${c.why}): ${(e as Error).message}` });
    }
  }
  if (moved.length > 0) await repo.objects.refresh();
  return moved;
}

/**
 * A cruft pack's `.mtimes` for pack `name` (its index read for its count and checksum), every
 * object's time now: git's layout (gitformat-pack "mtimes"): `MTME`, version 1, hash 1 (SHA-1),
 * a 4-byte time per object in index order, the pack's checksum, the SHA-1 of all before it.
 * Undefined when the index does not read (the pack then counts as an ordinary one).
 */
async function freshMtimes(repo: Repository, name: string): Promise<Buffer | undefined> {
  const idxPath = join(repo.gitDir, 'objects', 'pack', `${name}.idx`);
  let index: PackIndex;
  try {
    index = new PackIndex(await readFile(idxPath), idxPath);
  } catch {
    return undefined;
  }
  const body = Buffer.alloc(12 + 4 * index.count + OID_BYTES);
  body.write('MTME', 0, 'latin1');
  body.writeUInt32BE(1, 4);
  body.writeUInt32BE(1, 8);
  const seconds = Math.floor(repo.clock.now() / 1000) >>> 0;
  for (let i = 0; i < index.count; i++) body.writeUInt32BE(seconds, 12 + 4 * i);
  index.packChecksum.copy(body, 12 + 4 * index.count);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

/** Why a layer of the commit-graph chain fails its checksum, or undefined. */
async function chainFault(gitDir: string, signal: AbortSignal | undefined): Promise<string | undefined> {
  for (const layer of (await namesIn(join(gitDir, GRAPHS_DIR))).filter((n) => GRAPH_LAYER_RE.test(n))) {
    const why = await checksumFault(join(gitDir, GRAPHS_DIR, layer), signal);
    if (why !== undefined) return `its layer ${layer}: ${why}`;
  }
  return undefined;
}

/** Why the file at `path` does not end in the SHA-1 of what precedes it; undefined if it does, or is not there. Bytes that do not read (EIO) are a fault too. */
async function checksumFault(path: string, signal: AbortSignal | undefined): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const size = (await fh.stat()).size;
    if (size < OID_BYTES) return `${size} bytes: shorter than its checksum`;
    const sha = createHash('sha1');
    const window = Buffer.allocUnsafe(Math.min(WINDOW_BYTES, Math.max(size, OID_BYTES)));
    for (let pos = 0; pos < size - OID_BYTES; ) {
      signal?.throwIfAborted();
      const { bytesRead } = await fh.read(window, 0, Math.min(window.length, size - OID_BYTES - pos), pos);
      if (bytesRead === 0) return 'shorter than it was a moment ago';
      sha.update(window.subarray(0, bytesRead));
      pos += bytesRead;
    }
    const trailer = Buffer.alloc(OID_BYTES);
    await fh.read(trailer, 0, OID_BYTES, size - OID_BYTES);
    return sha.digest().equals(trailer) ? undefined : 'its checksum does not match its content';
  } catch (e) {
    if (errnoCode(e) === 'EIO') return `it does not read (${(e as Error).message})`;
    throw e;
  } finally {
    await fh.close();
  }
}
