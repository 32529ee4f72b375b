/**
 * How much checking of signatures the receiver spends on whom. Checking a certificate and an
 * Ed25519 signature costs ~0.1 ms here: anybody on the LAN, member or not, could send ~8 000
 * forged packets a second and keep the daemon's one thread busy with nothing else. So a packet
 * reaching those checks needs a token. A source (address and port) that sent a packet accepted
 * lately (TRUST_MS, or three of that member's announcement intervals if longer) takes from a
 * bucket of its own; every other source takes from one bucket shared by all, so a flood from
 * forged addresses, however many, gets no more than that and takes nothing from a member already
 * heard. A packet without a token is dropped unchecked (`throttled`). What this cannot tell apart:
 * a flood that spoofs a member's own address and port shares that member's bucket, and a member
 * heard from a new source (after this daemon restarted, or from a new port) waits for a token of
 * the shared bucket: under such floods it is heard late.
 */
import { renew } from '../util/bounded-map.js';

export interface BudgetRates {
  /** Packets checked per second from sources not heard from lately, all together, and the burst above that. */
  readonly sharedPerSecond: number;
  readonly sharedBurst: number;
  /** Packets checked per second from one source heard from lately, and the burst above that. */
  readonly sourcePerSecond: number;
  readonly sourceBurst: number;
}

/** A member's announcement comes in a few parts, each repeated 4 times after a change (docs/PROTOCOL.md): well within a source's bucket. */
export const DEFAULT_RATES: BudgetRates = { sharedPerSecond: 256, sharedBurst: 512, sourcePerSecond: 16, sourceBurst: 64 };
/** How long an accepted packet keeps its source's own bucket, at least. */
export const TRUST_MS = 600_000;
/** Sources with a bucket of their own remembered (the longest unheard go first). */
const MAX_SOURCES = 4096;

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
  private readonly shared: Bucket;
  /** Per source heard from lately: until when, and its own bucket. */
  private readonly heard = new Map<string, { readonly until: number; readonly bucket: Bucket }>();

  constructor(
    private readonly rates: BudgetRates,
    now: number,
  ) {
    this.shared = new Bucket(rates.sharedPerSecond, rates.sharedBurst, now);
  }

  /** Whether a packet from `source` may be checked now (a token taken). */
  allow(source: string, now: number): boolean {
    const h = this.heard.get(source);
    if (h !== undefined && now < h.until) return h.bucket.take(now);
    return this.shared.take(now);
  }

  /** A packet from `source`, of a member announcing every `intervalMs`, was accepted: the source has a bucket of its own for a while. */
  accepted(source: string, now: number, intervalMs: number): void {
    const bucket = this.heard.get(source)?.bucket ?? new Bucket(this.rates.sourcePerSecond, this.rates.sourceBurst, now);
    renew(this.heard, source, { until: now + Math.max(TRUST_MS, 3 * intervalMs), bucket }, MAX_SOURCES);
  }
}
