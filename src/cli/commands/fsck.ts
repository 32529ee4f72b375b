import { fsck as check, type FsckReport } from '../../files/fsck.js';
import { readShallow } from '../../branches/shallow.js';
import { ErrorCodes } from '../../errors.js';
import type { Oid } from '../../objects/oid.js';
import { DaemonObjects, objectSocketPath } from '../../node/object-socket.js';
import { isPartial } from '../../repo/partial.js';
import { recoverKilledPrune } from '../../repo/prune.js';
import { withPruneLock } from '../../repo/prune-lock.js';
import { DAMAGED_DIR, recoverKilledRepair } from '../../repo/damaged-dir.js';
import { repair } from '../../repo/repair.js';
import { scanStore, type PackDamage, type StoreDamage } from '../../repo/store-scan.js';
import type { Repository } from '../../repo/repository.js';
import { parse, positionals, withRepo, type Command, type CommandContext } from '../context.js';
import { ExitCodes } from '../exit-codes.js';

const usage = 'gitfs fsck [--repair]';

/** Problems a good copy of the object mends (not one whose content is wrong for its place: that copy hashes right). */
const MENDED_BY_A_COPY: ReadonlySet<string> = new Set([ErrorCodes.CORRUPT_OBJECT, ErrorCodes.OBJECT_NOT_FOUND, ErrorCodes.CORRUPT_PACK]);

interface Checked {
  readonly report: FsckReport;
  readonly found: StoreDamage;
  readonly problems: number;
}

export const fsck: Command = {
  summary: 'verify every pack, loose object and object reachable from every branch; --repair mends what a good copy mends',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { repair: { type: 'boolean' } }, usage);
    positionals(rest, 0, 0, usage);
    return withRepo(ctx, values.repo, async (repo) => {
      // A prune killed mid-removal may have left objects set aside that refs name: back first (self-healing).
      const restored = await recoverKilledPrune(repo);
      if (restored > 0) await ctx.stdout.write(`put back ${restored} object files a killed prune had set aside (${repo.gitDir}/gitfs/pruning)\n`);
      const finished = await recoverKilledRepair(repo, repo.clock.now());
      if (finished > 0) await ctx.stdout.write(`set aside ${finished} damaged packs a killed repair had left half moved (${repo.gitDir}/${DAMAGED_DIR})\n`);
      let checked = await checkAll(ctx, repo);
      if (values.repair === true && checked.problems > 0) {
        const bad = checked.report.problems.filter((p) => MENDED_BY_A_COPY.has(p.code)).map((p) => p.oid);
        await mend(ctx, repo, bad, checked.found);
        await ctx.stdout.write('checking again:\n');
        checked = await checkAll(ctx, repo);
      }
      return checked.problems === 0 ? ExitCodes.OK : ExitCodes.CHECK_FAILED;
    });
  },
};

/** The check: every pack read through and every loose object hashed (store-scan.ts), every branch's objects read; each problem printed, then a summary line. */
async function checkAll(ctx: CommandContext, repo: Repository): Promise<Checked> {
  const found = await scanStore(repo);
  const roots = (await repo.refs.list()).map((b) => ({ name: b.name, oid: b.oid }));
  const report = await check(repo.objects, roots, { partial: await isPartial(repo.gitDir), shallow: await readShallow(repo.gitDir) });
  for (const p of found.packs) await ctx.stdout.write(`${ErrorCodes.CORRUPT_PACK} ${p.name}: ${packDamage(p)}\n`);
  for (const oid of found.loose) await ctx.stdout.write(`${ErrorCodes.CORRUPT_OBJECT} ${oid}: its loose file does not hash to it\n`);
  for (const c of found.caches) await ctx.stdout.write(`${ErrorCodes.CORRUPT_CACHE} ${c.path}: ${c.why}\n`);
  const broken = await repo.refs.broken();
  for (const b of broken) await ctx.stdout.write(`${ErrorCodes.IO} branch ${b.branch}: ${b.message} (gitfs branch delete ${b.branch} removes it)\n`);
  for (const p of report.problems) {
    await ctx.stdout.write(`${p.code} ${p.oid}: ${p.message}\n${p.neededBy.map((w) => `  needed by ${w}\n`).join('')}`);
  }
  // Packs that could not be opened, but for those read through above (their index parses).
  const named = new Set(found.packs.map((p) => p.name));
  const unloaded = [...repo.objects.damagedPacks()].filter(([name]) => !named.has(name)).map(([, e]) => e);
  for (const e of unloaded) await ctx.stdout.write(`${e.code} ${e.message}\n`);
  const problems = found.packs.length + found.loose.length + found.caches.length + broken.length + report.problems.length + unloaded.length;
  const absent = report.absent > 0 ? ` (${report.absent} blobs not here: kept on demand)` : '';
  const tooLarge = report.tooLarge > 0 ? ` (${report.tooLarge} blobs git stored as deltas above the read limit: left to git fsck)` : '';
  await ctx.stdout.write(`checked ${repo.objects.packs().length} packs, ${report.objects} objects in ${report.commits} commits of ${roots.length} branches${absent}${tooLarge}: ${problems} problems\n`);
  return { report, found, problems };
}

function packDamage(p: PackDamage): string {
  if (p.indexError !== undefined) return `its index cannot be read through: ${p.indexError}`;
  const entries = p.damaged.length > 0 ? `${p.damaged.length} entries fail their CRC-32: ${p.damaged.slice(0, 5).join(', ')}${p.damaged.length > 5 ? ', …' : ''}` : 'no entry fails its CRC-32';
  return `${p.checksumOk ? 'checksum right' : 'checksum wrong'}, ${entries}${p.unopened !== undefined ? ' (not opened: its objects are read elsewhere or not at all)' : ''}`;
}

/** Repairs (src/repo/repair.ts) with the node daemon as the supplier of what no pack here holds good, and says what it did. */
async function mend(ctx: CommandContext, repo: Repository, bad: readonly Oid[], found: StoreDamage): Promise<void> {
  const r = await withPruneLock(repo.gitDir, () => repair(repo, bad, found, new DaemonObjects(objectSocketPath(repo.gitDir))));
  const loose = r.looseSetAside > 0 ? `, ${r.looseSetAside} damaged loose files set aside` : '';
  if (r.cachesSetAside.length > 0) await ctx.stdout.write(`set aside in ${repo.gitDir}/${DAMAGED_DIR}: git's damaged caches ${r.cachesSetAside.join(', ')} (git reads without them; git commit-graph write, git multi-pack-index write or a repack writes them again; a cruft pack's .mtimes was written anew)\n`);
  if (r.reindexed.length > 0) await ctx.stdout.write(`made again from their packs: the damaged indexes of ${r.reindexed.join(', ')} (the damaged ones kept in ${repo.gitDir}/${DAMAGED_DIR})\n`);
  await ctx.stdout.write(`repaired: ${r.healed} objects written again (${r.supplied} through the node daemon), ${r.rewritten.length} damaged packs rewritten (${r.setAside.length} set aside in ${repo.gitDir}/${DAMAGED_DIR})${loose}\n`);
  for (const l of r.left) await ctx.stdout.write(`  not repaired [${l.reason}]: ${l.text}\n`);
}
