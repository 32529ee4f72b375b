/**
 * The peer table: what this node believes about every other member, merged from announcements
 * that the receiver has already authenticated. Pure (no I/O, time passed in). Each announcement
 * part replaces the heads in its name range, so a lost part leaves the rest intact and a
 * deleted branch disappears with the next part that covers its name. A peer not heard from
 * for `expireIntervals` of its own announced intervals is dropped.
 */
import type { BranchName } from '../branches/ref-name.js';
import type { NodeId } from '../cluster/node-id.js';
import type { Oid } from '../objects/oid.js';
import { compareNames, inRange, type Announcement, type Endpoint, type RolloutReport } from './announcement.js';

export interface PeerHead {
  readonly oid: Oid;
  readonly commitTime: number;
  /** When this node first saw this head from this peer (local ms). */
  readonly seenAt: number;
}

export interface Peer {
  readonly nodeId: NodeId;
  readonly name: string;
  readonly instance: string;
  readonly endpoints: readonly Endpoint[];
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly intervalMs: number;
  readonly revocationVersion: number;
  readonly restarts: number;
  readonly heads: ReadonlyMap<BranchName, PeerHead>;
  /** Its rollout agent's reports, by channel. */
  readonly rollouts: ReadonlyMap<BranchName, RolloutReport>;
}

export type PeerEvent =
  | { readonly kind: 'peer-up'; readonly nodeId: NodeId; readonly name: string; readonly instance: string }
  | { readonly kind: 'peer-restart'; readonly nodeId: NodeId; readonly instance: string; readonly previous: string }
  | { readonly kind: 'peer-down'; readonly nodeId: NodeId; readonly reason: 'revoked' }
  /** silentMs: how long it had not been heard when it was dropped. */
  | { readonly kind: 'peer-down'; readonly nodeId: NodeId; readonly reason: 'expired'; readonly silentMs: number }
  | { readonly kind: 'head'; readonly nodeId: NodeId; readonly branch: BranchName; readonly oid: Oid; readonly previous: Oid | null }
  | { readonly kind: 'head-removed'; readonly nodeId: NodeId; readonly branch: BranchName; readonly previous: Oid }
  | { readonly kind: 'rollout'; readonly nodeId: NodeId; readonly channel: BranchName; readonly state: string; readonly release: Oid | null }
  /** The peer announced more branches (or channels) than a peer may: those past the limit are not taken; told once while it does. */
  | { readonly kind: 'peer-over-limit'; readonly nodeId: NodeId; readonly what: 'heads' | 'rollouts'; readonly limit: number };

/**
 * Most heads and rollout reports kept of one peer. Each announcement part replaces its own name
 * range only, so a member announcing ranges that never overlap grew its entry without bound (a
 * node's memory, and the work of every part after). Far above what a fleet announces (BENCHMARKS.md
 * measures 1 000 branches a node).
 */
export const PEER_LIMITS = { heads: 100_000, rollouts: 1_024 } as const;

interface MutablePeer {
  nodeId: NodeId;
  name: string;
  instance: string;
  endpoints: readonly Endpoint[];
  firstSeen: number;
  lastSeen: number;
  intervalMs: number;
  revocationVersion: number;
  restarts: number;
  heads: Map<BranchName, PeerHead>;
  /** The heads' branch names in announcement order (compareNames): a part's range is found in it by bisection. */
  names: BranchName[];
  rollouts: Map<BranchName, RolloutReport>;
  /** What is over its limit, told once (a `peer-over-limit` event) until it is under again. */
  over: Set<'heads' | 'rollouts'>;
}

/** The first index of sorted `names` whose name is not before `name`. */
function lowerBound(names: readonly string[], name: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNames(names[mid] as string, name) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class PeerTable {
  private readonly peers = new Map<NodeId, MutablePeer>();

  constructor(private readonly options: { readonly expireIntervals: number; readonly maxPeers: number }) {}

  /** Merges an authenticated, fresh announcement part; returns what changed. */
  apply(a: Announcement, nowMs: number): PeerEvent[] {
    const events: PeerEvent[] = [];
    let p = this.peers.get(a.nodeId);
    if (p === undefined) {
      if (this.peers.size >= this.options.maxPeers) return events;
      p = { nodeId: a.nodeId, name: a.name, instance: a.instance, endpoints: a.endpoints, firstSeen: nowMs, lastSeen: nowMs, intervalMs: a.intervalMs, revocationVersion: a.revocationVersion, restarts: 0, heads: new Map(), names: [], rollouts: new Map(), over: new Set() };
      this.peers.set(a.nodeId, p);
      events.push({ kind: 'peer-up', nodeId: a.nodeId, name: a.name, instance: a.instance });
    } else if (p.instance !== a.instance) {
      events.push({ kind: 'peer-restart', nodeId: a.nodeId, instance: a.instance, previous: p.instance });
      p.instance = a.instance;
      p.restarts++;
    }
    p.name = a.name;
    p.endpoints = a.endpoints;
    p.lastSeen = nowMs;
    p.intervalMs = a.intervalMs;
    p.revocationVersion = a.revocationVersion;
    // Only the heads in the part's range are looked at: a peer with N branches sends ~N/17
    // parts a round, and a walk over all its heads per part cost every receiver N²/17 steps
    // (30 000 branches: 30 s of CPU a round).
    const listed = new Set(a.heads.map((h) => h.branch));
    const from = lowerBound(p.names, a.rangeStart);
    const to = a.rangeEnd === '' ? p.names.length : lowerBound(p.names, a.rangeEnd);
    const kept: BranchName[] = [];
    for (const branch of p.names.slice(from, to)) {
      if (listed.has(branch)) {
        kept.push(branch);
        continue;
      }
      const head = p.heads.get(branch) as PeerHead;
      p.heads.delete(branch);
      events.push({ kind: 'head-removed', nodeId: a.nodeId, branch, previous: head.oid });
    }
    this.mergeRollouts(p, a, events);
    let refused = false;
    for (const h of a.heads) {
      const old = p.heads.get(h.branch);
      if (old === undefined) {
        if (p.heads.size >= PEER_LIMITS.heads) {
          refused = true;
          continue;
        }
        kept.push(h.branch);
      }
      if (old?.oid === h.oid) continue;
      p.heads.set(h.branch, { oid: h.oid, commitTime: h.commitTime, seenAt: nowMs });
      events.push({ kind: 'head', nodeId: a.nodeId, branch: h.branch, oid: h.oid, previous: old?.oid ?? null });
    }
    // The part's heads are sorted and lie in its range, as the range's kept names do.
    p.names.splice(from, to - from, ...kept.sort(compareNames));
    overLimit(p, 'heads', refused, p.heads.size < PEER_LIMITS.heads, events);
    return events;
  }

  /** Like heads: the part's reports replace those in its range; a changed one is an event. */
  private mergeRollouts(p: MutablePeer, a: Announcement, events: PeerEvent[]): void {
    const before = new Map(p.rollouts);
    for (const channel of before.keys()) if (inRange(channel, a.rangeStart, a.rangeEnd)) p.rollouts.delete(channel);
    let refused = false;
    for (const r of a.rollouts) {
      const old = before.get(r.channel);
      if (!p.rollouts.has(r.channel) && p.rollouts.size >= PEER_LIMITS.rollouts) {
        refused = true;
        continue;
      }
      p.rollouts.set(r.channel, r);
      if (old === undefined || JSON.stringify(old) !== JSON.stringify(r)) events.push({ kind: 'rollout', nodeId: p.nodeId, channel: r.channel, state: r.state, release: r.release });
    }
    overLimit(p, 'rollouts', refused, p.rollouts.size < PEER_LIMITS.rollouts, events);
  }

  /** Drops peers silent for longer than expireIntervals of their own interval. */
  expire(nowMs: number): PeerEvent[] {
    const events: PeerEvent[] = [];
    for (const [id, p] of this.peers) {
      const silentMs = nowMs - p.lastSeen;
      if (silentMs > this.options.expireIntervals * p.intervalMs) {
        this.peers.delete(id);
        events.push({ kind: 'peer-down', nodeId: id, reason: 'expired', silentMs });
      }
    }
    return events;
  }

  /** Drops the peers `isRevoked` names. */
  dropRevoked(isRevoked: (id: NodeId) => boolean): PeerEvent[] {
    const events: PeerEvent[] = [];
    for (const id of [...this.peers.keys()]) {
      if (isRevoked(id)) {
        this.peers.delete(id);
        events.push({ kind: 'peer-down', nodeId: id, reason: 'revoked' });
      }
    }
    return events;
  }

  get(nodeId: NodeId): Peer | undefined {
    return this.peers.get(nodeId);
  }

  /** Every peer, by node id. */
  list(): Peer[] {
    return [...this.peers.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  }
}

/** Tells, once, that `p` announced more `what` than kept (`refused`); once `under` the limit again, the next time is told again. */
function overLimit(p: MutablePeer, what: 'heads' | 'rollouts', refused: boolean, under: boolean, events: PeerEvent[]): void {
  if (under) p.over.delete(what);
  if (!refused || p.over.has(what)) return;
  p.over.add(what);
  events.push({ kind: 'peer-over-limit', nodeId: p.nodeId, what, limit: PEER_LIMITS[what] });
}
