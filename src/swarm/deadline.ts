/**
 * A timer for a request's limit in all, which a blob arriving in parts pushes back: each MiB of
 * parts received gives PART_GRACE_MS_PER_MIB more, so a large blob that moves at 1 MiB/s or more
 * is never cut off (1 GiB at 200 Mbit/s takes ~43 s of a piece's 60), and a peer trickling
 * parts still is.
 */
export const PART_GRACE_MS_PER_MIB = 1000;

export class Deadline {
  private at: number;
  private timer: NodeJS.Timeout;

  constructor(
    ms: number,
    private readonly expire: () => void,
    private readonly now: () => number,
  ) {
    this.at = now() + ms;
    this.timer = setTimeout(expire, ms);
  }

  /** `bytes` of parts came: the limit moves later by their grace. */
  extend(bytes: number): void {
    this.at += (bytes / (1 << 20)) * PART_GRACE_MS_PER_MIB;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.expire, Math.max(0, this.at - this.now()));
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}
