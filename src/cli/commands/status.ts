import { parseBranchName } from '../../branches/ref-name.js';
import { unknownBranch } from '../../branches/ref-store.js';
import { parse, positionals, withRepo, type Command } from '../context.js';
import { printable } from '../format.js';
import { withWork } from '../work-access.js';

const usage = 'gitfs status [--branch B] [--json]';
const LETTER = { added: 'A', modified: 'M', deleted: 'D' } as const;

export const status: Command = {
  summary: 'uncommitted changes in the working layers (written through the mount)',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { branch: { type: 'string', short: 'b' }, json: { type: 'boolean' } }, usage);
    positionals(rest, 0, 0, usage);
    const branch = values.branch === undefined ? undefined : parseBranchName(values.branch);
    return withRepo(ctx, values.repo, (repo) =>
      withWork(repo, async (work) => {
        const all = await work.status(branch);
        if (branch !== undefined && all.every((st) => st.changes.length === 0) && (await repo.refs.resolve(branch)) === undefined) throw unknownBranch(branch);
        if (values.json === true) {
          await ctx.stdout.write(`${JSON.stringify(all)}\n`);
          return 0;
        }
        let out = '';
        for (const s of all) {
          if (s.changes.length === 0) {
            out += `${s.branch}: no changes\n`;
            continue;
          }
          out += `${s.branch} (base ${s.base === null ? 'none' : s.base.slice(0, 12)}): ${s.changes.length} changed\n`;
          for (const c of s.changes) out += `  ${LETTER[c.kind]} ${printable(c.path)}\n`;
        }
        await ctx.stdout.write(out === '' ? 'no uncommitted changes\n' : out);
        return 0;
      }),
    );
  },
};
