import type { BranchDecision } from '../../swarm/policy.js';
import type { FetchOutcome } from '../../swarm/swarm.js';
import { parse, positionals, repoPath, type Command } from '../context.js';
import { askDaemon } from '../daemon-client.js';
import { humanBytes, printable } from '../format.js';

const usage = 'gitfs policy [--json]';

interface PolicyAnswer {
  readonly decisions: BranchDecision[];
  readonly fetching: { commit: string; branches: string[]; pieces: number; held: number; bytes: number; ms: number }[];
  readonly outcomes: FetchOutcome[];
}

export const policy: Command = {
  summary: 'what the replication policies say this node should hold, and whether it does (asks the running daemon)',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { json: { type: 'boolean' } }, usage);
    positionals(rest, 0, 0, usage);
    const gitDir = repoPath(ctx, values.repo);
    const a = (await askDaemon(gitDir, { op: 'policy' })) as PolicyAnswer;
    if (values.json === true) {
      await ctx.stdout.write(`${JSON.stringify(a)}\n`);
      return 0;
    }
    let out = a.decisions.length === 0 ? 'no replicated branches (no policy matches a known branch)\n' : '';
    for (const d of a.decisions) {
      const target = d.target === undefined ? 'no head announced' : `newest ${d.target.oid.slice(0, 12)} (from ${d.target.from.length} node${d.target.from.length === 1 ? '' : 's'})`;
      const apart = d.apart === undefined ? '' : `; apart from ${d.apart.head.slice(0, 12)} (from ${d.apart.from.length} node${d.apart.from.length === 1 ? '' : 's'}): ${printable(d.apart.why)}`;
      out += `${d.state.padEnd(10)} ${d.branch}  policy #${d.policy}, holders ${d.holders.length}${d.shouldHold ? ' (this node among them)' : ''}; ${target}; here ${d.local?.slice(0, 12) ?? 'nothing'}${apart}\n`;
    }
    for (const f of a.fetching) out += `fetching ${f.commit.slice(0, 12)} for ${f.branches.join(', ')}: ${f.held}/${f.pieces} pieces, ${humanBytes(f.bytes)} in ${(f.ms / 1000).toFixed(1)} s\n`;
    await ctx.stdout.write(out);
    return 0;
  },
};
