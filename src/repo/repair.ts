/**
 * Self-healing: a repository with damaged objects made whole again. git's caches that fail their
 * checksum are moved into `gitfs/damaged/` (git-caches.ts: git reads without them). A pack whose
 * index the disk damaged (no reader opens it) gets its index made again from the pack, if the
 * pack reads through (pack-reindex.ts; the damaged index is kept in `gitfs/damaged/`). Then what
 * store-scan.ts found (the damaged entries of packs, packs no reader opens, damaged loose files)
 * and the objects fsck could not read are read again here (another pack may hold a good copy; a
 * damaged pack still gives its whole entries, and a delta on a damaged base resolved against the
 * base's good copy) or got from a supplier
 * (the node daemon, or the swarm in the daemon's scrub, which ask peers), each hash-checked, and
 * written into a new pack. Then the rest of every damaged pack is copied into another new pack,
 * and the damaged pack, like each damaged loose file, is moved into `gitfs/damaged/`
 * (damaged-dir.ts), so that `git fsck` is clean and an operator can still look at what the disk did.
 *
 * Invariants:
 * - nothing readable is lost: a damaged pack is moved only once new packs holding a good copy of
 *   every one of its objects are durable and visible; a pack one of whose objects cannot be had
 *   from anywhere stays where it is, and is reported; a new pack that bears a damaged pack's name
 *   (the same objects written the same way: pack names are their checksum) has replaced it in
 *   place, and is not moved; a loose file is moved only once a good copy was written;
 * - an index is made again only from a pack whose every entry inflates and whose SHA-1 matches its
 *   trailer, and is renamed over the damaged one (never a moment without an index);
 * - nothing unchecked is written: what is read again whole or supplied is hashed here; the rest
 *   of a damaged pack is copied entry by entry only where the entry's CRC-32 matches (a delta is
 *   resolved and written whole: a pack `git gc` wrote grows, so its rewrite needs room for that);
 * - no pack is rewritten or moved where git keeps a multi-pack-index or
 *   `extensions.preciousObjects` is set (packs-stay.ts); the good copies are still written.
 * The caller holds the prune lock (prune-lock.ts): a prune rewrites and removes packs too.
 */
import { readFile, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, ErrorCodes, GitfsError, isGitfsError, isOperationalError } from '../errors.js';
import type { GitObject } from '../objects/object-store.js';
import { hashObject, type Oid } from '../objects/oid.js';
import { PackFile } from '../objects/pack-file.js';
import { PackIndex } from '../objects/pack-index.js';
import { reindexPack } from '../objects/pack-reindex.js';
import type { ObjectSupplier } from '../objects/promisor.js';
import { removeLeftTemporaries, writeFileAtomic } from '../util/durable.js';
import { isThere } from '../util/if-present.js';
import { copyAside, setAsideLoose, setAsidePack } from './damaged-dir.js';
import { setAsideCaches } from './git-caches.js';
import { isPartial } from './partial.js';
import { whyPacksStay } from './packs-stay.js';
import { recordUnhad } from './unhad.js';
import type { Repository } from './repository.js';
import type { PackDamage, StoreDamage } from './store-scan.js';

export interface RepairReport {
  /** git's caches that failed their checksum, moved into `gitfs/damaged/` (git reads without them). */
  readonly cachesSetAside: readonly string[];
  /** Packs whose damaged index was made again from the pack. */
  readonly reindexed: readonly string[];
  /** Objects read again or got from the supplier, hash-checked, and written into a new pack. */
  readonly healed: number;
  /** How many of them the supplier gave. */
  readonly supplied: number;
  /** Damaged packs written again without their damage. */
  readonly rewritten: readonly string[];
  /** Those of them moved into `gitfs/damaged/` (the others were written again under their own name, in place). */
  readonly setAside: readonly string[];
  /** Damaged loose files moved into `gitfs/damaged/`. */
  readonly looseSetAside: number;
  /** What could not be repaired, one line each. */
  readonly left: readonly LeftOver[];
}

/** Something a repair could not mend: why, as a stable code, and a line for people. */
export interface LeftOver {
  readonly reason: LeftReason;
  readonly text: string;
}

/**
 * `no-good-copy`: objects no pack here holds good, and the supplier had none; `supplier-down`: the
 * supplier could not be asked; `bad-supplied-copy`: it sent a copy that does not hash; `packs-stay`:
 * a multi-pack-index or preciousObjects keeps packs in place; `no-room`: the disk lacks room for a
 * rewrite; `too-large`: an object above the read limit; `index-unmade`: a damaged index could not
 * be made again; `pack-failed`: a pack could not be rewritten or moved; `cache-stays`: a damaged
 * cache of git's could not be moved.
 */
export type LeftReason = 'no-good-copy' | 'supplier-down' | 'bad-supplied-copy' | 'packs-stay' | 'no-room' | 'too-large' | 'index-unmade' | 'pack-failed' | 'cache-stays';

/** Ids per request to the supplier: a batch of chunks is held at once (the daemon's socket takes up to 1024). */
const SUPPLY_BATCH = 64;
/** Ids named in one line of what is left. */
const NAMED = 5;
/** Said of what no copy mends: the next write of it (unhad.ts) is one. */
const WRITE_AGAIN = ' (committing it again writes a good copy; then repair again)';
/** Room kept free beyond a pack's rewrite. */
const SPARE_BYTES = 256 << 20;

/**
 * Repairs what `bad` (objects that could not be read: fsck's) and `found` (scanStore's) name,
 * getting what no pack here holds good from `supplier` (none: only what is here is used).
 * `signal` ends it between objects, and a request to the supplier in flight (what was written
 * stays: valid packs).
 */
export async function repair(repo: Repository, bad: readonly Oid[], found: StoreDamage, supplier: ObjectSupplier | undefined, signal?: AbortSignal): Promise<RepairReport> {
  const left: LeftOver[] = [];
  // First: a damaged multi-pack-index would keep every pack where it is.
  const cachesSetAside = await setAsideCaches(repo, found.caches, left, signal);
  const reindexed: string[] = [];
  for (const d of found.packs) if (d.indexError !== undefined && (await reindex(repo, d, left, signal))) reindexed.push(d.name);
  if (reindexed.length > 0) await repo.objects.refresh();
  const source = new Supply(supplier, left, signal);
  const healed = new Set<Oid>();
  // Packs written here: one may bear a damaged pack's name (the same objects written the same
  // way), and has then replaced it in place; that name is not moved.
  const made = new Set<string>();
  const scanned = new Set([...found.loose, ...found.packs.flatMap((d) => [...d.damaged, ...(d.unopened ?? [])])]);
  // What no copy mends, for writers to write again (unhad.ts).
  const unhadAll = new Set<Oid>();
  // What fsck could not read that reads now (from a pack whose index was made again) needs nothing.
  const wanted = [...scanned, ...(await unreadable(repo, bad.filter((oid) => !scanned.has(oid))))];
  await intoPack(repo, await isPartial(repo.gitDir), healed, made, async (write) => {
    // One that claims to be above the read limit may be a damaged header: asked for too.
    const { unread, tooLarge } = await readAgain(wanted, (oid) => repo.objects.read(oid), write, signal);
    const unsalvaged = await salvage(repo, found.packs, unread, write, signal);
    await source.give([...unsalvaged, ...tooLarge], write);
    const unhad = unsalvaged.filter((oid) => !healed.has(oid));
    for (const oid of unhad) unhadAll.add(oid);
    if (unhad.length > 0) left.push({ reason: 'no-good-copy', text: `${unhad.length} objects: no good copy here, and ${source.why()}${WRITE_AGAIN}: ${named(unhad)}` });
    // Not listed: a repair reads no copy of one above the read limit here either (only a peer's mends it).
    const large = tooLarge.filter((oid) => !healed.has(oid));
    if (large.length > 0) left.push({ reason: 'no-good-copy', text: `${large.length} objects above the read limit: no good copy here, and ${source.why()}: ${named(large)}` });
    return true;
  });
  let looseSetAside = 0;
  for (const oid of found.loose) {
    if (!healed.has(oid)) continue;
    await setAsideLoose(repo, oid);
    looseSetAside++;
  }

  const stay = await whyPacksStay(repo.gitDir);
  const rewritten: string[] = [];
  const setAside: string[] = [];
  for (const d of found.packs) {
    // Whole again: its every entry read through as its index was made.
    if (reindexed.includes(d.name)) continue;
    if (stay !== undefined) {
      left.push({ reason: 'packs-stay', text: `${d.name}: stays (the good copies of its damaged objects are written): ${stay.message}` });
      continue;
    }
    try {
      if (!(await rewrite(repo, d, healed, made, source, { left, unhad: unhadAll }, signal))) continue;
      rewritten.push(d.name);
      if (made.has(d.name)) continue;
      await setAsidePack(repo, d.name);
      setAside.push(d.name);
    } catch (e) {
      // One pack that cannot be rewritten or moved (a full disk, a sector that does not read) keeps no other from being repaired.
      if (signal?.aborted === true || !isOperationalError(e)) throw e;
      left.push({ reason: 'pack-failed', text: `${d.name}: stays: ${(e as Error).message}` });
    }
  }
  await recordUnhad(repo.gitDir, unhadAll, (oids) => unreadBelowLimit(repo, oids));
  return { cachesSetAside, reindexed, healed: healed.size, supplied: source.count, rewritten, setAside, looseSetAside, left };
}

/**
 * Makes the index of pack `d` (whose index does not parse, or names entries the pack cannot hold)
 * again from the pack, keeps the damaged one in `gitfs/damaged/` and renames the new one over it;
 * whether it did (else a line says why: the pack is damaged too, or gone).
 */
async function reindex(repo: Repository, d: PackDamage, left: LeftOver[], signal: AbortSignal | undefined): Promise<boolean> {
  const idxPath = join(repo.gitDir, 'objects', 'pack', `${d.name}.idx`);
  try {
    const idx = await reindexPack(join(repo.gitDir, 'objects', 'pack', `${d.name}.pack`), {
      maxObjectBytes: repo.objects.maxObjectBytes,
      // A thin pack's base, from the packs here (not from peers: a base is asked only once no entry makes it).
      resolveBase: async (oid) => ((await repo.objects.has(oid)) ? repo.objects.read(oid).catch(() => undefined) : undefined),
      signal,
    });
    // Kept for an operator when it reads (a lost sector may be why it is damaged): not needed for the rest.
    await copyAside(repo, idxPath, `${d.name}.bad-idx`).catch(() => undefined);
    // The only writer of this index (the caller holds the prune lock): a killed one's temporary goes.
    await removeLeftTemporaries(idxPath);
    await writeFileAtomic(idxPath, idx, 0o444);
    return true;
  } catch (e) {
    // Whatever went wrong with this pack (damaged too, a sector that does not read, a full disk) leaves it as it was, and the rest is repaired.
    if (signal?.aborted === true || !isOperationalError(e)) throw e;
    if (errnoCode(e) !== 'ENOENT') left.push({ reason: 'index-unmade', text: `${d.name}: stays, its index is damaged (${d.indexError}) and cannot be made again from the pack: ${(e as Error).message}` });
    return false;
  }
}

/**
 * Writes the objects of damaged pack `d` that were not healed into a new pack; whether it holds
 * them all (else nothing is kept, a line of `out.left` says why, and what could not be had goes
 * into `out.unhad`).
 */
async function rewrite(
  repo: Repository,
  d: PackDamage,
  healed: ReadonlySet<Oid>,
  made: Set<string>,
  source: Supply,
  out: { readonly left: LeftOver[]; readonly unhad: Set<Oid> },
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const { left } = out;
  const lostAll = (lost: readonly Oid[]): string => {
    for (const oid of lost) out.unhad.add(oid);
    return `${d.name}: stays, ${lost.length} of its objects could not be had${WRITE_AGAIN}: ${named(lost)}`;
  };
  // Its index could not be made again: a line said why.
  if (d.indexError !== undefined) return false;
  if (d.unopened !== undefined) {
    // Nothing reads from it: every object was wanted above.
    const lost = d.unopened.filter((oid) => !healed.has(oid));
    if (lost.length > 0) left.push({ reason: 'no-good-copy', text: lostAll(lost) });
    return lost.length === 0;
  }
  const pack = repo.objects.packs().find((p) => p.name === d.name);
  if (pack === undefined) return false;
  const room = await roomFor(repo, pack);
  if (room !== undefined) {
    left.push({ reason: 'no-room', text: `${d.name}: stays, ${room}` });
    return false;
  }
  // The rest of the pack, copied as it lies where its CRC-32 matches; what does not read (a delta
  // on a damaged base) is supplied too. Nothing is kept, and the pack stays, if anything cannot be had.
  const copied = new Set<Oid>();
  return intoPack(repo, await hasFile(repo, d.name, 'promisor'), copied, made, async (write) => {
    const { unread, tooLarge } = await readAgain([...pack.ids()].filter((oid) => !healed.has(oid)), (oid) => repo.objects.readToServe(oid), write, signal);
    if (tooLarge.length > 0) {
      left.push({ reason: 'too-large', text: `${d.name}: stays, it holds an object above the read limit (${tooLarge[0]}; git repack can rewrite it)` });
      return false;
    }
    // A delta on a damaged base, resolved against the base's good copy; the rest is supplied.
    await source.give(await fromThePack(repo, d, unread, write, signal), write);
    const lost = unread.filter((oid) => !copied.has(oid));
    if (lost.length > 0) left.push({ reason: 'no-good-copy', text: lostAll(lost) });
    return lost.length === 0;
  }, await hasFile(repo, d.name, 'keep'));
}

/**
 * Why `pack` cannot be rewritten for lack of room, or undefined. Deltas are written whole, so a
 * pack git packed with deltas may come out several times larger: the room asked is the sum of
 * its objects' sizes, read from their headers (one that does not read counts nothing), and at
 * least the pack's own size, with SPARE_BYTES beyond.
 */
async function roomFor(repo: Repository, pack: { readonly size: number; ids(): Iterable<Oid> }): Promise<string | undefined> {
  let need = SPARE_BYTES;
  for (const oid of pack.ids()) need += Math.max(await repo.objects.sizeOf(oid).catch(() => 0), 0);
  need = Math.max(need, pack.size + SPARE_BYTES);
  const fs = await statfs(join(repo.gitDir, 'objects', 'pack'));
  const free = fs.bavail * fs.bsize;
  return free >= need ? undefined : `its rewrite (deltas written whole) needs ${need} bytes, ${free} are free (git repack -a -d -f rewrites it with deltas)`;
}

/** The supplier, asked at most once per object; once it cannot be asked at all, it is not asked again. */
class Supply {
  count = 0;
  private readonly asked = new Set<Oid>();
  private down: string | undefined;

  constructor(
    private readonly supplier: ObjectSupplier | undefined,
    private readonly left: LeftOver[],
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Writes what the supplier gives of `oids` (those not asked before), each hash-checked; a copy that does not hash to its id adds a line to `left`. */
  async give(oids: readonly Oid[], write: Write): Promise<void> {
    const ask = oids.filter((oid) => !this.asked.has(oid));
    for (const oid of ask) this.asked.add(oid);
    if (this.supplier === undefined) return;
    for (let i = 0; i < ask.length && this.down === undefined; i += SUPPLY_BATCH) {
      let answer: ReadonlyMap<Oid, GitObject>;
      try {
        answer = await untilAborted(this.supplier.supply(ask.slice(i, i + SUPPLY_BATCH)), this.signal);
      } catch (e) {
        if (this.signal?.aborted === true) throw e;
        this.down = (e as Error).message;
        this.left.push({ reason: 'supplier-down', text: `${this.supplier.name} could not be asked: ${this.down}` });
        break;
      }
      for (const [oid, o] of answer) {
        if (hashObject(o.type, o.content) !== oid) {
          this.left.push({ reason: 'bad-supplied-copy', text: `${oid}: ${this.supplier.name} sent a copy that does not hash to it (dropped)` });
          continue;
        }
        // The content alone: it is what was hashed.
        await write(oid, { type: o.type, content: o.content });
        this.count++;
      }
    }
  }

  /** Why what was asked for is not here, for a line of `left`. */
  why(): string {
    if (this.supplier === undefined) return 'nothing else was asked';
    return this.down === undefined ? `${this.supplier.name} had none` : `${this.supplier.name} could not be asked`;
  }
}

/** `work`, or the signal's reason once it aborts (the work goes on unheeded). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const abort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

type Write = (oid: Oid, o: GitObject & { readonly zlib?: Buffer }) => Promise<void>;

/**
 * Runs `fill` with a writer of one new pack, adding every id written to `written`. `fill` says
 * whether to keep what it wrote: yes, and the pack is finished (durable, visible; with a `.keep`
 * if `keep`), its name added to `made`; no, and it is dropped. Returns that answer. One that
 * replaced a pack of the same name is opened anew by the refresh (the database tells packs apart
 * by inode too).
 */
async function intoPack(repo: Repository, promisor: boolean, written: Set<Oid>, made: Set<string>, fill: (write: Write) => Promise<boolean>, keep = false): Promise<boolean> {
  const writer = await repo.newPackWriter({ rewrite: true, promisor });
  let kept: boolean;
  try {
    kept = await fill(async (oid, o) => {
      await (o.zlib !== undefined ? writer.writeDeflated(oid, o.type, o.content.length, o.zlib) : writer.writeHashed(oid, o.type, o.content));
      written.add(oid);
    });
  } catch (e) {
    await writer.abort();
    throw e;
  }
  if (!kept) {
    await writer.abort();
    return false;
  }
  for (const name of (await writer.finish())?.names ?? []) {
    made.add(name);
    // What git's `.keep` held there, it holds here.
    if (keep) await writeKeep(repo, name);
  }
  await repo.objects.refresh();
  return true;
}

async function writeKeep(repo: Repository, name: string): Promise<void> {
  await writeFile(join(repo.gitDir, 'objects', 'pack', `${name}.keep`), '');
}

/** Writes those of `oids` that the damaged packs still give (fromThePack: a torn pack's whole entries, a delta on a damaged base); returns the others. */
async function salvage(repo: Repository, packs: readonly PackDamage[], oids: readonly Oid[], write: Write, signal: AbortSignal | undefined): Promise<readonly Oid[]> {
  let rest = oids;
  for (const d of packs) if (d.indexError === undefined && rest.length > 0) rest = await fromThePack(repo, d, rest, write, signal);
  return rest;
}

/**
 * Writes those of `oids` that damaged pack `d` still gives, each read from it and hash-checked;
 * returns the others. The pack is opened on its own, as torn when no reader opens it (its trailer
 * or count unchecked), and a delta whose base entry is damaged is resolved against the base's
 * good copy elsewhere (written already, or in another pack), as `git index-pack` resolves a thin
 * pack: a damaged base costs itself, not every delta on it.
 */
async function fromThePack(repo: Repository, d: PackDamage, oids: readonly Oid[], write: Write, signal: AbortSignal | undefined): Promise<readonly Oid[]> {
  const base = join(repo.gitDir, 'objects', 'pack', d.name);
  let pack: PackFile;
  try {
    const index = new PackIndex(await readFile(`${base}.idx`), `${base}.idx`);
    const damagedAt = new Map(d.damaged.flatMap((oid) => {
      const at = index.lookup(oid);
      return at === undefined ? [] : [[at, oid] as const];
    }));
    pack = await PackFile.open(`${base}.pack`, index, {
      maxObjectBytes: repo.objects.maxObjectBytes,
      resolveBase: (oid) => repo.objects.read(oid).catch(() => undefined),
      torn: d.unopened !== undefined,
      baseElsewhere: async (at) => {
        const oid = damagedAt.get(at);
        return oid === undefined ? undefined : repo.objects.read(oid).catch(() => undefined);
      },
    });
  } catch (e) {
    // Gone meanwhile, or not to be opened at all (damaged further, a sector that does not read): its objects are asked for.
    if (signal?.aborted === true || !isOperationalError(e)) throw e;
    return oids;
  }
  try {
    const here = oids.filter((oid) => pack.index.lookup(oid) !== undefined);
    const { unread, tooLarge } = await readAgain(here, async (oid) => {
      const o = await pack.read(oid);
      if (o === undefined || hashObject(o.type, o.content) !== oid) throw new GitfsError(ErrorCodes.CORRUPT_OBJECT, `${oid} is damaged in ${d.name}`, { oid });
      return o;
    }, write, signal);
    const lost = new Set([...unread, ...tooLarge]);
    return oids.filter((oid) => pack.index.lookup(oid) === undefined || lost.has(oid));
  } finally {
    await pack.close();
  }
}

/** Writes each of `oids` as `read` gives it; those that do not read, and those above the read limit (not read). */
async function readAgain(oids: readonly Oid[], read: (oid: Oid) => Promise<GitObject>, write: Write, signal: AbortSignal | undefined): Promise<{ unread: Oid[]; tooLarge: Oid[] }> {
  const unread: Oid[] = [];
  const tooLarge: Oid[] = [];
  for (const oid of oids) {
    signal?.throwIfAborted();
    const o = await read(oid).catch((e: unknown) => (isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE) ? null : undefined));
    if (o === null) tooLarge.push(oid);
    else if (o === undefined) unread.push(oid);
    else await write(oid, o);
  }
  return { unread, tooLarge };
}

/** Those of `oids` that do not read, but for those above the read limit (unhad.ts lists none: no write of one mends it). */
async function unreadBelowLimit(repo: Repository, oids: readonly Oid[]): Promise<Oid[]> {
  const out: Oid[] = [];
  for (const oid of new Set(oids)) if (await repo.objects.read(oid).then(() => false, (e: unknown) => !isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE))) out.push(oid);
  return out;
}

/** Those of `oids` that do not read (OBJECT_TOO_LARGE included: a damaged size header may say so). */
async function unreadable(repo: Repository, oids: readonly Oid[]): Promise<Oid[]> {
  const out: Oid[] = [];
  for (const oid of new Set(oids)) if ((await repo.objects.read(oid).then(() => true, () => false)) === false) out.push(oid);
  return out;
}

function hasFile(repo: Repository, name: string, ext: string): Promise<boolean> {
  return isThere(join(repo.gitDir, 'objects', 'pack', `${name}.${ext}`));
}

function named(oids: readonly Oid[]): string {
  return `${oids.slice(0, NAMED).join(', ')}${oids.length > NAMED ? ', …' : ''}`;
}
