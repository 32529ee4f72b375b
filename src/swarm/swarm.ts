/**
 * The swarm of one node: its connections to peers (one per peer, dialled on demand over mutual
 * TLS, or accepted by the node service), the object server, the fetches in progress, and the
 * policy loop that decides what to fetch. Messages are routed by kind: interest, wants and
 * cancels to the server; haves to the fetches of that closure; objects and rejects to the fetch
 * that made the request.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import type { BranchName } from '../branches/ref-name.js';
import { historyHere, keptShallow, readShallow, updateShallow, type ShallowSource } from '../branches/shallow.js';
import { StampedRefs } from '../branches/stamped-refs.js';
import { LISTED, planMerge, writeMerge } from '../repo/merge-heads.js';
import { isPartial, markPartial } from '../repo/partial.js';
import type { ClusterTrust, NodeIdentity } from '../cluster/identity.js';
import type { NodeId } from '../cluster/node-id.js';
import { clientOptions, peerNode } from '../cluster/tls.js';
import { causedBy, ErrorCodes, GitfsError, gitfsErrorOr, isGitfsError, isOperationalError } from '../errors.js';
import { decodeCommit } from '../objects/commit.js';
import { reaches } from '../objects/commit-ancestry.js';
import { Freshener } from '../objects/freshen.js';
import type { GitObject } from '../objects/object-store.js';
import { specialBlobRefusal, specialBlobTooLarge } from '../objects/special-file-check.js';
import type { Oid } from '../objects/oid.js';
import type { SpecialFile } from '../objects/storable-name.js';
import type { Peer } from '../multicast/peer-table.js';
import type { Repository } from '../repo/repository.js';
import { rememberMember, renew } from '../util/bounded-map.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { Semaphore } from '../util/semaphore.js';
import { BLOCK_BYTES, BlockPool } from './block-pool.js';
import { baseHistory, lineToBase } from './base-chain.js';
import type { Closure } from './closure.js';
import { CommitFetch } from './commit-fetch.js';
import { SwarmConnection } from './connection.js';
import { BACKLOG_PACKS, LocalObjects } from './local-objects.js';
import { sameClosure, type SwarmMessage, type WireObject } from './messages.js';
import { readFrom, type ReadComponents, type ReadStore, type RequestOwner } from './object-read.js';
import { ObjectServer } from './object-server.js';
import { HeadVerdicts, type Failing } from './head-verdicts.js';
import { coversBase, WholeHeads } from './whole-head.js';
import { evaluatePolicies, historyDepth, newestHead, type Apart, type BranchDecision, type MemberHeads, type Policy } from './policy.js';
import { rendezvousOrder } from './rendezvous.js';
import { PieceNews } from './piece-news.js';
import { Transfers } from './transfers.js';
import { TreeCache } from './tree-cache.js';
import { specialLinks, treeLinks } from './tree-links.js';
import { peersToDial } from './warm-peers.js';

export interface SwarmComponents {
  readonly repo: Repository;
  readonly identity: NodeIdentity;
  readonly trust: ClusterTrust;
  readonly clock: Clock;
  readonly log: Logger;
  /** The peers the announcements tell of, as they are now. */
  readonly peers: () => readonly Peer[];
  /** A local commit's time, as this node announces it (0 when it cannot be read). */
  readonly commitTime: (oid: Oid) => Promise<number>;
  /** Asks for a tick soon: heads were judged, and a head of the same second may be taken now. */
  readonly nudge: () => void;
}

export interface SwarmOptions {
  readonly policies: readonly Policy[];
  /** Received bytes held before a pack is finished. */
  readonly flushBytes: number;
  /** How long after a merge failed (a full disk, a damaged store) the pair is tried again. */
  readonly mergeRetryMs: number;
}

const DIAL_TIMEOUT_MS = 10_000;
/**
 * Connections kept open with one member at once: one each way, and room for a new one while an
 * old one is not yet seen dead. Past it, the oldest is closed, the one fetches use last (a member
 * dialling without end used to hold a connection's buffers each).
 */
export const CONNECTIONS_PER_MEMBER = 4;

/** Of `open` (oldest first), those to close to keep `keep`: the oldest first, `primary` (the one fetches use) last. */
export function overLimit<T>(open: readonly T[], primary: T | undefined, keep: number): T[] {
  const order = [...open.filter((c) => c !== primary), ...open.filter((c) => c === primary)];
  return order.slice(0, Math.max(0, order.length - keep));
}
/** How long after dialling a peer to keep it warm it may be dialled again (if its connection is gone). */
const WARM_RETRY_MS = 30_000;

const RECENT = 64;
/** The reflog message of a branch a fetch moved. */
const fetchedMessage = (commit: Oid): string => `gitfs swarm: fetched ${commit}`;

/** Targets remembered as not to be fetched again (noMoreFetches()). */
const SETTLED_MAX = 4096;
/** Errors of a read here that mean the copy here is damaged (another copy mends it), not that the read could not be made. */
const DAMAGE = [ErrorCodes.CORRUPT_OBJECT, ErrorCodes.CORRUPT_PACK, ErrorCodes.HOSTILE_OBJECT] as const;
/** Ids per on-demand read want (about 2 MiB of 8 KiB chunks). */
const DEMAND_BATCH = 256;
const DEMAND_BUSY_TRIES = 20;
const DEMAND_BUSY_WAIT_MS = 10;
/** Most commits looked at to prove a lagging history-limited branch is behind, not diverged. */
const ANCESTRY_LIMIT = 100_000;
/** Objects read on demand are in a finished pack within this time. */
const DEMAND_FLUSH_MS = 2000;
/** Between listings of the refs for the policies whatever their stamp says (a ref file rewritten in place). */
const REFS_RELIST_MS = 60_000;

export interface FetchOutcome {
  readonly commit: Oid;
  readonly branches: readonly string[];
  readonly error: string | null;
  /** Branches the fetch did not move, and why (a head that diverged and was not merged, a merge that failed). */
  readonly unmoved: readonly { readonly branch: string; readonly why: string }[];
  /** Where the branches it moved, or left at a head that holds it, stand. */
  readonly landed: readonly Landed[];
  readonly bytes: number;
  readonly ms: number;
}

/**
 * A branch after a fetch: `at` the fetched head (`moved`), at its merge with the local head
 * (`merged`, with the versions set aside), or left at a local head that holds the fetched one
 * (`holds`) or the same writes merged in another order (`kept`, merge-heads.ts `Kept`).
 */
export interface Landed {
  readonly branch: string;
  readonly at: Oid;
  readonly how: 'moved' | 'merged' | 'holds' | 'kept';
  readonly setAside?: number;
}

interface Running {
  readonly fetch: CommitFetch;
  /** The history the policy asks for (the fetch may take what the commit adds to a base instead). */
  readonly history: number;
  readonly branches: Set<BranchName>;
  /** The members that announced the commit as their head while it was fetched. */
  readonly announcers: Set<NodeId>;
  readonly started: number;
  /** Branches left where they were, and why (FetchOutcome.unmoved). */
  readonly unmoved: Map<BranchName, string>;
  /** Where branches stand (FetchOutcome.landed). */
  readonly landed: Map<BranchName, Landed>;
}

/**
 * A refusal of what an object holds (a special file's, or a tree or commit whose id was checked
 * and whose content is refused: such errors carry a `reason`). Not any HOSTILE or CORRUPT object:
 * a damaged local pack raises those too.
 */
function refusedContent(e: unknown): boolean {
  return (isGitfsError(e, ErrorCodes.HOSTILE_OBJECT) || isGitfsError(e, ErrorCodes.CORRUPT_OBJECT)) && typeof e.data['reason'] === 'string';
}

function fetchKey(commit: Oid, history: number, blobs: boolean): string {
  return `${commit}:${history}:${blobs ? 'whole' : 'meta'}`;
}

/** A tree read on demand that names blobs as `.gitmodules` or `.gitattributes`: taken once they pass. */
interface HeldTree {
  readonly tree: WireObject;
  readonly special: ReadonlyArray<{ readonly oid: Oid; readonly which: SpecialFile }>;
}

export class Swarm {
  readonly local: LocalObjects;
  readonly transfers: Transfers;
  /** Memory for large messages, both ways (block-pool.ts). */
  private readonly pool: BlockPool;
  /** The refs the policies weigh, listed again only when they changed. */
  private readonly refs: StampedRefs;
  /** Decoded trees shared by every closure walk. */
  private readonly trees = new TreeCache();
  readonly server: ObjectServer;
  private readonly conns = new Map<NodeId, SwarmConnection>();
  /** Every open connection, the ones `conns` does not name too (a second one to the same peer), so that stop() closes them all. */
  private readonly live = new Set<SwarmConnection>();
  /** Until when each connection's peer certificate (and its CA's) is valid: past it, the connection is closed (`dropExpired`). */
  private readonly validUntil = new WeakMap<SwarmConnection, number>();
  private readonly dialing = new Map<NodeId, Promise<SwarmConnection | undefined>>();
  private readonly fetches = new Map<string, Running>();
  private readonly requests = new Map<number, RequestOwner>();
  private readonly avoid = new Map<NodeId, number>();
  /** When each peer kept warm may be dialled again. */
  private readonly warmRetryAt = new Map<NodeId, number>();
  /** Targets given up on (diverged and not to be merged, or older than the local head): not fetched again. */
  private readonly settled = new Set<string>();
  /** The branches a fetch wanted that were logged unwritable (`branch-broken`), at the last tick: logged once until mended. */
  private brokenTold: ReadonlySet<BranchName> = new Set();
  /**
   * Heads refused for a branch (`branch:head`), whatever this node's head of it, and why: their
   * content, or a merge with it. Passed when ranked, so that no later local commit makes one the
   * target again (a fork is taken whatever time it claims; the target would stay, never fetched).
   * Until the branch is moved to one (by hand). BranchDecision.apart.
   */
  private readonly refused = new Map<string, string>();
  /** Heads whose merge with the branch's head `at` failed (`branch:head`), and why, while the branch stays there (BranchDecision.apart). */
  private readonly mergeFailed = new Map<string, { readonly at: Oid; readonly why: string }>();
  /** Objects logged `damaged-here` (once each). */
  private readonly damagedLogged = new Set<Oid>();
  /** Per branch, the head a fetch here last moved it to, and what of its closure was then whole here. */
  private readonly wholeAt: WholeHeads;
  /** Commits whose fetch by base failed: fetched whole from then on. */
  private readonly baseFailed = new Set<Oid>();
  private readonly infoHash: Buffer;
  private nextRequest = 1;
  private chain: Promise<void> = Promise.resolve();
  private readonly completions = new Set<Promise<void>>();
  /** Local heads at the last tick (undefined before the first). */
  private heads: Map<BranchName, Oid> | undefined;
  private stopped = false;
  readonly stats = { fetched: 0, fetchFailures: 0, demanded: 0 };
  /** How the last fetches ended (newest last, at most RECENT), for `gitfs fetch` to report. */
  private readonly recent: FetchOutcome[] = [];
  /** When each member was last heard from, kept past the peer table's expiry for the policies' grace (members()). */
  private readonly lastHeard = new Map<NodeId, number>();
  /** What ancestry says of announced heads against this node's own (taken or not, whatever time they claim). */
  private readonly verdicts: HeadVerdicts;

  constructor(
    private readonly c: SwarmComponents,
    private readonly o: SwarmOptions,
  ) {
    // Blocks come back a pack's worth at a time, while messages in flight take and give back a
    // few. LocalObjects holds up to BACKLOG_PACKS + 1 packs' worth at once (those waiting for the
    // disk before the fetch pauses, and the last one finished), and the pool keeps that many: a daemon's
    // first transfer makes the blocks, later ones reuse them instead of faulting in ~50 MiB of
    // fresh pages per relay in their first seconds, when every node walks and starts at once
    // (BENCHMARKS.md).
    this.pool = new BlockPool(Math.ceil(((BACKLOG_PACKS + 1) * o.flushBytes) / BLOCK_BYTES) + 16);
    this.refs = new StampedRefs({ gitDir: c.repo.gitDir, refs: c.repo.refs, now: () => c.clock.now() }, REFS_RELIST_MS);
    this.local = new LocalObjects(c.repo, { flushBytes: o.flushBytes, promisor: o.policies.some((p) => p.fetch === 'on-demand'), pool: this.pool });
    this.transfers = new Transfers(this.local, this.trees, new PieceNews(() => c.clock.now()), c.log);
    this.server = new ObjectServer({ local: this.local, transfers: this.transfers, log: c.log, now: () => c.clock.now() });
    this.reading = {
      log: c.log,
      now: () => c.clock.now(),
      nextRequest: () => this.nextRequest++,
      track: (request, owner) => void (owner === undefined ? this.requests.delete(request) : this.requests.set(request, owner)),
      avoid: this.avoid,
      local: this.local,
    };
    this.infoHash = createHash('sha1').update(`gitfs-swarm-v1\0${c.trust.clusterId}`).digest();
    this.wholeAt = new WholeHeads(join(c.repo.gitDir, 'gitfs', 'whole-heads.json'), c.log);
    this.verdicts = new HeadVerdicts({ here: (oid) => this.commitHere(oid), ask: (oid, from) => this.commitFrom(oid, from) }, c.clock, c.log, c.nudge);
  }

  /** A TLS connection the node service found to start with a BitTorrent handshake. */
  accept(socket: TLSSocket): void {
    const peer = peerNode(socket, this.c.trust, this.c.clock.now());
    if (peer === undefined || this.stopped) {
      socket.destroy();
      return;
    }
    this.adopt(new SwarmConnection(socket, peer.nodeId as NodeId, { infoHash: this.infoHash, selfId: this.c.identity.nodeId, initiator: false, pool: this.pool }, this.handlers), peer.notAfter);
  }

  private readonly handlers = {
    onMessage: (conn: SwarmConnection, m: SwarmMessage): void => this.route(conn, m),
    awaits: (conn: SwarmConnection, request: number): boolean => this.requests.get(request)?.awaits(conn, request) === true,
    onClose: (conn: SwarmConnection, reason: string): void => {
      this.live.delete(conn);
      if (this.conns.get(conn.nodeId) === conn) this.conns.delete(conn.nodeId);
      this.transfers.unsubscribe(conn);
      this.server.forget(conn);
      for (const owner of new Set<RequestOwner>([...this.requests.values(), ...[...this.fetches.values()].map((r) => r.fetch)])) owner.peerGone(conn);
      this.c.log.log('debug', 'swarm-disconnected', { peer: conn.nodeId, reason });
    },
  };

  /** A connection up with a member whose certificate (and its CA's) is valid until `validUntil`. */
  private adopt(conn: SwarmConnection, validUntil: number): void {
    this.validUntil.set(conn, validUntil);
    if (this.stopped) {
      conn.close('node stopping');
      return;
    }
    if (conn.isOpen) {
      // `live` keeps the order connections came in.
      const same = [...this.live].filter((c) => c.nodeId === conn.nodeId);
      for (const old of overLimit(same, this.conns.get(conn.nodeId), CONNECTIONS_PER_MEMBER - 1)) {
        this.c.log.log('warn', 'swarm-connections-over-limit', { peer: conn.nodeId, limit: CONNECTIONS_PER_MEMBER });
        old.close(`over ${CONNECTIONS_PER_MEMBER} connections with this member: the oldest goes`);
      }
      this.live.add(conn);
    }
    const existing = this.conns.get(conn.nodeId);
    if (existing === undefined || !existing.isOpen) this.conns.set(conn.nodeId, conn);
    for (const r of this.fetches.values()) r.fetch.addPeer(conn);
  }

  private route(conn: SwarmConnection, m: SwarmMessage): void {
    switch (m.kind) {
      case 'interested':
      case 'want':
      case 'cancel':
        this.server.handle(conn, m);
        return;
      case 'have':
      case 'have_piece':
        for (const r of this.fetches.values()) if (sameClosure(r.fetch.transfer, m)) r.fetch.handle(conn, m);
        return;
      case 'objects':
      case 'reject':
      case 'part':
        this.requests.get(m.request)?.handle(conn, m);
        return;
      case 'free':
        for (const r of this.fetches.values()) r.fetch.handle(conn, m);
        return;
    }
  }

  /** The connection to `nodeId`, dialled if there is none. */
  private connection(peer: Peer): Promise<SwarmConnection | undefined> {
    const open = this.conns.get(peer.nodeId);
    if (open?.isOpen === true) return Promise.resolve(open);
    const inProgress = this.dialing.get(peer.nodeId);
    if (inProgress !== undefined) return inProgress;
    const to = peer.endpoints[0];
    if (to === undefined || (this.avoid.get(peer.nodeId) ?? 0) > this.c.clock.now()) return Promise.resolve(undefined);
    const dial = new Promise<SwarmConnection | undefined>((resolve) => {
      const socket = connect({ host: to.address, port: to.port, ...clientOptions(this.c.identity, this.c.trust) });
      socket.setTimeout(DIAL_TIMEOUT_MS, () => socket.destroy(new Error('connect timed out')));
      socket.once('error', (e) => {
        this.c.log.log('warn', 'swarm-connect-failed', { peer: peer.nodeId, to: `${to.address}:${to.port}`, error: e.message });
        resolve(undefined);
      });
      socket.once('secureConnect', () => {
        socket.setTimeout(0);
        const who = peerNode(socket, this.c.trust, this.c.clock.now());
        if (who?.nodeId !== peer.nodeId) {
          socket.destroy();
          return resolve(undefined);
        }
        const conn = new SwarmConnection(socket, peer.nodeId, { infoHash: this.infoHash, selfId: this.c.identity.nodeId, initiator: true, pool: this.pool }, this.handlers);
        this.adopt(conn, who.notAfter);
        resolve(conn);
      });
    }).finally(() => this.dialing.delete(peer.nodeId));
    this.dialing.set(peer.nodeId, dial);
    return dial;
  }

  /**
   * Dials the peers this node keeps connected (warm-peers.ts), each at most once per
   * WARM_RETRY_MS: a peer that refuses us (after the TLS handshake: revoked, or not trusting
   * our certificate yet) is not dialled again at every tick.
   */
  private keepWarm(): void {
    const now = this.c.clock.now();
    // Times passed say nothing more: kept, the maps grew with every node ever met.
    for (const times of [this.avoid, this.warmRetryAt]) for (const [id, until] of times) if (until <= now) times.delete(id);
    const peers = this.c.peers();
    const dial = new Set(peersToDial(this.c.identity.nodeId, peers.map((p) => p.nodeId)));
    for (const peer of peers) {
      if (!dial.has(peer.nodeId) || this.conns.get(peer.nodeId)?.isOpen === true || (this.warmRetryAt.get(peer.nodeId) ?? -Infinity) > now) continue;
      this.warmRetryAt.set(peer.nodeId, now + WARM_RETRY_MS);
      void this.connection(peer);
    }
  }

  /** Whether a fetch is under way (the daemon leaves pack merging until none is). */
  get fetching(): boolean {
    return this.fetches.size > 0;
  }

  /** What the policies say about every replicated branch, now. */
  async decisions(): Promise<BranchDecision[]> {
    // Every tick: listed again only when a ref changed (1 000 loose refs are 1 000 file reads).
    const refs = await this.refs.list();
    const local = new Map(refs.map((r) => [r.name, r.oid]));
    this.wholeAt.retain(local);
    const localTimes = new Map<BranchName, number>();
    for (const r of refs) localTimes.set(r.name, await this.c.commitTime(r.oid));
    const members = this.members();
    const verdict = (branch: BranchName, head: Oid): ReturnType<HeadVerdicts['get']> => this.standing(branch, local.get(branch), head);
    const failing = (branch: BranchName, head: Oid, announcers: readonly NodeId[]): Failing | undefined => this.verdicts.failing(branch, head, announcers);
    const decisions = evaluatePolicies({ self: this.c.identity.nodeId, policies: this.o.policies, members, local, localTimes, verdict, failing, now: this.c.clock.now() });
    this.considerHeads(decisions, members, localTimes);
    return decisions.map((d) => {
      const apart = this.apartNow(d, members);
      return apart === undefined ? d : { ...d, apart };
    });
  }

  /** Of the heads members announce for `d`'s branch (not its own), the newest it stays apart from (by the time they claim), if any. */
  private apartNow(d: BranchDecision, members: readonly MemberHeads[]): Apart | undefined {
    if (this.refused.size === 0 && this.mergeFailed.size === 0) return undefined;
    let newest: { head: Oid; time: number; why: string } | undefined;
    for (const m of members) {
      const h = m.heads.get(d.branch);
      if (h === undefined || h.oid === d.local) continue;
      const key = `${d.branch}:${h.oid}`;
      const failed = this.mergeFailed.get(key);
      // A failed merge counts while the branch stays where it was: moved, it is forgotten.
      if (failed !== undefined && failed.at !== d.local) this.mergeFailed.delete(key);
      const why = this.refused.get(key) ?? (failed !== undefined && failed.at === d.local ? failed.why : undefined);
      if (why !== undefined && (newest === undefined || h.commitTime > newest.time)) newest = { head: h.oid, time: h.commitTime, why };
    }
    if (newest === undefined) return undefined;
    const head = newest.head;
    const from = members.filter((m) => m.heads.get(d.branch)?.oid === head).map((m) => m.nodeId);
    return { head, from: [...new Set(from)].sort(), why: newest.why };
  }

  /** What ancestry, and the refusals of fetches, say of `head` for `branch` at `mine`. */
  private standing(branch: BranchName, mine: Oid | undefined, head: Oid): ReturnType<HeadVerdicts['get']> {
    return this.refused.has(`${branch}:${head}`) ? 'passed' : this.verdicts.get(mine, head);
  }

  /** Marks `head` refused for `branch` (`refused`), for `why`; past SETTLED_MAX marks the oldest goes. */
  private refuse(branch: BranchName, head: Oid, why: string): void {
    renew(this.refused, `${branch}:${head}`, why, SETTLED_MAX);
  }

  /**
   * Queues for judging (head-verdicts.ts, in the background) every head a member announces for a
   * branch this node should hold and has, against this node's head; not one being fetched (its
   * commits arrive meanwhile, without their parents).
   */
  private considerHeads(decisions: readonly BranchDecision[], members: readonly MemberHeads[], localTimes: ReadonlyMap<BranchName, number>): void {
    const fetching = new Set([...this.fetches.values()].map((r) => r.fetch.commit));
    for (const d of decisions) {
      if (!d.shouldHold || d.local === undefined) continue;
      const announcers = new Map<Oid, { time: number; from: NodeId[] }>();
      for (const m of members) {
        const h = m.heads.get(d.branch);
        if (h === undefined || h.oid === d.local || fetching.has(h.oid) || m.nodeId === this.c.identity.nodeId) continue;
        const seen = announcers.get(h.oid) ?? { time: h.commitTime, from: [] };
        seen.from.push(m.nodeId);
        announcers.set(h.oid, seen);
      }
      const whole = d.history === 'all';
      for (const [head, { time, from }] of announcers) this.verdicts.consider(d.local, head, time < (localTimes.get(d.branch) ?? 0), from, whole);
    }
  }

  /** A commit's content if it is here (anything else, or a read that fails: undefined). */
  private async commitHere(oid: Oid): Promise<Buffer | undefined> {
    if (!(await this.local.has(oid))) return undefined;
    const o = await this.local.read(oid).catch(() => undefined);
    return o?.type === 'commit' ? o.content : undefined;
  }

  /** A commit's content from one of `from` (a metadata want, checked, not stored), sharing the on-demand reads' two slots. */
  private async commitFrom(oid: Oid, from: readonly NodeId[]): Promise<Buffer | undefined> {
    let content: Buffer | undefined;
    await this.demanding.run(() => this.fromPeers([oid], 'meta', (o) => void (o.type === 'commit' && (content = o.content)), from));
    return content;
  }

  /**
   * The members for the policies: the peer table's, and those it has dropped (silent for its
   * expiry, 3 announcement intervals) for as long as the longest graceMs, with no heads: a policy's
   * grace may outlast the table, and a holder is replaced only once its grace is over.
   */
  private members(): MemberHeads[] {
    const now = this.c.clock.now();
    const peers = this.c.peers();
    const members: MemberHeads[] = peers.map((p) => ({ nodeId: p.nodeId, lastSeen: p.lastSeen, heads: p.heads }));
    for (const p of peers) this.lastHeard.set(p.nodeId, p.lastSeen);
    const inTable = new Set(peers.map((p) => p.nodeId));
    const longest = Math.max(0, ...this.o.policies.map((p) => p.graceMs));
    for (const [nodeId, lastSeen] of this.lastHeard) {
      if (inTable.has(nodeId)) continue;
      if (now - lastSeen > longest) this.lastHeard.delete(nodeId);
      else members.push({ nodeId, lastSeen, heads: new Map() });
    }
    return members;
  }

  /** Starts the fetches the policies call for (eager ones). Called on every change and periodically. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    this.dropExpired();
    if (this.o.policies.length === 0) return;
    this.keepWarm();
    const decisions = await this.decisions();
    this.prepare(decisions);
    const unwritable = this.unwritableBranches();
    const told = new Set<BranchName>();
    for (const d of decisions) {
      if (!d.shouldHold || d.target === undefined || (d.state !== 'missing' && d.state !== 'behind')) continue;
      // Its file holds no object id, or names another branch: no fetch could move it (each would walk its closure in vain, every tick).
      const why = unwritable.get(d.branch);
      if (why !== undefined) {
        if (!this.brokenTold.has(d.branch)) this.c.log.log('warn', 'branch-broken', { branch: d.branch, ...why });
        told.add(d.branch);
        continue;
      }
      const policy = this.o.policies[d.policy];
      if (policy === undefined) continue;
      const history = historyDepth(policy);
      // On demand: the commits and trees now (listing and stat need them), blobs when read.
      this.want(d.branch, d.target.oid, history, { announcers: d.target.from, others: d.holders }, policy.fetch === 'eager');
    }
    this.brokenTold = told;
  }

  /** The branches whose file holds no object id, or is symbolic (an alias of another): why, and how to mend it. */
  private unwritableBranches(): ReadonlyMap<BranchName, { readonly error: string; readonly hint: string }> {
    const then = 'the branch is fetched again then';
    const out = new Map(this.refs.broken.map((b) => [b.branch, { error: b.message, hint: `gitfs branch delete ${b.branch} removes the file; ${then}` }]));
    for (const alias of this.refs.aliases) out.set(alias, { error: 'its file is a symbolic ref (an alias of another branch)', hint: `git symbolic-ref --delete refs/heads/${alias} removes the alias; ${then}` });
    return out;
  }

  /**
   * Walks the closure of every local head that changed since the last tick (a commit made here),
   * so that the first peer to ask for it gets its bitfield without waiting for the walk. Heads
   * found at the first tick are left until asked for (a restart walks nothing up front).
   */
  private prepare(decisions: readonly BranchDecision[]): void {
    const first = this.heads === undefined;
    const previous = this.heads ?? new Map<BranchName, Oid>();
    this.heads = new Map();
    for (const d of decisions) {
      if (d.local === undefined) continue;
      this.heads.set(d.branch, d.local);
      const policy = this.o.policies[d.policy];
      if (first || previous.get(d.branch) === d.local || policy === undefined || d.state !== 'held') continue;
      // A head this node fetched: its closure is known, and peers fetch it from the committer as well.
      if (this.wholeAt.peek(d.branch)?.commit === d.local) continue;
      void this.walkAhead(d.local, previous.get(d.branch), historyDepth(policy));
    }
  }

  /**
   * Walks the closure most peers will ask of a new head: what it adds to the branch's head before,
   * when it descends from that in a line (peers holding that fetch only this: `wholeHead`), else
   * the whole. A peer elsewhere has its closure walked when it asks.
   */
  private async walkAhead(head: Oid, before: Oid | undefined, history: number): Promise<void> {
    const line = before === undefined ? undefined : await lineToBase(head, before, (c) => this.durable.parents(c)).catch(() => undefined);
    if (line === undefined) await this.transfers.known(head, history);
    else await this.transfers.known(head, baseHistory(history, line), before);
  }

  /** Fetches `commit` for `branch` from `sources`: the peers announcing it as their head, and others that may hold some of it. */
  private want(branch: BranchName, commit: Oid, history: number, sources: { readonly announcers: readonly NodeId[]; readonly others: readonly NodeId[] }, blobs: boolean): void {
    const key = fetchKey(commit, history, blobs);
    if (this.settled.has(`${branch}:${key}`)) return;
    let running = this.fetches.get(key);
    if (running === undefined) {
      const order = [this.c.identity.nodeId, ...this.c.peers().map((p) => p.nodeId)].sort();
      const fetch = new CommitFetch(
        {
          ...this.reading,
          local: this.local,
          transfer: this.transfers.get(commit, history),
          trees: this.trees,
          // After a fetch by base failed (no peer could list it: those holding the commit lack the base), the whole closure.
          base: { find: async () => (this.baseFailed.has(commit) ? undefined : this.wholeHead(branch, history, blobs)), transfer: (base, line) => this.transfers.get(commit, baseHistory(history, line), base) },
        },
        { order, self: this.c.identity.nodeId, blobs },
      );
      running = { fetch, history, branches: new Set([branch]), announcers: new Set(), started: this.c.clock.now(), unmoved: new Map(), landed: new Map() };
      this.fetches.set(key, running);
      this.c.log.log('info', 'fetch-start', { branch, commit, history, blobs });
      this.completions.add(this.complete(key, running));
    }
    running.branches.add(branch);
    for (const id of sources.announcers) running.announcers.add(id);
    const peers = new Map(this.c.peers().map((p) => [p.nodeId, p]));
    running.fetch.announcedBy(sources.announcers);
    for (const id of new Set([...sources.announcers, ...sources.others])) {
      const peer = peers.get(id);
      if (peer === undefined || id === this.c.identity.nodeId) continue;
      void this.connection(peer).then((conn) => conn !== undefined && running.fetch.addPeer(conn));
    }
  }

  private complete(key: string, running: Running): Promise<void> {
    const done = this.settle(key, running).finally(() => this.completions.delete(done));
    return done;
  }

  private async settle(key: string, running: Running): Promise<void> {
    let error: string | null = null;
    try {
      // Held from before the first object until the branches name them (src/repo/write-holds.ts).
      await this.c.repo.whileWriting(async () => {
        const closure = await running.fetch.run();
        for (const branch of running.branches) await this.moveBranch(branch, closure, running);
      });
      this.stats.fetched++;
      // Its announcers gave what they announced: where it gave way for them alone, their failures no longer count.
      this.verdicts.fetched(running.fetch.commit, running.branches, [...running.announcers]);
    } catch (e) {
      error = (e as Error).message;
      this.stats.fetchFailures++;
      this.c.log.log('warn', 'fetch-failed', { commit: running.fetch.commit, error });
      // Whatever failed, another head that can be had goes first for a while; after a fetch by
      // base, the head itself is fetched whole next (the peers holding it may lack the base).
      if (running.fetch.transfer.base === undefined) this.verdicts.failed(running.fetch.commit, running.branches, running.announcers);
      else rememberMember(this.baseFailed, running.fetch.commit, SETTLED_MAX);
      // Refused for what it holds (the fetch's own refusal, git's fsck's, or refusedContent: held
      // here from before, the walk reads it again): asked again, it would be refused again.
      if (running.fetch.refusal !== undefined || isGitfsError(e, ErrorCodes.FSCK_REFUSED) || refusedContent(e)) {
        for (const branch of running.branches) {
          this.noMoreFetches(`${branch}:${key}`);
          // Not taken again, wherever the branch moves: the next newest head is (a refused head must not freeze the branch).
          this.refuse(branch, running.fetch.commit, `its content was refused: ${error}`);
        }
      }
    } finally {
      // Requests still out (asked ahead, or left by a failure) are let go with their timers.
      running.fetch.stop(error ?? 'the fetch is over');
      running.fetch.release();
      // What this node holds of it is counted again from what is really here next time.
      if (error !== null) this.transfers.forget(running.fetch.transfer);
      this.fetches.delete(key);
      const { commit, progress } = running.fetch;
      const unmoved = [...running.unmoved].map(([branch, why]) => ({ branch, why }));
      this.recent.push({ commit, branches: [...running.branches], error, unmoved, landed: [...running.landed.values()], bytes: progress.bytes, ms: this.c.clock.now() - running.started });
      if (this.recent.length > RECENT) this.recent.shift();
    }
  }

  /** Marks a target not to be fetched again; past SETTLED_MAX marks the oldest goes. */
  private noMoreFetches(key: string): void {
    rememberMember(this.settled, key, SETTLED_MAX);
  }

  /**
   * The head of `branch`, if its closure for `history` (with its blobs, if `blobs`) is whole here:
   * a fetch of a commit descending from it in a line needs only what that line adds to it. The
   * branch came whole (a ref moves only then) unless blobs were left out or its history is cut
   * shorter than `history` less one asks (the shallow file, which a prune may have cut since; with
   * no entry, no history here is cut short). Blobs: a fetch here records what it left there
   * (`wholeAt`, kept across restarts); otherwise a partial repository may lack some of any branch's.
   */
  private async wholeHead(branch: BranchName, history: number, blobs: boolean): Promise<Oid | undefined> {
    const recorded = await this.wholeAt.get(branch);
    const head = await this.c.repo.refs.resolve(branch).catch(() => undefined);
    if (head === undefined) return undefined;
    // The record stands while the branch is where a fetch left it: at its commit, by a fetch's own
    // reflog entry (a branch deleted and made again at the commit has another; its blobs may have
    // been pruned meanwhile).
    const moved = recorded?.commit === head ? await this.fetchedTo(branch, head) : 'no';
    const known = moved === 'yes' ? recorded : undefined;
    // A reflog that did not read says nothing: the record stays for the next time.
    if (recorded !== undefined && moved === 'no') this.wholeAt.drop(branch, recorded);
    // Its blobs: as a fetch here left them, or else in a repository that is not partial.
    const blobsHere = known !== undefined ? coversBase(known, history, blobs) : !blobs || !(await isPartial(this.c.repo.gitDir));
    if (!blobsHere) return undefined;
    if (history === 1) return head;
    const shallow = await readShallow(this.c.repo.gitDir);
    const here = shallow.size === 0 || (await historyHere(head, history === 0 ? 0 : history - 1, shallow, this.durable));
    return here ? head : undefined;
  }

  /** Whether `branch`'s newest reflog entry is a fetch's move to `head` ('unknown': the reflog did not read). */
  private async fetchedTo(branch: BranchName, head: Oid): Promise<'yes' | 'no' | 'unknown'> {
    try {
      for await (const e of this.c.repo.refs.reflogNewestFirst(branch)) return e.newOid === head && e.message === fetchedMessage(head) ? 'yes' : 'no';
      return 'no';
    } catch {
      return 'unknown';
    }
  }

  private async moveBranch(branch: BranchName, closure: Closure, running: Running): Promise<void> {
    const refs = this.c.repo.refs;
    const local = await refs.resolve(branch);
    if (local === closure.commit) {
      running.landed.set(branch, { branch, at: local, how: 'moved' });
      // Completed where a fetch left it (`gitfs fetch` of a branch kept on demand): its record now says so.
      if ((await this.fetchedTo(branch, local)) === 'yes') await this.wholeAt.set(branch, { commit: local, history: running.history, blobs: running.fetch.withBlobs });
      return;
    }
    if (closure.base !== undefined) {
      // The commit descends from the base, whole here: a fast-forward.
      if (local === closure.base) return this.advance(branch, local, closure, running);
      // Not at the base (it moved since, or another branch chose the base): not all this branch needs. Fetched again, from where it is, at the next tick.
      this.c.log.log('info', 'fetch-not-at-base', { branch, commit: closure.commit, base: closure.base, local });
      running.unmoved.set(branch, `the branch moved from ${closure.base.slice(0, 12)} meanwhile; fetched again from where it is at the next tick its policy asks`);
      return;
    }
    if (local !== undefined && !closure.commits.includes(local)) {
      // Already ahead of it (a peer announces an older head): nothing to move, and no need to fetch it again.
      if (await this.descends(local, closure.commit)) {
        running.landed.set(branch, { branch, at: local, how: 'holds' });
        return this.passed(branch, local, closure, running);
      }
      // Behind by more than the history kept: a fast-forward still, once proven.
      if (closure.boundary.length > 0 && (await this.behindBoundary(closure, local))) return this.advance(branch, local, closure, running);
      return this.merge(branch, local, closure, running);
    }
    return this.advance(branch, local, closure, running);
  }

  /**
   * `branch` at `local` and the fetched head each hold commits the other lacks (written apart):
   * the branch moves to their merge (merge-heads.ts), the same commit every node writes for them.
   * A pair that is not merged (signed releases, no common commit, history not all here) is left
   * as it is, and the head refused for the branch; a merge that failed is tried again once the
   * branch moves, after `mergeRetryMs`, or after a restart. A merge that failed fails this branch
   * alone: the fetch, and the other branches waiting on it, go on.
   */
  private async merge(branch: BranchName, local: Oid, closure: Closure, running: Running): Promise<void> {
    const failed = (e: unknown): undefined => {
      // Not tried at every tick (the head stays a fork): again once the branch moves, or after a while.
      this.verdicts.set(local, closure.commit, 'passed', this.o.mergeRetryMs);
      this.c.log.log('warn', 'merge-failed', { branch, local, fetched: closure.commit, error: (e as Error).message, ...(isGitfsError(e) ? { code: e.code } : {}), retryMs: this.o.mergeRetryMs });
      const why = `its merge with the local head ${local.slice(0, 12)} failed: ${(e as Error).message}`;
      running.unmoved.set(branch, why);
      renew(this.mergeFailed, `${branch}:${closure.commit}`, { at: local, why }, SETTLED_MAX);
      if (!isOperationalError(e)) throw e;
      return undefined;
    };
    const plan = await planMerge(this.c.repo, local, closure.commit).catch(failed);
    if (plan === undefined) return;
    if (typeof plan === 'string') {
      this.passed(branch, local, closure, running);
      const why = `the local branch has commits the fetched head lacks; left as it is (${plan})`;
      this.refuse(branch, closure.commit, why);
      this.c.log.log('warn', 'fetch-diverged', { branch, local, fetched: closure.commit, why });
      running.unmoved.set(branch, why);
      return;
    }
    if ('keep' in plan) {
      // Merges of the same writes, made apart: the one every node keeps, and no merge more.
      this.c.log.log('info', 'merged-alike', { branch, local, fetched: closure.commit, kept: plan.keep });
      if (plan.keep === closure.commit) return this.advance(branch, local, closure, running);
      running.landed.set(branch, { branch, at: local, how: 'kept' });
      return this.passed(branch, local, closure, running);
    }
    await this.secure(closure, running);
    const written = await writeMerge(this.c.repo, plan).catch(failed);
    if (written === undefined) return;
    const { commit, setAside, merges, joined } = written;
    try {
      await this.c.repo.refs.update(branch, { expected: local, next: commit, message: `gitfs swarm: merged ${closure.commit}` });
    } catch (e) {
      if (!isGitfsError(e)) throw e;
      return this.movedMeanwhile(branch, closure, running, e);
    }
    running.landed.set(branch, { branch, at: commit, how: 'merged', setAside: setAside.length });
    this.c.log.log('info', 'merged', { branch, commit, local, fetched: closure.commit, merges, ...(joined === undefined ? { base: plan.base } : { joined }), setAside: setAside.slice(0, LISTED), setAsideCount: setAside.length });
  }

  /** The branch moved while the fetch moved it (another fetch, a commit here): unmoved, unless it now holds the fetched head. */
  private async movedMeanwhile(branch: BranchName, closure: Closure, running: Running, e: GitfsError): Promise<void> {
    this.c.log.log('warn', 'fetch-ref-moved', { branch, error: e.message });
    const now = await this.c.repo.refs.resolve(branch).catch(() => undefined);
    if (now !== undefined && (now === closure.commit || (await this.descends(now, closure.commit)))) {
      running.landed.set(branch, { branch, at: now, how: now === closure.commit ? 'moved' : 'holds' });
      return;
    }
    running.unmoved.set(branch, `the branch moved meanwhile: ${e.message}`);
  }

  /** A fetched head that `branch` at `local` is not to move to: not fetched again, and not taken while the branch stays there. */
  private passed(branch: BranchName, local: Oid, closure: Closure, running: Running): void {
    this.noMoreFetches(`${branch}:${fetchKey(closure.commit, running.history, running.fetch.withBlobs)}`);
    this.verdicts.set(local, closure.commit, 'passed');
  }

  /** Moves `branch` from `local` to the fetched head (a fast-forward), once the closure is durable here. */
  private async advance(branch: BranchName, local: Oid | undefined, closure: Closure, running: Running): Promise<void> {
    await this.secure(closure, running);
    try {
      await this.c.repo.refs.update(branch, { expected: local ?? null, next: closure.commit, message: fetchedMessage(closure.commit) });
    } catch (e) {
      if (!isGitfsError(e)) throw e;
      return this.movedMeanwhile(branch, closure, running, e);
    }
    running.landed.set(branch, { branch, at: closure.commit, how: 'moved' });
    // Taken after all (`gitfs fetch` of a head refused before): no longer refused for the branch.
    this.refused.delete(`${branch}:${closure.commit}`);
    // By a base, the rest of the closure was whole here before (wholeHead).
    await this.wholeAt.set(branch, { commit: closure.commit, history: running.history, blobs: running.fetch.withBlobs });
    const ms = this.c.clock.now() - running.started;
    this.c.log.log('info', 'fetched', { branch, commit: closure.commit, history: running.history, base: closure.base, ms, bytes: running.fetch.progress.bytes, objects: running.fetch.progress.objects, aheadAsked: running.fetch.progress.aheadAsked, aheadMissed: running.fetch.progress.aheadMissed, raced: running.fetch.progress.raced, walkMs: running.fetch.progress.walkMs, firstPieceMs: running.fetch.progress.firstPieceMs });
  }

  /**
   * Makes a fetched closure safe for a ref to name: durable, fresh (safe from git gc), its special
   * files checked, the repository marked partial when blobs were left out, and the shallow file
   * told where the history kept is cut.
   */
  private async secure(closure: Closure, running: Running): Promise<void> {
    // The whole closure must be in finished packs before a ref names it (a failed pack write
    // drops objects), and safe from git gc (freshen.ts): the packs that hold it freshened; what
    // lies loose or only in a cruft pack (git's, as the walk found it here) goes through a pack
    // writer, which freshens the one and writes the other again.
    let absent: Oid | undefined;
    const objects = this.c.repo.objects;
    const fresh = new Freshener(this.c.clock, { refresh: () => objects.refresh(), fileOf: (o) => objects.packHolding(o) });
    const renew: Oid[] = [];
    const needed = running.fetch.withBlobs ? [...closure.commits, ...closure.trees, ...closure.blobs] : [...closure.commits, ...closure.trees];
    for (const o of needed) {
      const pack = objects.packHolding(o);
      if (pack !== undefined) fresh.touch(pack, o);
      else if (await objects.has(o)) renew.push(o);
      else {
        absent = o;
        break;
      }
    }
    if (absent !== undefined) throw new GitfsError(ErrorCodes.IO, `${absent} of ${closure.commit}'s closure is not in a finished pack`, { oid: absent });
    await fresh.settled();
    if (renew.length > 0) await this.renew(renew);
    await this.checkSpecialFiles(closure);
    if (!running.fetch.withBlobs) await markPartial(this.c.repo.gitDir, this.c.clock);
    const within = new Set(closure.commits);
    await this.serially(() => updateShallow(this.c.repo.gitDir, closure.boundary, (candidates) => keptShallow(candidates, within, this.durable)));
  }

  /** Passes objects that are here, loose or in a cruft pack, through a pack writer (freshen.ts). */
  private async renew(oids: readonly Oid[]): Promise<void> {
    const writer = await this.c.repo.newPackWriter();
    try {
      for (const oid of oids) {
        const o = await this.c.repo.objects.read(oid);
        await writer.write(o.type, o.content);
      }
    } catch (e) {
      await writer.abort();
      throw e;
    }
    await writer.finish();
  }

  /**
   * Throws GITFS_FSCK_REFUSED if a blob the closure's trees name as `.gitmodules` or
   * `.gitattributes` holds what git fsck refuses (special-file-check.ts). A fetch of commits and
   * trees alone asks peers for those blobs (read wants) and keeps them only if they pass.
   */
  private async checkSpecialFiles(closure: Closure): Promise<void> {
    if (closure.specialFiles.length === 0) return;
    const came = new Map<Oid, WireObject>();
    const absent = new Set(await this.local.absent([...new Set(closure.specialFiles.map((s) => s.oid))]));
    if (absent.size > 0) await this.demanding.run(() => this.fromPeers([...absent], 'read', (o) => came.set(o.oid, o)));
    for (const { oid, which } of closure.specialFiles) {
      // One that came in parts (too large for a message) went straight into a pack, unchecked: refused, as a fetch refuses it.
      if (absent.has(oid) && !came.has(oid) && (await this.local.has(oid))) {
        throw specialBlobTooLarge(closure.commit, oid, [which]);
      }
      const o = came.get(oid) ?? (absent.has(oid) ? undefined : { oid, ...(await this.local.read(oid)) });
      if (o === undefined) throw new GitfsError(ErrorCodes.PEER_FAILED, `no peer supplied ${oid}, which ${closure.commit} has as .${which}`, { oid });
      const refusal = specialBlobRefusal(closure.commit, o, which);
      if (refusal !== undefined) throw refusal;
    }
    if (came.size === 0) return;
    await this.local.addAll([...came.values()]);
    this.local.flushWithin(DEMAND_FLUSH_MS);
  }

  /** Runs `step` after every earlier one (shallow file updates read, then write). */
  private serially(step: () => Promise<void>): Promise<void> {
    const run = this.chain.then(step);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Whether `commit` is an ancestor of (or equal to) `head`, by local commits (up to 100 000). */
  private descends(head: Oid, commit: Oid): Promise<boolean> {
    // has(), not hasNow(): the local commits may be in packs another process (gitfs commit) just wrote.
    return reaches(async (c) => ((await this.local.has(c)) ? (await this.local.read(c)).content : undefined), head, commit, 100_000);
  }

  /** The repository as keptShallow asks it: durable objects only (not those in a pack still being written). */
  private readonly durable: ShallowSource = {
    here: async (oid) => this.c.repo.objects.hasPacked(oid) || (await this.c.repo.objects.has(oid)),
    parents: async (commit) => decodeCommit((await this.c.repo.objects.read(commit)).content, commit).parents,
  };

  /**
   * `gitfs fetch BRANCH`: fetches the newest head its peers announce for `branch` that ancestry
   * does not rule out, whatever the policies say (history from the matching policy, else all); with
   * none newer than this node's own, that one (completing an on-demand branch) from those announcing
   * it, or else the newest announced. GITFS_UNKNOWN_BRANCH when no peer announces it.
   */
  async fetchBranch(branch: BranchName): Promise<{ commit: Oid; history: number }> {
    const decision = (await this.decisions()).find((d) => d.branch === branch);
    const mine = await this.c.repo.refs.resolve(branch);
    const members = this.c.peers().filter((p) => p.nodeId !== this.c.identity.nodeId);
    // Asked for by hand: what ancestry rules out stays out, a head of the same second is not waited
    // for, and a head that failed lately is tried again.
    const chosen = newestHead(branch, members, mine, mine === undefined ? undefined : await this.c.commitTime(mine), (head) => this.standing(branch, mine, head) ?? 'unproven');
    // Nothing newer to take and nobody announcing this node's own head: the newest announced, by claimed time.
    const target = chosen !== undefined && (chosen.oid !== mine || chosen.from.length > 0) ? chosen : newestHead(branch, members, undefined, undefined);
    if (target === undefined) throw new GitfsError(ErrorCodes.UNKNOWN_BRANCH, `no peer announces a branch ${branch}`, { branch });
    const history = historyDepth(this.o.policies[decision?.policy ?? -1]);
    this.settled.delete(`${branch}:${fetchKey(target.oid, history, true)}`);
    this.want(branch, target.oid, history, { announcers: target.from, others: [] }, true);
    return { commit: target.oid, history };
  }

  /** What every request this node makes needs: ids, routing of the answers, the peers to avoid. */
  private readonly reading: ReadComponents & ReadStore;
  private readonly demanding = new Semaphore(2);

  /**
   * On-demand read (a reader waits): the objects `oids`, from here or else (absent, or here but
   * damaged: a good copy is written again, and `gitfs fsck --repair` asks so) from peers, asked in
   * rendezvous order of the first id (so readers of the same file spread over holders), each
   * checked, stored (durable within DEMAND_FLUSH_MS) and returned. Ids no peer has are left out,
   * and so is what git fsck would refuse: a commit that does not parse, a tree for its names or
   * for a blob it names as `.gitmodules` or `.gitattributes` (fetched with it, and checked before
   * the tree is stored).
   */
  async demand(oids: readonly Oid[]): Promise<Map<Oid, GitObject>> {
    const wanted = [...new Set(oids)];
    const { found, stored, damaged } = await this.readHere(wanted);
    this.local.replace([...damaged]);
    const held: HeldTree[] = [];
    const take = (o: WireObject): void => {
      found.set(o.oid, { type: o.type, content: o.content });
      this.storeDemanded(o);
    };
    // At most two at once (what a peer serves per connection): more would be told busy, not queued;
    // what came while this one waited (an earlier demand of the same blob) is not asked again.
    await this.demanding.run(() => this.fromPeers(wanted.filter((o) => !found.has(o) && !stored.has(o) && (damaged.has(o) ? this.local.held(o) === undefined : !this.local.hasNow(o))), 'read', (o) => {
      // A commit that does not parse, or a tree git fsck would refuse by its names, is neither stored nor handed on.
      const commit = o.type === 'commit' ? gitfsErrorOr(() => decodeCommit(o.content, o.oid)) : undefined;
      const links = o.type === 'tree' ? gitfsErrorOr(() => treeLinks(o.content, o.oid)) : undefined;
      const refused = commit instanceof GitfsError ? commit : links instanceof GitfsError ? links : undefined;
      if (refused !== undefined) return this.c.log.log('warn', 'demand-refused', { oid: o.oid, error: refused.message });
      const special = links === undefined || links instanceof GitfsError ? [] : specialLinks(links);
      if (special.length === 0) return take(o);
      held.push({ tree: { oid: o.oid, type: 'tree', content: Buffer.from(o.content) }, special });
    }));
    if (held.length > 0) await this.releaseDemanded(held, take);
    // A damaged copy another demand fetched while this one waited is in memory: taken from there.
    for (const oid of damaged) {
      if (found.has(oid) || this.local.held(oid) === undefined) continue;
      found.set(oid, await this.local.read(oid));
    }
    if (found.size > 0) this.local.flushWithin(DEMAND_FLUSH_MS);
    this.stats.demanded += found.size;
    return found;
  }

  /**
   * Trees a read on demand brought that name blobs as `.gitmodules` or `.gitattributes`: those
   * blobs are fetched (as any read, stored: unnamed, git checks nothing of them), and each tree
   * whose special blobs all came and pass git fsck's checks is taken; the others are dropped.
   */
  private async releaseDemanded(held: readonly HeldTree[], take: (o: WireObject) => void): Promise<void> {
    const named = [...new Set(held.flatMap((h) => h.special.map((s) => s.oid)))];
    const { found: blobs } = await this.readHere(named);
    await this.demanding.run(() => this.fromPeers(named.filter((o) => !blobs.has(o)), 'read', (o) => {
      blobs.set(o.oid, { type: o.type, content: o.content });
      this.storeDemanded(o);
    }));
    for (const h of held) {
      const refusal = h.special.map(({ oid, which }) => {
        const blob = blobs.get(oid);
        return blob === undefined ? `its .${which} ${oid} could not be had` : specialBlobRefusal(h.tree.oid, { oid, ...blob }, which)?.message;
      }).find((why) => why !== undefined);
      if (refusal === undefined) take(h.tree);
      else this.c.log.log('warn', 'demand-refused', { oid: h.tree.oid, error: refusal });
    }
  }

  /**
   * Of `oids`, those read here (`found`), those here too large to read whole (`stored`: a blob git
   * wrote, or one fetched in parts; the asker reads it from the repository), and those here that
   * do not read (`damaged`): those are fetched again, and logged (`gitfs fsck --repair` mends the pack).
   */
  private async readHere(oids: readonly Oid[]): Promise<{ found: Map<Oid, GitObject>; stored: Set<Oid>; damaged: Set<Oid> }> {
    const found = new Map<Oid, GitObject>();
    const stored = new Set<Oid>();
    const damaged = new Set<Oid>();
    for (const oid of oids) {
      if (!this.local.hasNow(oid)) continue;
      const o = await this.local.read(oid).catch((e: unknown) => {
        if (isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE)) stored.add(oid);
        // A sector the disk cannot read (EIO) is damage too: a peer's copy mends it.
        else if (DAMAGE.some((code) => isGitfsError(e, code)) || causedBy(e, 'EIO')) damaged.add(oid);
        return undefined;
      });
      if (o !== undefined) found.set(oid, o);
    }
    // Once per object (a read retried meanwhile would say it again and again).
    const news = [...damaged].filter((oid) => !this.damagedLogged.has(oid));
    for (const oid of news) rememberMember(this.damagedLogged, oid, SETTLED_MAX);
    if (news.length > 0) this.c.log.log('warn', 'damaged-here', { objects: news.length, first: news[0], fix: 'gitfs fsck --repair' });
    return { found, stored, damaged };
  }

  private storeDemanded(o: WireObject): void {
    this.local.addAll([o]).catch((e: unknown) => this.c.log.log('warn', 'demand-store-failed', { oid: o.oid, error: (e as Error).message }));
  }

  /**
   * Asks peers (`only` those, if given) for `oids` with wants of kind `want`, one peer at a time in
   * rendezvous order of the first id, until every id came or every peer was asked; `each` gets
   * every object (checked).
   */
  private async fromPeers(oids: readonly Oid[], want: 'read' | 'meta', each: (o: WireObject) => void, only?: readonly NodeId[]): Promise<void> {
    const got = new Set<Oid>();
    let missing = [...oids];
    const now = this.c.clock.now();
    const peers = new Map(this.c.peers().map((p) => [p.nodeId, p]));
    const asked = only === undefined ? [...peers.keys()] : only.filter((id) => peers.has(id));
    const order = rendezvousOrder(missing[0] ?? '', asked.filter((id) => id !== this.c.identity.nodeId && (this.avoid.get(id) ?? 0) <= now));
    for (const id of order) {
      if (missing.length === 0 || this.stopped) break;
      const conn = await this.connection(peers.get(id) as Peer);
      if (conn === undefined) continue;
      for (let offset = 0, busy = 0; offset < missing.length && conn.isOpen && busy < DEMAND_BUSY_TRIES; ) {
        const r = await readFrom(conn, missing.slice(offset, offset + DEMAND_BATCH), want, this.reading);
        if (r.busy) {
          busy++;
          await new Promise((resolve) => setTimeout(resolve, DEMAND_BUSY_WAIT_MS));
          continue;
        }
        for (const o of r.objects) {
          got.add(o.oid);
          each(o);
        }
        // Blobs too large for one message came in parts, straight into a pack: readers find them in the repository.
        for (const oid of r.stored) got.add(oid);
        offset += DEMAND_BATCH;
      }
      missing = missing.filter((o) => !got.has(o));
    }
  }

  /**
   * Whether `local` is an ancestor of a fetched head whose closure stops at a history limit
   * (so `local` is not among its commits): the commits below the boundary are asked of peers
   * generation by generation (metadata wants, each checked, none stored) until `local` shows up,
   * a commit cannot be had, or ANCESTRY_LIMIT commits were looked at.
   */
  private async behindBoundary(closure: Closure, local: Oid): Promise<boolean> {
    const seen = new Set<Oid>(closure.commits);
    const parentsOf = (content: Buffer, oid: Oid): readonly Oid[] => decodeCommit(content, oid).parents;
    let level: Oid[] = [];
    for (const b of closure.boundary) level.push(...parentsOf((await this.local.read(b)).content, b));
    while (level.length > 0 && seen.size < ANCESTRY_LIMIT) {
      level = [...new Set(level)].filter((o) => !seen.has(o));
      if (level.includes(local)) return true;
      for (const o of level) seen.add(o);
      const contents = new Map<Oid, Buffer>();
      for (const o of level) if (this.local.hasNow(o)) contents.set(o, (await this.local.read(o)).content);
      await this.fromPeers(
        level.filter((o) => !contents.has(o)),
        'meta',
        (o) => void (o.type === 'commit' && contents.set(o.oid, o.content)),
      );
      const next: Oid[] = [];
      for (const o of level) {
        const content = contents.get(o);
        if (content === undefined) return false;
        next.push(...parentsOf(content, o));
      }
      level = next;
    }
    return false;
  }

  /** How the recent fetches ended. */
  outcomes(): readonly FetchOutcome[] {
    return this.recent;
  }

  /**
   * Closes the connections whose peer's certificate (or the CA's) expired since the handshake,
   * which alone checked it: a member that stopped renewing stayed connected as long as it kept
   * the connection busy. (One renewed meanwhile dials again with its new certificate.)
   */
  private dropExpired(): void {
    const now = this.c.clock.now();
    for (const conn of [...this.live, ...this.conns.values()]) if (now >= (this.validUntil.get(conn) ?? Infinity)) conn.close('its certificate expired');
  }

  /** Closes the connections of nodes that are now revoked. */
  dropRevoked(isRevoked: (id: NodeId) => boolean): void {
    for (const conn of [...this.live, ...this.conns.values()]) if (isRevoked(conn.nodeId)) conn.close('revoked');
    for (const id of [...this.lastHeard.keys()]) if (isRevoked(id)) this.lastHeard.delete(id);
  }

  /** In-progress fetches, for `gitfs policy` and `gitfs peers`. */
  progress(): { commit: Oid; branches: string[]; pieces: number; held: number; bytes: number; ms: number }[] {
    return [...this.fetches.values()].map((r) => {
      const t = r.fetch.transfer;
      return { commit: r.fetch.commit, branches: [...r.branches], pieces: t.closure?.pieces ?? 0, held: t.held, bytes: r.fetch.progress.bytes, ms: this.c.clock.now() - r.started };
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const r of this.fetches.values()) r.fetch.stop('node stopping');
    await this.verdicts.stop();
    // A fetch that was about to move a branch does so (or gives up) before the node goes.
    await Promise.allSettled([...this.completions]);
    for (const conn of [...this.live, ...this.conns.values()]) conn.close('node stopping');
    await this.local.close();
  }
}
