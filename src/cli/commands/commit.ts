import { resolve } from 'node:path';
import { ErrorCodes, GitfsError } from '../../errors.js';
import { parseBranchName } from '../../branches/ref-name.js';
import { unknownBranch } from '../../branches/ref-store.js';
import { commitDirectory } from '../../repo/commit-directory.js';
import { parse, positionals, withRepo, type Command } from '../context.js';
import { humanBytes } from '../format.js';
import { withWork } from '../work-access.js';

const usage = 'gitfs commit --branch B [--from DIR] [-m MSG] [--strict] [--allow-empty] [--json]';

export const commit: Command = {
  summary: "snapshot a directory (--from) or the branch's working layer (written through the mount) as its next commit",
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(
      ctx,
      {
        branch: { type: 'string', short: 'b' },
        from: { type: 'string' },
        message: { type: 'string', short: 'm' },
        strict: { type: 'boolean' },
        'allow-empty': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      usage,
    );
    positionals(rest, 0, 0, usage);
    if (values.branch === undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `usage: ${usage}`);
    const branch = parseBranchName(values.branch);
    // As git: a message given must say something (left out, it is "gitfs commit").
    if (values.message !== undefined && values.message.trim() === '') throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'an empty commit message: give one, or leave -m out for "gitfs commit"');
    if (values.from === undefined) {
      return withRepo(ctx, values.repo, (repo) =>
        withWork(repo, async (work) => {
          const r = await work.commit(branch, values.message ?? '');
          // Nothing to commit on a branch that does not exist: a mistyped name, not "all is well".
          if (r.commit === undefined && r.parent === undefined) throw unknownBranch(branch);
          if (values.json === true) await ctx.stdout.write(`${JSON.stringify({ commit: r.commit ?? null, parent: r.parent ?? null, changed: r.changed })}\n`);
          else if (r.commit === undefined) await ctx.stdout.write(`nothing to commit: ${branch} has no uncommitted changes\n`);
          else await ctx.stdout.write(`[${branch} ${r.commit.slice(0, 12)}] ${(values.message ?? '').split('\n')[0] || 'gitfs commit'}\n ${r.changed} changed paths from the working layer\n`);
          return 0;
        }),
      );
    }
    return withRepo(ctx, values.repo, async (repo) => {
      const started = performance.now();
      const r = await commitDirectory(repo, branch, resolve(ctx.cwd, values.from as string), {
        message: values.message ?? '',
        strict: values.strict === true,
        allowEmpty: values['allow-empty'] === true,
      });
      const seconds = (performance.now() - started) / 1000;
      for (const s of r.report.skipped) await ctx.stderr.write(`gitfs: not stored: ${s.path} (${s.reason}${s.detail ? `: ${s.detail}` : ''})\n`);
      for (const h of r.report.hardLinks) await ctx.stderr.write(`gitfs: hard link stored as a copy: ${h.path} (same file as ${h.sameAs})\n`);
      if (values.json === true) {
        await ctx.stdout.write(`${JSON.stringify({ commit: r.commit ?? null, parent: r.parent ?? null, tree: r.tree, report: r.report, stats: r.stats, seconds })}\n`);
        return 0;
      }
      const rep = r.report;
      if (r.commit === undefined) {
        await ctx.stdout.write(`nothing to commit: ${branch} already holds this tree\n`);
        return 0;
      }
      await ctx.stdout.write(
        `[${branch} ${r.commit.slice(0, 12)}] ${(values.message ?? '').split('\n')[0] || 'gitfs commit'}\n` +
          ` ${rep.files} files (${rep.chunkedFiles} chunked), ${rep.symlinks} symlinks, ${rep.directories} directories, ${humanBytes(rep.bytes)}\n` +
          ` new: ${r.stats.objectsWritten} objects, ${humanBytes(r.stats.bytesWritten)} -> ${humanBytes(r.stats.bytesStored)} stored; ` +
          `${humanBytes(rep.bytes / Math.max(seconds, 1e-9))}/s\n`,
      );
      return 0;
    });
  },
};
