import { readThroughDaemon } from '../../node/object-socket.js';
import { resolve } from 'node:path';
import { exportEntry } from '../../files/exporter.js';
import { parse, positionals, withRepo, type Command } from '../context.js';
import { humanBytes } from '../format.js';
import { resolveEntry } from '../resolve.js';

const usage = 'gitfs export REV[:path] DIR';

export const exportCommand: Command = {
  summary: 'write a commit (or a path in it) out to a directory',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, {}, usage);
    const [expr, dir] = positionals(rest, 2, 2, usage) as [string, string];
    return withRepo(ctx, values.repo, async (repo) => {
      readThroughDaemon(repo);
      const { commit, entry } = await resolveEntry(repo, expr);
      const r = await exportEntry(repo.objects, entry, resolve(ctx.cwd, dir));
      await ctx.stderr.write(`exported ${commit.slice(0, 12)}: ${r.files} files, ${r.symlinks} symlinks, ${r.directories} directories, ${humanBytes(r.bytes)}\n`);
      return 0;
    });
  },
};
