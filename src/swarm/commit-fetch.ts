/**
 * Fetching one closure from the swarm. First the commits and trees (small; they say what is
 * missing), in batches from peers that know the closure or announce its head (a large level
 * shared out among the fetchers: `fetchLevel`). Then the blobs,
 * piece by piece, from one source at a time with two requests in flight (pipelined): in order
 * from this node's upstream in the relay chain, or rarest first from any peer when the chain
 * cannot serve (schedule.ts). Every object is checked against the id asked for before it is
 * stored; a peer that sends a wrong one is dropped and avoided. A piece slower than its limit
 * (a blob streaming in parts) is raced by another holder (`raceSlow`). Each completed piece is
 * announced to subscribers at once. What is already here is never asked for again, so an
 * interrupted fetch resumes where it stopped.
 */
import { isOid, type Oid } from '../objects/oid.js';
import { decodeCommit } from '../objects/commit.js';
import { specialBlobRefusal, specialBlobTooLarge } from '../objects/special-file-check.js';
import type { SpecialFile } from '../objects/storable-name.js';
import type { NodeId } from '../cluster/node-id.js';
import { ErrorCodes, GitfsError, gitfsErrorOr } from '../errors.js';
import { lineToBase } from './base-chain.js';
import { pieceOids, walkClosure, type Closure } from './closure.js';
import type { SwarmConnection } from './connection.js';
import { NO_ROOM, type LocalObjects } from './local-objects.js';
import { LIMITS, type SwarmMessage, type WantKind, type WireObject } from './messages.js';
import { Deadline } from './deadline.js';
import { AVOID_MS, blamePeer } from './blame.js';
import { acceptObject, type ReadComponents, type RequestOwner } from './object-read.js';
import type { PartSink } from './part-assembly.js';
import { PartIntake } from './part-intake.js';
import { chooseSource, choosePiece, nextInOrder, upstreamOf, upstreamStuck, type ChainLink } from './schedule.js';
import { bitCount, bitSet, hasBit, setBit, type Transfer } from './transfers.js';
import type { TreeCache } from './tree-cache.js';
import { specialLinks, treeLinks } from './tree-links.js';

const PIPELINE = 2;
/** Ids per metadata request to a peer that knows the closure; two such requests are in flight at a time. */
const META_BATCH = 512;
/** A level of the walk with at least this many commits or trees is shared out among the fetchers (`fetchLevel`). */
const SHARE_LEVEL = 1024;
/** The smallest batch of a shared level: however many fetchers, a node asks at most level / this many owners. */
const SHARED_BATCH_MIN = 128;
/**
 * How long a node waits for its owner to deliver one want of a shared level before it asks the
 * knowers instead: an honest owner sends within 2 s of each arrival (AHEAD_WAIT_MS of the object
 * server) and a whole level of 3 355 trees took at most ~5 s at 16 nodes on 2 vCPUs.
 */
const OWNER_WAIT_MS = 10_000;
const REQUEST_IDLE_MS = 15_000;
const BUSY_BACKOFF_MS = 50;
const STALL_MS = 30_000;
/** How long the peers announcing a commit may take to send it before a fetch takes its whole closure instead of what it adds to a base. */
const SCOPE_STALL_MS = 5000;
/** A batch of commits and trees is given up after this long in all, however its peer trickles it (the walk has no other deadline). */
const META_MAX_MS = 60_000;
/**
 * A piece (~1 MiB) asked of a peer must come whole within this, however steadily its objects
 * trickle in (each resets only the idle timer); one that does not counts as withheld.
 */
const PIECE_MAX_MS = 60_000;
const SHORTCHANGE_LIMIT = 3;
/** A slow piece (past PIECE_MAX_MS) is raced while its parts come slower than this: 32 Mbit/s. */
const RACE_BELOW_BYTES_PER_S = 4 << 20;
/** Pieces between two `fetch-progress` debug events (64 MiB of a large image). */
const PROGRESS_EVERY = 64;
/** How long a node up the chain may gain no piece, while the node above it has some it lacks, before any peer may serve. */
const UPSTREAM_WAIT_MS = 5000;
/** The same for an upstream still learning the closure (its walk of the commits and trees). */
const UPSTREAM_WALK_MS = 15_000;
/**
 * How long an upstream may bring this node no piece, from when it first became its upstream or
 * brought its last, before any peer may serve, whatever it announces: an honest one is waited
 * for through its walk and a piece-time after. Its news is only its word: a member that said
 * again and again that it knows the closure held its downstream for good, and one that claims a
 * piece and takes the claim back in the next message is never asked for it.
 */
const UPSTREAM_BARREN_MS = UPSTREAM_WALK_MS + UPSTREAM_WAIT_MS;
/** After the upstream could not give a piece asked ahead, how long before asking ahead again. */
const AHEAD_BACKOFF_MS = 1000;
/**
 * The same while the upstream holds no piece yet: it answers at once until its own first want
 * is out (then it waits for what that brings), and each retry costs one small want.
 */
const AHEAD_START_BACKOFF_MS = 100;
/**
 * Where the parts of a blob the trees name as `.gitmodules` or `.gitattributes` go: nowhere. It is
 * only checked (its stream hashed to its id) before it refuses the commit: gitfs holds none so large.
 */
const CHECK_ONLY: PartSink = { write: async () => undefined, commit: async () => undefined, abort: async () => undefined };

/** A want's shape: what it asks, for which piece, and how long it may take in all. */
interface Want {
  readonly kind: WantKind;
  readonly oids: readonly Oid[];
  readonly piece?: number;
  /** Asked before the peer held it (its next piece): what does not come is no fault of the peer. */
  readonly ahead?: boolean;
  /** Asked of a second holder while a first is slow (`raceSlow`): not counted in the pipeline. */
  readonly race?: boolean;
  readonly maxMs?: number;
}

interface Pending {
  readonly request: number;
  readonly kind: WantKind;
  readonly conn: SwarmConnection;
  readonly startedAt: number;
  /** What was asked (`wanted` shrinks as it comes). */
  readonly oids: readonly Oid[];
  readonly wanted: Set<Oid>;
  readonly piece: number | undefined;
  readonly ahead: boolean;
  readonly race: boolean;
  readonly settle: (outcome: 'done' | 'retry') => void;
  timer: NodeJS.Timeout;
  /** Ends the request however the peer trickles (a batch of a shared level asked of its owner, a piece); parts push it back. */
  readonly cap: Deadline | undefined;
  /** The blobs in parts of the answer, once one comes. */
  parts: PartIntake | undefined;
  /** Bytes of parts received so far. */
  partBytes: number;
  /** Where the pace of its parts is judged from (`raceSlow`): since the first part, then over each piece's limit. */
  paceFrom: { at: number; bytes: number } | undefined;
}

export interface FetchComponents extends ReadComponents {
  readonly local: LocalObjects;
  readonly transfer: Transfer;
  readonly trees: TreeCache;
  /**
   * Where a smaller closure may do: `find` names a commit whose closure (for the transfer's
   * history) is whole here, if any. When the wanted commit descends from it in a line of
   * single-parent commits (base-chain.ts), `line` generations long, the fetch takes
   * `transfer(base, line)` instead: what those commits add to the base (`scope`).
   */
  readonly base?: { readonly find: () => Promise<Oid | undefined>; readonly transfer: (base: Oid, line: number) => Transfer };
}

/**
 * `oids` in batches of META_BATCH, given to `ask` two at a time (as many as a peer serves at
 * once: the next is asked while one is answered); once `ask` answers false, no more are given.
 */
async function twoAtATime(oids: readonly Oid[], ask: (batch: readonly Oid[]) => Promise<boolean>): Promise<void> {
  const batches: Oid[][] = [];
  for (let i = 0; i < oids.length; i += META_BATCH) batches.push(oids.slice(i, i + META_BATCH));
  const asker = async (): Promise<void> => {
    for (let b = batches.shift(); b !== undefined; b = batches.shift()) if (!(await ask(b))) batches.length = 0;
  };
  await Promise.all([asker(), asker()]);
}

interface FetchPeer {
  readonly conn: SwarmConnection;
  pieces: Set<number>;
  claim: { readonly bits: Uint8Array; readonly pieces: number; readonly count: number } | undefined;
  knows: boolean;
  /** Whether it ever said it knows the closure: learning it counts as progress once. */
  learned: boolean;
  /** Whether it answered this node's Interested in the closure followed (a Have). */
  answered: boolean;
  complete: boolean;
  gainedAt: number;
  holdsSince: number | undefined;
}

export class CommitFetch implements RequestOwner {
  /**
   * Per peer: its connection, the pieces it holds, whether it knows the closure or holds all of
   * it, when it last gained a piece and since when it holds any. Before the closure is known
   * here, its last `have` is kept as it came (`claim`, read by `settleClaims`).
   */
  private readonly peers = new Map<NodeId, FetchPeer>();
  private readonly pending = new Map<number, Pending>();
  private readonly busyUntil = new Map<NodeId, number>();
  private readonly announcers = new Set<NodeId>();
  private readonly strikes = new Map<NodeId, number>();
  /** When each piece was last raced (`raceSlow`). */
  private readonly racedAt = new Map<number, number>();
  /** Per id, the peers that said they cannot send it (`cannotSend`). */
  private readonly refusedBy = new Map<Oid, Set<NodeId>>();
  /** Per peer, the pieces it said it cannot send: its later news of them is not taken. */
  private readonly refusedPieces = new Map<NodeId, Set<number>>();
  /** Per blob in parts that had no room here, the size each peer declared for it. */
  private readonly noRoom = new Map<Oid, Map<NodeId, number>>();
  /** The closure fetched: the one asked for, or what its commit adds to a base (`scope`). */
  private current: Transfer;
  /** Whether the closure to fetch is settled: peers are asked about it (Interested) only then. */
  private scoped: boolean;
  private source: NodeId | undefined;
  /** The chain's upstream and since when. */
  private upstream: { id: NodeId | undefined; since: number } = { id: undefined, since: 0 };
  /**
   * Per peer, when it last brought this node a piece (or a part of one), or else when it first became its upstream
   * (UPSTREAM_BARREN_MS): kept by node, so an upstream that reconnects or leaves the chain a moment
   * starts no new wait.
   */
  private readonly broughtAt = new Map<NodeId, number>();
  private wake: (() => void) | undefined;
  private stopped: string | undefined;
  /** Why the commit is refused, when one of its objects is (the fetch then fails with this error). */
  private refused: GitfsError | undefined;

  /** Why this commit was refused for what it holds (final: fetched again, it would be refused again); undefined if it was not. */
  get refusal(): GitfsError | undefined {
    return this.refused;
  }
  /** Blobs the trees seen so far name as `.gitmodules` or `.gitattributes`: checked as they come. */
  private readonly special = new Map<Oid, SpecialFile[]>();
  /** When the last part of a blob in parts came (0: none yet). */
  private partAt = 0;
  /** Trees naming such blobs, not stored until those pass (`releaseHeld`). */
  private readonly held = new Map<Oid, { readonly tree: WireObject; readonly special: ReadonlyArray<{ readonly oid: Oid; readonly which: SpecialFile }> }>();
  private releasing: Promise<void> = Promise.resolve();
  /** When a piece asked ahead last did not come whole. */
  private aheadMissedAt = -Infinity;
  /**
   * Bytes and objects received; pieces asked ahead, and how many of them did not come whole;
   * slow pieces raced (`raceSlow`); ms from the start of run() until the closure was known here,
   * and until the first piece was whole.
   */
  readonly progress: { bytes: number; objects: number; aheadAsked: number; aheadMissed: number; raced: number; walkMs?: number; firstPieceMs?: number } = { bytes: 0, objects: 0, aheadAsked: 0, aheadMissed: 0, raced: 0 };
  private runStarted = 0;

  constructor(
    private readonly c: FetchComponents,
    /**
     * `order`: every node, sorted; this node's place in it spreads where fetchers start in the
     * piece list. `blobs`: false fetches only the commits and trees (a branch kept on demand).
     * `pieceMaxMs`: how long a piece may take in all (PIECE_MAX_MS).
     */
    private readonly o: { readonly order: readonly NodeId[]; readonly self: NodeId; readonly blobs: boolean; readonly pieceMaxMs?: number },
  ) {
    this.current = c.transfer;
    this.current.fetching++;
    this.scoped = c.base === undefined;
  }

  get withBlobs(): boolean {
    return this.o.blobs;
  }

  get commit(): Oid {
    return this.current.commit;
  }

  get transfer(): Transfer {
    return this.current;
  }

  /**
   * Peers announcing this commit as their head: they hold its commits and trees, so the walk may
   * ask them before their bitfield arrives (which waits for their own walk).
   */
  announcedBy(ids: readonly NodeId[]): void {
    for (const id of ids) this.announcers.add(id);
  }

  /** A connection to a peer that may hold some of the closure. */
  addPeer(conn: SwarmConnection): void {
    if (this.peers.has(conn.nodeId) && this.peers.get(conn.nodeId)?.conn.isOpen === true) return;
    this.peers.set(conn.nodeId, { conn, pieces: new Set(), claim: undefined, knows: false, learned: false, answered: false, complete: false, gainedAt: this.c.now(), holdsSince: undefined });
    if (this.scoped) this.interested(conn);
    // A walk waiting for a peer to ask asks at once, not at its next look.
    this.poke();
  }

  private interested(conn: SwarmConnection): void {
    const t = this.current;
    conn.send({ kind: 'interested', commit: t.commit, history: t.history, base: t.base });
  }

  /** This fetch's end: the closure it filled may be let go (transfers.ts). */
  release(): void {
    this.current.fetching--;
  }

  awaits(conn: SwarmConnection, request: number): boolean {
    return this.pending.get(request)?.conn === conn;
  }

  peerGone(conn: SwarmConnection): void {
    if (this.peers.get(conn.nodeId)?.conn === conn) this.peers.delete(conn.nodeId);
    for (const p of this.pending.values()) if (p.conn === conn) this.finish(p, 'retry');
    this.poke();
  }

  /** Have / have_piece for this closure, objects / reject for this fetch's requests. */
  handle(conn: SwarmConnection, m: SwarmMessage): void {
    const peer = this.peers.get(conn.nodeId);
    switch (m.kind) {
      case 'have': {
        // Before the closure is chosen, a Have can only be of the one asked first (a peer still following it from an earlier fetch).
        if (peer === undefined || !this.scoped) return;
        const knows = m.pieces > 0 || m.complete;
        const before = { pieces: peer.pieces, count: peer.pieces.size + (peer.claim?.count ?? 0) };
        const total = this.current.closure?.pieces;
        let gained: boolean;
        if (total === undefined) {
          // Nothing is asked by piece before the closure is known here, so the claim is kept as
          // it came (a copy: at most the message's bitfield) and read once the closure says how
          // many pieces there are. Read now, a hostile Have of 2^20 bits cost a set of 2^20 entries.
          const count = bitCount(m.bitfield, m.pieces);
          peer.claim = count === 0 ? undefined : { bits: Uint8Array.from(m.bitfield), pieces: m.pieces, count };
          peer.pieces = new Set();
          gained = (peer.claim?.count ?? 0) > before.count;
        } else {
          // Every node cuts a closure into as many pieces: bits past its end are none.
          peer.pieces = bitSet(m.bitfield, Math.min(m.pieces, total));
          for (const refused of this.refusedPieces.get(conn.nodeId) ?? []) peer.pieces.delete(refused);
          peer.claim = undefined;
          gained = [...peer.pieces].some((p) => !before.pieces.has(p) && this.gainFor(conn.nodeId, p));
        }
        // Progress is a piece this node needs, or learning the closure (a relay can ask for
        // nothing before) the first time: not the same news said again.
        if (gained || (knows && !peer.learned)) peer.gainedAt = this.c.now();
        if (peer.pieces.size + (peer.claim?.count ?? 0) > 0) peer.holdsSince ??= this.c.now();
        peer.knows = knows;
        peer.learned ||= knows;
        peer.answered = true;
        peer.complete = m.complete;
        break;
      }
      case 'have_piece': {
        if (peer === undefined || !this.scoped) return;
        const total = this.current.closure?.pieces;
        if (total === undefined) {
          // Before the closure is known, into the claim's bits (at most 128 KiB), not a set of up to 2^20 numbers a peer (the test bounds what 2^20 cost).
          if (!claimPiece(peer, m.piece)) return;
        } else {
          if (peer.pieces.has(m.piece) || m.piece >= total || this.refusedPieces.get(conn.nodeId)?.has(m.piece) === true) return;
          peer.pieces.add(m.piece);
        }
        if (total === undefined || this.gainFor(conn.nodeId, m.piece)) peer.gainedAt = this.c.now();
        peer.holdsSince ??= this.c.now();
        // Every peer tells every piece it gains: only one this node lacks, with room to ask for it, wakes the schedule.
        if (this.current.pieces.has(m.piece) || this.inflight() >= PIPELINE) return;
        break;
      }
      case 'free':
        this.busyUntil.delete(conn.nodeId);
        break;
      case 'part': {
        const p = this.pending.get(m.request);
        if (p === undefined || p.conn !== conn) return;
        // A want of commits and trees names no blob, and they never come in parts: a lie, which
        // would otherwise push back its limit and count as progress.
        if (p.kind === 'meta') return blamePeer(conn, m.oid, `parts of ${m.oid} answering a want of commits and trees`, this.c);
        // A server sends in parts only a blob too large for one message (object-server.ts): a blob
        // git reads as .gitmodules or .gitattributes that comes so, small enough for one, is a
        // lie (its stream, the real content, would hash to its id and refuse a good commit).
        if (this.special.has(m.oid) && m.size <= LIMITS.objectBytes) return blamePeer(conn, m.oid, `parts of ${m.oid}, ${m.size} bytes: small enough for one message`, this.c);
        // Parts are answers: they keep the request alive, push back its limit in all, and count as progress.
        p.timer.refresh();
        p.cap?.extend(m.zlib.length);
        p.paceFrom ??= { at: this.c.now(), bytes: p.partBytes };
        p.partBytes += m.zlib.length;
        this.partAt = this.c.now();
        // A piece streaming in parts (one large blob may take a minute) is its peer bringing one;
        // not one asked ahead, which is in nobody else's way only while it is short.
        if (p.piece !== undefined && !p.ahead) this.broughtAt.set(conn.nodeId, this.partAt);
        p.parts ??= new PartIntake(conn, p.wanted, { ...this.c, local: { receiveLarge: this.partSink } }, {
          stored: (oid, size) => {
            // A blob git reads as .gitmodules or .gitattributes came whole and hashed to its id, so
            // its size (above a message's, as checked at its first part) is proven: too large for
            // gitfs to check as git fsck would. A part alone is a peer's word (one naming a small
            // such blob with a huge size refused a good commit).
            const which = this.special.get(oid);
            if (which !== undefined) return this.refuse(specialBlobTooLarge(this.commit, oid, which));
            p.wanted.delete(oid);
            this.sizeProven(oid, size, p);
            this.progress.bytes += size;
            this.progress.objects++;
          },
          failed: (e) => this.partFailed(conn, p, e),
        });
        p.parts.part(m);
        return;
      }
      case 'objects':
      case 'reject': {
        const p = this.pending.get(m.request);
        if (p === undefined || p.conn !== conn) return;
        // Behind the parts that came before (a blob in parts counts once it is stored).
        if (p.parts !== undefined) return p.parts.after(() => this.answer(conn, p, m));
        this.answer(conn, p, m);
        return;
      }
      default:
        return;
    }
    this.poke();
  }

  /** An objects or reject message answering `p`. */
  private answer(conn: SwarmConnection, p: Pending, m: Extract<SwarmMessage, { kind: 'objects' | 'reject' }>): void {
    if (this.pending.get(p.request) !== p) return;
    switch (m.kind) {
      case 'objects':
        this.objects(conn, p, m.objects, m.done);
        break;
      case 'reject': {
        if (m.reason === 'refused') {
          this.cannotSend(conn, p, m.missing);
          break;
        }
        if (m.reason === 'busy') this.busyUntil.set(conn.nodeId, this.c.now() + BUSY_BACKOFF_MS);
        else if (p.piece !== undefined && p.ahead) this.aheadMissed();
        else if (p.piece !== undefined) this.shortchanged(conn, p.piece);
        this.finish(p, 'retry');
        break;
      }
    }
    this.poke();
  }

  /**
   * `conn`'s peer says it cannot send `oids` (larger than a message or its parts carry: a delta
   * git made of a blob above the read limit, a tree or commit above the message limit). That is
   * its word about those ids alone (a member answering every want so failed every fetch): it is
   * asked for them no more, a piece of them no longer counts as held by it, and another holder is
   * asked; the fetch fails only when none is left. The rest of the answer still comes (its `done`
   * ends the request: a piece short counts as withheld, as for a missing object); with nothing
   * left to come, it ends now.
   */
  private cannotSend(conn: SwarmConnection, p: Pending, oids: readonly Oid[]): void {
    const asked = oids.filter((oid) => p.wanted.has(oid));
    for (const oid of asked) {
      const by = this.refusedBy.get(oid) ?? new Set<NodeId>();
      this.refusedBy.set(oid, by.add(conn.nodeId));
    }
    if (p.piece !== undefined) {
      this.peers.get(conn.nodeId)?.pieces.delete(p.piece);
      const refused = this.refusedPieces.get(conn.nodeId) ?? new Set<number>();
      this.refusedPieces.set(conn.nodeId, refused.add(p.piece));
    }
    // A piece asked ahead was never claimed by that peer: its refusal says nothing of the holders
    // further up the chain (not all heard of yet), so it is a miss, not the end of the fetch.
    if (p.ahead) this.aheadMissed();
    else if (asked.length > 0 && !this.holderBesides(conn, p.piece, asked)) return this.stop(`${conn.nodeId} cannot send ${asked.slice(0, 4).join(', ')}: larger than the swarm carries, and no other peer holds it`);
    if (asked.length === p.wanted.size) this.objects(conn, p, [], true);
  }

  /**
   * Whether a peer besides `conn`'s, open and not avoided, may be asked for `oids` (it refused none
   * of them): one holding `piece`, or, for commits and trees (no piece), one that knows the closure
   * or announces its head.
   */
  private holderBesides(conn: SwarmConnection, piece: number | undefined, oids: readonly Oid[]): boolean {
    const now = this.c.now();
    return [...this.peers.values()].some(
      (fp) =>
        fp.conn !== conn &&
        fp.conn.isOpen &&
        (this.c.avoid.get(fp.conn.nodeId) ?? 0) <= now &&
        (piece === undefined ? fp.knows || this.announcers.has(fp.conn.nodeId) : fp.pieces.has(piece)) &&
        !this.saidCannotSend(fp.conn.nodeId, oids),
    );
  }

  /** Whether peer `id` said it cannot send one of `oids`. */
  private saidCannotSend(id: NodeId, oids: readonly Oid[]): boolean {
    return oids.some((oid) => this.refusedBy.get(oid)?.has(id) === true);
  }

  /** Where a blob in parts goes: a pack of its own, or nowhere (CHECK_ONLY) for one the trees name as `.gitmodules` or `.gitattributes`. */
  private readonly partSink = (oid: Oid, size: number): Promise<PartSink> => (this.special.has(oid) ? Promise.resolve(CHECK_ONLY) : this.c.local.receiveLarge(oid, size));

  /**
   * Storing a blob in parts failed here. No room for the size its parts declare: that is the
   * peer's word alone (a member declaring 64 GiB stopped every fetch that asked it for a blob in
   * parts), so the piece counts as withheld by it (three, and it is avoided) and is asked
   * elsewhere; the fetch stops once a second peer declares the same size, or when no other peer
   * holds the piece. While another request for the piece runs (a race), only this one goes: the
   * room is taken by the other copy. Any other failure stops it.
   */
  private partFailed(conn: SwarmConnection, p: Pending, e: GitfsError): void {
    const { oid, size, reason } = e.data;
    if (reason !== NO_ROOM || p.piece === undefined || !isOid(oid) || typeof size !== 'number') return this.stop(e.message);
    // In a race of a slow piece, no room for a second copy of the blob, of the size the other
    // stream declares, says nothing of that size: this request alone goes. Another size is this
    // peer's word alone, as below (a member declaring 40 GiB in every race took them all).
    if ([...this.pending.values()].some((q) => q !== p && q.piece === p.piece && q.parts?.open?.oid === oid && q.parts.open.size === size)) {
      this.c.log.log('warn', 'race-no-room', { peer: conn.nodeId, oid, size });
      conn.send({ kind: 'cancel', request: p.request });
      this.finish(p, 'retry');
      return this.poke();
    }
    const claims = this.noRoom.get(oid) ?? new Map<NodeId, number>();
    this.noRoom.set(oid, claims);
    const agreed = [...claims].some(([id, claimed]) => id !== conn.nodeId && claimed === size);
    claims.set(conn.nodeId, size);
    const piece = p.piece;
    // Held as the schedule sees it (a peer that withheld the piece no longer counts, complete or not).
    if (agreed || !this.holderBesides(conn, piece, [])) return this.stop(e.message);
    this.c.log.log('warn', 'part-size-no-room', { peer: conn.nodeId, oid, size });
    conn.send({ kind: 'cancel', request: p.request });
    this.shortchanged(conn, piece);
    this.finish(p, 'retry');
    this.poke();
  }

  stop(reason: string): void {
    this.stopped ??= reason;
    for (const p of this.pending.values()) this.finish(p, 'retry');
    this.poke();
  }

  /** Fetches until the closure is whole and durable here. */
  async run(): Promise<Closure> {
    const started = (this.runStarted = this.c.now());
    await this.scope();
    const t = this.current;
    if (t.closure === undefined) {
      const closure = await walkClosure(this.c.local, this.commit, t.history, {
        base: t.base,
        fetchMeta: (missing, level) => this.fetchLevel(missing, level),
        trees: this.c.trees,
        onLevel: (level) => this.c.log.log('debug', 'walk-level', { commit: this.commit, ...level, ms: this.c.now() - started }),
      });
      t.learn(closure, (oid) => this.c.local.hasNow(oid));
      this.c.log.log('debug', 'closure-known', { commit: this.commit, base: t.base, ms: this.c.now() - started, commits: closure.commits.length, trees: closure.trees.length, blobs: closure.blobs.length, pieces: closure.pieces, held: t.held });
    }
    const closure = t.closure as Closure;
    // Trees decoded by earlier walks named some of these: their blobs are checked as they come too.
    for (const s of closure.specialFiles) this.noteSpecial(s.oid, s.which);
    this.settleClaims(closure);
    this.progress.walkMs = this.c.now() - started;
    let lastProgress = this.c.now();
    let held = t.held;
    for (let round = 0; this.o.blobs && !t.complete; round++) {
      this.check();
      if (this.baseUnserved()) throw new GitfsError(ErrorCodes.PEER_FAILED, `the peers announcing ${this.commit} cannot list what it adds to ${t.base} (they lack it) and no peer holds a piece of it`);
      // While this node's disk is behind, no more is asked for, and no peer is blamed for the wait.
      if (this.c.local.backlogged) lastProgress = this.c.now();
      else this.fill(closure);
      if (t.held !== held) {
        held = t.held;
        lastProgress = this.c.now();
      }
      // A blob in parts completes no piece while it streams (for minutes, if it is large): its parts are progress.
      lastProgress = Math.max(lastProgress, this.partAt);
      if (this.c.now() - lastProgress > STALL_MS) {
        throw new GitfsError(ErrorCodes.PEER_FAILED, `no peer could supply the rest of ${this.commit} (${t.held}/${closure.pieces} pieces) for ${STALL_MS / 1000} s`);
      }
      await this.sleep(this.pending.size === 0 ? 100 : 1000);
    }
    await this.c.local.flush();
    return closure;
  }

  /**
   * Takes what the commit adds to the base instead of its whole closure, when a base is offered
   * and the commit descends from it in a line (its commits read here, or fetched from the peers
   * announcing it). Then peers are asked about the closure chosen.
   */
  private async scope(): Promise<void> {
    if (this.scoped) return;
    const next = await this.byBase().catch((e: unknown) => {
      this.c.log.log('debug', 'fetch-base-failed', { commit: this.commit, error: (e as Error).message });
      return undefined;
    });
    // Stopped, or the commit refused, meanwhile: that ends the fetch, not a choice of closure.
    this.check();
    if (next !== undefined) this.follow(next);
    this.scoped = true;
    for (const p of this.peers.values()) this.interested(p.conn);
  }

  /**
   * The transfer of what the commit adds to the base offered, if it descends from the base in a
   * line. The commits of that line not here are asked of the peers announcing the commit (no
   * other knows the closure yet: none was asked about it), one generation at a time, for
   * SCOPE_STALL_MS in all: then the whole closure is fetched, from any peer.
   */
  private async byBase(): Promise<Transfer | undefined> {
    const offer = this.c.base;
    if (offer === undefined || (this.announcers.size === 0 && !(await this.c.local.has(this.commit)))) return undefined;
    const base = await offer.find();
    if (base === undefined) return undefined;
    const deadline = this.c.now() + SCOPE_STALL_MS;
    const parentsOf = async (commit: Oid): Promise<readonly Oid[]> => {
      if (!(await this.c.local.has(commit))) await this.fetchMeta([commit], 'meta', Math.max(0, deadline - this.c.now()));
      return decodeCommit((await this.c.local.read(commit)).content, commit).parents;
    };
    const line = await lineToBase(this.commit, base, parentsOf);
    return line === undefined ? undefined : offer.transfer(base, line);
  }

  /**
   * By a base: every peer announcing the commit answered that it does not know the closure (its
   * walk by the base failed there: it lacks the base, pruned or never held), and no peer holds a
   * piece of it. Waited out, that is STALL_MS; failed now, the whole closure is fetched next.
   */
  private baseUnserved(): boolean {
    if (this.current.base === undefined || this.announcers.size === 0) return false;
    for (const id of this.announcers) {
      const p = this.peers.get(id);
      if (p === undefined || !p.answered || p.knows) return false;
    }
    for (const p of this.peers.values()) if (p.pieces.size > 0 || p.claim !== undefined) return false;
    return true;
  }

  /** Fills `t` from now on (transfers.ts keeps a transfer some fetch fills). */
  private follow(t: Transfer): void {
    this.current.fetching--;
    t.fetching++;
    this.current = t;
  }

  /**
   * The closure is known: each peer's pieces are what its last `have` claimed and every
   * `have_piece` since, up to the closure's end (piece numbers past it, heard of before, are none).
   */
  private settleClaims(closure: Closure): void {
    for (const peer of this.peers.values()) {
      const pieces = peer.claim === undefined ? new Set<number>() : bitSet(peer.claim.bits, Math.min(peer.claim.pieces, closure.pieces));
      for (const p of peer.pieces) if (p < closure.pieces) pieces.add(p);
      peer.pieces = pieces;
      peer.claim = undefined;
    }
  }

  private check(): void {
    if (this.refused !== undefined) throw this.refused;
    if (this.stopped !== undefined) throw new GitfsError(ErrorCodes.PEER_FAILED, `fetch of ${this.commit} stopped: ${this.stopped}`);
  }

  /**
   * A tree git fsck would refuse (its names: storable-name.ts) came, hash-checked: the commit is
   * refused, with that error. The tree is not stored; the peer is let be (it may be the committer).
   */
  private refuse(e: GitfsError): void {
    this.refused ??= e;
    this.stop(e.message);
  }

  /**
   * What to do with an object that matched its id: store it, hold it (a tree naming blobs git
   * reads as `.gitmodules` or `.gitattributes`: stored once they pass, `releaseHeld`), or refuse
   * the commit (a commit that does not parse, a tree or such a blob git fsck would refuse). A tree is decoded as it comes; the
   * walk takes it from the cache.
   */
  private verdict(o: WireObject): 'store' | 'hold' | 'refused' {
    // A commit that does not parse would fail the walk: refused before it is stored too.
    const refusal = o.type === 'blob' ? this.specialRefusal(o) : o.type === 'commit' ? gitfsErrorOr(() => decodeCommit(o.content, o.oid)) : undefined;
    if (refusal instanceof GitfsError) {
      this.refuse(refusal);
      return 'refused';
    }
    if (o.type !== 'tree') return 'store';
    const links = gitfsErrorOr(() => treeLinks(o.content, o.oid));
    if (links instanceof GitfsError) {
      this.refuse(links);
      return 'refused';
    }
    this.c.trees.set(o.oid, links);
    const special = specialLinks(links);
    if (special.length === 0) return 'store';
    for (const s of special) this.noteSpecial(s.oid, s.which);
    if (!this.held.has(o.oid)) {
      this.held.set(o.oid, { tree: { oid: o.oid, type: 'tree', content: Buffer.from(o.content) }, special });
      this.releaseHeld();
    }
    return 'hold';
  }

  private noteSpecial(oid: Oid, which: SpecialFile): void {
    const known = this.special.get(oid) ?? [];
    if (!known.includes(which)) this.special.set(oid, [...known, which]);
  }

  /** Why the commit is refused for `o`, an object its trees name as `.gitmodules` or `.gitattributes` (none if they do not). */
  private specialRefusal(o: { readonly oid: Oid; readonly type: string; readonly content: Buffer }): GitfsError | undefined {
    for (const which of this.special.get(o.oid) ?? []) {
      const refusal = specialBlobRefusal(this.commit, o, which);
      if (refusal !== undefined) return refusal;
    }
    return undefined;
  }

  /**
   * Stores the trees held back, once the blobs they name as `.gitmodules` or `.gitattributes` are
   * here (fetched with read wants, checked as they come) and pass git fsck's checks (those here
   * already were stored under other names, unchecked). One run at a time; the walk's fetches of
   * commits and trees wait for it (`fetchMeta`).
   */
  private releaseHeld(): void {
    this.releasing = this.releasing.then(async () => {
      try {
        const trees = [...this.held.values()];
        if (trees.length === 0) return;
        this.check();
        // One read want for the special blobs of every tree held (a level of directories each with its own .gitattributes).
        const absent = await this.c.local.absent([...new Set(trees.flatMap((h) => h.special.map((s) => s.oid)))]);
        if (absent.length > 0) await this.fetchMeta(absent, 'read');
        for (const h of trees) {
          for (const s of h.special) {
            const refusal = this.specialRefusal({ oid: s.oid, ...(await this.c.local.read(s.oid)) });
            if (refusal !== undefined) return this.refuse(refusal);
          }
          // Held in memory at once (hasNow), durable with the rest.
          void this.c.local.addAll([h.tree]).catch((e: unknown) => this.stop((e as Error).message));
          this.held.delete(h.tree.oid);
        }
      } catch (e) {
        this.stop((e as Error).message);
      }
    });
  }

  /**
   * The peers a piece may come from now: open, not avoided, not busy (a seed that said busy is
   * left alone, so the rarest piece is chosen among what forwarders hold). All of them count
   * for rarity, whichever source requests are in flight to.
   */
  private usable(now: number): Map<string, ReadonlySet<number>> {
    const out = new Map<string, ReadonlySet<number>>();
    for (const [id, p] of this.peers) {
      if (!p.conn.isOpen || (this.c.avoid.get(id) ?? 0) > now || (this.busyUntil.get(id) ?? 0) > now) continue;
      out.set(id, p.pieces);
    }
    return out;
  }

  /**
   * Whether peer `id` newly holding `piece` is progress (upstreamStuck): for this node's upstream,
   * only a piece it needs (`needs`); for a node further up, any piece, the chain moving.
   */
  private gainFor(id: NodeId, piece: number): boolean {
    return id !== this.upstream.id || this.needs(piece);
  }

  /**
   * Whether a peer newly holding `piece` brings this node closer: it lacks the piece and asks
   * nobody for it, so it may ask that peer now (a claim that does not come costs a strike). News
   * of a piece held here, or coming from elsewhere, says nothing of what that peer will bring.
   */
  private needs(piece: number): boolean {
    if (this.current.pieces.has(piece)) return false;
    for (const p of this.pending.values()) if (p.piece === piece) return false;
    return true;
  }

  private inflight(): number {
    let n = 0;
    for (const p of this.pending.values()) if (p.piece !== undefined && !p.race) n++;
    return n;
  }

  /**
   * Keeps PIPELINE piece requests in flight. First choice: the upstream of the relay chain
   * (schedule.ts `upstreamOf`), its pieces in order. Rarest-first from any peer only when there
   * is no upstream, the upstream is busy, or it is stuck (`upstreamStuck`).
   */
  private fill(closure: Closure): void {
    const t = this.current;
    const now = this.c.now();
    this.raceSlow(closure, now);
    while (this.inflight() < PIPELINE) {
      const peers = this.usable(now);
      const inFlight = new Set([...this.pending.values()].flatMap((p) => (p.piece === undefined ? [] : [p.piece])));
      const mine = t.pieces;
      const choice: { piece: number; from: NodeId; ahead?: true } | undefined = this.fromUpstream(mine, inFlight, now) ?? this.rarest(closure, peers, mine, inFlight, now);
      if (choice === undefined) return;
      // One source at a time: the next piece is best had elsewhere, so switch once the pipeline drains.
      if (this.inflight() > 0 && choice.from !== this.source) return;
      const peer = this.peers.get(choice.from);
      if (peer === undefined) return;
      this.source = choice.from;
      const wanted: Oid[] = [];
      for (const oid of pieceOids(closure, choice.piece)) if (!this.c.local.hasNow(oid)) wanted.push(oid);
      if (wanted.length === 0) {
        t.markPiece(choice.piece);
        continue;
      }
      if (choice.ahead === true) this.progress.aheadAsked++;
      void this.request(peer.conn, { kind: 'blobs', oids: wanted, piece: choice.piece, ahead: choice.ahead === true, maxMs: this.o.pieceMaxMs ?? PIECE_MAX_MS });
    }
  }

  /**
   * The endgame of a slow piece: a piece request older than a piece's limit in all (only the
   * parts of a large blob keep one that long, each MiB buying a second: deadline.ts) whose parts
   * came slower than RACE_BELOW_BYTES_PER_S over the last piece's limit (from the first part: a
   * want waiting in its peer's upload queue is not slow, and a burst at first buys no time) is
   * raced by the same want of another holder, if one
   * is free; whichever brings the piece first wins and the other is cancelled (`completed`). A
   * member declaring a huge Part.size and streaming at that floor used to pin the piece for as
   * long as the size it declared; an honest peer slowed down holds it no longer than the fastest
   * holder takes. One race per piece at a time, and a piece is raced again only after a piece's
   * limit (a holder that said busy is not asked at every look).
   */
  private raceSlow(closure: Closure, now: number): void {
    const maxMs = this.o.pieceMaxMs ?? PIECE_MAX_MS;
    const byPiece = new Map<number, Pending[]>();
    for (const p of this.pending.values()) if (p.piece !== undefined) byPiece.set(p.piece, [...(byPiece.get(p.piece) ?? []), p]);
    for (const [piece, [slow, ...others]] of byPiece) {
      const pace = slow?.paceFrom;
      if (slow === undefined || pace === undefined || others.length > 0 || slow.ahead || now - slow.startedAt < maxMs || now - pace.at < maxMs) continue;
      // Judged over the last piece's limit, then from here again.
      slow.paceFrom = { at: now, bytes: slow.partBytes };
      // A large blob coming fast is left alone: raced, it would cross the network, and need room on disk, twice.
      if (((slow.partBytes - pace.bytes) * 1000) / (now - pace.at) >= RACE_BELOW_BYTES_PER_S || now - (this.racedAt.get(piece) ?? -Infinity) < maxMs) continue;
      const peers = this.usable(now);
      peers.delete(slow.conn.nodeId);
      const from = chooseSource({ piece, peers, busy: new Set(), avoid: new Set(), order: this.o.order, pieces: closure.pieces }) as NodeId | undefined;
      const peer = from === undefined ? undefined : this.peers.get(from);
      const oids = pieceOids(closure, piece).filter((oid) => !this.c.local.hasNow(oid));
      if (peer === undefined || oids.length === 0) continue;
      this.c.log.log('info', 'slow-piece-raced', { commit: this.commit, piece, slow: slow.conn.nodeId, ms: now - slow.startedAt, from: peer.conn.nodeId });
      if (!this.racedAt.has(piece)) this.progress.raced++;
      this.racedAt.set(piece, now);
      void this.request(peer.conn, { kind: 'blobs', oids, piece, race: true, maxMs });
    }
  }

  /**
   * Peers taking part in this closure, reachable and not avoided: those that know it or hold all
   * of it, and those fetching it (they asked us about it) before their own walk has told them
   * what it holds, so that a chain forms from the start.
   */
  private participants(now: number): Set<string> {
    const fetching = new Set([...this.current.subscribers].map((c) => c.nodeId));
    const out = new Set<string>();
    for (const [id, p] of this.peers) if (p.conn.isOpen && (p.knows || p.complete || fetching.has(id)) && (this.c.avoid.get(id) ?? 0) <= now) out.add(id);
    return out;
  }

  /**
   * The next piece from the chain's upstream; undefined when it cannot or should not serve us now.
   * When it holds nothing more that this node lacks, its own next piece is asked ahead.
   */
  private fromUpstream(mine: ReadonlySet<number>, inFlight: ReadonlySet<number>, now: number): { piece: number; from: NodeId; ahead?: true } | undefined {
    const up = upstreamOf({ self: this.o.self, order: this.o.order, candidates: this.participants(now) }) as NodeId | undefined;
    if (up !== this.upstream.id) this.upstream = { id: up, since: now };
    if (up !== undefined && !this.broughtAt.has(up)) this.broughtAt.set(up, now);
    const peer = up === undefined ? undefined : this.peers.get(up);
    if (up === undefined || peer === undefined || (this.busyUntil.get(up) ?? 0) > now) return undefined;
    const piece = nextInOrder({ mine, source: peer.pieces, inFlight });
    if (piece !== undefined) return { piece, from: up };
    const next = this.aheadOf(peer, mine, inFlight, now);
    return next === undefined ? undefined : { piece: next, from: up, ahead: true };
  }

  /**
   * The piece to ask the upstream for before it holds it: the first it lacks, which a relay of
   * the chain is fetching now. It sends the objects as they reach it, so a piece crosses a hop
   * a message after it arrived rather than after the whole piece, the news of it and the want.
   * One such request at a time, to an upstream that is moving; none for a while after one that
   * did not come whole. An upstream that knows the closure is asked so for its first piece too,
   * before it holds any: otherwise each hop of the chain would start a whole piece, its news and
   * a want after the hop before it, and every later hop inherits that lag.
   */
  private aheadOf(peer: { readonly pieces: ReadonlySet<number>; readonly complete: boolean; readonly knows: boolean }, mine: ReadonlySet<number>, inFlight: ReadonlySet<number>, now: number): number | undefined {
    const closure = this.current.closure;
    const backoff = peer.pieces.size === 0 ? AHEAD_START_BACKOFF_MS : AHEAD_BACKOFF_MS;
    if (closure === undefined || peer.complete || !peer.knows || now - this.aheadMissedAt < backoff) return undefined;
    for (const p of this.pending.values()) if (p.ahead) return undefined;
    let next = 0;
    while (next < closure.pieces && peer.pieces.has(next)) next++;
    if (next >= closure.pieces || mine.has(next) || inFlight.has(next) || this.upstreamStalled(now)) return undefined;
    return next;
  }

  /** Whether the upstream is stuck (schedule.ts `upstreamStuck`), or barren (UPSTREAM_BARREN_MS), so that others may serve. */
  private upstreamStalled(now: number): boolean {
    const up = this.upstream.id;
    if (up !== undefined && now - (this.broughtAt.get(up) ?? now) >= UPSTREAM_BARREN_MS) return true;
    const candidates = this.participants(now);
    const chain: ChainLink[] = [];
    for (let at = this.upstream.id; at !== undefined && at !== this.o.self && chain.length < this.o.order.length; ) {
      const peer = this.peers.get(at);
      if (peer === undefined) break;
      chain.push({
        pieces: peer.pieces,
        idleMs: now - Math.max(peer.gainedAt, this.upstream.since),
        heldMs: peer.complete ? Infinity : peer.holdsSince === undefined ? 0 : now - peer.holdsSince,
        waitMs: peer.knows || peer.complete ? UPSTREAM_WAIT_MS : UPSTREAM_WALK_MS,
      });
      if (peer.complete) break;
      candidates.delete(at);
      at = upstreamOf({ self: at, order: this.o.order, candidates }) as NodeId | undefined;
    }
    return upstreamStuck(chain);
  }

  private rarest(closure: Closure, peers: Map<string, ReadonlySet<number>>, mine: ReadonlySet<number>, inFlight: ReadonlySet<number>, now: number): { piece: number; from: NodeId } | undefined {
    const up = this.upstream.id;
    if (up !== undefined && (this.busyUntil.get(up) ?? 0) <= now && !this.upstreamStalled(now)) return undefined;
    const offset = Math.floor((Math.max(0, this.o.order.indexOf(this.o.self)) * closure.pieces) / Math.max(1, this.o.order.length));
    const piece = choosePiece({ mine, peers, inFlight, pieces: closure.pieces, offset });
    if (piece === undefined) return undefined;
    const busy = new Set([...this.busyUntil].filter(([, until]) => until > now).map(([id]) => id));
    const avoid = new Set([...this.c.avoid].filter(([, until]) => until > now).map(([id]) => id));
    const from = chooseSource({ piece, peers, busy, avoid, order: this.o.order, pieces: closure.pieces }) as NodeId | undefined;
    return from === undefined ? undefined : { piece, from };
  }

  private request(conn: SwarmConnection, want: Want): Promise<'done' | 'retry'> {
    const request = this.c.nextRequest();
    const { kind, oids, maxMs } = want;
    const ahead = want.ahead ?? false;
    return new Promise((resolve) => {
      const p: Pending = {
        request,
        kind,
        conn,
        startedAt: this.c.now(),
        oids,
        wanted: new Set(oids),
        piece: want.piece,
        ahead,
        race: want.race ?? false,
        settle: resolve,
        timer: setTimeout(() => this.timeout(p), REQUEST_IDLE_MS),
        cap: maxMs === undefined ? undefined : new Deadline(maxMs, () => this.giveUp(p), this.c.now),
        parts: undefined,
        partBytes: 0,
        paceFrom: undefined,
      };
      this.pending.set(request, p);
      // On their way: a peer that asks this node ahead for them is answered as they arrive.
      this.c.local.expect(oids);
      this.c.track(request, this);
      conn.send({ kind: 'want', request, want: kind, oids, ahead });
    });
  }

  /**
   * A peer did not deliver a piece it said it holds: it no longer counts as holding it, and a
   * peer that does this SHORTCHANGE_LIMIT times is avoided like one that sent a wrong object.
   */
  private shortchanged(conn: SwarmConnection, piece: number): void {
    this.peers.get(conn.nodeId)?.pieces.delete(piece);
    const strikes = (this.strikes.get(conn.nodeId) ?? 0) + 1;
    this.strikes.set(conn.nodeId, strikes);
    if (strikes >= SHORTCHANGE_LIMIT) {
      this.c.avoid.set(conn.nodeId, this.c.now() + AVOID_MS);
      this.c.log.log('warn', 'peer-withholds-pieces', { peer: conn.nodeId, strikes, avoidMs: AVOID_MS });
    }
  }

  private timeout(p: Pending): void {
    this.c.log.log('warn', 'request-timeout', { peer: p.conn.nodeId, request: p.request });
    p.conn.send({ kind: 'cancel', request: p.request });
    this.busyUntil.set(p.conn.nodeId, this.c.now() + REQUEST_IDLE_MS);
    this.finish(p, 'retry');
    this.poke();
  }

  /**
   * A request capped in time (a shared level's batch asked of its owner, a piece) took too long:
   * the peer stops sending it; a piece it said it holds counts as withheld (a peer that trickles
   * objects, each in time for the idle timer, is avoided after a few).
   */
  private giveUp(p: Pending): void {
    p.conn.send({ kind: 'cancel', request: p.request });
    if (p.piece !== undefined && !p.ahead) this.shortchanged(p.conn, p.piece);
    this.finish(p, 'retry');
    this.poke();
  }

  private finish(p: Pending, outcome: 'done' | 'retry'): void {
    clearTimeout(p.timer);
    p.cap?.clear();
    p.parts?.end();
    if (this.pending.get(p.request) === p) this.c.local.unexpect(p.oids);
    this.pending.delete(p.request);
    this.c.track(p.request, undefined);
    p.settle(outcome);
  }

  private objects(conn: SwarmConnection, p: Pending, objects: readonly WireObject[], done: boolean): void {
    // Only objects keep a request alive: empty messages every few seconds would hold it forever.
    if (objects.length > 0) p.timer.refresh();
    const stored: WireObject[] = [];
    for (const o of objects) {
      if (!acceptObject(conn, p.wanted, o, this.c)) return;
      const verdict = this.verdict(o);
      if (verdict === 'refused') return;
      if (verdict === 'store') stored.push(o);
      p.wanted.delete(o.oid);
      this.sizeProven(o.oid, o.content.length, p);
      this.progress.bytes += o.content.length;
      this.progress.objects++;
    }
    void this.c.local.addAll(stored, true).catch((e: unknown) => this.stop((e as Error).message));
    if (!done) return;
    if (p.piece !== undefined && p.wanted.size === 0) this.completed(p.piece, p);
    else if (p.piece !== undefined && p.ahead) this.aheadMissed();
    else if (p.piece !== undefined) this.shortchanged(conn, p.piece);
    this.finish(p, p.wanted.size === 0 ? 'done' : 'retry');
  }

  /**
   * `oid` came whole and checked by `by`, `size` bytes: a peer streaming it meanwhile in parts of
   * another declared size (a race of a slow piece) declared what cannot hash to it, so it is
   * blamed like one that sent a wrong object.
   */
  private sizeProven(oid: Oid, size: number, by: Pending): void {
    for (const q of this.pending.values()) {
      const open = q.parts?.open;
      if (q !== by && open?.oid === oid && open.size !== size) blamePeer(q.conn, oid, `parts of ${oid} declared ${open.size} bytes (it has ${size})`, this.c);
    }
  }

  private aheadMissed(): void {
    this.aheadMissedAt = this.c.now();
    this.progress.aheadMissed++;
  }

  /**
   * A piece is whole here: another request for it (a race of a slow piece) is cancelled, no fault
   * of its peer's. At the first and every PROGRESS_EVERY pieces a debug event says how far the
   * fetch is (a transfer's course over time, with -v).
   */
  private completed(piece: number, by: Pending): void {
    const t = this.current;
    t.markPiece(piece);
    // What a peer brings is its progress, whatever its news says (a relay tells of a piece it
    // passed on ahead only after this node has it, so that news counts for nothing).
    const from = this.peers.get(by.conn.nodeId);
    if (from?.conn === by.conn) from.gainedAt = this.c.now();
    this.broughtAt.set(by.conn.nodeId, this.c.now());
    for (const other of [...this.pending.values()].filter((q) => q.piece === piece && q !== by)) {
      other.conn.send({ kind: 'cancel', request: other.request });
      this.finish(other, 'done');
    }
    this.progress.firstPieceMs ??= this.c.now() - this.runStarted;
    if (t.held % PROGRESS_EVERY === 0 || t.held === 1) this.c.log.log('debug', 'fetch-progress', { commit: this.commit, held: t.held, pieces: t.closure?.pieces, from: by.conn.nodeId });
  }

  /**
   * The commits and trees of one level of the walk that are not here. A large level (a chunk
   * tree's leaves: ~3 400 trees per 512 MiB image) is shared out. A node whose upstream in the
   * relay chain holds the closure (a chain's head: the first to receive pieces, so the one whose
   * walk decides when the transfer starts) fetches it whole from the knowers. Every other fetcher
   * owns batches of it, cut in the walk's order, which every node computes alike: it fetches its
   * own batches from the knowers and every other batch from its owner, asked ahead (the owner
   * sends each object as it reaches it). The knowers' uplink (at first the committer's alone)
   * then carries the level about twice instead of once per fetcher. What an owner does not
   * deliver is fetched from the knowers.
   */
  private async fetchLevel(missing: readonly Oid[], level: readonly Oid[]): Promise<void> {
    const owners = level.length >= SHARE_LEVEL ? this.levelOwners() : [];
    if (owners.length < 2) return this.fromKnowers(missing);
    const started = this.c.now();
    const wanted = new Set(missing);
    const size = Math.min(META_BATCH, Math.max(SHARED_BATCH_MIN, Math.ceil(level.length / owners.length)));
    const byOwner = new Map<NodeId, Oid[]>(owners.map((o) => [o, []]));
    for (let b = 0; b * size < level.length; b++) {
      const batch = level.slice(b * size, (b + 1) * size).filter((oid) => wanted.has(oid));
      byOwner.get(owners[b % owners.length] as NodeId)?.push(...batch);
    }
    const shared = [...byOwner].filter(([owner, oids]) => owner !== this.o.self && oids.length > 0).map(([owner, oids]) => this.fromOwner(owner, oids));
    try {
      const [fromOwners] = await Promise.all([Promise.all(shared), this.fromKnowers(byOwner.get(this.o.self) ?? [])]);
      this.c.log.log('debug', 'walk-level-shared', { commit: this.commit, objects: missing.length, owners: owners.length, fromOwners: fromOwners.reduce((a, n) => a + n, 0), ms: this.c.now() - started });
    } catch (e) {
      // The walk fails: the other requests of the level stop too.
      this.stop((e as Error).message);
      throw e;
    }
  }

  /**
   * Who shares out a large level, sorted: the nodes fetching this closure (this one, and the
   * peers that follow it here and do not hold it), reachable and not avoided, but for the heads of
   * the relay chains (their upstream holds the closure). Empty when this node is a head, and
   * unless every node of the order holds or fetches the closure as far as this node sees: then
   * every node that shares sees the same owners and cuts the same batches. (One that does not
   * share yet fetches the whole level, so it holds whatever batch it is asked for.)
   */
  private levelOwners(): NodeId[] {
    const now = this.c.now();
    // Holders of the whole closure (announcing its head, or saying so); not those that only know
    // it by now, which every node learns at a different moment.
    const knowers = new Set<NodeId>();
    for (const [id, peer] of this.peers) if (peer.conn.isOpen && (peer.complete || this.announcers.has(id))) knowers.add(id);
    const fetchers = new Set<NodeId>([this.o.self]);
    for (const conn of this.current.subscribers) {
      const peer = this.peers.get(conn.nodeId);
      if (peer !== undefined && peer.conn.isOpen && !knowers.has(conn.nodeId) && (this.c.avoid.get(conn.nodeId) ?? 0) <= now) fetchers.add(conn.nodeId);
    }
    const candidates = new Set<string>([...fetchers, ...knowers]);
    const head = (id: NodeId): boolean => {
      const up = upstreamOf({ self: id, order: this.o.order, candidates });
      return up !== undefined && knowers.has(up as NodeId);
    };
    if (head(this.o.self) || this.o.order.some((id) => !candidates.has(id))) return [];
    return [...fetchers].filter((id) => this.o.order.includes(id) && !head(id)).sort();
  }

  /**
   * The batches of a shared level one owner holds, from it (wants of up to META_BATCH ids, two at a
   * time: as many as it serves at once), each given up after OWNER_WAIT_MS, and none asked after
   * one that did not come whole; then what did not come, from the knowers. How many came from the owner.
   */
  private async fromOwner(owner: NodeId, oids: readonly Oid[]): Promise<number> {
    const peer = this.peers.get(owner);
    // An owner that did not deliver one want (busy, missing, too slow) is asked no more.
    await twoAtATime(oids, async (batch) => peer !== undefined && peer.conn.isOpen && (await this.request(peer.conn, { kind: 'meta', oids: batch, ahead: true, maxMs: OWNER_WAIT_MS })) === 'done');
    const rest = oids.filter((oid) => !this.c.local.hasNow(oid));
    await this.fromKnowers(rest);
    return oids.length - rest.length;
  }

  /** Commits and trees from the peers that know the closure (or hold the head), in batches, two in flight. */
  private async fromKnowers(oids: readonly Oid[]): Promise<void> {
    await twoAtATime(oids, async (batch) => (await this.fetchMeta(batch), true));
  }

  /**
   * One batch of commits and trees (or, `read`, of blobs held trees name) from a peer that knows
   * the closure (or holds the head); one that said busy is left alone for a while. Given up after
   * STALL_MS without it, or after `limitMs` in all.
   */
  private async fetchMeta(oids: readonly Oid[], want: 'meta' | 'read' = 'meta', limitMs?: number): Promise<void> {
    const stallMs = limitMs ?? STALL_MS;
    let deadline = this.c.now() + stallMs;
    const missingNow = (): Oid[] => oids.filter((o) => !this.c.local.hasNow(o));
    for (let attempt = 0; attempt < 1000 && this.c.now() < deadline; attempt++) {
      // Trees held back are stored (or the commit refused) before what is missing is counted; the wait is no peer's fault.
      if (want === 'meta') {
        const waited = this.c.now();
        await this.releasing;
        deadline += this.c.now() - waited;
      }
      this.check();
      const missing = missingNow();
      if (missing.length === 0) return;
      const now = this.c.now();
      // Each peer is asked for what it did not say it cannot send.
      const askable = (id: NodeId): Oid[] => missing.filter((oid) => !this.saidCannotSend(id, [oid]));
      const candidates = [...this.peers.values()].filter(
        (p) => p.conn.isOpen && (p.knows || this.announcers.has(p.conn.nodeId)) && (this.c.avoid.get(p.conn.nodeId) ?? 0) <= now && (this.busyUntil.get(p.conn.nodeId) ?? 0) <= now && askable(p.conn.nodeId).length > 0,
      );
      const peer = candidates[attempt % Math.max(1, candidates.length)];
      if (peer === undefined) {
        await this.sleep(this.peers.size === 0 ? 100 : BUSY_BACKOFF_MS);
        continue;
      }
      // With a limit in all, no request outlasts it (a peer that does not answer holds the fetch no longer).
      await this.request(peer.conn, { kind: want, oids: askable(peer.conn.nodeId), maxMs: limitMs === undefined ? META_MAX_MS : Math.max(1, deadline - now) });
    }
    if (want === 'meta') await this.releasing;
    this.check();
    if (missingNow().length === 0) return;
    throw new GitfsError(ErrorCodes.PEER_FAILED, `no peer supplied the ${want === 'meta' ? 'commits and trees' : 'special files'} of ${this.commit} for ${stallMs / 1000} s`);
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

/**
 * Adds `piece` (below LIMITS.pieces, as decoding checked) to `peer`'s claim; whether it was new.
 * The claim's bits are made whole (LIMITS.pieces of them, 128 KiB) once, at the first such piece
 * (grown a byte at a time, pieces 0, 8, 16… cost a copy each), and hold no bit past `pieces` but
 * those set here: the spare bits of a Have's last byte are cleared, not read as claims later.
 */
function claimPiece(peer: FetchPeer, piece: number): boolean {
  let claim = peer.claim;
  if (claim === undefined || claim.bits.length < WHOLE_CLAIM_BYTES) {
    const bits = new Uint8Array(WHOLE_CLAIM_BYTES);
    const pieces = claim?.pieces ?? 0;
    if (claim !== undefined) for (let i = 0; i < pieces; i++) if (hasBit(claim.bits, i)) setBit(bits, i);
    claim = { bits, pieces, count: claim?.count ?? 0 };
  }
  if (hasBit(claim.bits, piece)) return false;
  setBit(claim.bits, piece);
  peer.claim = { bits: claim.bits, pieces: Math.max(claim.pieces, piece + 1), count: claim.count + 1 };
  return true;
}

const WHOLE_CLAIM_BYTES = LIMITS.pieces / 8;
