import type { NodeSnapshot } from '../../node/snapshot.js';
import { parse, positionals, repoPath, type Command } from '../context.js';
import { askDaemon } from '../daemon-client.js';
import { formatSeconds, humanAgo } from '../format.js';

const usage = 'gitfs peers [--json] [--stats]';

function render(s: NodeSnapshot, stats: boolean): string {
  let out = `this node ${s.self.nodeId} (${s.self.name}), cluster ${s.self.cluster}, ${s.self.endpoints.join(' ') || 'no endpoints'}\n`;
  out += s.peers.length === 0 ? 'no peers\n' : `${s.peers.length} peer${s.peers.length === 1 ? '' : 's'}:\n`;
  for (const p of s.peers) {
    out += `${p.nodeId}  ${p.name}  ${p.endpoints.join(' ') || '-'}  seen ${humanAgo(p.lastSeenAgoMs)}${p.restarts > 0 ? `  restarted ${p.restarts}x` : ''}\n`;
    for (const h of p.heads) out += `    ${h.oid.slice(0, 12)}  ${h.branch}  ${formatSeconds(h.commitTime)} UTC\n`;
  }
  if (stats && s.stats.received !== null) {
    const r = s.stats.received;
    out += `received ${r.received} packets, accepted ${r.accepted}; dropped: ${Object.entries(r)
      .filter(([k, v]) => k !== 'received' && k !== 'accepted' && v > 0)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none'}\n`;
  }
  if (stats && s.stats.sent !== null) out += `sent ${s.stats.sent.announcements} announcements in ${s.stats.sent.packets} packets, ${s.stats.sent.bytes} bytes\n`;
  return out;
}

export const peers: Command = {
  summary: 'the peers the running node daemon knows, with their branch heads',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { json: { type: 'boolean' }, stats: { type: 'boolean' } }, usage);
    positionals(rest, 0, 0, usage);
    const gitDir = repoPath(ctx, values.repo);
    const snap = (await askDaemon(gitDir, { op: 'peers' })) as NodeSnapshot;
    await ctx.stdout.write(values.json === true ? `${JSON.stringify(snap)}\n` : render(snap, values.stats === true));
    return 0;
  },
};
