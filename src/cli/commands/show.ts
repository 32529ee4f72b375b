import { resolveRevision } from '../../branches/revision.js';
import { diffTrees } from '../../files/diff.js';
import { readCommit } from '../../files/tree-reader.js';
import { parse, positionals, withRepo, type Command } from '../context.js';
import { formatDate } from '../format.js';
import { printChanges } from './diff.js';

const usage = 'gitfs show REV';

export const show: Command = {
  summary: 'show a commit and the paths it changed',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, {}, usage);
    const [rev] = positionals(rest, 1, 1, usage) as [string];
    return withRepo(ctx, values.repo, async (repo) => {
      const oid = await resolveRevision(repo, rev);
      const c = await readCommit(repo.objects, oid);
      const parent = c.parents[0];
      const body = c.message.replace(/\n$/, '').split('\n').map((l) => `    ${l}`).join('\n');
      await ctx.stdout.write(
        `commit ${oid}\ntree ${c.tree}\n${c.parents.map((p) => `parent ${p}\n`).join('')}` +
          `Author: ${c.author.name} <${c.author.email}>\nDate:   ${formatDate(c.committer)}\n\n${body}\n\n`,
      );
      // A parent not here (the history kept ends at this commit): its changes are shown against nothing, as git shows a shallow commit.
      const held = parent !== undefined && (await repo.objects.has(parent));
      if (parent !== undefined && !held) await ctx.stdout.write(`(the history kept here ends at this commit: its parent is not here, so every path shows as added)\n\n`);
      const base = held ? (await readCommit(repo.objects, parent)).tree : undefined;
      await printChanges(ctx.stdout, diffTrees(repo.objects, base, c.tree));
      return 0;
    });
  },
};
