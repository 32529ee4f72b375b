/**
 * On-demand reads: objects a reader waits on (a file's blob, the chunks of a range), asked of
 * one peer at a time with a `read` want, which peers serve at once rather than through the bulk
 * upload slot. Every object is checked against the ids asked for, as in a closure fetch; a peer
 * that sends anything else is dropped and avoided.
 */
import type { NodeId } from '../cluster/node-id.js';
import { hashObject, type Oid } from '../objects/oid.js';
import type { Logger } from '../util/log.js';
import type { SwarmConnection } from './connection.js';
import type { SwarmMessage, WireObject } from './messages.js';

const REQUEST_IDLE_MS = 15_000;
/** A read is given up after this long in all, however its peer trickles objects. */
const REQUEST_MAX_MS = 60_000;
export const AVOID_MS = 60_000;

/** Whoever made a request gets the answers to it. */
export interface RequestOwner {
  handle(conn: SwarmConnection, m: SwarmMessage): void;
  peerGone(conn: SwarmConnection): void;
}

export interface RequestRouting {
  /** A fresh request id, unique on this node. */
  readonly nextRequest: () => number;
  /** Registers a request so that answers on its connection reach its owner; undefined unregisters. */
  readonly track: (request: number, owner: RequestOwner | undefined) => void;
}

export interface ReadComponents extends RequestRouting {
  readonly log: Logger;
  readonly now: () => number;
  /** Peers to avoid, shared by every fetch of this node. */
  readonly avoid: Map<NodeId, number>;
}

/**
 * Whether `o` is one of `wanted` and hashes to its id. If not, the peer is avoided for
 * AVOID_MS and disconnected: it lied about an object.
 */
export function acceptObject(conn: SwarmConnection, wanted: ReadonlySet<Oid>, o: WireObject, c: Pick<ReadComponents, 'log' | 'now' | 'avoid'>): boolean {
  if (wanted.has(o.oid) && hashObject(o.type, o.content) === o.oid) return true;
  c.avoid.set(conn.nodeId, c.now() + AVOID_MS);
  c.log.log('warn', 'peer-sent-wrong-object', { peer: conn.nodeId, oid: o.oid, avoidMs: AVOID_MS });
  conn.close(`sent an object that is not ${o.oid}`);
  return false;
}

export interface ReadResult {
  /** The objects received, each checked. */
  readonly objects: readonly WireObject[];
  /** The peer was serving as many reads as it takes. */
  readonly busy: boolean;
}

/** One `read` (or `meta`) want to one peer: resolves once it is answered, refused, timed out, or the peer goes. */
export function readFrom(conn: SwarmConnection, oids: readonly Oid[], want: 'read' | 'meta', c: ReadComponents): Promise<ReadResult> {
  const request = c.nextRequest();
  const wanted = new Set(oids);
  const got: WireObject[] = [];
  return new Promise((resolve) => {
    const end = (busy: boolean): void => {
      clearTimeout(timer);
      clearTimeout(cap);
      c.track(request, undefined);
      resolve({ objects: got, busy });
    };
    const timer = setTimeout(() => {
      c.log.log('warn', 'read-timeout', { peer: conn.nodeId, request });
      conn.send({ kind: 'cancel', request });
      end(false);
    }, REQUEST_IDLE_MS);
    const cap = setTimeout(() => {
      c.log.log('warn', 'read-too-slow', { peer: conn.nodeId, request, ms: REQUEST_MAX_MS });
      conn.send({ kind: 'cancel', request });
      end(false);
    }, REQUEST_MAX_MS);
    c.track(request, {
      handle(from, m) {
        if (from !== conn) return;
        // Refused (larger than a message carries) comes before the last batch: the rest still comes.
        if (m.kind === 'reject') return m.reason === 'refused' ? undefined : end(m.reason === 'busy');
        if (m.kind !== 'objects') return;
        // Only progress keeps a request alive: an empty message does not.
        if (m.objects.length > 0) timer.refresh();
        for (const o of m.objects) {
          if (!acceptObject(conn, wanted, o, c)) return end(false);
          wanted.delete(o.oid);
          got.push(o);
        }
        if (m.done) end(false);
      },
      peerGone(gone) {
        if (gone === conn) end(false);
      },
    });
    conn.send({ kind: 'want', request, want, oids, ahead: false });
  });
}
