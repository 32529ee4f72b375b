/**
 * Which member to ask for a newer revocation list. Announcements carry the version each member
 * holds, but a member may claim any: one claiming a version it never serves (or one whose service
 * trickles its answer) must not keep every node from hearing the list from the others, including
 * the list that revokes it. So each member is backed off on its own, never the node as a whole:
 * asked, it is not asked again for its gap (2 s at first); one whose answer brought nothing newer
 * (it failed, or held no newer list than this node's) has its gap doubled, up to 5 minutes; one
 * that brought a newer list has it reset. Of the members claiming a newer version and not backed
 * off, the one asked least recently goes first. Pure: time is passed in.
 */
import type { NodeId } from '../cluster/node-id.js';

export const REVOCATION_ASK_GAP_MS = 2_000;
export const REVOCATION_ASK_MAX_GAP_MS = 300_000;

/** What is needed of a member: who, and the version it claims. */
export interface Claim {
  readonly nodeId: NodeId;
  readonly revocationVersion: number;
}

interface Asked {
  readonly at: number;
  readonly gapMs: number;
}

export class RevocationSources {
  private readonly asked = new Map<NodeId, Asked>();

  /** The member to ask now, of `members`, for a list newer than `version`; undefined: none (none newer, or all backed off). */
  choose<M extends Claim>(members: readonly M[], version: number, now: number): M | undefined {
    let best: { readonly m: M; readonly at: number } | undefined;
    for (const m of members) {
      if (m.revocationVersion <= version) continue;
      const a = this.asked.get(m.nodeId);
      if (a !== undefined && now < a.at + a.gapMs) continue;
      const at = a?.at ?? -Infinity;
      if (best === undefined || at < best.at) best = { m, at };
    }
    if (best !== undefined) this.forgetAllBut(members);
    return best?.m;
  }

  /** `nodeId` is being asked, at `now`: not asked again within its gap. */
  asking(nodeId: NodeId, now: number): void {
    this.asked.set(nodeId, { at: now, gapMs: this.asked.get(nodeId)?.gapMs ?? REVOCATION_ASK_GAP_MS });
  }

  /** How asking `nodeId` ended: a newer list adopted, or nothing newer (failed, or no newer than ours). */
  answered(nodeId: NodeId, newer: boolean): void {
    const a = this.asked.get(nodeId);
    if (a === undefined) return;
    this.asked.set(nodeId, { at: a.at, gapMs: newer ? REVOCATION_ASK_GAP_MS : Math.min(2 * a.gapMs, REVOCATION_ASK_MAX_GAP_MS) });
  }

  /** When `nodeId` may be asked again (for the log), if it is backed off. */
  nextAt(nodeId: NodeId): number | undefined {
    const a = this.asked.get(nodeId);
    return a === undefined ? undefined : a.at + a.gapMs;
  }

  /** Members gone from the table are forgotten (their entries would outlive them). */
  private forgetAllBut(members: readonly Claim[]): void {
    if (this.asked.size === 0) return;
    const present = new Set(members.map((m) => m.nodeId));
    for (const id of this.asked.keys()) if (!present.has(id)) this.asked.delete(id);
  }
}
