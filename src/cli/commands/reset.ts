import { ErrorCodes, GitfsError } from '../../errors.js';
import { parseBranchName } from '../../branches/ref-name.js';
import { unknownBranch } from '../../branches/ref-store.js';
import { parse, positionals, withRepo, type Command } from '../context.js';
import { withWork } from '../work-access.js';

const usage = 'gitfs reset --branch B';

export const reset: Command = {
  summary: "discard a branch's uncommitted changes (its working layer)",
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { branch: { type: 'string', short: 'b' } }, usage);
    positionals(rest, 0, 0, usage);
    if (values.branch === undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `usage: ${usage}`);
    const branch = parseBranchName(values.branch);
    return withRepo(ctx, values.repo, (repo) =>
      withWork(repo, async (work) => {
        const dropped = await work.reset(branch);
        if (dropped === 0 && (await repo.refs.resolve(branch)) === undefined) throw unknownBranch(branch);
        await ctx.stdout.write(`${branch}: ${dropped === 0 ? 'nothing to discard' : `discarded ${dropped} changed paths`}\n`);
        return 0;
      }),
    );
  },
};
