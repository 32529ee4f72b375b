/**
 * Self-healing: a repository with damaged objects made whole again. A pack's damage is found
 * entry by entry (pack-verify.ts), a loose object's by its hash; the objects fsck could not read,
 * and those, are read again here (another pack may hold a good copy) or got from a supplier (the
 * node daemon, or the swarm in the daemon's scrub, which ask peers), each hash-checked before it
 * is written into a new pack. Then every damaged pack is written again without its damage and set
 * aside into `gitfs/damaged/`, as is every damaged loose file, so that `git fsck` is clean and an
 * operator can still look at what the disk did.
 *
 * Invariants:
 * - nothing readable is lost: a damaged pack is set aside only once a pack holding every one of
 *   its objects (a good copy of each) is durable and visible; a pack one of whose objects cannot
 *   be had from anywhere stays where it is, and is reported; a new pack that bears a damaged
 *   pack's name (the same objects written the same way: pack names are their checksum) has
 *   replaced it in place, and is not set aside; no pack is set aside where git keeps a
 *   multi-pack-index or `extensions.preciousObjects` is set;
 * - nothing unchecked is written: what is read again whole or supplied is hashed here; the rest
 *   of a damaged pack is copied entry by entry only where the entry's CRC-32 matches;
 * - a kill at any point leaves every object at least once where git looks; a pack whose index was
 *   set aside before the kill let its `.pack` follow (recoverKilledRepair), which `git repack
 *   --cruft` would trip on.
 * The caller holds the prune lock (prune-lock.ts): a prune rewrites and removes packs too.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { createInflate } from 'node:zlib';
import { errnoCode, ErrorCodes, isGitfsError } from '../errors.js';
import type { GitObject } from '../objects/object-store.js';
import { hashObject, type Oid } from '../objects/oid.js';
import { PackIndex } from '../objects/pack-index.js';
import { verifyPack, type VerifiedIndex } from '../objects/pack-verify.js';
import type { ObjectSupplier } from '../objects/promisor.js';
import { fsyncDir } from '../util/durable.js';
import { namesIn } from '../util/if-present.js';
import { PACK_FILES, whyPacksStay } from './pack-merge.js';
import { withPruneLock } from './prune-lock.js';
import { isPartial } from './partial.js';
import type { Repository } from './repository.js';

/** A pack found damaged: its checksum, and the entries whose CRC-32 failed. */
export interface PackDamage {
  readonly name: string;
  readonly checksumOk: boolean;
  readonly damaged: readonly Oid[];
  /** Every id of a pack the database could not open (its trailer or size does not match its index): none of them reads from it. */
  readonly unopened?: readonly Oid[];
  /** Its index names an entry it cannot hold: the pack cannot be read through. */
  readonly indexError?: string;
}

/** What a scan found: damaged packs, and loose objects whose file does not hash to their id. */
export interface StoreDamage {
  readonly packs: readonly PackDamage[];
  readonly loose: readonly Oid[];
}

export interface RepairReport {
  /** Objects read again or got from the supplier, hash-checked, and written into a new pack. */
  readonly healed: number;
  /** How many of them the supplier gave. */
  readonly supplied: number;
  /** Damaged packs written again without their damage. */
  readonly rewritten: readonly string[];
  /** Those of them set aside into `gitfs/damaged/` (the others were written again under their own name, in place). */
  readonly setAside: readonly string[];
  /** Damaged loose files set aside into `gitfs/damaged/`. */
  readonly looseSetAside: number;
  /** What could not be repaired, one line each. */
  readonly left: readonly string[];
}

/** Ids per request to the supplier: a batch of chunks is held at once (the daemon's socket takes up to 1024). */
const SUPPLY_BATCH = 64;
/** Ids named in one line of what is left. */
const NAMED = 5;
/** A `.pack` whose index was set aside this long ago is a killed repair's (not a writer's between its two renames). */
const ORPHAN_AGE_MS = 60_000;

/** Where damaged packs and loose files go, relative to the git directory. */
export const DAMAGED_DIR = join('gitfs', 'damaged');

/** Every pack read through and checked (pack-verify.ts), those the database could not open too, and every loose object hashed. */
export async function scanStore(repo: Repository, signal?: AbortSignal): Promise<StoreDamage> {
  await repo.objects.refresh();
  const packs: PackDamage[] = [];
  const check = async (name: string, path: string, index: VerifiedIndex, unopened?: () => Oid[]): Promise<void> => {
    try {
      const c = await verifyPack(path, index, signal);
      if (unopened !== undefined) packs.push({ name, ...c, unopened: unopened() });
      else if (!c.checksumOk || c.damaged.length > 0) packs.push({ name, ...c });
    } catch (e) {
      // A pack removed meanwhile (merged by the daemon) has nothing to check.
      if (errnoCode(e) === 'ENOENT') return;
      if (!isGitfsError(e, ErrorCodes.CORRUPT_PACK)) throw e;
      packs.push({ name, checksumOk: false, damaged: [], indexError: e.message });
    }
  };
  for (const p of repo.objects.packs()) await check(p.name, p.path, p.index);
  const packDir = join(repo.gitDir, 'objects', 'pack');
  for (const name of repo.objects.damagedPacks().keys()) {
    const index = await readIndex(join(packDir, `${name}.idx`));
    // An index that does not parse names nothing to mend (fsck reports the pack as it is).
    if (index !== undefined) await check(name, join(packDir, `${name}.pack`), index, () => [...index.ids()]);
  }
  const loose: Oid[] = [];
  for (const oid of await repo.objects.looseIds()) {
    signal?.throwIfAborted();
    if (!(await looseHashes(repo.objects.loosePathOf(oid), oid))) loose.push(oid);
  }
  return { packs, loose };
}

async function readIndex(path: string): Promise<PackIndex | undefined> {
  try {
    return new PackIndex(await readFile(path), path);
  } catch {
    return undefined;
  }
}

/** Whether the loose file at `path` inflates to what hashes to `oid` (streamed: a loose object may be large); one gone meanwhile counts as good. */
async function looseHashes(path: string, oid: Oid): Promise<boolean> {
  const sha = createHash('sha1');
  try {
    await pipeline(createReadStream(path), createInflate(), async (source: AsyncIterable<Buffer>) => {
      for await (const piece of source) sha.update(piece);
    });
  } catch (e) {
    return errnoCode(e) === 'ENOENT';
  }
  return sha.digest('hex') === oid;
}

/**
 * Repairs what `bad` (objects that could not be read: fsck's) and `found` (scanStore's) name,
 * getting what no pack here holds good from `supplier` (none: only what is here is used).
 * `signal` ends it between objects (what was written stays: valid packs).
 */
export async function repair(repo: Repository, bad: readonly Oid[], found: StoreDamage, supplier: ObjectSupplier | undefined, signal?: AbortSignal): Promise<RepairReport> {
  const left: string[] = [];
  const source = new Supply(supplier, left, signal);
  const healed = new Set<Oid>();
  // Packs written here: one may bear a damaged pack's name (the same objects written the same
  // way), and has then replaced it in place; that name is not set aside.
  const made = new Set<string>();
  const unhad: Oid[] = [];
  // The objects named bad, read again whole and hash-checked, or supplied; written whatever else fails.
  const wanted = [...new Set([...bad, ...found.loose, ...found.packs.flatMap((d) => [...d.damaged, ...(d.unopened ?? [])])])];
  await intoPack(repo, await isPartial(repo.gitDir), healed, made, async (write) => {
    // One that claims to be above the read limit may be a damaged header: asked for too.
    const { unread, tooLarge } = await readAgain(wanted, (oid) => repo.objects.read(oid), write, signal);
    await source.give([...unread, ...tooLarge], write);
    unhad.push(...[...unread, ...tooLarge].filter((oid) => !healed.has(oid)));
    if (unhad.length > 0) left.push(`${unhad.length} objects: no good copy here, and ${source.why()}: ${named(unhad)}`);
    return true;
  });
  const looseSetAside = await setAsideLoose(repo, found.loose, left);

  const stay = await whyPacksStay(repo);
  const rewritten: string[] = [];
  const setAside: string[] = [];
  for (const d of found.packs) {
    const whole = await rewrite(repo, d, healed, made, source, left, signal);
    if (!whole) continue;
    rewritten.push(d.name);
    if (made.has(d.name)) continue;
    if (stay !== undefined) left.push(`${d.name}: rewritten, but stays beside its copy: ${stay}`);
    else {
      await setAsidePack(repo, d.name);
      setAside.push(d.name);
    }
  }
  return { healed: healed.size, supplied: source.count, rewritten, setAside, looseSetAside, left };
}

/** Writes the objects of damaged pack `d` that were not healed into a new pack; whether it holds them all (else nothing is kept, and a line says why). */
async function rewrite(repo: Repository, d: PackDamage, healed: ReadonlySet<Oid>, made: Set<string>, source: Supply, left: string[], signal: AbortSignal | undefined): Promise<boolean> {
  if (d.indexError !== undefined) {
    left.push(`${d.name}: stays, its index cannot be read through (${d.indexError})`);
    return false;
  }
  if (d.unopened !== undefined) {
    // Nothing reads from it: every object was wanted above.
    const lost = d.unopened.filter((oid) => !healed.has(oid));
    if (lost.length > 0) left.push(`${d.name}: stays, ${lost.length} of its objects could not be had: ${named(lost)}`);
    return lost.length === 0;
  }
  const pack = repo.objects.packs().find((p) => p.name === d.name);
  if (pack === undefined) return false;
  // The rest of the pack, copied as it lies where its CRC-32 matches; what does not read (a delta
  // on a damaged base) is supplied too. Nothing is kept, and the pack stays, if anything cannot be had.
  const copied = new Set<Oid>();
  const names = new Set<string>();
  const whole = await intoPack(repo, await hasFile(repo, d.name, 'promisor'), copied, names, async (write) => {
    const { unread, tooLarge } = await readAgain([...pack.ids()].filter((oid) => !healed.has(oid)), (oid) => repo.objects.readToServe(oid), write, signal);
    if (tooLarge.length > 0) {
      left.push(`${d.name}: stays, it holds an object above the read limit (${tooLarge[0]}; git repack can rewrite it)`);
      return false;
    }
    await source.give(unread, write);
    const lost = unread.filter((oid) => !copied.has(oid));
    if (lost.length > 0) left.push(`${d.name}: stays, ${lost.length} of its objects could not be had: ${named(lost)}`);
    return lost.length === 0;
  });
  for (const name of names) made.add(name);
  // What git's `.keep` held there, it holds here.
  if (whole && (await hasFile(repo, d.name, 'keep'))) {
    for (const name of names) await writeFile(join(repo.gitDir, 'objects', 'pack', `${name}.keep`), '');
  }
  return whole;
}

/** The supplier, asked at most once per object; once it cannot be asked at all, it is not asked again. */
class Supply {
  count = 0;
  private readonly asked = new Set<Oid>();
  private down: string | undefined;

  constructor(
    private readonly supplier: ObjectSupplier | undefined,
    private readonly left: string[],
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Writes what the supplier gives of `oids` (those not asked before), each hash-checked; a copy that does not hash to its id adds a line to `left`. */
  async give(oids: readonly Oid[], write: Write): Promise<void> {
    const ask = oids.filter((oid) => !this.asked.has(oid));
    for (const oid of ask) this.asked.add(oid);
    if (this.supplier === undefined) return;
    for (let i = 0; i < ask.length && this.down === undefined; i += SUPPLY_BATCH) {
      this.signal?.throwIfAborted();
      let answer: ReadonlyMap<Oid, GitObject>;
      try {
        answer = await this.supplier.supply(ask.slice(i, i + SUPPLY_BATCH));
      } catch (e) {
        this.down = (e as Error).message;
        this.left.push(`${this.supplier.name} could not be asked: ${this.down}`);
        break;
      }
      for (const [oid, o] of answer) {
        if (hashObject(o.type, o.content) !== oid) {
          this.left.push(`${oid}: ${this.supplier.name} sent a copy that does not hash to it (dropped)`);
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

type Write = (oid: Oid, o: GitObject & { readonly zlib?: Buffer }) => Promise<void>;

/**
 * Runs `fill` with a writer of one new pack, adding every id written to `written`. `fill` says
 * whether to keep what it wrote: yes, and the pack is finished (durable, visible), its name added
 * to `made`; no, and it is dropped. Returns that answer.
 */
async function intoPack(repo: Repository, promisor: boolean, written: Set<Oid>, made: Set<string>, fill: (write: Write) => Promise<boolean>): Promise<boolean> {
  const writer = await repo.newPackWriter({ rewrite: true, promisor });
  let keep: boolean;
  try {
    keep = await fill(async (oid, o) => {
      await (o.zlib !== undefined ? writer.writeDeflated(oid, o.type, o.content.length, o.zlib) : writer.writeHashed(oid, o.type, o.content));
      written.add(oid);
    });
  } catch (e) {
    await writer.abort();
    throw e;
  }
  if (!keep) {
    await writer.abort();
    return false;
  }
  // One that replaced a pack of the same name (a damaged one, written again the same way) is opened anew by the refresh.
  for (const name of (await writer.finish())?.names ?? []) made.add(name);
  await repo.objects.refresh();
  return true;
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

function hasFile(repo: Repository, name: string, ext: string): Promise<boolean> {
  return stat(join(repo.gitDir, 'objects', 'pack', `${name}.${ext}`)).then(() => true, () => false);
}

/** Moves a pack's files into DAMAGED_DIR, its index first; files already gone (merged meanwhile) are passed. */
async function setAsidePack(repo: Repository, name: string): Promise<void> {
  const packDir = join(repo.gitDir, 'objects', 'pack');
  const to = join(repo.gitDir, DAMAGED_DIR);
  await mkdir(to, { recursive: true });
  for (const ext of [...PACK_FILES, 'keep', 'mtimes']) await moveIfThere(join(packDir, `${name}.${ext}`), join(to, `${name}.${ext}`));
  await fsyncDir(to);
  await fsyncDir(packDir);
  await repo.objects.refresh();
}

/** Moves each damaged loose file that a pack now holds a good copy of into DAMAGED_DIR (as `loose-<id>`); how many. */
async function setAsideLoose(repo: Repository, loose: readonly Oid[], left: string[]): Promise<number> {
  const to = join(repo.gitDir, DAMAGED_DIR);
  let n = 0;
  for (const oid of loose) {
    if (!repo.objects.hasPacked(oid)) {
      left.push(`${oid}: its loose file stays, damaged: no good copy could be had`);
      continue;
    }
    await mkdir(to, { recursive: true });
    await moveIfThere(repo.objects.loosePathOf(oid), join(to, `loose-${oid}`));
    n++;
  }
  if (n > 0) await fsyncDir(to);
  return n;
}

/**
 * Finishes what a repair killed while it set a pack aside left: a `.pack` (and what lay beside
 * it) in `objects/pack/` whose index is in DAMAGED_DIR already, once ORPHAN_AGE_MS old, under the
 * prune lock (none taken when there is nothing to finish; none to be had: left for the next
 * time). How many.
 */
export async function recoverKilledRepair(repo: Repository, nowMs: number): Promise<number> {
  const from = join(repo.gitDir, 'objects', 'pack');
  const to = join(repo.gitDir, DAMAGED_DIR);
  const orphans = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const entry of await namesIn(to)) {
      const name = entry.endsWith('.idx') ? entry.slice(0, -'.idx'.length) : undefined;
      if (name === undefined || (await hasFile(repo, name, 'idx'))) continue;
      const pack = await stat(join(from, `${name}.pack`)).catch(() => undefined);
      if (pack !== undefined && nowMs - pack.mtimeMs >= ORPHAN_AGE_MS) out.push(name);
    }
    return out;
  };
  if ((await orphans()).length === 0) return 0;
  try {
    return await withPruneLock(repo.gitDir, async () => {
      const names = await orphans();
      for (const name of names) for (const ext of [...PACK_FILES, 'keep', 'mtimes']) await moveIfThere(join(from, `${name}.${ext}`), join(to, `${name}.${ext}`));
      if (names.length > 0) await fsyncDir(from);
      return names.length;
    });
  } catch (e) {
    if (isGitfsError(e, ErrorCodes.PRUNE_REFUSED)) return 0;
    throw e;
  }
}

async function moveIfThere(from: string, to: string): Promise<void> {
  await rename(from, to).catch((e: unknown) => (errnoCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
}

function named(oids: readonly Oid[]): string {
  return `${oids.slice(0, NAMED).join(', ')}${oids.length > NAMED ? ', …' : ''}`;
}
