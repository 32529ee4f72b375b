/**
 * What this node holds of each (commit, history, base) closure the swarm talks about, and who wants
 * to be told: the state a fetch updates piece by piece and the object server reports from. A
 * subscriber gets the whole bitfield once the closure is known, then news of every new piece
 * (piece-news.ts: at once to a peer that asked this node for objects lately, so a piece passes
 * on as soon as it lands; to the others, in one bitfield per interval).
 */
import type { NodeId } from '../cluster/node-id.js';
import { decodeCommit } from '../objects/commit.js';
import type { Oid } from '../objects/oid.js';
import { BASE_CHAIN_MAX, lineToBase } from './base-chain.js';
import { pieceOids, walkClosure, type Closure, type ObjectSource } from './closure.js';
import type { SwarmConnection } from './connection.js';
import type { SwarmMessage } from './messages.js';
import type { PieceNews } from './piece-news.js';
import type { TreeCache } from './tree-cache.js';
import { silentLogger, type Logger } from '../util/log.js';

export function hasBit(bits: Uint8Array, i: number): boolean {
  return (((bits[i >> 3] ?? 0) >> (7 - (i & 7))) & 1) === 1;
}

export function setBit(bits: Uint8Array, i: number): void {
  bits[i >> 3] = (bits[i >> 3] ?? 0) | (1 << (7 - (i & 7)));
}

/** The piece numbers set in a bitfield of `pieces` bits. */
export function bitSet(bits: Uint8Array, pieces: number): Set<number> {
  const out = new Set<number>();
  for (let i = 0; i < pieces; i++) if (hasBit(bits, i)) out.add(i);
  return out;
}

/** How many of the first `pieces` bits of a bitfield are set. */
export function bitCount(bits: Uint8Array, pieces: number): number {
  const end = Math.min(pieces, bits.length * 8);
  let n = 0;
  for (let i = 0; i < end >> 3; i++) for (let b = bits[i] ?? 0; b !== 0; b &= b - 1) n++;
  for (let i = end & ~7; i < end; i++) if (hasBit(bits, i)) n++;
  return n;
}

export class Transfer {
  closure: Closure | undefined;
  /** Fetches of this node filling it (an eager and an on-demand one may share it): never evicted while any runs. */
  fetching = 0;
  bits: Uint8Array = new Uint8Array(0);
  /** The pieces held, as a set (what the schedule takes; kept with `bits`, not rebuilt per look). */
  private heldPieces = new Set<number>();
  readonly subscribers = new Set<SwarmConnection>();

  constructor(
    readonly commit: Oid,
    readonly history: number,
    /** The closure is what `commit` adds to this commit (closure.ts), if set. */
    readonly base: Oid | undefined,
    private readonly news: PieceNews,
  ) {}

  get active(): boolean {
    return this.fetching > 0;
  }

  get known(): boolean {
    return this.closure !== undefined;
  }

  get pieces(): ReadonlySet<number> {
    return this.heldPieces;
  }

  /** Forgets the closure and what is held of it (counted again when it is learnt again); the subscribers stay, and hear of it then. */
  reset(): void {
    this.closure = undefined;
    this.bits = new Uint8Array(0);
    this.heldPieces = new Set();
  }

  get held(): number {
    return this.heldPieces.size;
  }

  get complete(): boolean {
    return this.closure !== undefined && this.held === this.closure.pieces;
  }

  /** The closure is known: count what is here already and tell the subscribers. */
  learn(closure: Closure, has: (oid: Oid) => boolean): void {
    const bits = new Uint8Array(Math.ceil(closure.pieces / 8));
    const pieces = new Set<number>();
    for (let p = 0; p < closure.pieces; p++) {
      if (pieceOids(closure, p).every(has)) {
        setBit(bits, p);
        pieces.add(p);
      }
    }
    this.closure = closure;
    this.bits = bits;
    this.heldPieces = pieces;
    for (const s of this.subscribers) s.send(this.haveMessage());
  }

  markPiece(piece: number): void {
    if (this.closure === undefined || piece >= this.closure.pieces || hasBit(this.bits, piece)) return;
    setBit(this.bits, piece);
    this.heldPieces.add(piece);
    this.news.gained(this, { kind: 'have_piece', commit: this.commit, history: this.history, base: this.base, piece });
  }

  haveMessage(): SwarmMessage {
    return { kind: 'have', commit: this.commit, history: this.history, base: this.base, pieces: this.closure?.pieces ?? 0, bitfield: Buffer.from(this.bits), complete: this.complete };
  }
}

const MAX_TRANSFERS = 256;
/**
 * Objects (blobs and trees) listed by the closures kept, all together, beyond those being
 * filled. The count of closures alone does not bound their memory (a peer may ask for one branch
 * at 256 history depths).
 */
const MAX_LISTED_OBJECTS = 4_000_000;

const transferKey = (commit: Oid, history: number, base: Oid | undefined): string => `${commit}:${history}:${base ?? ''}`;
/**
 * Closures one connection follows at once: past that, its oldest is let go (a long-lived
 * connection follows one closure per head it fetches, and no message says it is done with one).
 * As many may wait for their walk here; a connection asking for more is closed.
 */
export const MAX_SUBSCRIPTIONS = 64;

export class Transfers {
  private readonly byKey = new Map<string, Transfer>();
  /** Per connection, the closures it follows (keys, oldest first) and how many of its subscriptions wait for their walk. */
  private readonly followed = new Map<SwarmConnection, Set<string>>();
  private readonly waiting = new Map<SwarmConnection, number>();
  /**
   * Closure walks run one at a time, queued per member that asked (this node's own under
   * undefined) and taken from each in turn. In one queue, a member saying Interested in 256
   * closures of the whole history (64 per connection, re-asked as they were walked) held every
   * other peer's walk, so its Have, past the 30 s a fetch waits.
   */
  private readonly lanes = new Map<NodeId | undefined, Array<() => Promise<void>>>();
  private walkRunning = false;

  constructor(
    private readonly local: ObjectSource,
    private readonly trees: TreeCache,
    private readonly news: PieceNews,
    /** Tells of each walk (`closure-walked`): a closure named two ways is walked twice. */
    private readonly log: Logger = silentLogger,
  ) {}

  /** `conn` asked this node for objects: it hears of new pieces at once for a while. */
  asked(conn: SwarmConnection): void {
    this.news.asked(conn);
  }

  /** Counts a subscription of `conn` waiting for its walk; false when MAX_SUBSCRIPTIONS wait already. */
  reserve(conn: SwarmConnection): boolean {
    const n = this.waiting.get(conn) ?? 0;
    if (n >= MAX_SUBSCRIPTIONS) return false;
    this.waiting.set(conn, n + 1);
    return true;
  }

  /**
   * Subscribes `conn` (after reserve()) unless it closed meanwhile, or `t` was forgotten or evicted
   * meanwhile (its walk was queued). Past MAX_SUBSCRIPTIONS, the connection's oldest is let go.
   */
  subscribe(t: Transfer, conn: SwarmConnection): void {
    const n = (this.waiting.get(conn) ?? 1) - 1;
    if (n <= 0) this.waiting.delete(conn);
    else this.waiting.set(conn, n);
    const key = transferKey(t.commit, t.history, t.base);
    if (!conn.isOpen || this.byKey.get(key) !== t) return;
    t.subscribers.add(conn);
    let keys = this.followed.get(conn);
    if (keys === undefined) this.followed.set(conn, (keys = new Set()));
    keys.delete(key);
    keys.add(key);
    if (keys.size <= MAX_SUBSCRIPTIONS) return;
    const oldest = keys.values().next().value as string;
    keys.delete(oldest);
    this.byKey.get(oldest)?.subscribers.delete(conn);
  }

  get(commit: Oid, history: number, base?: Oid): Transfer {
    const key = transferKey(commit, history, base);
    let t = this.byKey.get(key);
    if (t === undefined) {
      if (this.byKey.size >= MAX_TRANSFERS) this.evict();
      t = new Transfer(commit, history, base, this.news);
      this.byKey.set(key, t);
    }
    return t;
  }

  /** The transfer, with its closure learnt from local objects if they are all here; walked in the turn of `by`, the member that asked (none: this node). */
  async known(commit: Oid, history: number, base?: Oid, by?: NodeId): Promise<Transfer> {
    const t = this.get(commit, history, base);
    if (t.closure === undefined) await this.inTurn(by, () => this.walk(t));
    return t;
  }

  /** Learns `t`'s closure from what is here, unless known meanwhile; it stays unknown if not all of it is here. */
  private async walk(t: Transfer): Promise<void> {
    const { commit, history, base } = t;
    if (t.closure !== undefined) return;
    try {
      // By a base, a walk deeper than a line can be (all history, say) only where the commit
      // reaches the base in a line: any id a peer names would cost a walk of the whole history
      // each time asked. Nodes name closures by base at most as deep as their line.
      const bounded = history !== 0 && history <= BASE_CHAIN_MAX;
      if (base !== undefined && !bounded && (await lineToBase(commit, base, async (c) => decodeCommit((await this.local.read(c)).content, c).parents)) === undefined) return;
      const closure = await walkClosure(this.local, commit, history, { trees: this.trees, base });
      this.log.log('debug', 'closure-walked', { commit, history, base: base ?? null, commits: closure.commits.length, trees: closure.trees.length, blobs: closure.blobs.length });
      // absent(), not hasNow(): objects git wrote here (loose, or in a pack not loaded yet) count too.
      const missing = new Set(await this.local.absent(closure.blobs));
      t.learn(closure, (oid) => !missing.has(oid));
      this.trim(t);
    } catch {
      // not all of its commits and trees (or its base's) are here: it stays unknown until a fetch learns it
    }
  }

  /** Runs `work` (which does not throw) once the walks queued before it in `lane`, and one of every other lane's in turn, are done. */
  private inTurn(lane: NodeId | undefined, work: () => Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      const queue = this.lanes.get(lane) ?? [];
      queue.push(() => work().finally(resolve));
      this.lanes.set(lane, queue);
      this.nextWalk();
    });
  }

  /**
   * Starts the next walk, if none runs: the first lane's (a Map keeps insertion order), which then
   * goes last, behind the lanes that came while it walked.
   */
  private nextWalk(): void {
    const first = this.lanes.entries().next();
    if (this.walkRunning || first.done === true) return;
    const [lane, queue] = first.value;
    const work = queue.shift() as () => Promise<void>;
    this.walkRunning = true;
    void work().finally(() => {
      this.lanes.delete(lane);
      if (queue.length > 0) this.lanes.set(lane, queue);
      this.walkRunning = false;
      this.nextWalk();
    });
  }

  /**
   * Drops what this node believes of a closure (after a failed fetch: what is here is counted
   * again), unless a fetch still fills it. Its followers stay: dropped with it, they heard no
   * more of this node's pieces (a peer adds a connected peer once, and said Interested then).
   */
  forget(t: Transfer): void {
    if (this.byKey.get(transferKey(t.commit, t.history, t.base)) !== t) return;
    if (!t.active) t.reset();
  }

  /** Drops a closure: its followers stop hearing of it, and may follow another in its place. */
  private drop(key: string, t: Transfer): void {
    this.byKey.delete(key);
    for (const conn of t.subscribers) this.followed.get(conn)?.delete(key);
    t.subscribers.clear();
  }

  /** Forgets a connection that closed. */
  unsubscribe(conn: SwarmConnection): void {
    for (const key of this.followed.get(conn) ?? []) this.byKey.get(key)?.subscribers.delete(conn);
    this.followed.delete(conn);
    this.waiting.delete(conn);
    this.news.forget(conn);
  }

  /** Drops the oldest closures no fetch of ours is filling, other than `keep`, while those kept list too many objects. */
  private trim(keep: Transfer): void {
    const listed = (t: Transfer): number => (t.closure === undefined ? 0 : t.closure.blobs.length + t.closure.trees.length);
    let total = 0;
    for (const t of this.byKey.values()) total += listed(t);
    for (const [key, t] of this.byKey) {
      if (total <= MAX_LISTED_OBJECTS) return;
      if (t === keep || t.active || t.closure === undefined) continue;
      total -= listed(t);
      this.drop(key, t);
    }
  }

  /** Makes room: the oldest closure no fetch of ours is filling (its followers stop hearing of it). */
  private evict(): void {
    for (const [key, t] of this.byKey) {
      if (!t.active) {
        this.drop(key, t);
        return;
      }
    }
  }
}
