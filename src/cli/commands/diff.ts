import { resolveRevision } from '../../branches/revision.js';
import { diffTrees, type Change } from '../../files/diff.js';
import { readCommit } from '../../files/tree-reader.js';
import type { Output } from '../context.js';
import { parse, positionals, withRepo, type Command } from '../context.js';
import { printable } from '../format.js';

const usage = 'gitfs diff REV REV';
const LETTER: Record<Change['kind'], string> = { added: 'A', deleted: 'D', modified: 'M', 'type-changed': 'T', 'mode-changed': 'X' };

export async function printChanges(out: Output, changes: AsyncIterable<Change>): Promise<number> {
  let n = 0;
  for await (const c of changes) {
    await out.write(`${LETTER[c.kind]}\t${printable(c.path)}\n`);
    n++;
  }
  return n;
}

export const diff: Command = {
  summary: 'list the paths that differ between two commits',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, {}, usage);
    const [a, b] = positionals(rest, 2, 2, usage) as [string, string];
    return withRepo(ctx, values.repo, async (repo) => {
      const ta = (await readCommit(repo.objects, await resolveRevision(repo, a))).tree;
      const tb = (await readCommit(repo.objects, await resolveRevision(repo, b))).tree;
      await printChanges(ctx.stdout, diffTrees(repo.objects, ta, tb));
      return 0;
    });
  },
};
