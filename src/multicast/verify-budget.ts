/**
 * How much checking of signatures the receiver spends on whom. Checking a certificate and an
 * Ed25519 signature costs ~0.1 ms here: anybody on the LAN, member or not, could send ~8 000
 * forged packets a second and keep the daemon's one thread busy with nothing else. So a packet
 * reaching those checks needs a token. A source (address and port) that sent a packet accepted
 * lately (TRUST_MS, or three of that member's announcement intervals if longer) takes from a
 * bucket of its own, sized by how many parts that member's announcements take (each part is sent
 * five times after a change: once, then at every repeat) up to a ceiling, and from the shared one
 * when its own is dry; every other source takes from one bucket shared by all, so a flood from
 * forged addresses, however many, gets no more than that and takes nothing from a member already
 * heard. A packet without a token is dropped unchecked (`throttled`). What this cannot tell
 * apart: a flood that spoofs a member's own address and port shares that member's bucket (no more
 * than the ceiling: the part count is the member's word, and one claiming thousands must not lend
 * its source more checks than the shared bucket allows), and the member is not heard while it
 * lasts (dropped from the table after three of its intervals); a member heard from a new
 * source (after this daemon restarted, or from a new port) waits for a token of the shared bucket:
 * under a flood it is heard late, or not at all while the flood lasts.
 */
import { renew } from '../util/bounded-map.js';

export interface BudgetRates {
  /** Packets checked per second from sources not heard from lately, all together, and the burst above that. */
  readonly sharedPerSecond: number;
  readonly sharedBurst: number;
  /** Packets checked per second from one source heard from lately, and the burst above that, at least, per part of its member's announcements, and at most. */
  readonly sourcePerSecond: number;
  readonly sourceBurst: number;
  readonly perPartPerSecond: number;
  readonly perPartBurst: number;
  readonly sourceMaxPerSecond: number;
  readonly sourceMaxBurst: number;
}

/**
 * A member sends each part of its announcement five times within 3 s of a change (once, then at
 * 0.2, 0.6, 1.4 and 3 s), each with a new sequence number: 8 tokens per part take a change at
 * once, 2 a second per part one every few seconds. At most 64 a second (a quarter of the shared
 * bucket's; one announcement of 1 920 parts every 30 s) after a burst of 2 048 (a change of 256
 * parts at once, of about 440 over its 3 s): a larger member's repeats draw on the shared bucket.
 */
export const DEFAULT_RATES: BudgetRates = {
  sharedPerSecond: 256,
  sharedBurst: 512,
  sourcePerSecond: 16,
  sourceBurst: 64,
  perPartPerSecond: 2,
  perPartBurst: 8,
  sourceMaxPerSecond: 64,
  sourceMaxBurst: 2048,
};
/** How long an accepted packet keeps its source's own bucket, at least. */
export const TRUST_MS = 600_000;
/** Sources with a bucket of their own remembered (the longest unheard go first). */
const MAX_SOURCES = 4096;

class Bucket {
  private tokens: number;
  private at: number;

  constructor(
    private perSecond: number,
    private burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  /** New rates from now on (what was earned until now at the old ones is kept, up to the new burst). */
  resize(perSecond: number, burst: number, now: number): void {
    this.refill(now);
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.at) * this.perSecond) / 1000);
    this.at = now;
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

  /** Whether a packet from `source` may be checked now (a token taken: its own bucket's first, if it has one). */
  allow(source: string, now: number): boolean {
    const h = this.heard.get(source);
    if (h !== undefined && now < h.until && h.bucket.take(now)) return true;
    return this.shared.take(now);
  }

  /**
   * A packet from `source` was accepted, of a member announcing every `intervalMs` in `parts`
   * parts: the source has a bucket of its own for a while, sized for those parts within the
   * ceiling.
   */
  accepted(source: string, now: number, intervalMs: number, parts: number): void {
    const r = this.rates;
    const perSecond = Math.min(r.sourceMaxPerSecond, Math.max(r.sourcePerSecond, r.perPartPerSecond * parts));
    const burst = Math.min(r.sourceMaxBurst, Math.max(r.sourceBurst, r.perPartBurst * parts));
    const bucket = this.heard.get(source)?.bucket ?? new Bucket(perSecond, burst, now);
    bucket.resize(perSecond, burst, now);
    renew(this.heard, source, { until: now + Math.max(TRUST_MS, 3 * intervalMs), bucket }, MAX_SOURCES);
  }
}
