/**
 * The rollout agent of one channel on this node: it feeds events to the pure state machine
 * (agent-state.ts), stores each new state durably before acting on it (write-ahead: a crash
 * at any moment leaves a state that says what may have been under way, and `crash-recovery`
 * at start decides), and carries out the actions: verifying a release, running the hook,
 * moving the pending and blessed refs, and updating this node's report, which the announcer
 * sends to the cluster. Events are handled one at a time, in order.
 *
 * What it watches, on every poke (a ref change, a peer's report, the daemon's tick): the
 * channel branch's head (a new release), the cluster's reports for the release in progress
 * (waves.ts: may this node apply now? is the rollout halted?), pauses, and recalls (an
 * operator's cluster-wide rollback of a blessed release).
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BranchName } from '../branches/ref-name.js';
import type { NodeId } from '../cluster/node-id.js';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { reportView, type ReportView, type RolloutReport } from '../multicast/announcement.js';
import type { Peer } from '../multicast/peer-table.js';
import { reaches } from '../objects/commit-ancestry.js';
import { isOid, type Oid } from '../objects/oid.js';
import type { Repository } from '../repo/repository.js';
import { remember, rememberMember } from '../util/bounded-map.js';
import { writeFileAtomic } from '../util/durable.js';
import type { Logger } from '../util/log.js';
import { initialAgentState, refOrder, releaseRefsOf, step, type AgentAction, type AgentEvent, type AgentState, type Release, type ReleaseRef } from './agent-state.js';
import { decodeAgentState, encodeAgentState } from './agent-state-codec.js';
import { HOOK_RECORD_FILE, stopLeftoverHook } from './hook-record.js';
import { runHook, type HookAction } from './hook-runner.js';
import { checkChannel, type ReleaseManifest } from './manifest.js';
import type { ReleasePublicKey } from './release-key.js';
import { readGitfsRef, removeStaleTemporaries, setGitfsRef } from '../branches/gitfs-refs.js';
import { verifyCommit } from './signed-commit.js';
import type { ChannelConfig } from './rollout-config.js';
import { readManifest, releaseFiles, verifyRelease } from './verify-release.js';
import { MAX_RECALL_SIGNATURE, verifyRecall } from './recall.js';
import { strictBase64 } from './ssh-wire.js';
import { mayApply, planWaves, type NodeReport, type WavePlan } from './waves.js';

/** The wait before running a failed rollback hook again, times the failures so far. */
const ROLLBACK_RETRY_MS = 1000;

/** How long a (re)started agent listens to the cluster before it applies anything. */
const LISTEN_MS = 3000;
/** Commits walked back from a new head to find the blessed release (the usual case: a newer release). */
const NEWER_RELEASE_WALK = 64;
/** Commits walked back from the blessed release to find a head among its ancestors (a downgrade). */
const MAX_RELEASES_WALKED = 100_000;
/** An outcome whose state could not be stored is handed again after this, doubling up to the max. */
const EVENT_RETRY_MS = 1000;
const EVENT_RETRY_MAX_MS = 60_000;
/** Refused recalls remembered (so each is logged once). */
const MAX_REFUSED_RECALLS = 1024;
/** Heads whose version, or refusal, is kept: any member can announce new heads, one after another. */
const HEADS_KEPT = 1024;
/** The pause before try `attempt + 1`: a second, doubling up to a minute. */
const retryDelay = (attempt: number): number => Math.min(EVENT_RETRY_MAX_MS, EVENT_RETRY_MS * 2 ** attempt);

export interface ChannelComponents {
  readonly repo: Repository;
  readonly log: Logger;
  readonly now: () => number;
  readonly self: NodeId;
  /** This node's cluster id: a recall names it (recall.ts). */
  readonly clusterId: string;
  readonly trusted: readonly ReleasePublicKey[];
  readonly peers: () => readonly Peer[];
  /** This node's report changed: announce it. */
  readonly changed: () => void;
  /** The agent's directory for this channel (state, payloads, the hook's state). */
  readonly dir: string;
}

export interface ChannelStatus {
  readonly channel: string;
  readonly report: ReportView;
  readonly phase: string;
  readonly triesLeft: number | null;
  readonly history: AgentState['history'];
  readonly peers: { nodeId: string; name: string; report: ReportView }[];
  readonly plan: { waves: string[][]; open: number; halted: string | null; done: boolean; waitingFor: string[] } | null;
}

export class ChannelAgent {
  private state: AgentState;
  private report: RolloutReport;
  private chain: Promise<void> = Promise.resolve();
  /** Last report of every node heard for the release in progress, kept while they are silent. */
  private heard = new Map<NodeId, RolloutReport>();
  private paused = false;
  private recalled: Oid | null = null;
  /** The operator's signature of `recalled` (recall.ts), passed on with it. */
  private recallSignature: Buffer | null = null;
  private stopped = false;
  /** When start() ran, on the monotonic clock: the listening window must not stretch when the wall clock steps back. */
  private startedAt = 0;
  private listenTimer: NodeJS.Timeout | undefined;
  /** Outcomes and actions waiting to be tried again (`deliver`, `actUntilDone`): each pause ends at once when the agent stops. */
  private readonly pauses = new Set<() => void>();
  /** The hook running now, if any: a rollback cancels a health check still running. */
  private running: { readonly action: HookAction; readonly abort: AbortController; readonly done: Promise<unknown> } | undefined;
  /** Outcomes of background work on their way to the machine (stop() lets an apply's or a rollback's land). */
  private readonly outcomes = new Set<Promise<void>>();
  /** Set by stop(): nothing new starts; an apply or rollback under way may still land. */
  private stopping = false;
  /** Versions of heads seen (from their manifests; undefined: refused for what it holds, not retried); at most HEADS_KEPT. */
  private readonly versions = new Map<Oid, string | undefined>();
  /** Heads refused before verification for what they are (`mayTakeOver`), not looked at again; at most HEADS_KEPT. */
  private readonly refusedHeads = new Set<Oid>();
  /** Heads that could not be read for this node's state, logged once each; at most HEADS_KEPT. */
  private readonly unreadableHeads = new Set<Oid>();
  /** Recalls refused (no signature, or not one this channel trusts), by announcing node and release: logged once. */
  private readonly refusedRecalls = new Map<string, true>();
  /** The injected time, as the lock files of the release refs take it. */
  private readonly clock = { now: (): number => this.c.now() };

  constructor(
    private readonly c: ChannelComponents,
    private readonly cfg: ChannelConfig,
    readonly channel: BranchName,
  ) {
    this.state = initialAgentState(channel);
    this.report = this.reportOf(null, '', 'pending', 0);
  }

  private get statePath(): string {
    return join(this.c.dir, 'state.json');
  }

  /** The operator's pause and the recall in force, kept apart from the phase machine: they survive restarts. */
  private get controlPath(): string {
    return join(this.c.dir, 'control.json');
  }

  private async loadControl(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.controlPath, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw e;
    }
    const bad = (): never => {
      throw new GitfsError(ErrorCodes.BAD_AGENT_STATE, `${this.controlPath} is not {"paused": true|false, "recalled": null|"<commit id>", "signature": null|"<base64>"}`, { path: this.controlPath });
    };
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return bad();
    }
    const o = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : bad();
    if (typeof o.paused !== 'boolean' || !(o.recalled === null || (typeof o.recalled === 'string' && isOid(o.recalled)))) return bad();
    // Absent in files written before recalls were signed: that recall is kept, and passed on unsigned.
    const signature = o.signature === undefined || o.signature === null ? null : typeof o.signature === 'string' ? (strictBase64(o.signature) ?? bad()) : bad();
    if (signature !== null && (signature.length === 0 || signature.length > MAX_RECALL_SIGNATURE)) return bad();
    this.paused = o.paused;
    this.recalled = o.recalled as Oid | null;
    this.recallSignature = this.recalled === null ? null : signature;
  }

  /** Writes `control.json` as it is to be, with `change` made; the caller takes the change once this resolves (nothing announced is not on disk). */
  private saveControl(change: { paused?: boolean; recalled?: Oid; signature?: Buffer }): Promise<void> {
    const signature = change.signature ?? this.recallSignature;
    return writeFileAtomic(this.controlPath, `${JSON.stringify({ paused: change.paused ?? this.paused, recalled: change.recalled ?? this.recalled, signature: signature?.toString('base64') ?? null })}\n`);
  }

  private get hookRecordPath(): string {
    return join(this.c.dir, HOOK_RECORD_FILE);
  }

  private get releasesDir(): string {
    return join(this.c.dir, 'releases');
  }

  /** Loads the stored state (or starts fresh) and recovers from whatever a crash interrupted. */
  async start(): Promise<void> {
    await mkdir(this.releasesDir, { recursive: true });
    await mkdir(join(this.c.dir, 'hook'), { recursive: true });
    let stored = false;
    try {
      this.state = decodeAgentState(await readFile(this.statePath));
      stored = true;
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
    await this.loadControl();
    // A hook the previous daemon left running (killed -9 mid-hook) ends before any other starts.
    await stopLeftoverHook(this.hookRecordPath, this.c.log, { channel: this.channel });
    // Without a stored state (a first start, or a lost agent directory) the refs say more than it: left as they are.
    if (stored) await this.restoreReleaseRefs();
    this.report = this.restartReport();
    this.startedAt = performance.now();
    await this.handle({ type: 'crash-recovery' });
  }

  /**
   * Points the release refs where the stored state says (a kill -9 between storing a state and
   * moving its refs left them behind), as any action, tried until done (a lock the killed process
   * left is broken once stale, in 30 s), and removes the temporary files an earlier version left
   * beside them when killed.
   */
  private async restoreReleaseRefs(): Promise<void> {
    const want = releaseRefsOf(this.state);
    const now: Record<ReleaseRef, Oid | null> = { pending: null, blessed: null, previous: null };
    const target: Partial<Record<ReleaseRef, Oid | null>> = {};
    for (const ref of ['pending', 'blessed', 'previous'] as const) {
      await removeStaleTemporaries(this.c.repo.gitDir, ref, this.channel).catch((e: unknown) =>
        this.c.log.log('warn', 'release-ref-temporaries-left', { channel: this.channel, ref, error: (e as Error).message }),
      );
      now[ref] = (await readGitfsRef(this.c.repo.gitDir, ref, this.channel).catch(() => undefined)) ?? null;
      const wanted = want[ref];
      if (wanted === undefined) continue;
      // A release not here is named by no ref.
      target[ref] = await this.presentOrNull(wanted);
      if (target[ref] === null && wanted !== null) this.c.log.log('warn', 'release-ref-absent', { channel: this.channel, ref, commit: wanted });
    }
    // In an order that leaves no release named before named by none midway (refOrder).
    for (const ref of refOrder(now, target)) {
      const commit = target[ref] as Oid | null;
      // Stopped meanwhile: the refs after it wait for the next start too.
      if (!(await this.actUntilDone({ type: 'set-ref', ref, commit }))) return;
      this.c.log.log('warn', 'release-ref-restored', { channel: this.channel, ref, commit });
    }
  }

  /**
   * What to report after a restart, before the next step: the blessed release, unless the last
   * release this node dealt with failed here (then that, with its failures, so a halt it caused
   * stays visible to the cluster).
   */
  private restartReport(): RolloutReport {
    const s = this.state;
    const last = [...s.history].reverse().find((t) => t.commit !== undefined)?.commit as Oid | undefined;
    const failures = last === undefined || !Object.hasOwn(s.failedVersions, last) ? 0 : (s.failedVersions[last] as number);
    if (last !== undefined && last !== s.blessed?.commit && failures > 0) return this.reportOf(last, '', 'rolled-back', failures);
    const b = s.blessed;
    return this.reportOf(b?.commit ?? null, b?.version ?? '', b === null ? 'pending' : 'blessed', 0);
  }

  /**
   * Stops taking events. An apply or rollback hook under way is let finish and its outcome
   * stored: killed, it would count as a failed try, and with the default failure budget a routine
   * restart of the daemon would halt the rollout. A health check or a verification is stopped
   * (the stored phase says what to redo at the next start).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.listenTimer);
    for (const done of [...this.pauses]) done();
    const r = this.running;
    if (r !== undefined && (r.action === 'apply' || r.action === 'rollback')) {
      this.c.log.log('info', 'stop-waits-for-hook', { channel: this.channel, action: r.action });
      await Promise.all([...this.outcomes]);
      await this.chain;
    }
    this.stopped = true;
    await this.cancelHook();
    await this.chain;
  }

  private async cancelHook(): Promise<void> {
    const r = this.running;
    if (r === undefined) return;
    r.abort.abort();
    await r.done;
  }

  /** Looks at the channel head and the cluster's reports, and takes the next step if there is one. */
  poke(): void {
    this.serial(() => this.look());
  }

  private async look(): Promise<void> {
    if (this.stopping) return;
    const s = this.state;
    const head = await this.c.repo.refs.resolve(this.channel);
    const reports = this.peerReports();
    // A recall: a release rolled back cluster-wide. Pass it on, and go back if it is blessed or pending
    // here. With nothing blessed before it, the node keeps it and looks on (a new release is taken).
    const recall = this.heardRecall(reports);
    if (recall !== undefined) {
      await this.setRecalled(recall.commit, recall.signature);
      if (recall.commit === s.blessed?.commit && s.phase === 'idle' && s.previous !== null) return this.handle({ type: 'rollback-requested' });
      if (recall.commit === s.pending?.commit) return this.handle({ type: 'halted', commit: recall.commit });
    }
    const failed = head !== undefined && Object.hasOwn(s.failedVersions, head) ? (s.failedVersions[head] as number) : 0;
    const newHead = head !== undefined && head !== s.blessed?.commit && head !== s.pending?.commit && head !== this.recalled && !s.givenUp.includes(head) && failed < this.cfg.maxTries;
    if (newHead && (s.phase === 'idle' || s.phase === 'staged')) {
      const version = await this.versionOf(head);
      if (version !== undefined && (await this.mayTakeOver(head, version))) return this.handle({ type: 'release-seen', commit: head, version });
    }
    const p = this.state.pending;
    if (p === null || this.state.phase === 'idle' || this.state.phase === 'rolling-back') return;
    const plan = this.plan(p.commit, reports);
    if (plan.halted !== undefined) return this.handle({ type: 'halted', commit: p.commit });
    // A release still being verified is dropped at once when the cluster has halted it.
    const paused = this.paused || reports.some((x) => x.report.paused);
    if (this.state.phase !== 'staged' || paused || !mayApply(plan, this.c.self)) return;
    // Just started: hear the cluster first (peers greet a new instance within a second), so an
    // empty peer table never makes this node its own canary, nor hides a halt.
    const listening = this.startedAt + LISTEN_MS - performance.now();
    if (listening > 0) {
      clearTimeout(this.listenTimer);
      this.listenTimer = setTimeout(() => this.poke(), listening);
      return;
    }
    return this.handle({ type: 'apply-started', commit: p.commit });
  }

  /**
   * A head's version, from its manifest (read once; an unreadable one, or one published to
   * another channel, is logged and not retried).
   */
  private async versionOf(head: Oid): Promise<string | undefined> {
    if (this.versions.has(head)) return this.versions.get(head);
    const version = await readManifest(this.c.repo, head).then(
      (m) => {
        checkChannel(m, this.channel);
        return m.version;
      },
    ).catch((e: unknown) => {
      const code = e instanceof GitfsError ? e.code : undefined;
      const final = code === ErrorCodes.WRONG_CHANNEL || code === ErrorCodes.BAD_MANIFEST;
      if (final) this.c.log.log('warn', code === ErrorCodes.WRONG_CHANNEL ? 'release-wrong-channel' : 'release-unreadable', { channel: this.channel, commit: head, error: (e as Error).message });
      else this.unreadable(head, e);
      return final ? undefined : null;
    });
    // A read that failed for this node's state (too many open files, a damaged copy, not fetched
    // yet) is tried again at the next look: cached, it hid a valid release until a restart.
    if (version === null) return undefined;
    remember(this.versions, head, version, HEADS_KEPT);
    return version;
  }

  /** A head that could not be read for this node's state: logged once (it is looked at again at every look). */
  private unreadable(head: Oid, e: unknown): void {
    if (this.unreadableHeads.has(head)) return;
    rememberMember(this.unreadableHeads, head, HEADS_KEPT);
    this.c.log.log('warn', 'release-unreadable', { channel: this.channel, commit: head, error: (e as Error).message, again: 'at every look' });
  }

  /**
   * Whether a new head may take over. It must be signed by a key trusted now: an unsigned or
   * untrusted commit on top of the channel is no release, and must neither cancel a staged one nor
   * be counted as a failed release (which would halt the rollout). It must not be an ancestor of
   * the blessed release: that is a downgrade (the channel moved back by hand, or an old head
   * announced as new), whatever its signature. (A head on another line, as after the channel was
   * made again, is taken: proving it older would need history a shallow node lacks.) Its version must
   * name no release this node keeps (blessed, previous, pending): hooks install by version, so a
   * reused one would replace that release's files (a kernel hook then found the running kernel's
   * version on the command line and blessed the new image unbooted, and a rollback kept it). A
   * refusal is logged once per head.
   */
  private async mayTakeOver(head: Oid, version: string): Promise<boolean> {
    if (this.refusedHeads.has(head)) return false;
    const s = this.state;
    const kept = [s.blessed, s.previous, s.pending].find((r): r is Release => r !== null && r.version === version && r.commit !== head);
    let why: string | undefined;
    if (kept !== undefined) why = `version ${version} names ${kept.commit} already; a version names one release`;
    else {
      let content: Buffer;
      try {
        content = (await this.c.repo.objects.read(head)).content;
      } catch (e) {
        // This node's state (a read that failed, a damaged copy), not the head's: looked at again next time.
        this.unreadable(head, e);
        return false;
      }
      try {
        verifyCommit(content, this.c.trusted);
      } catch (e) {
        why = `not a release: ${(e as Error).message}`;
      }
    }
    if (why === undefined && s.blessed !== null && (await this.isOlderThan(head, s.blessed.commit))) {
      why = `older than the blessed release ${s.blessed.version} (${s.blessed.commit}), which descends from it: a downgrade is never applied`;
    }
    if (why === undefined) return true;
    rememberMember(this.refusedHeads, head, HEADS_KEPT);
    this.c.log.log('warn', 'release-refused', { channel: this.channel, commit: head, version, why });
    return false;
  }

  /**
   * Whether `head` is among the ancestors of `blessed` here (each release is published on the
   * last). A new release has the blessed one a few parents back: found so first, the long walk
   * back through the channel's history is left for the rare head that is not.
   */
  private async isOlderThan(head: Oid, blessed: Oid): Promise<boolean> {
    const objects = this.c.repo.objects;
    const content = async (c: Oid): Promise<Buffer | undefined> => ((await objects.has(c)) ? (await objects.read(c)).content : undefined);
    if (await reaches(content, head, blessed, NEWER_RELEASE_WALK)) return false;
    return reaches(content, blessed, head, MAX_RELEASES_WALKED);
  }

  /**
   * A recall of the release blessed or pending here, signed by a key this channel trusts (checked
   * here, whoever passed it on): this node's own first (one stored just before a crash is carried
   * out at the next start), then those peers announce. Any other is logged once (`recall-refused`)
   * and changes nothing.
   */
  private heardRecall(reports: readonly { peer: Peer; report: RolloutReport }[]): { commit: Oid; signature: Buffer } | undefined {
    const s = this.state;
    const own = { from: this.c.self, commit: this.recalled, signature: this.recallSignature };
    for (const { from, commit, signature } of [own, ...reports.map(({ peer, report }) => ({ from: peer.nodeId, commit: report.recalled, signature: report.recallSignature }))]) {
      if (commit === null || (commit !== s.blessed?.commit && commit !== s.pending?.commit)) continue;
      try {
        if (signature === null) throw new GitfsError(ErrorCodes.BAD_SIGNATURE, 'the recall is not signed');
        this.checkRecall(commit, signature);
        return { commit, signature };
      } catch (e) {
        const k = `${from}:${commit}`;
        if (this.refusedRecalls.has(k)) continue;
        remember(this.refusedRecalls, k, true, MAX_REFUSED_RECALLS);
        this.c.log.log('warn', 'recall-refused', { channel: this.channel, commit, from, why: (e as Error).message });
      }
    }
    return undefined;
  }

  /** Throws unless `signature` is one of the recall of `commit` here, by a key this channel trusts (recall.ts). */
  private checkRecall(commit: Oid, signature: Buffer): void {
    verifyRecall({ cluster: this.c.clusterId, channel: this.channel, release: commit }, signature, this.c.trusted);
  }

  /** The live peers' reports on this channel. */
  private peerReports(): { peer: Peer; report: RolloutReport }[] {
    return this.c.peers().flatMap((peer) => {
      const report = peer.rollouts.get(this.channel);
      return report === undefined ? [] : [{ peer, report }];
    });
  }

  /** The wave plan for `release` from every report heard for it (silent nodes keep their last one). */
  private plan(release: Oid, reports: readonly { peer: Peer; report: RolloutReport }[]): WavePlan {
    for (const { peer, report } of reports) this.heard.set(peer.nodeId, report);
    const byNode = new Map<NodeId, NodeReport>();
    for (const [id, r] of this.heard) if (r.release === release) byNode.set(id, { state: r.state, failures: r.failures });
    if (this.report.release === release) byNode.set(this.c.self, { state: this.report.state, failures: this.report.failures });
    return planWaves({ rolloutId: release, nodes: [this.c.self, ...this.heard.keys()], reports: byNode, canary: this.cfg.canary, fractions: this.cfg.waves, maxFailures: this.cfg.maxFailures });
  }

  private serial(work: () => Promise<void>): void {
    this.chain = this.chain.then(work).catch((e: unknown) => this.c.log.log('error', 'rollout-agent-failed', { channel: this.channel, error: (e as Error).message }));
  }

  /** Steps the machine, stores the state, then carries out the actions (hooks run in the background and come back as events). */
  private async handle(event: AgentEvent): Promise<void> {
    // Stopped while this event was on its way (a look's awaits): nothing more is started.
    if (this.stopped) return;
    const config = { maxTries: this.cfg.maxTries, healthTimeoutMs: this.cfg.healthTimeoutMs, restartingApply: this.cfg.restartingApply };
    const result = step(this.state, event, this.c.now(), config);
    if (result.ignored !== undefined) {
      this.c.log.log('debug', 'rollout-event-ignored', { channel: this.channel, step: event.type, why: result.ignored });
      return;
    }
    const from = this.state.phase;
    // Stored first: a write that fails leaves the agent in the state it was in, not in one whose actions never ran.
    await writeFileAtomic(this.statePath, encodeAgentState(result.state));
    // Reports heard are about one release: a new one starts afresh.
    if (result.state.pending !== null && result.state.pending.commit !== this.state.pending?.commit) this.heard = new Map();
    this.state = result.state;
    const last = this.state.history.at(-1);
    this.c.log.log('info', 'rollout', { channel: this.channel, step: event.type, from, to: this.state.phase, commit: last?.commit, note: last?.note });
    for (const a of result.actions) {
      if (await this.actUntilDone(a)) continue;
      this.c.log.log('warn', 'rollout-actions-left', { channel: this.channel, step: event.type, left: result.actions.slice(result.actions.indexOf(a)).map((x) => x.type) });
      return;
    }
    // The next step may be possible at once (staged in an open wave, idle with a newer head).
    this.poke();
  }

  /**
   * Carries out an action of a state already stored. One that fails (a release ref on a full disk)
   * is tried again after a pause, doubling up to a minute, before anything else happens here: the
   * event that led to it cannot be handed in again (the stored state has moved on: it was ignored,
   * and the ref stayed behind), and no later action may overtake it. Whether it was carried out:
   * once stopping it is tried once, and false leaves it and the actions after it to the next
   * start (restoreReleaseRefs points the refs as the stored state says, in a safe order): retried,
   * a full disk kept stop() waiting for ever; skipped alone, the removal of `previous` after it
   * left the release running named by no ref, for a prune to take.
   */
  private async actUntilDone(a: AgentAction): Promise<boolean> {
    for (let attempt = 0; !this.stopped && (attempt === 0 || !this.stopping); attempt++) {
      try {
        await this.act(a);
        return true;
      } catch (e) {
        const inMs = retryDelay(attempt);
        this.c.log.log('error', 'rollout-action-failed', { channel: this.channel, action: a.type, error: (e as Error).message, retryInMs: inMs });
        await this.pause(inMs);
      }
    }
    return false;
  }

  /** Resolves after `ms`, or at once when the agent stops (or is stopping, or has stopped). */
  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.pauses.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.pauses.add(done);
    });
  }

  private async act(a: AgentAction): Promise<void> {
    switch (a.type) {
      case 'verify':
        return void this.background(async () => {
          const r = await verifyRelease(this.c.repo, a.release.commit, this.channel, this.c.trusted, this.releasesDir).then(
            (): AgentEvent => ({ type: 'verified', commit: a.release.commit }),
            (e: unknown): AgentEvent => ({ type: 'verify-failed', commit: a.release.commit, reason: (e as Error).message }),
          );
          return r;
        });
      case 'run-apply-hook':
        return void this.background(async () => {
          const r = await this.hook('apply', a.release, this.c.now() + this.cfg.healthTimeoutMs);
          return r.ok ? { type: 'applied', commit: a.release.commit } : { type: 'apply-failed', commit: a.release.commit, reason: r.reason };
        });
      case 'run-health-hook':
        return void this.background(async () => {
          const r = await this.hook('health', a.release, a.deadline);
          return r.ok ? { type: 'health-ok', commit: a.release.commit } : { type: 'health-failed', commit: a.release.commit, reason: r.reason };
        });
      case 'run-rollback-hook':
        return void this.background(async () => {
          // Never two hooks at once for a channel: a health check still running is stopped first.
          await this.cancelHook();
          // A run after a failed one waits a little longer each time (a busy disk, a service restarting).
          const failed = this.state.rollback?.failedAttempts ?? 0;
          if (failed > 0) await sleep(ROLLBACK_RETRY_MS * failed);
          // Stopped meanwhile: the next start's crash recovery runs the rollback (never two at once).
          if (this.stopped) return { type: 'rollback-failed', commit: a.from.commit, reason: 'the agent stopped' };
          const r = await this.hook('rollback', a.to, this.c.now() + this.cfg.healthTimeoutMs);
          if (r.ok) return { type: 'rollback-done', commit: a.from.commit };
          this.c.log.log('error', 'rollback-hook-failed', { channel: this.channel, from: a.from.commit, to: a.to?.commit ?? null, reason: r.reason });
          return { type: 'rollback-failed', commit: a.from.commit, reason: r.reason };
        });
      case 'set-ref': {
        // A ref to a commit not here would stop every prune and fail git fsck: a release an
        // earlier version let prune take (it pinned no previous release) is named by no ref (the
        // ref removed, not left at another release).
        const commit = await this.presentOrNull(a.commit);
        if (commit !== a.commit) this.c.log.log('warn', 'release-ref-absent', { channel: this.channel, ref: a.ref, commit: a.commit });
        await setGitfsRef(this.c.repo.gitDir, a.ref, this.channel, commit, this.clock);
        // Old payloads are only disk space: a failure to remove one is told, never retried in the way of the rollout.
        if (a.ref === 'blessed') await this.prunePayloads().catch((e: unknown) => this.c.log.log('warn', 'payload-prune-failed', { channel: this.channel, error: (e as Error).message }));
        return;
      }
      case 'announce':
        this.report = this.reportOf(a.commit, a.version, a.state, a.failures);
        this.c.changed();
        return;
    }
  }

  /** Runs `work` off the event chain and feeds its event back in order. */
  private background(work: () => Promise<AgentEvent>): void {
    if (this.stopping) return;
    // Each work turns its failures into events; one that throws all the same is a bug, logged, never a crash of the daemon.
    const outcome = work().then(
      (e) => this.deliver(e, 0),
      (e: unknown) => this.c.log.log('error', 'rollout-work-failed', { channel: this.channel, error: (e as Error).stack ?? String(e) }),
    );
    this.outcomes.add(outcome);
    void outcome.finally(() => this.outcomes.delete(outcome));
  }

  /**
   * Hands the outcome of a hook or a verification to the machine. It happened once: one whose
   * state could not be stored (a full disk) is handed again after a pause, doubling up to a
   * minute, until it is stored or the agent stops. Dropped, it left the agent in its phase
   * with nothing running, the rollout waiting on it until a restart.
   */
  private deliver(e: AgentEvent, attempt: number): void {
    // Once stopping, one try (the stored phase says what to redo at the next start).
    if (this.stopped || (this.stopping && attempt > 0)) return;
    this.serial(async () => {
      try {
        await this.handle(e);
      } catch (err) {
        const inMs = retryDelay(attempt);
        this.c.log.log('error', 'rollout-event-not-stored', { channel: this.channel, step: e.type, error: (err as Error).message, retryInMs: inMs });
        // Not on the chain: other events go on meanwhile. A stop ends the pause; deliver then does nothing.
        void this.pause(inMs).then(() => this.deliver(e, attempt + 1));
      }
    });
  }

  /**
   * Runs the hook for `action`. The channel's one hook slot is taken before the first await, so a
   * cancelHook() meanwhile (a rollback, a halt, stop()) stops this hook before it starts rather
   * than running beside it.
   */
  private hook(action: HookAction, release: Release | null, deadline: number): Promise<{ ok: boolean; reason: string }> {
    const abort = new AbortController();
    const done = this.runHookFor(action, release, deadline, abort.signal);
    const running = { action, abort, done };
    this.running = running;
    return done.finally(() => {
      if (this.running === running) this.running = undefined;
    });
  }

  /**
   * Never rejects: whatever keeps the hook from running (its manifest unreadable, a spawn that
   * throws) is a failed run. A hook runs no longer than healthTimeoutMs from its start, whatever
   * the deadline says (a node whose clock came up far behind resumes a check with a deadline
   * weeks ahead).
   */
  private async runHookFor(action: HookAction, release: Release | null, deadlineAsked: number, signal: AbortSignal): Promise<{ ok: boolean; reason: string }> {
    try {
      return await this.runHookOnce(action, release, Math.min(deadlineAsked, this.c.now() + this.cfg.healthTimeoutMs), signal);
    } catch (e) {
      this.c.log.log('error', 'hook-not-run', { channel: this.channel, action, error: (e as Error).message });
      return { ok: false, reason: `${action} could not run: ${(e as Error).message}` };
    }
  }

  private async runHookOnce(action: HookAction, release: Release | null, deadline: number, signal: AbortSignal): Promise<{ ok: boolean; reason: string }> {
    const manifest = release === null ? undefined : await this.hookManifest(release.commit);
    const version = release?.version ?? '';
    const files = release === null ? undefined : releaseFiles(this.releasesDir, release.commit);
    const payload = manifest === undefined || files === undefined ? '' : manifest.kind === 'kernel' ? files.image : files.site;
    const env: Record<string, string> = {
      ...this.cfg.env,
      GITFS_CHANNEL: this.channel,
      GITFS_VERSION: version,
      GITFS_COMMIT: release?.commit ?? '',
      GITFS_KIND: manifest?.kind ?? '',
      GITFS_PAYLOAD: payload,
      GITFS_MANIFEST: manifest === undefined || files === undefined ? '' : files.manifest,
      GITFS_CMDLINE: manifest?.cmdline ?? '',
      GITFS_STATE: join(this.c.dir, 'hook'),
      GITFS_PREVIOUS: this.state.blessed?.version ?? '',
      GITFS_DEADLINE_MS: String(Math.max(0, deadline - this.c.now())),
    };
    if (this.stopped) return { ok: false, reason: `${action} cancelled: the agent stopped` };
    this.c.log.log('info', 'hook-start', { channel: this.channel, action, version });
    const r = await runHook({ hook: this.cfg.apply, action, env, deadline, now: this.c.now, log: this.c.log, signal, record: this.hookRecordPath });
    this.c.log.log(r.ok ? 'info' : 'warn', 'hook-end', { channel: this.channel, action, version, ok: r.ok, reason: r.reason });
    return r;
  }

  /**
   * What a hook is told of a release: from the manifest stored beside its payload when this node
   * verified it (so a release verified before an upgrade of the manifest's format can still be
   * rolled back to), else read from the repository.
   */
  private async hookManifest(commit: Oid): Promise<Pick<ReleaseManifest, 'kind' | 'cmdline'> | undefined> {
    const stored = await readFile(releaseFiles(this.releasesDir, commit).manifest, 'utf8')
      .then((text) => JSON.parse(text) as Record<string, unknown> | null)
      .catch(() => undefined);
    const kind = stored?.['kind'];
    const cmdline = stored?.['cmdline'];
    if (kind === 'kernel' || kind === 'site') return { kind, ...(typeof cmdline === 'string' ? { cmdline } : {}) };
    return readManifest(this.c.repo, commit).catch(() => undefined);
  }

  /** `commit` where it is here, else null (nothing). */
  private async presentOrNull(commit: Oid | null): Promise<Oid | null> {
    return commit !== null && (await this.c.repo.objects.has(commit)) ? commit : null;
  }

  /** Keeps the payloads of the blessed, previous and pending releases; drops the rest. */
  private async prunePayloads(): Promise<void> {
    const keep = new Set<string>([this.state.blessed, this.state.previous, this.state.pending].flatMap((r) => (r === null ? [] : [r.commit])));
    for (const name of await readdir(this.releasesDir)) {
      if (!keep.has(name.slice(0, 40))) await rm(join(this.releasesDir, name), { recursive: true, force: true });
    }
  }

  private reportOf(release: Oid | null, version: string, state: RolloutReport['state'], failures: number): RolloutReport {
    const b = this.state.blessed;
    return { channel: this.channel, release, version, state, failures, blessed: b?.commit ?? null, blessedVersion: b?.version ?? '', paused: this.paused, recalled: this.recalled, recallSignature: this.recallSignature };
  }

  /**
   * Records a recall and its signature (durably, before anything acts on it or announces it) and
   * announces it. A recall held keeps its signature while that verifies, as heardRecall looks at
   * this node's own first: two valid ones (two operators' keys) never make nodes take each
   * other's in turn.
   */
  private async setRecalled(commit: Oid, signature: Buffer): Promise<void> {
    if (this.recalled === commit && this.recallSignature?.equals(signature) === true) return;
    await this.saveControl({ recalled: commit, signature });
    this.recalled = commit;
    this.recallSignature = signature;
    this.report = { ...this.report, recalled: commit, recallSignature: signature };
    this.c.changed();
  }

  /** This node's report, as announced. */
  current(): RolloutReport {
    const b = this.state.blessed;
    return { ...this.report, blessed: b?.commit ?? null, blessedVersion: b?.version ?? '', paused: this.paused, recalled: this.recalled, recallSignature: this.recallSignature };
  }

  /** Pauses or resumes this channel's rollout here; resolves once that is on disk (a restart keeps it). */
  setPaused(paused: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.serial(async () => {
        try {
          await this.saveControl({ paused });
        } catch (e) {
          return reject(e);
        }
        this.paused = paused;
        resolve();
        this.c.changed();
        await this.look();
      });
    });
  }

  /**
   * `gitfs rollout rollback`: back to the release before the blessed one, here and (by the recall)
   * everywhere, when `signed` is the operator's signature (recall.ts) of the recall of the release
   * blessed here by a key this channel trusts. On a node stuck after its rollback hook failed, it
   * runs that rollback again, here only (the operator has fixed the node; nothing is recalled, no
   * signature is needed).
   */
  recall(signed?: { release: Oid; signature: Buffer }): Promise<{ from: string; to: string; recalled: boolean }> {
    return new Promise((resolve, reject) => {
      this.serial(async () => {
        if (this.state.phase === 'rolling-back') {
          const runs = (this.state.rollback?.failedAttempts ?? 0) + 1;
          return reject(new GitfsError(ErrorCodes.BAD_ARGUMENT, `${this.channel}: a rollback is running here (run ${runs}); wait for it to end`, { channel: this.channel }));
        }
        const stuck = this.state.phase === 'stuck' ? this.state.rollback : null;
        if (stuck !== null) {
          try {
            await this.handle({ type: 'rollback-requested' });
          } catch (e) {
            return reject(e);
          }
          return resolve({ from: stuck.from.version, to: stuck.to?.version ?? '', recalled: false });
        }
        // Applying or checking, a rollback goes back from the release under way to the blessed
        // one, which the recall would then name: the node would stay on the release it tells the
        // cluster to drop.
        if (this.state.phase === 'applying' || this.state.phase === 'checking') {
          return reject(new GitfsError(ErrorCodes.BAD_ARGUMENT, `${this.channel}: ${this.state.pending?.version ?? 'a release'} is being ${this.state.phase === 'applying' ? 'applied' : 'checked'} here; roll back once it is done`, { channel: this.channel }));
        }
        const from = this.state.blessed;
        const to = this.state.previous;
        if (from === null || to === null) {
          return reject(new GitfsError(ErrorCodes.BAD_ARGUMENT, `${this.channel}: nothing to roll back to here (${from === null ? 'nothing is blessed' : `only ${from.version} was ever blessed`})`, { channel: this.channel }));
        }
        // The release before was recalled (heard while a newer one was staged here, which was then
        // blessed over it): going back to it would put the node on a release the cluster dropped.
        if (to.commit === this.recalled) {
          return reject(new GitfsError(ErrorCodes.BAD_ARGUMENT, `${this.channel}: the release before ${from.version}, ${to.version} (${to.commit}), was recalled: publish a new release instead`, { channel: this.channel }));
        }
        try {
          if (signed === undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${this.channel}: a recall is signed with a release key this channel trusts (gitfs rollout rollback --sign KEY)`, { channel: this.channel });
          if (signed.release !== from.commit) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${this.channel}: the recall names ${signed.release}, but ${from.version} (${from.commit}) is blessed here`, { channel: this.channel });
          this.checkRecall(from.commit, signed.signature);
          await this.setRecalled(from.commit, signed.signature);
          await this.handle({ type: 'rollback-requested' });
        } catch (e) {
          return reject(e);
        }
        resolve({ from: from.version, to: to.version, recalled: true });
      });
    });
  }

  status(): ChannelStatus {
    const reports = this.peerReports();
    const peers = reports.map(({ peer, report }) => ({ nodeId: peer.nodeId, name: peer.name, report: reportView(report) }));
    const release = this.state.pending?.commit ?? this.report.release;
    const plan = release === null ? null : this.plan(release, reports);
    return {
      channel: this.channel,
      report: reportView(this.current()),
      phase: this.state.phase,
      triesLeft: this.state.pending?.triesLeft ?? null,
      history: this.state.history.slice(-10),
      peers,
      plan: plan === null ? null : { waves: plan.waves.map((w) => [...w]), open: plan.open, halted: plan.halted?.message ?? null, done: plan.done, waitingFor: [...plan.waitingFor] },
    };
  }
}
