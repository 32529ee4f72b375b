/**
 * Counts the FUSE requests in flight by the epoch they began in, so that the mount can wait
 * until every request that may have answered from an older view of the branches has been
 * answered (src/mount/published-heads.ts). Waiting on it is for code outside request handlers.
 */
export class RequestGate {
  private epoch = 0;
  /** Requests in flight per epoch. */
  private readonly inFlight = new Map<number, number>();
  private waiters: Array<{ readonly before: number; readonly resolve: () => void }> = [];

  /** A request begins; call the returned function once it has been answered. */
  begin(): () => void {
    const epoch = this.epoch;
    this.inFlight.set(epoch, (this.inFlight.get(epoch) ?? 0) + 1);
    return () => {
      const left = (this.inFlight.get(epoch) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(epoch);
      else this.inFlight.set(epoch, left);
      if (this.waiters.length > 0) this.wake();
    };
  }

  /** Starts a new epoch; resolves once every request begun before it has been answered. */
  turn(): Promise<void> {
    const before = ++this.epoch;
    return new Promise((resolve) => {
      this.waiters.push({ before, resolve });
      this.wake();
    });
  }

  private wake(): void {
    let oldest = Infinity;
    for (const epoch of this.inFlight.keys()) oldest = Math.min(oldest, epoch);
    this.waiters = this.waiters.filter((w) => {
      if (oldest < w.before) return true;
      w.resolve();
      return false;
    });
  }
}
