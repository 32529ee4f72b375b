import { fsck as check, type FsckReport } from '../../files/fsck.js';
import { readShallow } from '../../branches/shallow.js';
import { ErrorCodes } from '../../errors.js';
import type { Oid } from '../../objects/oid.js';
import { DaemonObjects, objectSocketPath } from '../../node/object-socket.js';
import { isPartial } from '../../repo/partial.js';
import { recoverKilledPrune } from '../../repo/prune.js';
import { withPruneLock } from '../../repo/prune-lock.js';
import { DAMAGED_DIR, repair, verifyPacks, type PackDamage } from '../../repo/repair.js';
import type { Repository } from '../../repo/repository.js';
import { parse, positionals, withRepo, type Command, type CommandContext } from '../context.js';
import { ExitCodes } from '../exit-codes.js';

const usage = 'gitfs fsck [--repair]';

/** Problems a good copy of the object mends (not one whose content is wrong for its place: that copy hashes right). */
const MENDED_BY_A_COPY: ReadonlySet<string> = new Set([ErrorCodes.CORRUPT_OBJECT, ErrorCodes.OBJECT_NOT_FOUND, ErrorCodes.CORRUPT_PACK]);

interface Checked {
  readonly report: FsckReport;
  readonly packs: readonly PackDamage[];
  readonly problems: number;
}

export const fsck: Command = {
  summary: 'verify every pack and every object reachable from every branch; --repair mends what a good copy mends',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { repair: { type: 'boolean' } }, usage);
    positionals(rest, 0, 0, usage);
    return withRepo(ctx, values.repo, async (repo) => {
      // A prune killed mid-removal may have left objects set aside that refs name: back first (self-healing).
      const restored = await recoverKilledPrune(repo);
      if (restored > 0) await ctx.stdout.write(`put back ${restored} object files a killed prune had set aside (${repo.gitDir}/gitfs/pruning)\n`);
      let checked = await checkAll(ctx, repo);
      if (values.repair === true && checked.problems > 0) {
        const bad = checked.report.problems.filter((p) => MENDED_BY_A_COPY.has(p.code)).map((p) => p.oid);
        await mend(ctx, repo, bad, checked.packs);
        await ctx.stdout.write('checking again:\n');
        checked = await checkAll(ctx, repo);
      }
      return checked.problems === 0 ? ExitCodes.OK : ExitCodes.CHECK_FAILED;
    });
  },
};

/** The check: every pack read through (pack-verify.ts), every branch's objects read; each problem printed, then a summary line. */
async function checkAll(ctx: CommandContext, repo: Repository): Promise<Checked> {
  const packs = await verifyPacks(repo);
  const roots = (await repo.refs.list()).map((b) => ({ name: b.name, oid: b.oid }));
  const report = await check(repo.objects, roots, { partial: await isPartial(repo.gitDir), shallow: await readShallow(repo.gitDir) });
  for (const p of packs) {
    const entries = p.damaged.length > 0 ? `${p.damaged.length} entries fail their CRC-32: ${p.damaged.slice(0, 5).join(', ')}${p.damaged.length > 5 ? ', …' : ''}` : 'no entry fails its CRC-32';
    await ctx.stdout.write(`${ErrorCodes.CORRUPT_PACK} ${p.name}: ${p.checksumOk ? 'checksum right' : 'checksum wrong'}, ${entries}\n`);
  }
  for (const p of report.problems) {
    await ctx.stdout.write(`${p.code} ${p.oid}: ${p.message}\n${p.neededBy.map((w) => `  needed by ${w}\n`).join('')}`);
  }
  const unloaded = [...repo.objects.damagedPacks().values()];
  for (const e of unloaded) await ctx.stdout.write(`${e.code} ${e.message}\n`);
  const problems = packs.length + report.problems.length + unloaded.length;
  const absent = report.absent > 0 ? ` (${report.absent} blobs not here: kept on demand)` : '';
  const tooLarge = report.tooLarge > 0 ? ` (${report.tooLarge} blobs git stored as deltas above the read limit: left to git fsck)` : '';
  await ctx.stdout.write(`checked ${repo.objects.packs().length} packs, ${report.objects} objects in ${report.commits} commits of ${roots.length} branches${absent}${tooLarge}: ${problems} problems\n`);
  return { report, packs, problems };
}

/** Repairs (src/repo/repair.ts) with the node daemon as the supplier of what no pack here holds good, and says what it did. */
async function mend(ctx: CommandContext, repo: Repository, bad: readonly Oid[], packs: readonly PackDamage[]): Promise<void> {
  const r = await withPruneLock(repo.gitDir, () => repair(repo, bad, packs, new DaemonObjects(objectSocketPath(repo.gitDir))));
  await ctx.stdout.write(`repaired: ${r.healed} objects written again (${r.supplied} through the node daemon), ${r.rewritten.length} damaged packs rewritten (${r.setAside.length} set aside in ${repo.gitDir}/${DAMAGED_DIR})\n`);
  for (const line of r.left) await ctx.stdout.write(`  not repaired: ${line}\n`);
}
