/**
 * The swarm connections a node keeps open before any fetch needs them. A fetch used to dial
 * every peer when it started: on every node at once, so the committer, busy with its own walk of
 * the new commit, finished its handshakes last, and the first request for the commit waited on
 * them (0.8 s of an 8-node transfer, by scratch timings: BENCHMARKS.md). A fetch that starts on open
 * connections asks at once.
 *
 * Each node with policies keeps the peers within WARM_RADIUS places of it in the node order,
 * both ways round (its relay-chain neighbours first: schedule.ts `upstreamOf` walks that order),
 * so the set is bounded however large the cluster, and symmetric: of two nodes, each is in the
 * other's set. The one with the smaller id dials, so a pair never dials itself twice at once.
 */

/** Places either way in the node order: up to 2 × WARM_RADIUS warm connections per node. */
export const WARM_RADIUS = 8;

/** The peers `self` dials to keep warm: those within `radius` places of it, with larger ids. */
export function peersToDial(self: string, peers: readonly string[], radius = WARM_RADIUS): string[] {
  const order = [...new Set([self, ...peers])].sort();
  const at = order.indexOf(self);
  const n = order.length;
  const near = new Set<string>();
  for (let d = 1; d <= radius && 2 * d - 1 < n; d++) {
    near.add(order[(at + d) % n] as string);
    near.add(order[(((at - d) % n) + n) % n] as string);
  }
  near.delete(self);
  return [...near].filter((id) => self < id).sort();
}
