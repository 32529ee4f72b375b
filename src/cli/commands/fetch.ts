import { parseBranchName } from '../../branches/ref-name.js';
import { ErrorCodes, GitfsError } from '../../errors.js';
import type { FetchOutcome, Landed } from '../../swarm/swarm.js';
import { parse, positionals, repoPath, type Command } from '../context.js';
import { askDaemon } from '../daemon-client.js';
import { humanBytes, printable } from '../format.js';

const usage = 'gitfs fetch BRANCH [--quiet]';
const POLL_MS = 200;
const MAX_WAIT_MS = 24 * 3_600_000;

interface Progress {
  readonly fetching: { commit: string; pieces: number; held: number; bytes: number; ms: number }[];
  /** `unmoved` and `landed` are absent from a daemon older than this command. */
  readonly outcomes: (Omit<FetchOutcome, 'unmoved' | 'landed'> & Partial<Pick<FetchOutcome, 'unmoved' | 'landed'>>)[];
}

/** Where the branch stands after the fetch of `commit`, where it is not simply there. */
function where(branch: string, commit: string, landed: Landed | undefined): string {
  if (landed === undefined || landed.at === commit) return '';
  const at = landed.at.slice(0, 12);
  if (landed.how === 'merged') {
    const beside = landed.setAside === undefined || landed.setAside === 0 ? '' : `; ${landed.setAside} version(s) both sides changed kept beside, listed by gitfs show ${at}`;
    return `; ${branch} moved to ${at}, its merge with the local head${beside}`;
  }
  if (landed.how === 'kept') return `; ${branch} stays at ${at}, which holds the same writes merged in another order`;
  return `; ${branch} stays at ${at}, which holds it`;
}

function bar(held: number, pieces: number): string {
  const width = 30;
  const done = pieces === 0 ? 0 : Math.round((width * held) / pieces);
  return `[${'#'.repeat(done)}${'.'.repeat(width - done)}]`;
}

export const fetch: Command = {
  summary: 'fetch the newest head of a branch from the swarm now, with progress (asks the running daemon)',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { quiet: { type: 'boolean', short: 'q' } }, usage);
    const [name] = positionals(rest, 1, 1, usage);
    const branch = parseBranchName(name as string);
    const gitDir = repoPath(ctx, values.repo);
    const ask = (req: unknown): Promise<unknown> => askDaemon(gitDir, req);
    const { commit } = (await ask({ op: 'fetch', branch })) as { commit: string };
    const tty = process.stderr.isTTY === true && values.quiet !== true;
    for (let waited = 0; waited < MAX_WAIT_MS; waited += POLL_MS) {
      const p = (await ask({ op: 'policy' })) as Progress;
      const outcome = [...p.outcomes].reverse().find((o) => o.commit === commit && o.branches.includes(branch));
      const running = p.fetching.find((f) => f.commit === commit);
      if (running === undefined && outcome !== undefined) {
        if (tty) await ctx.stderr.write('\n');
        if (outcome.error !== null) throw new GitfsError(ErrorCodes.PEER_FAILED, `fetch of ${branch} at ${commit.slice(0, 12)} failed: ${printable(outcome.error)}`, { commit });
        const stays = outcome.unmoved?.find((u) => u.branch === branch);
        if (stays !== undefined) throw new GitfsError(ErrorCodes.REF_CONFLICT, `fetched ${commit.slice(0, 12)}, but ${branch} stays where it was: ${printable(stays.why)}`, { commit });
        const landed = outcome.landed?.find((l) => l.branch === branch);
        await ctx.stdout.write(`fetched ${branch} at ${commit.slice(0, 12)}: ${humanBytes(outcome.bytes)} in ${(outcome.ms / 1000).toFixed(1)} s${where(branch, commit, landed)}\n`);
        return 0;
      }
      if (running !== undefined && tty) {
        await ctx.stderr.write(`\r${branch} ${bar(running.held, running.pieces)} ${running.held}/${running.pieces} pieces, ${humanBytes(running.bytes)}, ${(running.ms / 1000).toFixed(1)} s `);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw new GitfsError(ErrorCodes.PEER_FAILED, `fetch of ${branch} did not end`);
  },
};
