import { resolveRevision } from '../../branches/revision.js';
import { readShallow } from '../../branches/shallow.js';
import { history } from '../../files/history.js';
import { integerOption, parse, positionals, withRepo, type Command } from '../context.js';
import { firstLine, formatDate } from '../format.js';

const usage = 'gitfs log [REV] [-n N] [--first-parent] [--oneline]';

export const log: Command = {
  summary: 'show the commits of a branch, newest first',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(
      ctx,
      { 'max-count': { type: 'string', short: 'n' }, 'first-parent': { type: 'boolean' }, oneline: { type: 'boolean' } },
      usage,
    );
    const [rev = 'HEAD'] = positionals(rest, 0, 1, usage);
    const limit = integerOption(values['max-count'], 'max-count');
    return withRepo(ctx, values.repo, async (repo) => {
      const start = await resolveRevision(repo, rev);
      for await (const { oid, commit } of history(repo.objects, [start], { firstParent: values['first-parent'] === true, shallow: await readShallow(repo.gitDir), ...(limit === undefined ? {} : { limit }) })) {
        if (values.oneline === true) {
          await ctx.stdout.write(`${oid.slice(0, 12)} ${formatDate(commit.committer)} ${firstLine(commit.message)}\n`);
        } else {
          const body = commit.message.replace(/\n$/, '').split('\n').map((l) => `    ${l}`).join('\n');
          await ctx.stdout.write(`commit ${oid}\nAuthor: ${commit.author.name} <${commit.author.email}>\nDate:   ${formatDate(commit.committer)}\n\n${body}\n\n`);
        }
      }
      return 0;
    });
  },
};
