/**
 * Self-healing: a repository with damaged objects made whole again. A pack's damage is found
 * entry by entry (pack-verify.ts); the objects fsck could not read, and those damaged entries,
 * are read again here (another pack may hold a good copy) or got from a supplier (the node
 * daemon, which asks its peers), each hash-checked before it is written into a new pack. Then
 * every damaged pack is written again without its damage and set aside into `gitfs/damaged/`,
 * so that `git fsck` is clean and an operator can still look at what the disk did.
 *
 * Invariants:
 * - nothing readable is lost: a damaged pack is set aside only once a pack holding every one of
 *   its objects (a good copy of each) is durable and visible; a pack one of whose objects cannot
 *   be had from anywhere stays where it is, and is reported; a new pack that bears a damaged
 *   pack's name (the same objects written the same way: pack names are their checksum) has
 *   replaced it in place, and is not set aside;
 * - nothing unchecked is written: a supplied object's SHA-1 is computed here; a damaged entry is
 *   never copied (its CRC-32 fails, so the good copy is read instead), and an object fsck found
 *   damaged is taken only as read again whole, hash-checked;
 * - a kill at any point leaves every object at least once where git looks (a pack's index is set
 *   aside before its data, and a `.pack` left alone without its index is never read).
 * The caller holds the prune lock (prune-lock.ts): a prune rewrites and removes packs too.
 */
import { mkdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, ErrorCodes, isGitfsError } from '../errors.js';
import type { GitObject } from '../objects/object-store.js';
import { hashObject, type Oid } from '../objects/oid.js';
import { verifyPack } from '../objects/pack-verify.js';
import type { ObjectSupplier } from '../objects/promisor.js';
import { fsyncDir } from '../util/durable.js';
import { PACK_FILES } from './pack-merge.js';
import { isPartial } from './partial.js';
import type { Repository } from './repository.js';

/** A pack found damaged: its checksum, and the entries whose CRC-32 failed. */
export interface PackDamage {
  readonly name: string;
  readonly checksumOk: boolean;
  readonly damaged: readonly Oid[];
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
  /** What could not be repaired, one line each. */
  readonly left: readonly string[];
}

/** Ids per request to the supplier: a batch of chunks is held at once (the daemon's socket takes up to 1024). */
const SUPPLY_BATCH = 64;
/** Ids named in one line of what is left. */
const NAMED = 5;

/** Where damaged packs go, relative to the git directory. */
export const DAMAGED_DIR = join('gitfs', 'damaged');

/** Every pack loaded, read through and checked (pack-verify.ts); those found damaged. `signal` ends it. */
export async function verifyPacks(repo: Repository, signal?: AbortSignal): Promise<PackDamage[]> {
  await repo.objects.refresh();
  const out: PackDamage[] = [];
  for (const p of repo.objects.packs()) {
    const check = await verifyPack(p.path, p.entries(), p.checksum, signal).catch((e: unknown) => (errnoCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
    // A pack removed meanwhile (merged by the daemon) has nothing to check.
    if (check !== undefined && (!check.checksumOk || check.damaged.length > 0)) out.push({ name: p.name, ...check });
  }
  return out;
}

/**
 * Repairs what `bad` (objects that could not be read: fsck's) and `damage` (verifyPacks') name,
 * getting what no pack here holds good from `supplier` (none: only what is here is used).
 */
export async function repair(repo: Repository, bad: readonly Oid[], damage: readonly PackDamage[], supplier: ObjectSupplier | undefined): Promise<RepairReport> {
  const left: string[] = [];
  const healed = new Set<Oid>();
  let supplied = 0;
  // The objects named bad, read again whole and hash-checked, or supplied; written whatever else fails.
  const wanted = [...new Set([...bad, ...damage.flatMap((d) => d.damaged)])];
  // Packs written here: one may bear a damaged pack's name (the same objects written the same
  // way), and has then replaced it in place; that name is not set aside.
  const made = new Set<string>();
  await intoPack(repo, await isPartial(repo.gitDir), healed, made, async (write) => {
    const { unread, tooLarge } = await readAgain(wanted, (oid) => repo.objects.read(oid), write);
    for (const oid of tooLarge) left.push(`${oid}: above the read limit, not read here (git fsck checks it)`);
    supplied += await fromSupplier(supplier, unread, write, left);
    const unhad = unread.filter((oid) => !healed.has(oid));
    if (unhad.length > 0) left.push(`${unhad.length} objects: ${supplier === undefined ? 'no good copy here' : `no good copy here, and ${supplier.name} had none`}: ${named(unhad)}`);
    return true;
  });

  const rewritten: string[] = [];
  const setAside: string[] = [];
  for (const d of damage) {
    const pack = repo.objects.packs().find((p) => p.name === d.name);
    if (pack === undefined) continue;
    // The rest of the pack, copied as it lies where its CRC-32 matches; what does not read (a delta
    // on a damaged base) is supplied too. Nothing is kept, and the pack stays, if anything cannot be had.
    const copied = new Set<Oid>();
    const whole = await intoPack(repo, await isPromisorPack(repo, d.name), copied, made, async (write) => {
      const { unread, tooLarge } = await readAgain([...pack.ids()].filter((oid) => !healed.has(oid)), (oid) => repo.objects.readToServe(oid), write);
      if (tooLarge.length > 0) {
        left.push(`${d.name}: stays, it holds an object above the read limit (${tooLarge[0]}; git repack can rewrite it)`);
        return false;
      }
      supplied += await fromSupplier(supplier, unread, write, left);
      const lost = unread.filter((oid) => !copied.has(oid));
      if (lost.length > 0) left.push(`${d.name}: stays, ${lost.length} of its objects could not be had: ${named(lost)}`);
      return lost.length === 0;
    });
    if (!whole) continue;
    rewritten.push(d.name);
    if (!made.has(d.name)) {
      await setAsidePack(repo, d.name);
      setAside.push(d.name);
    }
  }
  return { healed: healed.size, supplied, rewritten, setAside, left };
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
  const loaded = new Set(repo.objects.packs().map((p) => p.name));
  for (const name of (await writer.finish())?.names ?? []) {
    made.add(name);
    // It replaced a pack of the same name (a damaged one, written again the same way): open the new file.
    if (loaded.has(name)) await repo.objects.reopen(name);
  }
  await repo.objects.refresh();
  return true;
}

/** Writes each of `oids` as `read` gives it; those that do not read, and those above the read limit (not read). */
async function readAgain(oids: readonly Oid[], read: (oid: Oid) => Promise<GitObject>, write: Write): Promise<{ unread: Oid[]; tooLarge: Oid[] }> {
  const unread: Oid[] = [];
  const tooLarge: Oid[] = [];
  for (const oid of oids) {
    const o = await read(oid).catch((e: unknown) => (isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE) ? null : undefined));
    if (o === null) tooLarge.push(oid);
    else if (o === undefined) unread.push(oid);
    else await write(oid, o);
  }
  return { unread, tooLarge };
}

/**
 * Writes what `supplier` gives of `oids`, each hash-checked; how many. A supplier that cannot be
 * asked, or a copy that does not hash to its id, adds a line to `left`.
 */
async function fromSupplier(supplier: ObjectSupplier | undefined, oids: readonly Oid[], write: (oid: Oid, o: GitObject) => Promise<void>, left: string[]): Promise<number> {
  let n = 0;
  if (supplier === undefined) return n;
  for (let i = 0; i < oids.length; i += SUPPLY_BATCH) {
    let answer: ReadonlyMap<Oid, GitObject>;
    try {
      answer = await supplier.supply(oids.slice(i, i + SUPPLY_BATCH));
    } catch (e) {
      left.push(`${supplier.name} could not be asked: ${(e as Error).message}`);
      break;
    }
    for (const [oid, o] of answer) {
      if (hashObject(o.type, o.content) !== oid) {
        left.push(`${oid}: ${supplier.name} sent a copy that does not hash to it (dropped)`);
        continue;
      }
      await write(oid, o);
      n++;
    }
  }
  return n;
}

function isPromisorPack(repo: Repository, name: string): Promise<boolean> {
  return stat(join(repo.gitDir, 'objects', 'pack', `${name}.promisor`)).then(() => true, () => false);
}

/** Moves a pack's files into DAMAGED_DIR, its index first; files already gone (merged meanwhile) are passed. */
async function setAsidePack(repo: Repository, name: string): Promise<void> {
  const packDir = join(repo.gitDir, 'objects', 'pack');
  const to = join(repo.gitDir, DAMAGED_DIR);
  await mkdir(to, { recursive: true });
  for (const ext of [...PACK_FILES, 'keep', 'mtimes']) {
    await rename(join(packDir, `${name}.${ext}`), join(to, `${name}.${ext}`)).catch((e: unknown) => (errnoCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
  }
  await fsyncDir(to);
  await fsyncDir(packDir);
  await repo.objects.refresh();
}

function named(oids: readonly Oid[]): string {
  return `${oids.slice(0, NAMED).join(', ')}${oids.length > NAMED ? ', …' : ''}`;
}
