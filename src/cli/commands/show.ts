import { readShallow } from '../../branches/shallow.js';
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
      // Where the history kept ends (git's shallow file names the commit), its paths are shown as added, as git shows a shallow commit; a parent lost otherwise is an error.
      const cut = (await readShallow(repo.gitDir)).has(oid);
      if (parent !== undefined && cut) await ctx.stdout.write(`(the history kept here ends at this commit: its parent is not here, so every path shows as added)\n\n`);
      const base = parent === undefined || cut ? undefined : (await readCommit(repo.objects, parent)).tree;
      await printChanges(ctx.stdout, diffTrees(repo.objects, base, c.tree));
      return 0;
    });
  },
};
