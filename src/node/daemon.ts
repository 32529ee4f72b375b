/**
 * `gitfs serve`: the node daemon. It wires the cluster identity, the TLS node service, the
 * announcement transport, receiver and announcer, the peer table, a watcher of this node's
 * refs and of its revocation list, the local sockets (`gitfs peers`, `gitfs policy`, `gitfs
 * rollout`; objects for partial reads), the swarm, and the rollout agent when channels are
 * configured; each part stays in its own module.
 */
import type { Server as NetServer } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { join } from 'node:path';
import { parseBranchName } from '../branches/ref-name.js';
import { RefWatcher } from '../branches/ref-watcher.js';
import type { BranchRef } from '../branches/ref-store.js';
import { RevocationsOnDisk, holdsAuthority, loadMembership, mergeOnAuthority, saveRevocations } from '../cluster/cluster-store.js';
import type { ClusterTrust, NodeIdentity } from '../cluster/identity.js';
import type { RevocationList } from '../cluster/revocation.js';
import { serverOptions } from '../cluster/tls.js';
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import { readCommit } from '../files/tree-reader.js';
import type { Announcement, Endpoint, Head } from '../multicast/announcement.js';
import { Announcer } from '../multicast/announcer.js';
import { EnvelopeOpener } from '../multicast/envelope.js';
import { PeerTable, type PeerEvent } from '../multicast/peer-table.js';
import { Receiver } from '../multicast/receiver.js';
import { ReplayGuard } from '../multicast/replay-guard.js';
import { UdpTransport } from '../multicast/transport.js';
import { RolloutAgent } from '../rollout/rollout-agent.js';
import { Swarm } from '../swarm/swarm.js';
import { isOid, type Oid } from '../objects/oid.js';
import { strictBase64 } from '../rollout/ssh-wire.js';
import { mergeSmallPacks, removePacks, removeStaleTemporaries } from '../repo/pack-merge.js';
import { prune, recoverKilledPrune, removeDoomedPacks, type DoomedPack } from '../repo/prune.js';
import { withPruneLock } from '../repo/prune-lock.js';
import { takeServeLock } from './serve-lock.js';
import type { HeldLock } from '../util/process-lock.js';
import type { Repository } from '../repo/repository.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { askUnixSocket, checkSocketPath, serveUnixSocket } from '../util/unix-socket.js';
import type { NodeConfig } from './config.js';
import { nodeAddresses } from './interfaces.js';
import { CertificateRenewal } from './certificate-renewal.js';
import { fetchRevocations, startNodeService } from './node-service.js';
import { RevocationSources } from './revocation-sources.js';
import { objectSocketPath, serveObjectSocket } from './object-socket.js';
import { recoverKilledRepair } from '../repo/damaged-dir.js';
import { Scrubber } from './scrub.js';
import { snapshot, type NodeSnapshot } from './snapshot.js';

export function daemonSocketPath(gitDir: string): string {
  return join(gitDir, 'gitfs', 'serve.sock');
}

export interface DaemonComponents {
  readonly repo: Repository;
  readonly clock: Clock;
  readonly log: Logger;
}

const MAINTENANCE_MS = 500;
const SWARM_TICK_MS = 2000;
/** How often the daemon looks whether its packs are to be merged (src/repo/pack-merge.ts). */
const PACK_MERGE_EVERY_MS = 60_000;
/** How long merged or pruned packs stay before they are removed: a git command that listed them (a git fsck) is done by then. */
const MERGED_PACKS_KEPT_MS = 600_000;
/** The first prune after a start, at the latest. */
const FIRST_PRUNE_AFTER_MS = 600_000;

export class NodeDaemon {
  private readonly commitTimes = new Map<Oid, number>();
  private refs: readonly BranchRef[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly revocationSources = new RevocationSources();
  /** The revocation list being fetched from a peer, if one is: stop() ends it. */
  private revocationFetch: AbortController | undefined;
  /** The adoption of revocation lists under way, one at a time (adoptRevocations). */
  private revocationsAdopting: Promise<unknown> = Promise.resolve();
  private closers: (() => Promise<void>)[] = [];
  private swarm: Swarm | undefined;
  private swarmTick: NodeJS.Timeout | undefined;
  /** A swarm look is due within 20 ms; one runs; another was asked for while it ran. */
  private swarmSoon = false;
  private swarmLooking = false;
  private swarmAgain = false;
  private rollout: RolloutAgent | undefined;
  private stopping = false;
  private nextPackMerge = -Infinity;
  /** Packs merged and not removed yet, with when they were merged (left out of later merges). */
  private readonly mergedPacks = new Map<string, number>();
  /** Packs that hold an object above the read limit: never merged (pack-merge.ts). */
  private readonly unmergeablePacks = new Set<string>();
  /** Packs a prune rewrote, not removed yet, with when (left out of merges: they hold what goes). */
  private readonly prunedPacks = new Map<string, { readonly at: number; readonly pack: DoomedPack }>();
  private nextPrune: number;
  /** A prune (or its removal of packs) that failed is not tried again before this (else it would run every tick, and nothing after it in maintain()). */
  private pruneRetryAt = -Infinity;
  /** A put-back of what a killed prune set aside runs (recoverPrune). */
  private recovering = false;
  /** The pack merge, prune or scrub under way, if one is: stop() waits for it. */
  private packWork: Promise<void> | undefined;
  private scrubber: Scrubber | undefined;
  /** Ends a scrub under way when the daemon stops (it is done again after the restart). */
  private readonly scrubStop = new AbortController();
  private readonly revocationsOnDisk: RevocationsOnDisk;
  private renewal: CertificateRenewal | undefined;

  private constructor(
    private readonly c: DaemonComponents,
    readonly config: NodeConfig,
    readonly identity: NodeIdentity,
    readonly trust: ClusterTrust,
    readonly endpoints: readonly Endpoint[],
    private readonly table: PeerTable,
    private readonly guard: ReplayGuard,
    private announcer: Announcer | undefined = undefined,
    private receiver: Receiver | undefined = undefined,
  ) {
    this.revocationsOnDisk = new RevocationsOnDisk(c.repo.gitDir, trust.ca.publicKey);
    // Not at once: a node just started fetches what it missed first.
    this.nextPrune = c.clock.now() + Math.min(config.prune.everyMs, FIRST_PRUNE_AFTER_MS);
  }

  static async start(c: DaemonComponents, config: NodeConfig): Promise<NodeDaemon> {
    // One daemon per repository: a second would take over the sockets and run a second rollout agent beside the first.
    const lock = await takeServeLock(c.repo.gitDir, async () => (await askUnixSocket(daemonSocketPath(c.repo.gitDir), { op: 'ping' }, { timeoutMs: 2000, peer: 'the running daemon', failCode: ErrorCodes.NOT_SERVING }).catch(() => undefined)) !== undefined);
    try {
      return await NodeDaemon.startHolding(c, config, lock);
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  private static async startHolding(c: DaemonComponents, config: NodeConfig, lock: HeldLock): Promise<NodeDaemon> {
    const { identity, trust } = await loadMembership(c.repo.gitDir, c.clock.now());
    const issuer = await holdsAuthority(c.repo.gitDir);
    const { iface, endpoints } = nodeAddresses(config);
    const table = new PeerTable({ expireIntervals: config.announce.expireIntervals, maxPeers: 4096 });
    const d = new NodeDaemon(c, config, identity, trust, endpoints, table, new ReplayGuard(config.announce.windowMs));
    // Released last: everything else is closed by then.
    d.closers.push(() => lock.release());
    // A prune killed mid-removal left object files set aside that refs may name: back before anything reads them.
    const restored = await recoverKilledPrune(c.repo);
    if (restored > 0) c.log.log('warn', 'prune-recovered', { files: restored });
    try {
      await d.startParts(issuer, iface?.address);
    } catch (e) {
      await d.stop();
      throw e;
    }
    c.log.log('info', 'serving', { nodeId: identity.nodeId, cluster: trust.clusterId, instance: d.announcer?.instance, endpoints, issuer, interface: iface ?? null });
    return d;
  }

  private async startParts(issuer: boolean, interfaceAddress: string | undefined): Promise<void> {
    const { repo, log, clock } = this.c;
    const cfg = this.config;
    this.scrubber = await Scrubber.load(repo, cfg.scrub.everyMs, clock);
    const swarm = new Swarm(
      { repo, identity: this.identity, trust: this.trust, clock, log: log.child('swarm'), peers: () => this.table.list(), commitTime: (oid) => this.commitTime(oid), nudge: () => this.nudgeSwarm() },
      { policies: cfg.policies, flushBytes: cfg.swarm.flushBytes, mergeRetryMs: cfg.swarm.mergeRetryMs },
    );
    this.swarm = swarm;
    const service: TlsServer = await startNodeService(
      { gitDir: repo.gitDir, identity: this.identity, trust: this.trust, clock, log: log.child('service'), issuer, swarm },
      cfg.service,
    ).catch((e: unknown) => {
      throw new GitfsError(ErrorCodes.IO, `cannot listen on ${cfg.service.address}:${cfg.service.port}: ${(e as Error).message}`, {}, { cause: e });
    });
    // Closers run in reverse: the swarm's connections end first, or the service's close() waits for them.
    this.closers.push(() => new Promise((r) => service.close(() => r())));
    this.closers.push(() => swarm.stop());
    const renewal = new CertificateRenewal({
      gitDir: repo.gitDir,
      identity: this.identity,
      trust: this.trust,
      issuer,
      clock,
      log: log.child('cluster'),
      peers: () => this.table.list(),
      // New connections get the renewed certificate (open ones keep the one they began with).
      renewed: () => {
        try {
          service.setSecureContext(serverOptions(this.identity, this.trust));
        } catch (e) {
          log.log('error', 'certificate-not-presented', { error: (e as Error).message });
        }
      },
    });
    this.renewal = renewal;
    this.closers.push(() => renewal.stop());
    if (cfg.rollout.channels.length > 0) {
      const rollout = new RolloutAgent(
        { repo, log: log.child('rollout'), now: () => clock.now(), self: this.identity.nodeId, clusterId: this.trust.clusterId, peers: () => this.table.list(), changed: () => this.announcer?.changed() },
        cfg.rollout,
      );
      this.rollout = rollout;
      // Stops before the swarm: an apply or rollback hook still running is let finish (ChannelAgent.stop);
      // a health check or verification is stopped, its stored phase redone at the next start.
      this.closers.push(() => rollout.stop());
    }

    const watcher = new RefWatcher({ gitDir: repo.gitDir, refs: repo.refs, log: log.child('refs'), now: () => clock.now() }, { pollMs: 100, relistMs: 1000 }, (refs) => {
      this.refs = refs;
      this.announcer?.changed();
      void this.pokeRollout();
      this.nudgeSwarm();
    });
    this.refs = await watcher.start();
    this.closers.push(() => watcher.stop());

    this.receiver = new Receiver(
      {
        opener: new EnvelopeOpener(this.trust, this.identity),
        guard: this.guard,
        table: this.table,
        clock,
        log: log.child('receive'),
        onAccepted: (a, events) => this.accepted(a, events),
      },
      { windowMs: cfg.announce.windowMs },
    );
    const receiver = this.receiver;
    const transport = await UdpTransport.open(
      {
        group: cfg.multicast.enabled ? cfg.multicast.group : undefined,
        port: cfg.multicast.port,
        interfaceAddress,
        bindAddress: '0.0.0.0',
        ttl: cfg.multicast.ttl,
        staticPeers: cfg.staticPeers.map((p) => ({ host: p.slice(0, p.lastIndexOf(':')), port: Number(p.slice(p.lastIndexOf(':') + 1)) })),
      },
      log.child('udp'),
      (packet, from) => receiver.receive(packet, from),
    ).catch((e: unknown) => {
      throw new GitfsError(ErrorCodes.IO, `cannot open UDP port ${cfg.multicast.port}: ${(e as Error).message}`, {}, { cause: e });
    });
    this.closers.push(() => transport.close());

    this.announcer = new Announcer(
      { transport, identity: this.identity, trust: this.trust, clock, log: log.child('announce'), heads: () => this.heads(), rollouts: () => this.rollout?.reports() ?? [] },
      { name: cfg.name, endpoints: this.endpoints, ...cfg.announce },
    );
    const announcer = this.announcer;
    this.closers.push(() => announcer.stop());

    const sock: NetServer = await serveUnixSocket(checkSocketPath(daemonSocketPath(repo.gitDir), "node daemon's socket"), async (raw) => {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'a request is a JSON object');
      const req = raw as Record<string, unknown>;
      const op = req['op'];
      if (op === 'peers') return this.snapshot();
      if (op === 'ping') return { pid: process.pid, nodeId: this.identity.nodeId };
      if (op === 'policy') return { decisions: await swarm.decisions(), fetching: swarm.progress(), outcomes: swarm.outcomes() };
      if (op === 'fetch') return swarm.fetchBranch(parseBranchName(stringField(req, 'branch')));
      if (typeof op === 'string' && op.startsWith('rollout-')) return this.answerRollout(op, req);
      throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `unknown request ${JSON.stringify(op)}`);
    });
    this.closers.push(() => new Promise((r) => sock.close(() => r())));
    const objects = await serveObjectSocket(checkSocketPath(objectSocketPath(repo.gitDir), "node daemon's object socket"), (oids) => swarm.demand(oids));
    this.closers.push(() => objects.close());

    // The rollout agents start (stored state read, a crash recovered) before the first
    // announcement, so that it carries this node's reports: a peer replaces a node's reports with
    // those of its latest announcement, and one that planned a wave while a restarted canary
    // announced none left that canary out and could take its place.
    await this.pokeRollout();
    announcer.start();
    this.timer = setInterval(() => void this.maintain(), MAINTENANCE_MS);
    this.nudgeSwarm();
  }

  private accepted(a: Announcement, events: readonly PeerEvent[]): void {
    for (const e of events) {
      this.c.log.log('info', e.kind, { ...e, kind: undefined });
      if (e.kind === 'peer-up' || e.kind === 'peer-restart') this.announcer?.greet();
      if (e.kind === 'head' || e.kind === 'peer-up') this.nudgeSwarm();
      if (e.kind === 'rollout' || e.kind === 'peer-up') void this.pokeRollout();
    }
    if (a.revocationVersion > this.trust.revocationVersion) void this.fetchNewerRevocations();
  }

  /**
   * Asks a member claiming a newer revocation list than this node's for it (revocation-sources.ts
   * chooses which: each member backed off on its own, so one that claims what it never serves
   * cannot keep the list from coming from the others). One fetch at a time: a fetch still running
   * counts (a peer trickling its answer opened one every gap).
   */
  private async fetchNewerRevocations(): Promise<void> {
    if (this.revocationFetch !== undefined || this.stopping) return;
    const now = this.c.clock.now();
    const peer = this.revocationSources.choose(this.table.list().filter((p) => p.endpoints[0] !== undefined), this.trust.revocationVersion, now);
    const to = peer?.endpoints[0];
    if (peer === undefined || to === undefined) return;
    this.revocationSources.asking(peer.nodeId, now);
    const fetch = (this.revocationFetch = new AbortController());
    let newer = false;
    try {
      const list = await fetchRevocations(this.identity, this.trust, { ...to, nodeId: peer.nodeId }, { signal: fetch.signal, now: () => this.c.clock.now() });
      newer = list !== undefined && !this.stopping && (await this.adoptRevocations(list, `${peer.nodeId}`));
    } catch (e) {
      // A node that was itself revoked is refused by every member, for good: each backs off.
      if (!this.stopping) this.c.log.log('warn', 'revocations-fetch-failed', { from: peer.nodeId, error: (e as Error).message });
    } finally {
      this.revocationSources.answered(peer.nodeId, newer);
      this.revocationFetch = undefined;
    }
    if (!newer && !this.stopping) this.c.log.log('debug', 'revocations-source-backed-off', { from: peer.nodeId, retryAt: this.revocationSources.nextAt(peer.nodeId) });
  }

  /**
   * Adopts `list` if it is newer than this node's; whether it was. On the CA node, a list that
   * lacks revocations this node holds, or holds some this node lacks at no newer version, is
   * merged with this node's instead (mergeOnAuthority: signed one version above both, stored); a
   * merge that fails adopts nothing (taken as it is, the list would drop a revocation), and the
   * list is fetched again later. One at a time: a list from a peer and one from disk merged side
   * by side, each from what the other had not yet adopted, lost a revocation.
   */
  private adoptRevocations(list: RevocationList, source: string): Promise<boolean> {
    const run = this.revocationsAdopting.then(() => this.adoptRevocationsNow(list, source));
    this.revocationsAdopting = run.catch(() => undefined);
    return run;
  }

  private async adoptRevocationsNow(list: RevocationList, source: string): Promise<boolean> {
    let merged: RevocationList | undefined;
    try {
      merged = await mergeOnAuthority(this.c.repo.gitDir, this.trust.revocations, list, this.c.clock.now());
    } catch (e) {
      this.c.log.log('warn', 'revocations-not-merged', { version: list.version, from: source, error: (e as Error).message });
      // A peer's is fetched again when announced; the file's is read again at the next look.
      if (source === 'disk') this.revocationsOnDisk.again();
      return false;
    }
    if (merged !== undefined) this.c.log.log('warn', 'revocations-merged', { theirs: list.version, ours: this.trust.revocationVersion, version: merged.version, from: source });
    const taken = merged ?? list;
    if (!this.trust.adopt(taken)) return false;
    this.c.log.log('info', 'revocations', { version: taken.version, revoked: taken.nodeIds, from: source });
    // Adopted: the revoked go now, whether or not the list can be stored.
    for (const e of this.table.dropRevoked((id) => this.trust.isRevoked(id))) this.c.log.log('info', e.kind, { ...e, kind: undefined });
    this.swarm?.dropRevoked((id) => this.trust.isRevoked(id));
    this.announcer?.changed();
    // A list read from disk stays as it is there: writing it back could undo a newer one that
    // `gitfs cluster revoke` stored meanwhile. One from a peer is stored unless disk has a newer.
    if (source !== 'disk' && merged === undefined) {
      await saveRevocations(this.c.repo.gitDir, list, this.trust.ca.publicKey).catch((e: unknown) =>
        this.c.log.log('warn', 'revocations-not-stored', { version: list.version, error: (e as Error).message }),
      );
    }
    return true;
  }

  /** Lets the rollout agent look at the channels and the cluster's reports now; resolves once its channel agents have started. */
  private async pokeRollout(): Promise<void> {
    if (this.stopping) return;
    await this.rollout?.refresh().catch((e: unknown) => this.c.log.log('warn', 'rollout-refresh-failed', { error: (e as Error).message }));
  }

  private answerRollout(op: string, req: Record<string, unknown>): unknown {
    const rollout = this.rollout;
    const channel = req['channel'] === undefined ? undefined : stringField(req, 'channel');
    if (op === 'rollout-pause' && typeof req['paused'] !== 'boolean') throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'rollout-pause needs "paused": true or false');
    const signed = op === 'rollout-rollback' ? signedRecall(req) : undefined;
    // A node without channels has none to show, and knows none by name.
    if (op === 'rollout-status' && channel === undefined) return { self: this.identity.nodeId, cluster: this.trust.clusterId, channels: rollout?.status() ?? [] };
    if (channel === undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${op} needs a channel`);
    if (rollout === undefined) throw new GitfsError(ErrorCodes.UNKNOWN_BRANCH, `this node applies no channel ${channel} (config: rollout.channels)`, { channel });
    if (op === 'rollout-status') return { self: this.identity.nodeId, cluster: this.trust.clusterId, channels: rollout.status(channel) };
    if (op === 'rollout-rollback') return rollout.rollback(channel, signed);
    if (op === 'rollout-pause') return rollout.pause(channel, req['paused'] === true);
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `unknown request ${JSON.stringify(op)}`);
  }

  /**
   * Lets the swarm look at the policies soon (within 20 ms), and every few seconds anyway. A
   * look due soon is not put off by more nudges (a stream of them, each resetting the timer, kept
   * the swarm from ever looking), and looks never overlap: one asked for while another runs
   * follows it.
   */
  private nudgeSwarm(): void {
    if (this.stopping || this.swarmSoon) return;
    if (this.swarmTick !== undefined) clearTimeout(this.swarmTick);
    this.swarmSoon = true;
    this.swarmTick = setTimeout(() => {
      this.swarmSoon = false;
      this.swarmTick = setTimeout(() => this.nudgeSwarm(), SWARM_TICK_MS);
      if (this.swarmLooking) {
        this.swarmAgain = true;
        return;
      }
      this.swarmLooking = true;
      void (async () => {
        do {
          this.swarmAgain = false;
          await this.swarm?.tick().catch((e: unknown) => this.c.log.log('warn', 'swarm-tick-failed', { error: (e as Error).message }));
        } while (this.swarmAgain && !this.stopping);
        this.swarmLooking = false;
      })();
    }, 20);
  }

  private async maintain(): Promise<void> {
    const now = this.c.clock.now();
    for (const e of this.table.expire(now)) this.c.log.log('info', e.kind, { ...e, kind: undefined });
    this.guard.forgetOlderThan(now - 2 * this.config.announce.windowMs);
    void this.pokeRollout();
    this.renewal?.poll();
    void this.recoverPrune();
    // Not beside a fetch: both want the CPU and the disk, and the fetch is what someone waits for.
    if (this.packWork === undefined && this.swarm?.fetching !== true) {
      if (now >= this.nextPackMerge) {
        this.nextPackMerge = now + PACK_MERGE_EVERY_MS;
        this.packWork = this.mergePacks().finally(() => (this.packWork = undefined));
      } else if (this.pruneDue(now)) {
        this.packWork = this.prune().finally(() => (this.packWork = undefined));
      } else if (this.scrubber?.due(now) === true) {
        this.packWork = this.scrub(this.scrubber).finally(() => (this.packWork = undefined));
      }
    }
    try {
      const stored = await this.revocationsOnDisk.changed();
      if (stored !== undefined) await this.adoptRevocations(stored, 'disk');
    } catch (e) {
      // Logged, never thrown: maintain() runs from a timer, and a rejection there would end the daemon.
      this.c.log.log('warn', 'revocations-unreadable', { error: (e as Error).message, ...(isGitfsError(e) ? { code: e.code } : {}) });
    }
  }

  /**
   * Removes temporary pack files killed writers left and the packs merged long enough ago, then merges small packs (every commit and fetch adds
   * some); logged, never thrown (it runs from a timer).
   */
  private async mergePacks(): Promise<void> {
    try {
      const now = this.c.clock.now();
      const left = await removeStaleTemporaries(this.c.repo, now);
      if (left.files > 0) this.c.log.log('info', 'temporaries-removed', left);
      const old = [...this.mergedPacks].filter(([, at]) => now - at >= MERGED_PACKS_KEPT_MS).map(([name]) => name);
      // Not beside a `gitfs prune`, which may have one of them set aside (refused: the next merge removes them).
      if (old.length > 0) {
        await withPruneLock(this.c.repo.gitDir, () => removePacks(this.c.repo, old));
        for (const name of old) this.mergedPacks.delete(name);
      }
      const { merged, objects, unmergeable } = await mergeSmallPacks(this.c.repo, undefined, this.packsInPlay());
      for (const name of unmergeable) this.unmergeablePacks.add(name);
      for (const name of merged) this.mergedPacks.set(name, now);
      if (merged.length > 0) this.c.log.log('info', 'packs-merged', { packs: merged.length, objects });
    } catch (e) {
      if (!this.stopping) this.c.log.log('warn', 'pack-merge-failed', { error: (e as Error).message, ...(isGitfsError(e) ? { code: e.code } : {}) });
    }
  }

  /** Reads every pack through and mends its damage, from peers where no pack here holds a good copy (scrub.ts). */
  private scrub(scrubber: Scrubber): Promise<void> {
    const swarm = this.swarm;
    const peers = swarm === undefined ? undefined : { name: 'the swarm', supply: (oids: readonly Oid[]) => swarm.demand(oids) };
    // Damage in packs about to be removed is only logged: what they hold is in other packs already.
    const leaving = new Set([...this.mergedPacks.keys(), ...this.prunedPacks.keys()]);
    return scrubber.run(peers, leaving, this.c.log.child('scrub'), this.scrubStop.signal);
  }

  /** Puts back what a prune killed mid-removal left set aside (src/repo/set-aside.ts); logged, never thrown. */
  private async recoverPrune(): Promise<void> {
    if (this.recovering) return;
    this.recovering = true;
    try {
      const back = await recoverKilledPrune(this.c.repo);
      if (back > 0) this.c.log.log('warn', 'prune-recovered', { files: back });
      const moved = await recoverKilledRepair(this.c.repo, this.c.clock.now());
      if (moved > 0) this.c.log.log('warn', 'repair-recovered', { packs: moved });
    } catch (e) {
      this.c.log.log('warn', 'prune-recovery-failed', { error: (e as Error).message });
    } finally {
      this.recovering = false;
    }
  }

  /** Whether a prune is due, or packs one rewrote are to be removed. */
  private pruneDue(now: number): boolean {
    if (now < this.pruneRetryAt) return false;
    if (this.config.prune.everyMs > 0 && now >= this.nextPrune) return true;
    for (const p of this.prunedPacks.values()) if (now - p.at >= MERGED_PACKS_KEPT_MS) return true;
    return false;
  }

  /** Packs merges and prunes leave alone: merged or pruned ones waiting to be removed, and unmergeable ones. */
  private packsInPlay(): Set<string> {
    return new Set([...this.mergedPacks.keys(), ...this.prunedPacks.keys(), ...this.unmergeablePacks]);
  }

  /**
   * Removes what a prune rewrote long enough ago, and prunes when one is due (src/repo/prune.ts):
   * what no ref keeps, and history past the policies' `history: K`, once older than prune.graceMs.
   * Logged, never thrown.
   */
  private async prune(): Promise<void> {
    try {
      const now = this.c.clock.now();
      const due = [...this.prunedPacks.values()].filter((p) => now - p.at >= MERGED_PACKS_KEPT_MS).map((p) => p.pack);
      if (due.length > 0) {
        const removed = await removeDoomedPacks(this.c.repo, due, this.config.policies);
        for (const p of due) this.prunedPacks.delete(p.name);
        const gone = due.filter((p) => removed.includes(p.name));
        this.c.log.log('info', 'pruned-packs-removed', { packs: gone.length, objects: gone.reduce((n, p) => n + p.dead, 0), bytes: gone.reduce((n, p) => n + p.size, 0), touched: due.length - gone.length });
      }
      if (this.config.prune.everyMs === 0 || now < this.nextPrune || this.stopping) return;
      this.nextPrune = now + this.config.prune.everyMs;
      const pruned = await prune(this.c.repo, { policies: this.config.policies, graceMs: this.config.prune.graceMs, clock: this.c.clock, exclude: this.packsInPlay() });
      for (const pack of pruned.doomed) this.prunedPacks.set(pack.name, { at: now, pack });
      if (pruned.removedObjects > 0 || pruned.boundary.length > 0) {
        const { keptObjects, removedObjects, youngObjects, looseFiles, reflogEntriesDropped, written } = pruned;
        const held = pruned.heldSince === undefined ? {} : { heldSince: new Date(pruned.heldSince).toISOString() };
        this.c.log.log('info', 'pruned', { keptObjects, removedObjects, youngObjects, looseFiles, packs: pruned.doomed.length, written, boundary: pruned.boundary.length, reflogEntriesDropped, ...held });
      }
    } catch (e) {
      this.pruneRetryAt = this.c.clock.now() + MERGED_PACKS_KEPT_MS;
      if (!this.stopping) this.c.log.log('warn', 'prune-failed', { error: (e as Error).message, ...(isGitfsError(e) ? { code: e.code } : {}) });
    }
  }

  /** This node's heads with their commit times. */
  private async heads(): Promise<Head[]> {
    const out: Head[] = [];
    for (const r of this.refs) out.push({ branch: r.name, oid: r.oid, commitTime: await this.commitTime(r.oid) });
    return out;
  }

  /** A local commit's time, read once per commit (0 when it cannot be read). */
  private async commitTime(oid: Oid): Promise<number> {
    let time = this.commitTimes.get(oid);
    if (time === undefined) {
      try {
        time = (await readCommit(this.c.repo.objects, oid)).committer.timestamp;
      } catch {
        time = 0;
      }
      if (this.commitTimes.size > 100_000) this.commitTimes.clear();
      this.commitTimes.set(oid, time);
    }
    return time;
  }

  snapshot(): NodeSnapshot {
    return snapshot(this, this.table.list(), this.c.clock.now(), this.receiver?.stats, this.announcer);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.swarmTick !== undefined) clearTimeout(this.swarmTick);
    this.revocationFetch?.abort();
    this.scrubStop.abort();
    await this.packWork;
    for (const close of this.closers.reverse()) await close().catch(() => undefined);
    this.closers = [];
  }
}

/** The operator's signed recall in a rollout-rollback request (`release`, `signature` in base64), if it names one. */
function signedRecall(req: Record<string, unknown>): { release: Oid; signature: Buffer } | undefined {
  if (req['release'] === undefined && req['signature'] === undefined) return undefined;
  const release = stringField(req, 'release');
  const signature = strictBase64(stringField(req, 'signature'));
  if (!isOid(release) || signature === undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'rollout-rollback needs "release" (a commit id) and "signature" (base64) together');
  return { release, signature };
}

/** A request's string field; GITFS_BAD_ARGUMENT when it is anything else (String() made "undefined" a branch name). */
function stringField(req: Record<string, unknown>, name: string): string {
  const value = req[name];
  if (typeof value !== 'string') throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `"${name}" must be a string`);
  return value;
}
