/**
 * A timer for a request's limit in all, which a blob arriving in parts pushes back: each MiB of
 * parts received gives PART_GRACE_MS_PER_MIB more (1 GiB at 200 Mbit/s takes ~43 s of a piece's
 * 60), up to MAX_EXTENSION_LIMITS times the limit. So a blob of up to 1 GiB that moves at 1 MiB/s
 * or more is never cut off, and a peer trickling parts, or streaming a size it declared at will,
 * still is.
 */
export const PART_GRACE_MS_PER_MIB = 1000;

/**
 * How far parts push a request's limit back at most, in multiples of that limit: 20 minutes for a
 * piece's or a read's 60 s. A 1 GiB blob at 1 MiB/s (the grace above, and the least pace a sender
 * keeps in a contended upload slot: part-sender.ts) takes 17 such limits; a piece that slow is
 * raced by another holder past its first limit anyway (commit-fetch.ts `raceSlow`: that request
 * has a limit of its own). A larger blob must come faster (64 GiB: ~52 MiB/s). Unbounded, a peer
 * declaring 64 GiB and streaming that much at 1 MiB/s held an on-demand read, which nothing
 * races, for 18 hours.
 */
export const MAX_EXTENSION_LIMITS = 20;

export class Deadline {
  private at: number;
  /** The latest `at` may become. */
  private readonly latest: number;
  private timer: NodeJS.Timeout;

  constructor(
    ms: number,
    private readonly expire: () => void,
    private readonly now: () => number,
  ) {
    this.at = now() + ms;
    this.latest = this.at + ms * MAX_EXTENSION_LIMITS;
    this.timer = setTimeout(expire, ms);
  }

  /** `bytes` of parts came: the limit moves later by their grace, up to `latest`. */
  extend(bytes: number): void {
    this.at = Math.min(this.latest, this.at + (bytes / (1 << 20)) * PART_GRACE_MS_PER_MIB);
    clearTimeout(this.timer);
    this.timer = setTimeout(this.expire, Math.max(0, this.at - this.now()));
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}
