/**
 * When to announce: at start and after every change of this node's heads (debounced), each
 * followed by a few repeats so a lost datagram costs one repeat, not one interval; periodically
 * every interval with jitter; and soon after a peer appears or restarts, so newcomers learn
 * about us without waiting for the period. Every announcement carries a new sequence number
 * and the whole head list, cut into parts that fit one datagram.
 */
import { randomBytes } from 'node:crypto';
import type { ClusterTrust, NodeIdentity } from '../cluster/identity.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { Endpoint, Head, RolloutReport } from './announcement.js';
import { encodeAnnouncement } from './announcement.js';
import { MAX_PACKET_BYTES, envelopeOverhead, sealEnvelope } from './envelope.js';
import { splitAnnouncement } from './split.js';
import type { AnnounceTransport } from './transport.js';

/** How many of the start burst's repeats a greeting gets too. */
const GREET_REPEATS = 2;

export interface AnnouncerComponents {
  readonly transport: AnnounceTransport;
  readonly identity: NodeIdentity;
  readonly trust: ClusterTrust;
  readonly clock: Clock;
  readonly log: Logger;
  /** This node's heads now. */
  readonly heads: () => Promise<readonly Head[]>;
  /** Its rollout agent's reports now, one per channel; none without an agent. */
  readonly rollouts?: () => readonly RolloutReport[];
  readonly random?: () => number;
}

export interface AnnouncerOptions {
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  readonly intervalMs: number;
  /** Fraction of the interval by which each period varies, either way (0.2: ±20 %). */
  readonly jitter: number;
  readonly debounceMs: number;
  /** Delays after an announcement caused by a start or change at which it is repeated. */
  readonly repeatMs: readonly number[];
  /** Longest random delay before answering a new peer; greetings are at least this far apart. */
  readonly greetMs: number;
}

export class Announcer {
  readonly instance = randomBytes(16).toString('hex');
  private seq = 0;
  private timers = new Set<NodeJS.Timeout>();
  private periodic: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private greeting: NodeJS.Timeout | undefined;
  private lastGreet = -Infinity;
  private sending: Promise<void> = Promise.resolve();
  private stopped = false;
  readonly stats = { announcements: 0, packets: 0, bytes: 0, skippedHeads: 0 };

  constructor(
    private readonly c: AnnouncerComponents,
    private readonly o: AnnouncerOptions,
  ) {}

  start(): void {
    this.burst();
  }

  /** The heads changed: announce once they have been quiet for debounceMs, then repeat. */
  changed(): void {
    if (this.stopped) return;
    this.cancel(this.debounce);
    this.debounce = this.timer(this.o.debounceMs, () => {
      this.debounce = undefined;
      this.burst();
    });
  }

  /**
   * A peer appeared or restarted: announce within a random delay up to greetMs, and never two
   * greetings closer than greetMs (a greeting due too soon after the last is postponed, not dropped).
   * The greeting is repeated at the first GREET_REPEATS delays of repeatMs, so one lost datagram
   * does not leave the newcomer waiting a whole interval.
   */
  greet(): void {
    if (this.stopped || this.greeting !== undefined) return;
    const delay = Math.max(this.lastGreet + this.o.greetMs - this.c.clock.now(), this.random() * this.o.greetMs);
    this.greeting = this.timer(delay, () => {
      this.greeting = undefined;
      this.lastGreet = this.c.clock.now();
      this.announce();
      for (const repeat of this.o.repeatMs.slice(0, GREET_REPEATS)) this.timer(repeat, () => this.announce());
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.sending;
  }

  private burst(): void {
    for (const t of this.timers) if (t !== this.debounce) clearTimeout(t);
    this.timers = new Set(this.debounce === undefined ? [] : [this.debounce]);
    this.greeting = undefined;
    this.announce();
    for (const delay of this.o.repeatMs) this.timer(delay, () => this.announce());
  }

  private announce(): void {
    if (this.stopped) return;
    this.cancel(this.periodic);
    const spread = 1 + this.o.jitter * (2 * this.random() - 1);
    this.periodic = this.timer(this.o.intervalMs * spread, () => this.announce());
    this.sending = this.sending.then(() => this.send()).catch((e: unknown) => this.c.log.log('warn', 'announce-failed', { error: (e as Error).message }));
  }

  private async send(): Promise<void> {
    const heads = await this.c.heads();
    if (this.stopped) return;
    const template = {
      nodeId: this.c.identity.nodeId,
      instance: this.instance,
      seq: ++this.seq,
      timeMs: this.c.clock.now(),
      name: this.o.name,
      endpoints: this.o.endpoints,
      revocationVersion: this.c.trust.revocationVersion,
      intervalMs: this.o.intervalMs,
    };
    const empty = encodeAnnouncement({ ...template, part: 0, parts: 1, rangeStart: '', rangeEnd: '', heads: [], rollouts: [] }).length;
    const budget = MAX_PACKET_BYTES - envelopeOverhead(this.c.identity, this.c.trust, empty + 1024);
    const { parts, skipped, skippedRollouts } = splitAnnouncement(template, heads, this.c.rollouts?.() ?? [], budget);
    if (skippedRollouts.length > 0) this.c.log.log('warn', 'rollouts-not-announced', { channels: skippedRollouts.map((r) => r.channel), why: 'name too long for one datagram' });
    if (skipped.length > 0 && this.stats.skippedHeads !== skipped.length) {
      this.c.log.log('warn', 'heads-not-announced', { branches: skipped.map((h) => h.branch), why: 'name too long for one datagram' });
    }
    this.stats.skippedHeads = skipped.length;
    this.stats.announcements++;
    for (const part of parts) {
      const packet = sealEnvelope(this.c.identity, this.c.trust, encodeAnnouncement(part));
      this.stats.packets++;
      this.stats.bytes += packet.length * this.c.transport.destinations();
      await this.c.transport.send(packet);
    }
  }

  private timer(ms: number, f: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
    return t;
  }

  /** Cancelled timers leave the set too: only a burst empties it, and a node that only greets never bursts. */
  private cancel(t: NodeJS.Timeout | undefined): void {
    if (t === undefined) return;
    clearTimeout(t);
    this.timers.delete(t);
  }

  private random(): number {
    return (this.c.random ?? Math.random)();
  }
}
