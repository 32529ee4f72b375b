import { ErrorCodes, GitfsError, isGitfsError } from '../../errors.js';
import { parseBranchName } from '../../branches/ref-name.js';
import { resolveRevision } from '../../branches/revision.js';
import { readCommit } from '../../files/tree-reader.js';
import { pointHeadIfDangling } from '../../repo/commit-directory.js';
import { parse, positionals, withRepo, type Command } from '../context.js';
import { withWork } from '../work-access.js';

const usage = 'gitfs branch [list | create NAME [REV] | delete NAME]';

export const branch: Command = {
  summary: 'list, create or delete branches',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, {}, usage);
    const [action = 'list', name, rev] = positionals(rest, 0, 3, usage);
    return withRepo(ctx, values.repo, async (repo) => {
      switch (action) {
        case 'list': {
          if (name !== undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `usage: ${usage}`);
          // HEAD detached, or naming something else than a branch (git can make both): no branch is marked.
          const head = await repo.refs.readHead().catch((e: unknown) => {
            if (isGitfsError(e, ErrorCodes.BAD_REVISION)) return undefined;
            throw e;
          });
          for (const b of await repo.refs.list()) await ctx.stdout.write(`${b.name === head ? '*' : ' '} ${b.oid.slice(0, 12)} ${b.name}\n`);
          for (const b of await repo.refs.broken()) await ctx.stderr.write(`gitfs branch: ignoring broken branch ${b.branch}: ${b.message} (gitfs branch delete ${b.branch} removes it)\n`);
          return 0;
        }
        case 'create': {
          if (name === undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `usage: ${usage}`);
          const branchName = parseBranchName(name);
          const target = await resolveRevision(repo, rev ?? 'HEAD');
          // A commit whose tree is not here (a walk interrupted after the commits, before their
          // trees) would make a branch that shows nothing and fails every read.
          const { tree } = await readCommit(repo.objects, target);
          if (!(await repo.objects.has(tree))) {
            throw new GitfsError(ErrorCodes.OBJECT_NOT_FOUND, `commit ${target} is incomplete here: its tree ${tree} is missing (gitfs fetch BRANCH brings it, for a branch that holds this commit)`, { oid: tree });
          }
          if ((await repo.refs.resolve(branchName)) !== undefined) {
            throw new GitfsError(ErrorCodes.BRANCH_EXISTS, `branch ${branchName} exists already`, { branch: branchName });
          }
          await repo.refs.update(branchName, { expected: null, next: target, message: `branch: Created from ${rev ?? 'HEAD'}` });
          await pointHeadIfDangling(repo, branchName);
          await ctx.stdout.write(`created ${branchName} at ${target.slice(0, 12)}\n`);
          return 0;
        }
        case 'delete': {
          if (name === undefined || rev !== undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `usage: ${usage}`);
          const branchName = parseBranchName(name);
          const current = await repo.refs.resolve(branchName).catch((e: unknown) => {
            if (isGitfsError(e) && e.data['malformed'] === true) return 'broken' as const;
            throw e;
          });
          if (current === undefined) throw new GitfsError(ErrorCodes.UNKNOWN_BRANCH, `no branch ${branchName}`, { branch: branchName });
          // As rmdir of its directory in the mount: not while changes written there are uncommitted.
          const changed = await withWork(repo, async (work) => (await work.status(branchName)).reduce((n, st) => n + st.changes.length, 0));
          if (changed > 0) {
            throw new GitfsError(
              ErrorCodes.WORK_CONFLICT,
              `${branchName} has ${changed} uncommitted changes (gitfs status --branch ${branchName}): commit them (gitfs commit --branch ${branchName}) or discard them (gitfs reset --branch ${branchName}) first`,
              { branch: branchName, changed },
            );
          }
          if (current === 'broken') {
            // Only the broken file goes: a value in packed-refs counts again, and the reflog stays.
            const { packed, logged } = await repo.refs.removeBroken(branchName);
            const after =
              packed !== undefined
                ? `${branchName} is at ${packed.slice(0, 12)} again, as packed-refs holds it`
                : logged !== undefined
                  ? `its reflog is kept: it was last at ${logged.slice(0, 12)} (gitfs branch create ${branchName} ${logged} brings it back)`
                  : 'nothing names what it was at';
            await ctx.stdout.write(`removed the broken file of ${branchName}; ${after}\n`);
            return 0;
          }
          await repo.refs.delete(branchName, current);
          await ctx.stdout.write(`deleted ${branchName} (was ${current.slice(0, 12)})\n`);
          return 0;
        }
        default:
          throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `unknown branch action ${JSON.stringify(action)}\nusage: ${usage}`);
      }
    });
  },
};
