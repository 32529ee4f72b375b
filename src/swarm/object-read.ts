/**
 * On-demand reads: objects a reader waits on (a file's blob, the chunks of a range), asked of
 * one peer at a time with a `read` want, which peers serve at once rather than through the bulk
 * upload slot. Every object is checked against the ids asked for, as in a closure fetch; a peer
 * that sends anything else is dropped and avoided.
 */
import { hashObject, type Oid } from '../objects/oid.js';
import type { SwarmConnection } from './connection.js';
import { blamePeer, type BlameComponents } from './blame.js';
import { Deadline } from './deadline.js';
import type { LocalObjects } from './local-objects.js';
import type { SwarmMessage, WireObject } from './messages.js';
import { PartIntake } from './part-intake.js';

const REQUEST_IDLE_MS = 15_000;
/** A read is given up after this long in all, however its peer trickles objects. */
const REQUEST_MAX_MS = 60_000;

/** Whoever made a request gets the answers to it. */
export interface RequestOwner {
  handle(conn: SwarmConnection, m: SwarmMessage): void;
  /** Whether `request` is one of this owner's, asked of `conn`, still open. */
  awaits(conn: SwarmConnection, request: number): boolean;
  peerGone(conn: SwarmConnection): void;
}

export interface RequestRouting {
  /** A fresh request id, unique on this node. */
  readonly nextRequest: () => number;
  /** Registers a request so that answers on its connection reach its owner; undefined unregisters. */
  readonly track: (request: number, owner: RequestOwner | undefined) => void;
}

export interface ReadComponents extends RequestRouting, BlameComponents {}

/** What a read stores itself: a blob that comes in parts (too large for one message) goes into a pack of its own. */
export interface ReadStore {
  readonly local: Pick<LocalObjects, 'receiveLarge'>;
}

/**
 * Whether `o` is one of `wanted` and hashes to its id. If not, the peer is avoided for
 * AVOID_MS and disconnected: it lied about an object.
 */
export function acceptObject(conn: SwarmConnection, wanted: ReadonlySet<Oid>, o: WireObject, c: BlameComponents): boolean {
  if (wanted.has(o.oid) && hashObject(o.type, o.content) === o.oid) return true;
  blamePeer(conn, o.oid, `an object that is not ${o.oid}`, c);
  return false;
}

export interface ReadResult {
  /** The objects received, each checked. */
  readonly objects: readonly WireObject[];
  /** Blobs that came in parts, checked and stored here (not held: read them from the repository). */
  readonly stored: readonly Oid[];
  /** The peer was serving as many reads as it takes. */
  readonly busy: boolean;
}

/** One `read` (or `meta`) want to one peer: resolves once it is answered, refused, timed out, or the peer goes. */
export function readFrom(conn: SwarmConnection, oids: readonly Oid[], want: 'read' | 'meta', c: ReadComponents & ReadStore): Promise<ReadResult> {
  const request = c.nextRequest();
  const wanted = new Set(oids);
  const got: WireObject[] = [];
  const stored: Oid[] = [];
  return new Promise((resolve) => {
    const end = (busy: boolean): void => {
      clearTimeout(timer);
      cap.clear();
      parts.end();
      c.track(request, undefined);
      resolve({ objects: got, stored, busy });
    };
    const timer = setTimeout(() => {
      c.log.log('warn', 'read-timeout', { peer: conn.nodeId, request });
      conn.send({ kind: 'cancel', request });
      end(false);
    }, REQUEST_IDLE_MS);
    const cap = new Deadline(
      REQUEST_MAX_MS,
      () => {
        c.log.log('warn', 'read-too-slow', { peer: conn.nodeId, request, ms: REQUEST_MAX_MS });
        conn.send({ kind: 'cancel', request });
        end(false);
      },
      c.now,
    );
    const parts = new PartIntake(conn, wanted, c, {
      stored: (oid) => {
        wanted.delete(oid);
        stored.push(oid);
      },
      failed: (e) => {
        c.log.log('warn', 'read-store-failed', { peer: conn.nodeId, request, error: e.message });
        end(false);
      },
    });
    const answer = (m: SwarmMessage): void => {
      // Refused (larger than the swarm carries) comes before the last batch: the rest still comes.
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
    };
    c.track(request, {
      awaits: (from) => from === conn,
      handle(from, m) {
        if (from !== conn) return;
        if (m.kind !== 'part') return parts.after(() => answer(m));
        // Commits and trees never come in parts: parts answering a want of them are a lie.
        if (want === 'meta') {
          blamePeer(conn, m.oid, `parts of ${m.oid} answering a want of commits and trees`, c);
          return end(false);
        }
        // Parts are answers too, and push back the limit in all as they come.
        timer.refresh();
        cap.extend(m.zlib.length);
        parts.part(m);
      },
      peerGone(gone) {
        if (gone === conn) end(false);
      },
    });
    conn.send({ kind: 'want', request, want, oids, ahead: false });
  });
}
