/**
 * A peer that sends what was not asked for (an object of another id, a blob in parts whose stream
 * breaks a rule) is disconnected and avoided by every fetch of this node for AVOID_MS.
 */
import type { NodeId } from '../cluster/node-id.js';
import type { Oid } from '../objects/oid.js';
import type { Logger } from '../util/log.js';
import type { SwarmConnection } from './connection.js';

export const AVOID_MS = 60_000;

export interface BlameComponents {
  readonly log: Logger;
  readonly now: () => number;
  /** Peers to avoid, shared by every fetch of this node. */
  readonly avoid: Map<NodeId, number>;
}

/** The peer sent `what` instead of the object `oid` asked for: it is avoided for AVOID_MS and disconnected. */
export function blamePeer(conn: SwarmConnection, oid: Oid, what: string, c: BlameComponents): void {
  c.avoid.set(conn.nodeId, c.now() + AVOID_MS);
  c.log.log('warn', 'peer-sent-wrong-object', { peer: conn.nodeId, oid, avoidMs: AVOID_MS, what });
  conn.close(`sent ${what}`);
}
