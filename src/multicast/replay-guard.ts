/**
 * Replay protection for announcements, per node. Within one instance, sequence numbers only
 * grow (each part of one announcement counts once); a new instance must carry a later time
 * than the last packet accepted from the node (a restart happens later, a replay of an old
 * instance's packet does not). Packets outside the time window are refused before this, so
 * state older than the window can be forgotten.
 */
export type ReplayVerdict = 'fresh' | 'restart' | 'replay' | 'duplicate';

interface NodeState {
  instance: string;
  seq: number;
  timeMs: number;
  parts: Set<number>;
  seenAt: number;
}

const MAX_NODES = 65_536;

export class ReplayGuard {
  private readonly nodes = new Map<string, NodeState>();

  constructor(private readonly windowMs: number) {}

  /** What check() would refuse `p` as, recording nothing (read before a packet's signature is checked); undefined if it would take it. */
  refusal(nodeId: string, p: { instance: string; seq: number; timeMs: number; part: number }, nowMs: number): 'replay' | 'duplicate' | undefined {
    const s = this.nodes.get(nodeId);
    if (s === undefined || s.seenAt < nowMs - 2 * this.windowMs) return undefined;
    if (p.instance !== s.instance) return p.timeMs <= s.timeMs ? 'replay' : undefined;
    if (p.seq < s.seq) return 'replay';
    return p.seq === s.seq && s.parts.has(p.part) ? 'duplicate' : undefined;
  }

  check(nodeId: string, p: { instance: string; seq: number; timeMs: number; part: number }, nowMs: number): ReplayVerdict {
    const refused = this.refusal(nodeId, p, nowMs);
    if (refused !== undefined) return refused;
    const s = this.nodes.get(nodeId);
    if (s !== undefined && s.seenAt >= nowMs - 2 * this.windowMs && p.instance === s.instance && p.seq === s.seq) {
      s.parts.add(p.part);
      s.seenAt = nowMs;
      return 'fresh';
    }
    const restart = s !== undefined && s.seenAt >= nowMs - 2 * this.windowMs && p.instance !== s.instance;
    this.remember(nodeId, p, nowMs);
    return restart ? 'restart' : 'fresh';
  }

  private remember(nodeId: string, p: { instance: string; seq: number; timeMs: number; part: number }, nowMs: number): void {
    if (this.nodes.size >= MAX_NODES && !this.nodes.has(nodeId)) this.forgetOlderThan(nowMs - 2 * this.windowMs);
    this.nodes.set(nodeId, { instance: p.instance, seq: p.seq, timeMs: p.timeMs, parts: new Set([p.part]), seenAt: nowMs });
  }

  forgetOlderThan(cutoffMs: number): void {
    for (const [id, s] of this.nodes) if (s.seenAt < cutoffMs) this.nodes.delete(id);
  }
}
