/**
 * The swarm's piece schedule as pure decision rules: no I/O, no clock, no randomness.
 *
 * A commit's content is cut into numbered pieces. The design: nodes are ordered; in each round a
 * node sends to at most one peer and receives from at most one; the holder of unique data serves
 * only what nobody else has yet; whoever has a piece passes it on at once; run per piece,
 * pipelined — so S bytes reach N nodes in about P + log2(N) rounds, not P × log2(N).
 *
 * `planRound` is that round for an idealised swarm (every node sees every other's pieces): rarest
 * piece first, each holder of it sends to the nearest idle node that lacks it at a ring distance
 * that halves from round to round (as a binomial-tree broadcast does), and the matching is maximal.
 * `choosePiece` and `chooseSource` are the same preferences for one live node deciding alone from
 * what its peers announce: what to ask for next and whom to ask.
 *
 * A live node first follows the relay chain (`upstreamOf`, `nextInOrder`): the same rules with
 * the ring distance fixed at 1, which costs N - 2 - log2(N) extra piece-times over the bound but
 * needs no agreement beyond the ring order, never sends two nodes to one source, and keeps every
 * link streaming; the rarest-first choices are its fallback when the chain cannot serve.
 */
import { ErrorCodes, GitfsError } from '../errors.js';

/** One piece sent from node `from` to node `to` in a round (nodes are indices). */
export interface Transfer {
  readonly from: number;
  readonly to: number;
  readonly piece: number;
}

export interface PlanOptions {
  /**
   * Usually the round number. Selects the ring distance 2^(K-1 - rotation mod K), K = ceil(log2 N),
   * at which each sender starts looking for a receiver, and rotates the piece index that breaks
   * rarity ties. Default 0.
   */
  readonly rotation?: number;
}

/** `i` modulo `m` in 0..m-1, for any integer `i` (negative ones too). */
function mod(i: number, m: number): number {
  return ((i % m) + m) % m;
}

function checkPieces(pieces: number): void {
  if (!Number.isSafeInteger(pieces) || pieces < 0) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `piece count must be a non-negative integer, not ${String(pieces)}`, { pieces });
  }
}

/** ceil(log2 n) for n >= 1. */
export function ceilLog2(n: number): number {
  let k = 0;
  while (2 ** k < n) k++;
  return k;
}

/**
 * One round for nodes 0..N-1 (`have[i]`: the pieces node i holds at the start of the round).
 * Every node sends at most once and receives at most once; a sender holds the piece, a receiver
 * lacks it. Pieces go rarest first (fewest holders), so a node holding pieces nobody else has
 * sends one of those. For each piece, every idle holder sends it to an idle node lacking it, so
 * its holders double while receivers are free. The result is a maximal matching: afterwards no
 * idle sender holds a piece that an idle receiver lacks.
 */
export function planRound(have: readonly ReadonlySet<number>[], pieces: number, opts: PlanOptions = {}): Transfer[] {
  checkPieces(pieces);
  const rotation = opts.rotation ?? 0;
  if (!Number.isSafeInteger(rotation)) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `rotation must be an integer, not ${String(rotation)}`, { rotation });
  const n = have.length;
  const holders: number[][] = Array.from({ length: pieces }, () => []);
  have.forEach((set, node) => {
    for (const p of set) {
      const list = Number.isInteger(p) ? holders[p] : undefined;
      if (list === undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `node ${node} holds piece ${String(p)}, outside 0..${pieces - 1}`, { node, piece: p });
      list.push(node);
    }
  });
  if (n < 2) return [];

  const tie = (p: number): number => mod(p - rotation, pieces);
  const order = [...holders.keys()].filter((p) => {
    const h = (holders[p] as number[]).length;
    return h > 0 && h < n;
  });
  order.sort((a, b) => (holders[a] as number[]).length - (holders[b] as number[]).length || tie(a) - tie(b));

  const k = ceilLog2(n);
  const distance = 2 ** (k - 1 - mod(rotation, k));
  const sending = new Uint8Array(n);
  const receiving = new Uint8Array(n);
  let idleReceivers = have.filter((set) => set.size < pieces).length;
  const out: Transfer[] = [];

  for (const piece of order) {
    if (idleReceivers === 0) break;
    for (const from of holders[piece] as number[]) {
      if (sending[from] === 1) continue;
      let to = -1;
      for (let j = 0; j < n - 1; j++) {
        const r = (from + mod(distance - 1 + j, n - 1) + 1) % n;
        if (receiving[r] === 0 && !(have[r] as ReadonlySet<number>).has(piece)) {
          to = r;
          break;
        }
      }
      // No idle node lacks this piece, and receivers only get busier: on to the next piece.
      if (to < 0) break;
      sending[from] = 1;
      receiving[to] = 1;
      idleReceivers--;
      out.push({ from, to, piece });
    }
  }
  return out;
}

export interface ChoosePieceInput {
  /** The pieces this node holds. */
  readonly mine: ReadonlySet<number>;
  /** What each peer says it holds, by peer id. */
  readonly peers: ReadonlyMap<string, ReadonlySet<number>>;
  /** Pieces this node is fetching already. */
  readonly inFlight: ReadonlySet<number>;
  readonly pieces: number;
  /** A node-specific number (any integer), so that nodes start on different pieces. */
  readonly offset: number;
}

/**
 * The piece to ask for next: among pieces in 0..pieces-1 that at least one peer holds, this node
 * lacks and is not fetching, the one the fewest peers hold; ties go to the first index at or
 * after `offset` (wrapping). Undefined when there is nothing to ask for.
 */
export function choosePiece(input: ChoosePieceInput): number | undefined {
  const { mine, peers, inFlight, pieces, offset } = input;
  checkPieces(pieces);
  if (!Number.isSafeInteger(offset)) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `offset must be an integer, not ${String(offset)}`, { offset });
  if (pieces === 0) return undefined;
  const count = new Array<number>(pieces).fill(0);
  for (const set of peers.values()) {
    for (const p of set) if (Number.isInteger(p) && p >= 0 && p < pieces) count[p] = (count[p] as number) + 1;
  }
  const start = mod(offset, pieces);
  let best: number | undefined;
  let bestCount = Infinity;
  for (let i = 0; i < pieces; i++) {
    const p = (start + i) % pieces;
    const c = count[p] as number;
    if (c === 0 || c >= bestCount || mine.has(p) || inFlight.has(p)) continue;
    best = p;
    bestCount = c;
  }
  return best;
}

export interface ChooseSourceInput {
  readonly piece: number;
  /** What each peer says it holds, by peer id. */
  readonly peers: ReadonlyMap<string, ReadonlySet<number>>;
  /** Peers this node is fetching from already. */
  readonly busy: ReadonlySet<string>;
  /** Peers not to ask (they failed, refused or sent bad data). */
  readonly avoid: ReadonlySet<string>;
  /** This node's order of its peers (e.g. rendezvous order); peers not in it come after, by id. */
  readonly order: readonly string[];
  /**
   * The piece count, to recognise peers that hold every piece. Without it, "holds everything"
   * is not tested and the fewest-pieces rule alone puts such holders last.
   */
  readonly pieces?: number;
}

/**
 * The peer to fetch `piece` from: among peers holding it that are neither busy nor avoided,
 * prefer one that does not hold every piece (a forwarder, so a seed's upload goes to pieces
 * nobody else has), then one holding the fewest pieces (it has the least else to serve), then
 * the first in `order`. Undefined when no peer qualifies.
 */
export function chooseSource(input: ChooseSourceInput): string | undefined {
  const { piece, peers, busy, avoid, order, pieces } = input;
  if (pieces !== undefined) checkPieces(pieces);
  const rank = new Map<string, number>();
  order.forEach((id, i) => {
    if (!rank.has(id)) rank.set(id, i);
  });
  const holdsAll = (set: ReadonlySet<number>): boolean => {
    if (pieces === undefined || set.size < pieces) return false;
    for (let p = 0; p < pieces; p++) if (!set.has(p)) return false;
    return true;
  };
  let best: { id: string; all: boolean; size: number; rank: number } | undefined;
  for (const [id, set] of peers) {
    if (!set.has(piece) || busy.has(id) || avoid.has(id)) continue;
    const c = { id, all: holdsAll(set), size: set.size, rank: rank.get(id) ?? Infinity };
    if (best === undefined || better(c, best)) best = c;
  }
  return best?.id;
}

function better(a: { id: string; all: boolean; size: number; rank: number }, b: { id: string; all: boolean; size: number; rank: number }): boolean {
  if (a.all !== b.all) return !a.all;
  if (a.size !== b.size) return a.size < b.size;
  if (a.rank !== b.rank) return a.rank < b.rank;
  return a.id < b.id;
}

export interface UpstreamInput {
  readonly self: string;
  /** Every node, in the order all nodes agree on (sorted ids): a ring. */
  readonly order: readonly string[];
  /** Peers taking part in this closure (they know it, or hold all of it) and reachable now. */
  readonly candidates: ReadonlySet<string>;
}

/**
 * This node's upstream in the relay chain: the nearest candidate before it on the ring. Every
 * fetching node asks its upstream first and takes its pieces in order, so each node receives
 * from one node and sends to one, and a piece passes down the chain as soon as it lands: P
 * pieces reach N nodes in P + N - 2 piece-times, within (N - 2) / P of the P + log2 N bound
 * for the large closures the swarm exists for, with no messages beyond the haves. Several
 * holders of the whole closure each head their own chain. Undefined without candidates.
 */
export function upstreamOf(input: UpstreamInput): string | undefined {
  const { self, order, candidates } = input;
  const at = order.indexOf(self);
  if (at < 0) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${self} is not in the order`, { self });
  for (let back = 1; back < order.length; back++) {
    const id = order[mod(at - back, order.length)] as string;
    if (candidates.has(id)) return id;
  }
  return undefined;
}

/** The first piece (lowest index) that `source` holds and this node neither holds nor is fetching. */
export function nextInOrder(input: { readonly mine: ReadonlySet<number>; readonly source: ReadonlySet<number>; readonly inFlight: ReadonlySet<number> }): number | undefined {
  let best: number | undefined;
  for (const p of input.source) if ((best === undefined || p < best) && !input.mine.has(p) && !input.inFlight.has(p)) best = p;
  return best;
}

export interface ChainLink {
  /** The pieces this node holds. */
  readonly pieces: ReadonlySet<number>;
  /** How long it has gained no piece. */
  readonly idleMs: number;
  /** How long it has held pieces (Infinity for a node holding everything). */
  readonly heldMs: number;
  /** How long it may stay idle (longer while it is still learning the closure). */
  readonly waitMs: number;
}

/**
 * Whether a fetcher should stop waiting on its upstream and take pieces from anyone. `chain` is
 * its upstream, then that node's upstream, and so on up the ring (to a node holding everything,
 * or as far as the ring goes). A node in it that keeps gaining pieces means the chain is moving
 * (a long chain starts one hop at a time): wait. A node idle for its wait although the node
 * above it has held, for that long, pieces it lacks is stuck (a working relay takes one within a
 * piece-time), and so is a chain that ends without anyone holding what it lacks: take pieces
 * from anyone.
 */
export function upstreamStuck(chain: readonly ChainLink[]): boolean {
  for (let i = 0; i < chain.length; i++) {
    const link = chain[i] as ChainLink;
    if (link.idleMs < link.waitMs) return false;
    const above = chain[i + 1];
    if (above === undefined) return true;
    if (above.heldMs >= link.waitMs) for (const p of above.pieces) if (!link.pieces.has(p)) return true;
  }
  return true;
}
