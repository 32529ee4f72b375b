import { fsck as check } from '../../files/fsck.js';
import { readShallow } from '../../branches/shallow.js';
import { isPartial } from '../../repo/partial.js';
import { recoverKilledPrune } from '../../repo/prune.js';
import { parse, positionals, withRepo, type Command } from '../context.js';
import { ExitCodes } from '../exit-codes.js';

const usage = 'gitfs fsck';

export const fsck: Command = {
  summary: 'verify every object reachable from every branch',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, {}, usage);
    positionals(rest, 0, 0, usage);
    return withRepo(ctx, values.repo, async (repo) => {
      // A prune killed mid-removal may have left objects set aside that refs name: back first (self-healing).
      const restored = await recoverKilledPrune(repo);
      if (restored > 0) await ctx.stdout.write(`put back ${restored} object files a killed prune had set aside (${repo.gitDir}/gitfs/pruning)\n`);
      const roots = (await repo.refs.list()).map((b) => ({ name: b.name, oid: b.oid }));
      const report = await check(repo.objects, roots, { partial: await isPartial(repo.gitDir), shallow: await readShallow(repo.gitDir) });
      for (const p of report.problems) {
        await ctx.stdout.write(`${p.code} ${p.oid}: ${p.message}\n${p.neededBy.map((w) => `  needed by ${w}\n`).join('')}`);
      }
      const damaged = [...repo.objects.damagedPacks().values()];
      for (const e of damaged) await ctx.stdout.write(`${e.code} ${e.message}\n`);
      const problems = report.problems.length + damaged.length;
      const absent = report.absent > 0 ? ` (${report.absent} blobs not here: kept on demand)` : '';
      const tooLarge = report.tooLarge > 0 ? ` (${report.tooLarge} blobs git stored as deltas above the read limit: left to git fsck)` : '';
      await ctx.stdout.write(`checked ${report.objects} objects in ${report.commits} commits of ${roots.length} branches${absent}${tooLarge}: ${problems} problems\n`);
      return problems === 0 ? ExitCodes.OK : ExitCodes.CHECK_FAILED;
    });
  },
};
