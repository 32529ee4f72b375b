import { measureUsage } from '../../files/usage.js';
import { parse, positionals, withRepo, type Command } from '../context.js';
import { humanBytes } from '../format.js';

const usage = 'gitfs stats [--json]';

export const stats: Command = {
  summary: 'logical bytes (every version as a full copy) against stored bytes: the dedup ratio',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { json: { type: 'boolean' } }, usage);
    positionals(rest, 0, 0, usage);
    return withRepo(ctx, values.repo, async (repo) => {
      const u = await measureUsage(repo);
      const ratio = u.storedBytes === 0 ? 0 : u.logicalBytes / u.storedBytes;
      if (values.json === true) {
        await ctx.stdout.write(`${JSON.stringify({ ...u, dedupRatio: ratio })}\n`);
        return 0;
      }
      await ctx.stdout.write(
        `branches:       ${u.branches}\ncommits:        ${u.commits}\n` +
          `logical bytes:  ${humanBytes(u.logicalBytes)} (every version of every branch as a full copy)\n` +
          `head bytes:     ${humanBytes(u.headBytes)} (the branch heads alone)\n` +
          `stored bytes:   ${humanBytes(u.storedBytes)} (objects/ on disk)\n` +
          `dedup ratio:    ${ratio.toFixed(2)}x\n`,
      );
      return 0;
    });
  },
};
