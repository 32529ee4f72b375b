/** What `gitfs peers` shows: this node, its peers and their heads, and the packet counters, as plain JSON. */
import type { ClusterTrust, NodeIdentity } from '../cluster/identity.js';
import { reportView, type Endpoint, type ReportView } from '../multicast/announcement.js';
import type { Announcer } from '../multicast/announcer.js';
import type { Peer } from '../multicast/peer-table.js';
import type { ReceiveStats } from '../multicast/receiver.js';

export interface NodeSnapshot {
  readonly self: { nodeId: string; name: string; cluster: string; instance: string | null; endpoints: string[]; revocationVersion: number };
  readonly peers: {
    nodeId: string;
    name: string;
    instance: string;
    endpoints: string[];
    lastSeenAgoMs: number;
    upForMs: number;
    restarts: number;
    revocationVersion: number;
    heads: { branch: string; oid: string; commitTime: number }[];
    rollouts: ReportView[];
  }[];
  readonly stats: { received: ReceiveStats | null; sent: Announcer['stats'] | null };
}

const ep = (e: Endpoint): string => `${e.address}:${e.port}`;

export function snapshot(
  node: { identity: NodeIdentity; trust: ClusterTrust; config: { name: string }; endpoints: readonly Endpoint[] },
  peers: readonly Peer[],
  nowMs: number,
  received: ReceiveStats | undefined,
  announcer: Announcer | undefined,
): NodeSnapshot {
  return {
    self: {
      nodeId: node.identity.nodeId,
      name: node.config.name,
      cluster: node.trust.clusterId,
      instance: announcer?.instance ?? null,
      endpoints: node.endpoints.map(ep),
      revocationVersion: node.trust.revocationVersion,
    },
    peers: peers.map((p) => ({
      nodeId: p.nodeId,
      name: p.name,
      instance: p.instance,
      endpoints: p.endpoints.map(ep),
      lastSeenAgoMs: nowMs - p.lastSeen,
      upForMs: nowMs - p.firstSeen,
      restarts: p.restarts,
      revocationVersion: p.revocationVersion,
      heads: [...p.heads].map(([branch, h]) => ({ branch, oid: h.oid, commitTime: h.commitTime })),
      rollouts: [...p.rollouts.values()].map(reportView),
    })),
    stats: { received: received === undefined ? null : { ...received }, sent: announcer === undefined ? null : { ...announcer.stats } },
  };
}
