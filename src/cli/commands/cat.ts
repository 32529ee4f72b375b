import { readThroughDaemon } from '../../node/object-socket.js';
import { coalesce, fileContent } from '../../files/file-content.js';
import { integerOption, parse, positionals, withRepo, type Command } from '../context.js';
import { resolveEntry } from '../resolve.js';

const usage = 'gitfs cat REV:path [--offset N] [--length N]';

export const cat: Command = {
  summary: 'stream a file (or a byte range of it) to standard output',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { offset: { type: 'string' }, length: { type: 'string' } }, usage);
    const [expr] = positionals(rest, 1, 1, usage) as [string];
    const offset = integerOption(values.offset, 'offset') ?? 0;
    const length = integerOption(values.length, 'length');
    return withRepo(ctx, values.repo, async (repo) => {
      readThroughDaemon(repo);
      const { entry } = await resolveEntry(repo, expr);
      for await (const piece of coalesce(fileContent(repo.objects, entry, offset, length))) await ctx.stdout.write(piece);
      return 0;
    });
  },
};
