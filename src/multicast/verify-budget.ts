/**
 * How much checking of signatures the receiver spends on whom. Checking a certificate and an
 * Ed25519 signature costs ~0.15 ms here; anybody on the LAN, member or not, could send ~6 000
 * forged packets a second and keep the daemon's one thread busy with nothing else. So a packet
 * reaching those checks needs a token: a source (address and port) that sent a packet accepted
 * within TRUST_MS is trusted and needs none, until it sends more failing ones (bad certificate or
 * signature, not a member) than its own bucket allows, when it loses its trust; every other
 * source takes from one bucket shared by all (a flood from forged addresses gets no more). A packet
 * without a token is dropped unchecked (`throttled`). A member heard from a new source waits
 * for a token under such a flood: it is heard late, not never.
 */
import { renew } from '../util/bounded-map.js';

export interface BudgetRates {
  /** Packets from sources not trusted checked per second, all of them together, and the burst above that. */
  readonly untrustedPerSecond: number;
  readonly untrustedBurst: number;
  /** Failing packets a trusted source may send per second, and the burst, before it loses its trust. */
  readonly failuresPerSecond: number;
  readonly failuresBurst: number;
}

export const DEFAULT_RATES: BudgetRates = { untrustedPerSecond: 256, untrustedBurst: 512, failuresPerSecond: 8, failuresBurst: 32 };
/** How long an accepted packet keeps its source trusted. */
export const TRUST_MS = 600_000;
/** Trusted sources remembered (the longest unheard go first). */
const MAX_TRUSTED = 4096;

class Bucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.at) * this.perSecond) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

export class VerifyBudget {
  private readonly untrusted: Bucket;
  /** Per trusted source: when a packet from it was last accepted, and its bucket of failures. */
  private readonly trusted = new Map<string, { readonly acceptedAt: number; readonly failures: Bucket }>();

  constructor(
    private readonly rates: BudgetRates,
    now: number,
  ) {
    this.untrusted = new Bucket(rates.untrustedPerSecond, rates.untrustedBurst, now);
  }

  /** Whether a packet from `source` may be checked now (a token taken when it needs one). */
  allow(source: string, now: number): boolean {
    const t = this.trusted.get(source);
    if (t !== undefined && now - t.acceptedAt < TRUST_MS) return true;
    return this.untrusted.take(now);
  }

  /** A packet from `source` was accepted: the source is trusted. */
  accepted(source: string, now: number): void {
    const failures = this.trusted.get(source)?.failures ?? new Bucket(this.rates.failuresPerSecond, this.rates.failuresBurst, now);
    renew(this.trusted, source, { acceptedAt: now, failures }, MAX_TRUSTED);
  }

  /** A packet from `source` failed its checks: a trusted source past its bucket of failures loses its trust. */
  failed(source: string, now: number): void {
    const t = this.trusted.get(source);
    if (t !== undefined && !t.failures.take(now)) this.trusted.delete(source);
  }
}
