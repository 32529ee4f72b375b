/**
 * Every received datagram goes through here: decoded, checked for time and replay, authenticated
 * (envelope.ts, within the budget of verify-budget.ts), then merged into the peer table. Nothing a
 * remote sends can throw out of receive(): bad packets are dropped and counted by reason, and the
 * counts are what `gitfs peers --stats` shows.
 */
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { decodeAnnouncement, decodeHeader, type Announcement } from './announcement.js';
import type { EnvelopeOpener } from './envelope.js';
import { DROP_REASONS, PacketError, type DropReason } from './packet-error.js';
import type { PeerEvent, PeerTable } from './peer-table.js';
import type { ReplayGuard } from './replay-guard.js';
import { DEFAULT_RATES, VerifyBudget, type BudgetRates } from './verify-budget.js';

export interface ReceiverComponents {
  readonly opener: EnvelopeOpener;
  readonly guard: ReplayGuard;
  readonly table: PeerTable;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called with what each accepted packet changed, and the packet itself. */
  readonly onAccepted: (a: Announcement, events: readonly PeerEvent[]) => void;
}

export type ReceiveStats = Record<'received' | 'accepted' | DropReason, number>;

export class Receiver {
  readonly stats: ReceiveStats = Object.fromEntries([['received', 0], ['accepted', 0], ...DROP_REASONS.map((r) => [r, 0])]) as ReceiveStats;
  private lastWarn = new Map<DropReason, number>();
  private readonly budget: VerifyBudget;

  constructor(
    private readonly c: ReceiverComponents,
    private readonly o: { readonly windowMs: number; readonly rates?: BudgetRates },
  ) {
    this.budget = new VerifyBudget(o.rates ?? DEFAULT_RATES, c.clock.now());
  }

  receive(packet: Uint8Array, from: { address: string; port: number }): void {
    this.stats.received++;
    const now = this.c.clock.now();
    const source = `${from.address}:${from.port}`;
    try {
      const { sender, body } = this.c.opener.open(packet, now, (signed) => this.beforeChecks(signed, source, now));
      const a = decodeAnnouncement(body);
      if (a.nodeId !== sender.nodeId) throw new PacketError('identity_mismatch', `certificate of ${sender.nodeId} announces ${a.nodeId}`);
      if (Math.abs(a.timeMs - now) > this.o.windowMs) throw new PacketError('stale', `time ${a.timeMs - now} ms off`);
      const verdict = this.c.guard.check(a.nodeId, a, now);
      if (verdict === 'replay' || verdict === 'duplicate') throw new PacketError(verdict, `${a.nodeId} seq ${a.seq} part ${a.part}`);
      const events = this.c.table.apply(a, now);
      this.stats.accepted++;
      this.budget.accepted(source, now, a.intervalMs, a.parts);
      this.c.onAccepted(a, events);
    } catch (e) {
      if (!(e instanceof PacketError)) {
        // A bug of ours met by a remote's packet: still never a crash, but loud.
        this.c.log.log('error', 'receive-failed', { from: from.address, error: (e as Error).stack ?? String(e) });
        this.stats.malformed++;
        return;
      }
      this.stats[e.reason]++;
      if (e.reason !== 'own' && e.reason !== 'duplicate') this.warn(e, from, now);
    }
  }

  /**
   * Before a packet's certificate and signature are checked: one whose time is out of the window,
   * or that the replay guard would refuse (a copy of a packet taken, from anywhere), is dropped as
   * such unchecked, as it would be once checked; any other needs a token of the budget
   * (verify-budget.ts). Only the body's header is read here (decodeHeader): the rest is decoded
   * and checked once the signature is, so a forgery without a token costs no more than that. A
   * header that does not decode is left to the checks (the body is malformed once they pass).
   */
  private beforeChecks(body: Buffer, source: string, now: number): void {
    const claimed = decodeHeader(body);
    if (claimed !== undefined && Math.abs(claimed.timeMs - now) > this.o.windowMs) throw new PacketError('stale', `time ${claimed.timeMs - now} ms off (before its signature)`);
    const refused = claimed === undefined ? undefined : this.c.guard.refusal(claimed.nodeId, claimed, now);
    if (claimed !== undefined && refused !== undefined) throw new PacketError(refused, `${claimed.nodeId} seq ${claimed.seq} part ${claimed.part} (before its signature)`);
    if (!this.budget.allow(source, now)) throw new PacketError('throttled', `no token to check its signature (verify-budget.ts)`);
  }

  /** One warning per reason per 10 s, so a flood is counted, not logged line by line. */
  private warn(e: PacketError, from: { address: string; port: number }, now: number): void {
    if (now - (this.lastWarn.get(e.reason) ?? -Infinity) < 10_000) return;
    this.lastWarn.set(e.reason, now);
    this.c.log.log('warn', 'packet-dropped', { reason: e.reason, from: `${from.address}:${from.port}`, detail: e.message.slice(0, 200), count: this.stats[e.reason] });
  }
}
